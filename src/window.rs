//! Maintenance windows: when a rollout may start a disruptive step (a member's reboot, a
//! node's drain). A window recurs either on days of the week between two wall-clock
//! times, or at each match of a cron expression for a fixed length, in one time zone.
//! Whether it is open is a pure function of `now`, so the planner stays pure; the time
//! zone database is compiled in (chrono-tz), so the answer does not depend on the host.

use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike as _, LocalResult, NaiveDate, NaiveTime, TimeZone as _, Weekday};
use chrono_tz::Tz;

/// A recurring maintenance window in one time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    pub schedule: Schedule,
    pub time_zone: Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// On each of `days`, from `start` to `end` wall-clock time; an `end` at or before
    /// `start` ends on the next day, so the window crosses midnight and belongs to the day
    /// it opens on.
    Weekly {
        days: Vec<Weekday>,
        start: NaiveTime,
        end: NaiveTime,
    },
    /// At each match of `cron` (five fields), for `length` of elapsed time.
    Cron {
        cron: Box<croner::Cron>,
        length: Duration,
    },
}

/// Whether a window is open at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    Open {
        closes_at: SystemTime,
    },
    /// `None` only for a cron expression that never matches again.
    Closed {
        opens_at: Option<SystemTime>,
    },
}

/// Why a window's text is not one.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("unknown time zone `{0}`: use an IANA name such as `Europe/Berlin` or `UTC`")]
    TimeZone(String),
    #[error("`{0}` is not a day: use mon, tue, wed, thu, fri, sat or sun")]
    Day(String),
    #[error("`{0}` is not a time of day: use HH:MM, e.g. 02:30")]
    Time(String),
    #[error(
        "`24:00` is not a time of day: write midnight as 00:00 (an end at or before the start is on the next day)"
    )]
    Midnight,
    #[error(
        "`{text}` is not a cron expression of five fields (minute hour day-of-month month day-of-week), or @daily and the like: {cause}"
    )]
    Cron {
        text: String,
        #[source]
        cause: croner::errors::CronError,
    },
    #[error("`{0}` never matches: the window would never open")]
    Never(String),
}

pub fn parse_time_zone(text: &str) -> Result<Tz, WindowError> {
    Tz::from_str(text).map_err(|_| WindowError::TimeZone(text.to_owned()))
}

pub fn parse_day(text: &str) -> Result<Weekday, WindowError> {
    // chrono also takes full names ("monday"), which read as well in YAML.
    Weekday::from_str(text).map_err(|_| WindowError::Day(text.to_owned()))
}

pub fn parse_time(text: &str) -> Result<NaiveTime, WindowError> {
    if text == "24:00" {
        return Err(WindowError::Midnight);
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| WindowError::Time(text.to_owned()))
}

/// A five-field cron expression that matches at least once.
pub fn parse_cron(text: &str) -> Result<croner::Cron, WindowError> {
    use croner::parser::{CronParser, Seconds, Year};
    // Five fields, as the schema says: croner would also take seconds and a year.
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let cron = parser.parse(text).map_err(|cause| WindowError::Cron {
        text: text.to_owned(),
        cause,
    })?;
    // A fixed start keeps validation independent of the clock; croner searches years ahead.
    let start = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
    match start.map(|s| cron.find_next_occurrence(&s, true)) {
        Some(Ok(_)) => Ok(cron),
        _ => Err(WindowError::Never(text.to_owned())),
    }
}

impl MaintenanceWindow {
    /// Whether the window is open at `now`, and until when; or when it opens next.
    pub fn at(&self, now: SystemTime) -> WindowState {
        let now_local = DateTime::<chrono::Utc>::from(now).with_timezone(&self.time_zone);
        match &self.schedule {
            Schedule::Weekly { days, start, end } => {
                weekly(self.time_zone, days, *start, *end, now_local)
            }
            Schedule::Cron { cron, length } => by_cron(cron, *length, now_local),
        }
    }

    /// `opens_at` in the window's own time zone, as the dry run and `/status` show it.
    pub fn local_text(&self, at: SystemTime) -> String {
        DateTime::<chrono::Utc>::from(at)
            .with_timezone(&self.time_zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }
}

fn weekly(
    tz: Tz,
    days: &[Weekday],
    start: NaiveTime,
    end: NaiveTime,
    now: DateTime<Tz>,
) -> WindowState {
    let today = now.date_naive();
    // The window that opened yesterday may still be open (it crosses midnight); a week
    // and a day ahead holds the next opening of any non-empty set of days.
    let mut opens_at = None;
    for offset in -1i64..=8 {
        let Some(day) = today.checked_add_signed(chrono::TimeDelta::days(offset)) else {
            continue;
        };
        if !days.contains(&day.weekday()) {
            continue;
        }
        let end_day = if end <= start {
            day.succ_opt()
        } else {
            Some(day)
        };
        let (Some(open), Some(close)) = (
            resolve(tz, day, start),
            end_day.and_then(|d| resolve(tz, d, end)),
        ) else {
            continue;
        };
        // A DST change can leave a day's window empty (02:15 to 02:45 on a day that skips
        // from 02:00 to 03:00 both move to 03:00): that day has none.
        if close <= open {
            continue;
        }
        if open <= now && now < close {
            return WindowState::Open {
                closes_at: close.into(),
            };
        }
        if open > now {
            opens_at = Some(open.into());
            break;
        }
    }
    WindowState::Closed { opens_at }
}

/// A wall-clock time on a day as an instant. A time a DST change skips moves to the end
/// of the gap (02:30 in a gap from 02:00 to 03:00 is 03:00), as croner moves a cron
/// match; a time that occurs twice is its first occurrence.
fn resolve(tz: Tz, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Tz>> {
    let local = day.and_time(time);
    // Gaps are whole minutes and at most a few hours long.
    (0..=24 * 60).find_map(|minutes| {
        let at = local.checked_add_signed(chrono::TimeDelta::minutes(minutes))?;
        match tz.from_local_datetime(&at) {
            LocalResult::Single(t) => Some(t),
            LocalResult::Ambiguous(first, _) => Some(first),
            LocalResult::None => None,
        }
    })
}

fn by_cron(cron: &croner::Cron, length: Duration, now: DateTime<Tz>) -> WindowState {
    let length = chrono::TimeDelta::from_std(length).unwrap_or(chrono::TimeDelta::MAX);
    // Searching back, croner moves a match a DST change skips to just before the gap;
    // searching on from there gives the instant it moves to going forward (the gap's end).
    if let Ok(previous) = cron.find_previous_occurrence(&now, true)
        && let Some(before) = previous.checked_sub_signed(chrono::TimeDelta::seconds(1))
        && let Ok(opened) = cron.find_next_occurrence(&before, true)
        && opened <= now
        && let Some(close) = opened.checked_add_signed(length)
        && now < close
    {
        return WindowState::Open {
            closes_at: close.into(),
        };
    }
    WindowState::Closed {
        opens_at: cron.find_next_occurrence(&now, false).ok().map(Into::into),
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
