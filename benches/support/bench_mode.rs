//! Shared by the benchmarks: they measure a real cluster or run for long, so they run
//! only under `cargo bench` (which passes `--bench`), never as a side effect of
//! `cargo test --all-targets`.

pub fn require_bench_mode(name: &str) {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("{name}: a benchmark; run it with `cargo bench --bench {name}`");
        std::process::exit(0);
    }
}
