//! Human units in desired state: sizes ("512M", "2G") held in MiB, durations ("30s", "5m").

use std::fmt;
use std::time::Duration;

/// The schema pattern for sizes; `describe_pattern` turns it back into words for errors.
pub const SIZE_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(M|G|T|Mi|Gi|Ti|MiB|GiB|TiB)$";
pub const SIZE_EXPECTED: &str =
    "a size with a unit M, G or T (binary, as Ganeti counts), e.g. 512M or 2G";

pub const DURATION_PATTERN: &str = r"^[0-9]+(s|m|h)$";
pub const DURATION_EXPECTED: &str = "a duration: a whole number with s, m or h, e.g. 30s, 5m or 1h";

/// The largest size accepted, 1024T (1 PiB): far beyond any node, and small enough that
/// millions of them sum without overflow.
pub const MAX_SIZE: Size = Size::from_mib(1024 * 1024 * 1024);

/// The longest duration accepted (resync interval, timeouts). Whatever validates must be
/// usable by the daemon: an interval added to `Instant::now()` must not overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A size in MiB, the unit Ganeti's RAPI uses for memory and disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size {
    mib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{0:?} is not a size; expected {SIZE_EXPECTED}")]
    NotASize(String),
    #[error("{0:?} is not a whole number of MiB")]
    FractionalMib(String),
    #[error("{0:?} is too large; the largest size is {MAX_SIZE}")]
    TooLarge(String),
    #[error("{0:?} is not a duration; expected {DURATION_EXPECTED}")]
    NotADuration(String),
    #[error(
        "{text:?} is too long; the longest is {}",
        format_duration(MAX_DURATION)
    )]
    DurationTooLong { text: String },
}

impl Size {
    pub const fn from_mib(mib: u64) -> Self {
        Size { mib }
    }

    pub const fn mib(self) -> u64 {
        self.mib
    }

    /// Sums sizes without wrapping: a sum past the largest `u64` is that largest value,
    /// which exceeds every capacity, so an overflow can never make instances "fit".
    pub fn saturating_sum(sizes: impl IntoIterator<Item = Size>) -> Size {
        Size {
            mib: sizes
                .into_iter()
                .fold(0, |sum, s| sum.saturating_add(s.mib)),
        }
    }

