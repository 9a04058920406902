//! Unix seconds, converted in one place. Both ways saturate: a clock before 1970 reads as
//! 0, and a value read back from a file or the cluster that no `SystemTime` can hold (a
//! corrupt or edited file) becomes the far future, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the epoch; 0 for a time before it.
pub fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch, with their fraction; 0.0 for a time before it.
pub fn seconds_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The time `secs` after the epoch, or [`crate::deadline::FAR_FUTURE`] past it when
/// that is later (so any bounded duration can still be added to the result).
pub fn from_seconds(secs: u64) -> SystemTime {
    let far = crate::deadline::FAR_FUTURE.as_secs();
    UNIX_EPOCH + Duration::from_secs(secs.min(far))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_saturate_instead_of_panicking() {
        assert_eq!(seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(seconds(from_seconds(1_795_421_052)), 1_795_421_052);
        let far = from_seconds(u64::MAX);
        assert!(far > SystemTime::now());
        let _ = far + crate::deadline::FAR_FUTURE;
        assert_eq!(seconds_f64(UNIX_EPOCH + Duration::from_millis(1500)), 1.5);
    }
}
