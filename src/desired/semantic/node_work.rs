//! The cluster's `nodeReboot:` and `masterFailover:` blocks: the commands a rolling node
//! upgrade runs. Each is a program with arguments, never a shell line, so a node name can
//! never become shell syntax; only known placeholders are filled in.

use std::time::Duration;

use super::super::model::{CommandTemplate, NodeReboot};
use super::super::raw::{DurationText, RawMasterFailover, RawNodeReboot};
use super::super::source::Target;
use super::{Checker, Origin};

const REBOOT_PLACEHOLDERS: [&str; 1] = ["{node}"];
const FAILOVER_PLACEHOLDERS: [&str; 2] = ["{node}", "{master}"];

impl Checker<'_> {
    pub(super) fn node_reboot(
        &mut self,
        origin: &Origin,
        raw: Option<&RawNodeReboot>,
    ) -> NodeReboot {
        let Some(raw) = raw else {
            return NodeReboot::default();
        };
        let command = raw.command.as_ref().and_then(|argv| {
            self.command(
                origin,
                "/nodeReboot",
                argv,
                raw.timeout.as_ref(),
                Duration::from_secs(120),
                &REBOOT_PLACEHOLDERS,
            )
        });
        if raw.command.is_none() && raw.timeout.is_some() {
            let d = self
                .diagnostic(
                    origin,
                    "/nodeReboot/timeout",
                    Target::Key,
                    "`nodeReboot.timeout` bounds the reboot command, and there is none",
                )
                .hint("add `command: [...]`, or remove `timeout`");
            self.report(d);
        }
        NodeReboot {
            command,
            allow_powercycle: raw.allow_powercycle.unwrap_or(false),
        }
    }

    pub(super) fn master_failover(
        &mut self,
        origin: &Origin,
        raw: Option<&RawMasterFailover>,
    ) -> Option<CommandTemplate> {
        let raw = raw?;
        self.command(
            origin,
            "/masterFailover",
            &raw.command,
            raw.timeout.as_ref(),
            Duration::from_secs(300),
            &FAILOVER_PLACEHOLDERS,
        )
    }

    fn command(
        &mut self,
        origin: &Origin,
        at: &str,
        argv: &[String],
        timeout: Option<&DurationText>,
        default: Duration,
        known: &[&str],
    ) -> Option<CommandTemplate> {
        let timeout = self.duration(
            origin,
            &format!("{at}/timeout"),
            timeout.map(|t| t.0.as_str()),
            default,
        );
        let mut usable = true;
        if argv.first().is_none_or(|program| program.trim().is_empty()) {
            let d = self
                .diagnostic(
                    origin,
                    &format!("{at}/command"),
                    Target::Value,
                    "the command needs a program to run",
                )
                .expected(r#"a program and its arguments, e.g. ["ssh", "root@{node}", "systemctl", "reboot"]"#);
            self.report(d);
            usable = false;
        }
        for (i, arg) in argv.iter().enumerate() {
            if let Some(unknown) = unknown_placeholder(arg, known) {
                let d = self
                    .diagnostic(
                        origin,
                        &format!("{at}/command/{i}"),
                        Target::Value,
                        format!("`{unknown}` is not a placeholder this command knows"),
                    )
                    .expected(format!("only {}", known.join(" and ")));
                self.report(d);
                usable = false;
            }
        }
        usable.then(|| CommandTemplate {
            argv: argv.to_vec(),
            timeout,
        })
    }
}

/// The first `{...}` in `arg` that is not one of `known`.
fn unknown_placeholder<'a>(arg: &'a str, known: &[&str]) -> Option<&'a str> {
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let end = tail.find('}').map_or(tail.len(), |e| e + 1);
        let candidate = &tail[..end];
        if !known.contains(&candidate) {
            return Some(candidate);
        }
        rest = &tail[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::unknown_placeholder;

    #[test]
    fn only_known_placeholders_pass() {
        assert_eq!(unknown_placeholder("root@{node}", &["{node}"]), None);
        assert_eq!(unknown_placeholder("{host}", &["{node}"]), Some("{host}"));
        assert_eq!(unknown_placeholder("a{b", &["{node}"]), Some("{b"));
        assert_eq!(unknown_placeholder("plain", &["{node}"]), None);
    }
}
