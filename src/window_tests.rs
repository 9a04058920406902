use chrono::{TimeZone as _, Utc};

use super::*;

/// An instant, written in UTC.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> SystemTime {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().into()
}

fn weekly(days: &[&str], start: &str, end: &str, tz: &str) -> MaintenanceWindow {
    MaintenanceWindow {
        schedule: Schedule::Weekly {
            days: days.iter().map(|d| parse_day(d).unwrap()).collect(),
            start: parse_time(start).unwrap(),
            end: parse_time(end).unwrap(),
        },
        time_zone: parse_time_zone(tz).unwrap(),
    }
}

fn cron(text: &str, hours: u64, tz: &str) -> MaintenanceWindow {
    MaintenanceWindow {
        schedule: Schedule::Cron {
            cron: Box::new(parse_cron(text).unwrap()),
            length: Duration::from_secs(hours * 3600),
        },
        time_zone: parse_time_zone(tz).unwrap(),
    }
}

fn open_until(at: SystemTime) -> WindowState {
    WindowState::Open { closes_at: at }
}

fn closed_until(at: SystemTime) -> WindowState {
    WindowState::Closed { opens_at: Some(at) }
}

// 2026-12-07 is a Monday.
#[test]
fn weekdays_between_two_times() {
    let w = weekly(
        &["mon", "tue", "wed", "thu", "fri"],
        "02:00",
        "05:00",
        "UTC",
    );
    assert_eq!(
        w.at(utc(2026, 12, 7, 3, 0)),
        open_until(utc(2026, 12, 7, 5, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 7, 2, 0)),
        open_until(utc(2026, 12, 7, 5, 0))
    );
    // The end is not in the window.
    assert_eq!(
        w.at(utc(2026, 12, 7, 5, 0)),
        closed_until(utc(2026, 12, 8, 2, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 7, 1, 59)),
        closed_until(utc(2026, 12, 7, 2, 0))
    );
    // Friday after the window: Monday next.
    assert_eq!(
        w.at(utc(2026, 12, 11, 6, 0)),
        closed_until(utc(2026, 12, 14, 2, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 12, 3, 0)),
        closed_until(utc(2026, 12, 14, 2, 0))
    );
}

#[test]
fn a_window_that_crosses_midnight_belongs_to_the_day_it_opens() {
    let w = weekly(&["fri"], "22:00", "02:00", "UTC");
    assert_eq!(
        w.at(utc(2026, 12, 11, 23, 0)),
        open_until(utc(2026, 12, 12, 2, 0))
    );
    // Saturday 01:00 is still Friday's window.
    assert_eq!(
        w.at(utc(2026, 12, 12, 1, 0)),
        open_until(utc(2026, 12, 12, 2, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 12, 3, 0)),
        closed_until(utc(2026, 12, 18, 22, 0))
    );
    // Friday 01:00 is Thursday's, which is not a day of the window.
    assert_eq!(
        w.at(utc(2026, 12, 11, 1, 0)),
        closed_until(utc(2026, 12, 11, 22, 0))
    );
}

#[test]
fn times_are_read_in_the_windows_time_zone() {
    // Berlin is UTC+1 in December: 02:00-05:00 there is 01:00-04:00 UTC.
    let w = weekly(&["mon"], "02:00", "05:00", "Europe/Berlin");
    assert_eq!(
        w.at(utc(2026, 12, 7, 0, 30)),
        closed_until(utc(2026, 12, 7, 1, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 7, 1, 30)),
        open_until(utc(2026, 12, 7, 4, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 7, 4, 0)),
        closed_until(utc(2026, 12, 14, 1, 0))
    );
    assert_eq!(w.local_text(utc(2026, 12, 7, 1, 0)), "2026-12-07 02:00 CET");
}

#[test]
fn the_spring_dst_change_skips_an_hour_and_the_window_still_opens() {
    // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    let w = weekly(&["sun"], "02:00", "05:00", "Europe/Berlin");
    assert_eq!(
        w.at(utc(2026, 3, 29, 0, 30)),
        closed_until(utc(2026, 3, 29, 1, 0))
    );
    // It closes at 05:00 CEST: two hours of elapsed time that day, not three.
    assert_eq!(
        w.at(utc(2026, 3, 29, 1, 0)),
        open_until(utc(2026, 3, 29, 3, 0))
    );
    // A start inside the gap moves to its end: 03:00 CEST.
    let w = weekly(&["sun"], "02:30", "04:00", "Europe/Berlin");
    assert_eq!(
        w.at(utc(2026, 3, 29, 0, 59)),
        closed_until(utc(2026, 3, 29, 1, 0))
    );
    assert_eq!(
        w.at(utc(2026, 3, 29, 1, 0)),
        open_until(utc(2026, 3, 29, 2, 0))
    );
}