    /// Parses exactly, digit by digit: `1.5G` is 1536 MiB, `1.1M` is rejected rather than
    /// rounded, and `1.000…0G` with any number of zeros is `1G`.
    pub fn parse(text: &str) -> Result<Size, UnitError> {
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| UnitError::NotASize(text.to_owned()))?;
        let (number, unit) = text.split_at(split);
        let factor: u128 = match unit {
            "M" | "Mi" | "MiB" => 1,
            "G" | "Gi" | "GiB" => 1024,
            "T" | "Ti" | "TiB" => 1024 * 1024,
            _ => return Err(UnitError::NotASize(text.to_owned())),
        };
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits_only(whole)
            || !digits_only(fraction)
            || (number.contains('.') && fraction.is_empty())
        {
            return Err(UnitError::NotASize(text.to_owned()));
        }
        let too_large = || UnitError::TooLarge(text.to_owned());
        let whole = whole.trim_start_matches('0');
        // More digits than the largest size has cannot be a size we accept.
        if whole.len() > 20 {
            return Err(too_large());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let mut mib = whole * factor;
        let fraction = fraction.trim_end_matches('0');
        if !fraction.is_empty() {
            // A fraction times 2^20 at most is whole only if it has at most 20 decimals
            // once trailing zeros are gone, so u128 holds every case that can succeed.
            if fraction.len() > 20 {
                return Err(UnitError::FractionalMib(text.to_owned()));
            }
            let scale = 10u128.pow(fraction.len() as u32);
            let scaled = fraction.parse::<u128>().map_err(|_| too_large())? * factor;
            if !scaled.is_multiple_of(scale) {
                return Err(UnitError::FractionalMib(text.to_owned()));
            }
            mib += scaled / scale;
        }
        if mib > u128::from(MAX_SIZE.mib) {
            return Err(too_large());
        }
        Ok(Size { mib: mib as u64 })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const GIB: u64 = 1024;
        const TIB: u64 = 1024 * 1024;
        match self.mib {
            0 => write!(f, "0M"),
            m if m.is_multiple_of(TIB) => write!(f, "{}T", m / TIB),
            m if m.is_multiple_of(GIB) => write!(f, "{}G", m / GIB),
            m => write!(f, "{m}M"),
        }
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::NotADuration(text.to_owned());
    let too_long = || UnitError::DurationTooLong {
        text: text.to_owned(),
    };
    // The unit is the last character, whatever its width: never split inside one.
    let (number, unit) = text.split_at(text.char_indices().last().ok_or_else(bad)?.0);
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number = number.trim_start_matches('0');
    // Only digits are left, so a failed parse means too many of them.
    let n: u64 = if number.is_empty() {
        0
    } else {
        number.parse().map_err(|_| too_long())?
    };
    let seconds = n.checked_mul(seconds_per_unit).ok_or_else(too_long)?;
    let duration = Duration::from_secs(seconds);
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_and_held_in_mib() {
        assert_eq!(Size::parse("512M").unwrap().mib(), 512);
        assert_eq!(Size::parse("2G").unwrap().mib(), 2048);
        assert_eq!(Size::parse("2GiB").unwrap().mib(), 2048);
        assert_eq!(Size::parse("1T").unwrap().mib(), 1024 * 1024);
        assert_eq!(Size::parse("1.5G").unwrap().mib(), 1536);
        assert_eq!(Size::parse("0G").unwrap().mib(), 0);
    }

    #[test]
    fn bad_sizes_are_rejected_not_rounded() {
        for bad in [
            "", "G", "12", "2g", "2 G", "-1G", "1.G", ".5G", "2K", "1e3M",
        ] {
            assert!(Size::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            Size::parse("1.1M"),
            Err(UnitError::FractionalMib("1.1M".into()))
        );
        assert!(matches!(
            Size::parse("99999999999999999T"),
            Err(UnitError::TooLarge(_))
        ));
    }

    #[test]
    fn sizes_parse_exactly_whatever_the_number_of_digits() {
        let zeros = "0".repeat(500);
        assert_eq!(Size::parse(&format!("1.{zeros}G")).unwrap().mib(), 1024);
        assert_eq!(Size::parse(&format!("{zeros}2G")).unwrap().mib(), 2048);
        assert_eq!(
            Size::parse("0.5M"),
            Err(UnitError::FractionalMib("0.5M".into()))
        );
        assert_eq!(
            Size::parse(&format!("1.{zeros}1T")),
            Err(UnitError::FractionalMib(format!("1.{zeros}1T")))
        );
        assert_eq!(Size::parse("0.00000095367431640625T").unwrap().mib(), 1);
        assert_eq!(Size::parse("1024T"), Ok(MAX_SIZE));
        assert!(matches!(Size::parse("1025T"), Err(UnitError::TooLarge(_))));
        assert!(matches!(
            Size::parse(&format!("1{zeros}M")),
            Err(UnitError::TooLarge(_))
        ));
    }

    #[test]
    fn sums_of_sizes_never_wrap() {
        let huge = Size::from_mib(u64::MAX / 2 + 1);
        assert_eq!(Size::saturating_sum([huge, huge]).mib(), u64::MAX);
        assert!(Size::saturating_sum([huge, huge]) > Size::parse("14G").unwrap());
    }

    #[test]
    fn durations_have_a_maximum_that_is_named() {
        assert_eq!(parse_duration("24h").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("86400s").unwrap(), MAX_DURATION);
        for long in [
            "25h",
            "86401s",
            "99999999999999999999h",
            "18446744073709551615s",
        ] {
            let e = parse_duration(long).unwrap_err();
            assert_eq!(e, UnitError::DurationTooLong { text: long.into() });
            assert!(
                e.to_string().contains("too long; the longest is 24h"),
                "{e}"
            );
        }
    }

    #[test]
    fn sizes_display_in_the_largest_exact_unit() {
        assert_eq!(Size::from_mib(2048).to_string(), "2G");
        assert_eq!(Size::from_mib(1536).to_string(), "1536M");
        assert_eq!(Size::from_mib(1024 * 1024).to_string(), "1T");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "s", "5", "5d", "-5m", "1.5m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    }
}
