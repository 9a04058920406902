//! Durations that may come from a user (a resync interval, a timeout, a backoff) are
//! added to clock readings, and `Instant + Duration::MAX` panics. Bounding them first
//! to a far future makes an absurd value mean "practically never" instead of a crash.

use std::time::Duration;

/// A century: longer than any wait means, short enough that adding it to any clock
/// reading (monotonic or wall) cannot overflow.
pub const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `duration`, or [`FAR_FUTURE`] if longer.
pub fn bounded(duration: Duration) -> Duration {
    duration.min(FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_duration_can_be_added_to_now_once_bounded() {
        for d in [Duration::MAX, Duration::from_secs(u64::MAX), FAR_FUTURE] {
            let _ = std::time::Instant::now() + bounded(d);
            let _ = tokio::time::Instant::now() + bounded(d);
            let _ = std::time::SystemTime::now() + bounded(d);
        }
        assert_eq!(bounded(Duration::from_secs(5)), Duration::from_secs(5));
    }
}