#[test]
fn the_autumn_dst_change_repeats_an_hour_and_the_window_takes_the_first() {
    // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-03:00 happens twice.
    let w = weekly(&["sun"], "02:00", "02:30", "Europe/Berlin");
    // The first 02:00 is 00:00 UTC, the first 02:30 is 00:30 UTC.
    assert_eq!(
        w.at(utc(2026, 10, 25, 0, 10)),
        open_until(utc(2026, 10, 25, 0, 30))
    );
    // The second 02:10 (01:10 UTC) is after the window.
    assert_eq!(
        w.at(utc(2026, 10, 25, 1, 10)),
        closed_until(utc(2026, 11, 1, 1, 0))
    );
}

#[test]
fn a_cron_window_opens_at_each_match_for_its_length() {
    let w = cron("0 2 * * 1-5", 3, "UTC");
    assert_eq!(
        w.at(utc(2026, 12, 7, 4, 0)),
        open_until(utc(2026, 12, 7, 5, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 7, 5, 0)),
        closed_until(utc(2026, 12, 8, 2, 0))
    );
    assert_eq!(
        w.at(utc(2026, 12, 12, 12, 0)),
        closed_until(utc(2026, 12, 14, 2, 0))
    );
    // Crossing midnight: 23:00 for 3 hours.
    let w = cron("0 23 * * 5", 3, "UTC");
    assert_eq!(
        w.at(utc(2026, 12, 12, 1, 0)),
        open_until(utc(2026, 12, 12, 2, 0))
    );
}

#[test]
fn a_cron_window_follows_its_time_zone_across_a_dst_change() {
    // 02:00 New York: 07:00 UTC in winter (EST), 06:00 UTC after 2026-03-08 (EDT).
    let w = cron("0 2 * * *", 1, "America/New_York");
    assert_eq!(
        w.at(utc(2026, 3, 6, 7, 30)),
        open_until(utc(2026, 3, 6, 8, 0))
    );
    assert_eq!(
        w.at(utc(2026, 3, 9, 5, 0)),
        closed_until(utc(2026, 3, 9, 6, 0))
    );
    assert_eq!(
        w.at(utc(2026, 3, 9, 6, 30)),
        open_until(utc(2026, 3, 9, 7, 0))
    );
}

#[test]
fn a_window_a_dst_change_leaves_empty_is_skipped_that_day() {
    // Berlin, 2026-03-29: 02:15 and 02:45 both move to 03:00 CEST: no window that day.
    let w = weekly(&["sun"], "02:15", "02:45", "Europe/Berlin");
    // The next Sunday's: 02:15 CEST is 00:15 UTC.
    assert_eq!(
        w.at(utc(2026, 3, 29, 0, 0)),
        closed_until(utc(2026, 4, 5, 0, 15))
    );
    assert_eq!(
        w.at(utc(2026, 3, 29, 1, 0)),
        closed_until(utc(2026, 4, 5, 0, 15))
    );
}

#[test]
fn a_cron_match_a_dst_change_skips_moves_to_the_end_of_the_gap() {
    // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC); 02:30 does not exist.
    let w = cron("30 2 * * *", 1, "America/New_York");
    assert_eq!(
        w.at(utc(2026, 3, 8, 6, 45)),
        closed_until(utc(2026, 3, 8, 7, 0))
    );
    assert_eq!(
        w.at(utc(2026, 3, 8, 7, 30)),
        open_until(utc(2026, 3, 8, 8, 0))
    );
}

#[test]
fn bad_text_is_refused_with_what_would_be_right() {
    let e = parse_time_zone("Mars/Olympus").unwrap_err().to_string();
    assert!(e.contains("Mars/Olympus") && e.contains("IANA"), "{e}");
    let e = parse_day("someday").unwrap_err().to_string();
    assert!(e.contains("someday") && e.contains("mon"), "{e}");
    assert!(parse_time("25:00").is_err());
    assert!(parse_time("2am").is_err());
    let e = parse_time("24:00").unwrap_err().to_string();
    assert!(e.contains("00:00"), "{e}");
    assert_eq!(
        parse_time("02:30").unwrap(),
        NaiveTime::from_hms_opt(2, 30, 0).unwrap()
    );
    assert!(parse_cron("every night").is_err());
    // Five fields only: no seconds, no year.
    assert!(parse_cron("0 0 2 * * *").is_err());
    assert!(parse_cron("0 2 * * * 2027").is_err());
    let e = parse_cron("0 0 30 2 *").unwrap_err().to_string();
    assert!(e.contains("never"), "{e}");
}
