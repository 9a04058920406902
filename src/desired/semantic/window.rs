//! A maintenance window's text (`rotation.window`, `policy.rotationWindow`) as a window:
//! days and times or a cron expression and a length, in a time zone. Each mistake is
//! reported at its own field.

use crate::window::{self, MaintenanceWindow, Schedule};

use super::super::raw::RawWindow;
use super::super::source::Target;
use super::super::units::parse_duration;
use super::{Checker, Origin};

/// What a window's entry says.
pub(super) enum WindowChoice {
    /// `always: true`: no window.
    Always,
    Window(MaintenanceWindow),
    /// Reported already.
    Invalid,
}

impl Checker<'_> {
    /// `below` is the pointer of the window's own entry, e.g. `/rotation/window`.
    pub(super) fn window(&mut self, origin: &Origin, below: &str, raw: &RawWindow) -> WindowChoice {
        let errors_before = self.diagnostics.len();
        let by_time = raw.start.is_some() || raw.end.is_some() || raw.days.is_some();
        let by_cron = raw.cron.is_some() || raw.duration.is_some();
        // `always: false` says what leaving it out says.
        if raw.always == Some(true) {
            if by_time || by_cron || raw.time_zone.is_some() {
                let d = self
                    .diagnostic(origin, &format!("{below}/always"), Target::Key, "`always` stands alone: `always: true` means no window, and takes no other field")
                    .hint("write `always: true` alone, or remove `always` and give `start` and `end`, or `cron` and `duration`");
                self.report(d);
                return WindowChoice::Invalid;
            }
            return WindowChoice::Always;
        }
        let time_zone = match raw.time_zone.as_deref().map(window::parse_time_zone) {
            None => Some(chrono_tz::UTC),
            Some(Ok(tz)) => Some(tz),
            Some(Err(e)) => {
                self.located(origin, &format!("{below}/timeZone"), e.to_string());
                None
            }
        };
        let schedule = match (by_time, by_cron) {
            // Days or times with a length: the length goes only with a cron expression.
            (true, true) if raw.cron.is_none() => {
                let d = self
                    .diagnostic(origin, &format!("{below}/duration"), Target::Key, "`duration` goes only with `cron`: a window with days and times lasts from `start` to `end`")
                    .hint("remove `duration`, or give `cron` instead of `start`, `end` and `days`");
                self.report(d);
                None
            }
            (true, true) => {
                let d = self
                    .diagnostic(
                        origin,
                        &format!("{below}/cron"),
                        Target::Key,
                        "a window is either days and times or a cron expression, not both",
                    )
                    .hint("keep `start`, `end` (and `days`), or `cron` and `duration`");
                self.report(d);
                None
            }
            (false, false) => {
                let d = self
                    .diagnostic(origin, below, Target::Value, "a window needs `start` and `end`, or `cron` and `duration`")
                    .hint("e.g. `{days: [sat, sun], start: \"02:00\", end: \"05:00\", timeZone: Europe/Berlin}`, or `always: true` for none");
                self.report(d);
                None
            }
            (true, false) => self.weekly(origin, below, raw),
            (false, true) => self.cron(origin, below, raw),
        };
        match (schedule, time_zone) {
            (Some(schedule), Some(time_zone)) if self.diagnostics.len() == errors_before => {
                WindowChoice::Window(MaintenanceWindow {
                    schedule,
                    time_zone,
                })
            }
            _ => WindowChoice::Invalid,
        }
    }

    fn weekly(&mut self, origin: &Origin, below: &str, raw: &RawWindow) -> Option<Schedule> {
        let time = |checker: &mut Self, field: &str, text: Option<&String>| {
            let Some(text) = text else {
                let d = checker.diagnostic(
                    origin,
                    below,
                    Target::Value,
                    format!("a window with days and times needs `{field}` (HH:MM)"),
                );
                checker.report(d);
                return None;
            };
            window::parse_time(text)
                .map_err(|e| checker.located(origin, &format!("{below}/{field}"), e.to_string()))
                .ok()
        };
        let start = time(self, "start", raw.start.as_ref());
        let end = time(self, "end", raw.end.as_ref());
        let days = match &raw.days {
            None => {
                use chrono::Weekday::*;
                Some(vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun])
            }
            Some(days) if days.is_empty() => {
                self.located(
                    origin,
                    &format!("{below}/days"),
                    "an empty list of days: the window would never open".to_owned(),
                );
                None
            }
            Some(days) => {
                let mut parsed = Vec::with_capacity(days.len());
                for (i, day) in days.iter().enumerate() {
                    match window::parse_day(day) {
                        Ok(d) => parsed.push(d),
                        Err(e) => self.located(origin, &format!("{below}/days/{i}"), e.to_string()),
                    }
                }
                (parsed.len() == days.len()).then_some(parsed)
            }
        };
        Some(Schedule::Weekly {
            days: days?,
            start: start?,
            end: end?,
        })
    }

    fn cron(&mut self, origin: &Origin, below: &str, raw: &RawWindow) -> Option<Schedule> {
        let (Some(text), Some(length)) = (&raw.cron, &raw.duration) else {
            let missing = if raw.cron.is_none() {
                "cron"
            } else {
                "duration"
            };
            let d = self.diagnostic(origin, below, Target::Value, format!("a window with a cron expression needs both `cron` and `duration`; `{missing}` is missing"));
            self.report(d);
            return None;
        };
        let cron = window::parse_cron(text)
            .map_err(|e| self.located(origin, &format!("{below}/cron"), e.to_string()))
            .ok();
        let length = match parse_duration(&length.0) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.located(
                    origin,
                    &format!("{below}/duration"),
                    "a window of zero length would never be open".to_owned(),
                );
                None
            }
            Err(e) => {
                self.located(origin, &format!("{below}/duration"), e.to_string());
                None
            }
        };
        Some(Schedule::Cron {
            cron: Box::new(cron?),
            length: length?,
        })
    }

    fn located(&mut self, origin: &Origin, below: &str, message: String) {
        let d = self.diagnostic(origin, below, Target::Value, message);
        self.report(d);
    }
}
