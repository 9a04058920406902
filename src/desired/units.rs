//! Human units in desired state: sizes ("512M", "2G") held in MiB, durations ("30s", "5m").

use std::fmt;
use std::time::Duration;

/// The schema pattern for sizes; `describe_pattern` turns it back into words for errors.
pub const SIZE_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(M|G|T|Mi|Gi|Ti|MiB|GiB|TiB)$";
pub const SIZE_EXPECTED: &str =
    "a size with a unit M, G or T (binary, as Ganeti counts), e.g. 512M or 2G";

pub const DURATION_PATTERN: &str = r"^[0-9]+(s|m|h)$";
pub const DURATION_EXPECTED: &str = "a duration: a whole number with s, m or h, e.g. 30s, 5m or 1h";

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
    #[error("{0:?} is too large")]
    TooLarge(String),
    #[error("{0:?} is not a duration; expected {DURATION_EXPECTED}")]
    NotADuration(String),
}

impl Size {
    pub const fn from_mib(mib: u64) -> Self {
        Size { mib }
    }

    pub const fn mib(self) -> u64 {
        self.mib
    }

    pub fn parse(text: &str) -> Result<Size, UnitError> {
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| UnitError::NotASize(text.to_owned()))?;
        let (number, unit) = text.split_at(split);
        let factor: u64 = match unit {
            "M" | "Mi" | "MiB" => 1,
            "G" | "Gi" | "GiB" => 1024,
            "T" | "Ti" | "TiB" => 1024 * 1024,
            _ => return Err(UnitError::NotASize(text.to_owned())),
        };
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UnitError::NotASize(text.to_owned()));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit())
            || (number.contains('.') && fraction.is_empty())
        {
            return Err(UnitError::NotASize(text.to_owned()));
        }
        let too_large = || UnitError::TooLarge(text.to_owned());
        let whole: u64 = whole.parse().map_err(|_| too_large())?;
        let mut mib = whole.checked_mul(factor).ok_or_else(too_large)?;
        if !fraction.is_empty() {
            // Exact decimal arithmetic: 1.5G is 1536 MiB, 1.1M is rejected rather than rounded.
            let digits = u32::try_from(fraction.len()).map_err(|_| too_large())?;
            let scale = 10u64.checked_pow(digits).ok_or_else(too_large)?;
            let numerator: u64 = fraction.parse().map_err(|_| too_large())?;
            let scaled = numerator.checked_mul(factor).ok_or_else(too_large)?;
            if scaled % scale != 0 {
                return Err(UnitError::FractionalMib(text.to_owned()));
            }
            mib = mib.checked_add(scaled / scale).ok_or_else(too_large)?;
        }
        Ok(Size { mib })
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
    let (number, unit) = text.split_at(text.char_indices().last().ok_or_else(bad)?.0);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = number.parse().map_err(|_| bad())?;
    Ok(Duration::from_secs(
        n.checked_mul(seconds_per_unit).ok_or_else(bad)?,
    ))
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
