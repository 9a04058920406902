//! The log's two formats: the human one (tracing's default), and `--log-format json`,
//! one JSON object a line for log shippers. Under JSON an event of the trail (see
//! [`crate::event`]) is its own line, exactly [`crate::event::Event`]'s JSON; every
//! other record is `{"time", "level", "target", "message", …its fields}`.

use std::fmt::{self, Write as _};

use clap::ValueEnum;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object a line; events of the trail as they are served at /events.
    Json,
}

/// The format `--log-format` chose, for the commands that log.
static CHOSEN: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

pub fn choose(format: LogFormat) {
    let _ = CHOSEN.set(format);
    crate::event::set_json_log(format == LogFormat::Json);
}

pub fn chosen() -> LogFormat {
    CHOSEN.get().copied().unwrap_or_default()
}

/// Sets up the log on stderr in the chosen format (level from GANETI_OPERATOR_LOG,
/// default info).
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let format = chosen();
    let filter =
        EnvFilter::try_from_env("GANETI_OPERATOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(super::use_color()).try_init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).try_init(),
    };
}

/// The JSON line format.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        writeln!(
            writer,
            "{}",
            line(
                &crate::rfc3339::rfc3339(std::time::SystemTime::now()),
                meta.level().as_str(),
                meta.target(),
                fields
            )
        )
    }
}

/// A record's fields, in the order written, each as text.
#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.0.push((field.name().to_owned(), text));
    }
}

/// One line of the JSON log: an event of the trail as itself, anything else wrapped.
fn line(time: &str, level: &str, target: &str, fields: Fields) -> String {
    if target == crate::event::LOG_TARGET
        && let Some((_, json)) = fields.0.iter().find(|(name, _)| name == "event")
    {
        return json.clone();
    }
    let mut object = serde_json::Map::new();
    object.insert("time".into(), time.into());
    object.insert("level".into(), level.into());
    object.insert("target".into(), target.into());
    for (name, value) in fields.0 {
        object.insert(name, value.into());
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_log_lines_are_pinned() {
        let event = crate::event::Event {
            seq: 6,
            time: "2026-11-23T08:04:12Z".into(),
            category: crate::event::Category::Doing,
            object: "instance/web1.gnt.test".into(),
            action: "instance_reboot".into(),
            reason: "its class pins a new image".into(),
            revision: Some("3f2a9c0d1e2f3a4b5c6d".into()),
            job: Some(42),
            outcome: crate::event::Outcome::Succeeded,
            run: "1795421052-0a1b2c3d".into(),
        };
        // As `crate::event::log` records it under JSON.
        let json = serde_json::to_string(&event).unwrap();
        let event_line = line(
            "2026-11-23T08:04:12Z",
            "INFO",
            crate::event::LOG_TARGET,
            Fields(vec![("event".into(), json)]),
        );
        let other_line = line(
            "2026-11-23T08:04:13Z",
            "INFO",
            "ganeti_operator::daemon",
            Fields(vec![
                ("message".into(), "reconcile finished".into()),
                ("result".into(), "converged".into()),
            ]),
        );
        super::super::events_cmd::golden("log.jsonl", &format!("{event_line}\n{other_line}\n"));
        let back: crate::event::Event = serde_json::from_str(&event_line).unwrap();
        assert_eq!(back, event, "a log line reads back as the event");
    }
}
