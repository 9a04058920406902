//! Rounds and ratio reports for the long benchmarks.
//!
//! A long benchmark times a real cluster, a disk or a network, where one run can be an
//! outlier: a round in which the reference waited out a 66 s stall once made a whole run
//! read 0.22x. So every long benchmark runs at least three rounds, compares its two sides
//! within each round (the two ran back to back, under the same conditions), and reports
//! the median of those per-round ratios next to every round's figures: one outlier then
//! shows in its own line and cannot decide the result. A ratio of medians or of totals
//! would instead pair one round's time with another round's, and a total lets a single
//! slow round dominate.

/// With fewer rounds, a single outlier still moves the median.
pub const MIN_ROUNDS: usize = 3;
/// The rounds when BENCH_ROUNDS is not set: the fewest that give a robust median, since a
/// round of some benchmarks takes minutes.
pub const DEFAULT_ROUNDS: usize = MIN_ROUNDS;

/// The number of rounds: BENCH_ROUNDS, or 3 when it is not set. Anything but a number of
/// at least 3 ends the benchmark with exit code 2 before it measures anything, rather than
/// running fewer rounds than a median needs or silently running the default.
pub fn rounds() -> usize {
    let Ok(value) = std::env::var("BENCH_ROUNDS") else {
        return DEFAULT_ROUNDS;
    };
    match value.trim().parse::<usize>() {
        Ok(rounds) if rounds >= MIN_ROUNDS => rounds,
        _ => {
            eprintln!(
                "BENCH_ROUNDS={value:?}: the long benchmarks need a whole number of rounds, at \
                 least {MIN_ROUNDS}, so that one outlying round cannot decide the median \
                 (unset, it is {DEFAULT_ROUNDS})"
            );
            std::process::exit(2)
        }
    }
}

/// The middle value; for an even count, the mean of the two middle ones.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "the median of no values");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

/// The smallest and the largest value.
pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), &v| {
            (min.min(v), max.max(v))
        })
}

/// A time in seconds as `12.34s`, or as `45.6ms` below a second, where two decimals of a
/// second would hide the figure (an observe takes tens of milliseconds).
pub fn seconds(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.1}ms", secs * 1000.0)
    } else {
        format!("{secs:.2}s")
    }
}

/// Prints `what`, then one line per round with both times in seconds and their ratio
/// (ours / reference), then the median of the per-round ratios with their min, max and
/// `goal` (met when the median is at most the goal). Returns the median ratio, the one
/// figure to hold against the goal.
pub fn report(what: &str, rounds: &[(f64, f64)], goal: f64) -> f64 {
    assert!(!rounds.is_empty(), "{what}: no rounds to report");
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|&(ours, reference)| ours / reference)
        .collect();
    println!("{what}:");
    for (round, (&(ours, reference), ratio)) in rounds.iter().zip(&ratios).enumerate() {
        println!(
            "  round {}: ours {}, reference {}, ratio {ratio:.2}x",
            round + 1,
            seconds(ours),
            seconds(reference)
        );
    }
    let median = median(&ratios);
    let (min, max) = min_max(&ratios);
    println!(
        "  median ratio {median:.2}x over {} rounds (min {min:.2}x, max {max:.2}x); goal <= \
         {goal:.2}x: {}",
        rounds.len(),
        if median <= goal { "met" } else { "NOT met" }
    );
    median
}
