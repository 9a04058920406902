//! A hook on every RAPI request the client sends, so that metrics and benchmarks see the
//! real traffic without the client knowing about either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One request attempt. Every field has a bounded set of values except `elapsed`.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: &'static str,
    /// The route template, e.g. `/2/instances/{name}/modify`.
    pub route: &'static str,
    /// `None` when no HTTP answer arrived (connect failure, reset, timeout, TLS).
    pub status: Option<u16>,
    pub elapsed: Duration,
}

pub trait RequestObserver: Send + Sync {
    fn request(&self, record: &RequestRecord);
}

pub struct NoObserver;

impl RequestObserver for NoObserver {
    fn request(&self, _: &RequestRecord) {}
}

/// Counts requests; benchmarks use it to show a constant request count.
#[derive(Default)]
pub struct RequestCounter(AtomicU64);

impl RequestCounter {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl RequestObserver for RequestCounter {
    fn request(&self, _: &RequestRecord) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
