//! How long to wait after the n-th failure in a row: one exponential policy with a cap,
//! for objects the reconcile failed on and for secrets notifications alike.

use std::hash::{BuildHasher as _, Hash};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl BackoffPolicy {
    /// The wait after `failures` failures in a row (1 for the first): `initial`, doubled
    /// for each one after, at most `max`, never zero, and bounded (see
    /// [`crate::deadline::bounded`]).
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        let delay = self.initial.saturating_mul(1 << exponent).min(self.max);
        crate::deadline::bounded(delay).max(Duration::from_secs(1))
    }

    /// [`BackoffPolicy::delay`] plus up to a quarter of it as jitter drawn from `key`, so
    /// that objects that failed together do not retry together.
    pub fn delay_with_jitter(&self, failures: u32, key: impl Hash) -> Duration {
        let delay = self.delay(failures);
        let range = u64::try_from(delay.as_millis() / 4).unwrap_or(u64::MAX - 1) + 1;
        let jitter = std::collections::hash_map::RandomState::new().hash_one(key) % range;
        delay.saturating_add(Duration::from_millis(jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_the_cap_and_saturates() {
        let policy = BackoffPolicy::default();
        assert_eq!(policy.delay(1), Duration::from_secs(10));
        assert_eq!(policy.delay(2), Duration::from_secs(20));
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(15 * 60));
        let huge = BackoffPolicy {
            initial: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(huge.delay(7), crate::deadline::FAR_FUTURE);
        let jittered = policy.delay_with_jitter(1, "a");
        assert!((Duration::from_secs(10)..=Duration::from_millis(12_500)).contains(&jittered));
    }
}
