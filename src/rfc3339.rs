//! RFC 3339 timestamps for status output, events and notifications: one format, by
//! chrono (already a dependency for maintenance windows).

use std::time::SystemTime;
#[cfg(test)]
use std::time::UNIX_EPOCH;

/// `2026-11-23T08:04:12Z` for a point in time (UTC, whole seconds).
pub fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let at = UNIX_EPOCH + Duration::from_secs(1_795_421_052);
        assert_eq!(rfc3339(at), "2026-11-23T08:04:12Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
