use super::*;

#[test]
fn any_resync_interval_gives_a_deadline() {
    for interval in [Duration::MAX, Duration::from_secs(u64::MAX), Duration::ZERO] {
        let next = tokio::time::Instant::now() + jittered(interval);
        assert!(next >= tokio::time::Instant::now() - Duration::from_secs(1));
    }
    let five_minutes = jittered(Duration::from_secs(300));
    assert!(five_minutes <= Duration::from_secs(300) && five_minutes >= Duration::from_secs(270));
}

#[test]
fn a_backoff_due_before_the_resync_wakes_the_loop_then() {
    let (now, wall) = (tokio::time::Instant::now(), SystemTime::now());
    let resync = Duration::from_secs(300);
    let soon = next_wake(now, resync, Some(wall + Duration::from_secs(10)), wall);
    assert_eq!(soon, now + Duration::from_secs(11));
    let late = next_wake(now, resync, Some(wall + Duration::from_secs(900)), wall);
    assert_eq!(late, now + resync);
    assert_eq!(next_wake(now, resync, None, wall), now + resync);
    let past = next_wake(now, resync, Some(wall - Duration::from_secs(5)), wall);
    assert_eq!(
        past,
        now + Duration::from_secs(1),
        "a due time in the past means now"
    );
    let far = next_wake(
        now,
        resync,
        Some(SystemTime::UNIX_EPOCH + Duration::MAX / 2),
        wall,
    );
    assert_eq!(far, now + resync);
}
