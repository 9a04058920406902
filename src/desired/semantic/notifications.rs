//! The `notifications:` section: each target has what its kind needs and nothing it would
//! ignore, its files are absolute paths (the operator reads them; the desired state may
//! come from git, so a relative path would have no meaning), and no event is listed twice.

use super::super::model::{NotifyKind, NotifyTarget};
use super::super::raw::RawNotifyTarget;
use super::*;

/// What each kind needs besides `urlFile`: (field, required, allowed).
fn fields(kind: NotifyKind) -> [(&'static str, bool, bool); 3] {
    match kind {
        NotifyKind::Webhook => [
            ("secretFile", true, true),
            ("tokenFile", false, false),
            ("room", false, false),
        ],
        NotifyKind::Slack => [
            ("secretFile", false, false),
            ("tokenFile", false, false),
            ("room", false, false),
        ],
        NotifyKind::Ntfy => [
            ("secretFile", false, false),
            ("tokenFile", false, true),
            ("room", false, false),
        ],
        NotifyKind::Matrix => [
            ("secretFile", false, false),
            ("tokenFile", true, true),
            ("room", true, true),
        ],
    }
}

impl Checker<'_> {
    pub(super) fn notifications(&mut self) -> BTreeMap<String, NotifyTarget> {
        let Some(Entry {
            raw: Some(raw),
            origin,
        }) = &self.merged.notifications
        else {
            return BTreeMap::new();
        };
        let mut targets = BTreeMap::new();
        for (name, target) in &raw.targets {
            let below = format!("/targets/{}", name.replace('~', "~0").replace('/', "~1"));
            if !is_short_name(name) {
                let d = self
                    .diagnostic(
                        origin,
                        &below,
                        Target::Key,
                        invalid_name(name, "notification target", false),
                    )
                    .expected(SHORT_NAME_EXPECTED);
                self.report(d);
                continue;
            }
            if let Some(checked) = self.notify_target(origin, &below, target) {
                targets.insert(name.clone(), checked);
            }
        }
        targets
    }

    fn notify_target(
        &mut self,
        origin: &Origin,
        below: &str,
        raw: &RawNotifyTarget,
    ) -> Option<NotifyTarget> {
        let errors_before = self.diagnostics.len();
        let present = |field: &str| match field {
            "secretFile" => raw.secret_file.is_some(),
            "tokenFile" => raw.token_file.is_some(),
            _ => raw.room.is_some(),
        };
        let kind = raw.kind.name();
        for (field, required, allowed) in fields(raw.kind) {
            if required && !present(field) {
                let d = self.diagnostic(
                    origin,
                    below,
                    Target::Key,
                    format!("a `{kind}` target needs `{field}`"),
                );
                self.report(d);
            } else if !allowed && present(field) {
                let d = self
                    .diagnostic(
                        origin,
                        &format!("{below}/{field}"),
                        Target::Key,
                        format!("a `{kind}` target does not use `{field}`"),
                    )
                    .hint("remove it: it would be ignored");
                self.report(d);
            }
        }
        let url_file = self.absolute_file(origin, &format!("{below}/urlFile"), &raw.url_file);
        let token_file = raw
            .token_file
            .as_ref()
            .and_then(|p| self.absolute_file(origin, &format!("{below}/tokenFile"), p));
        let secret_file = raw
            .secret_file
            .as_ref()
            .and_then(|p| self.absolute_file(origin, &format!("{below}/secretFile"), p));
        if let Some(room) = &raw.room
            && !(room.starts_with('!') && room.contains(':'))
        {
            let d = self
                .diagnostic(
                    origin,
                    &format!("{below}/room"),
                    Target::Value,
                    format!("`{room}` is not a Matrix room ID"),
                )
                .expected("a room ID such as !abcdef:example.org (not an alias: #room:server)");
            self.report(d);
        }
        let mut events = BTreeSet::new();
        for (i, event) in raw.events.iter().enumerate() {
            if !events.insert(*event) {
                let d = self.diagnostic(
                    origin,
                    &format!("{below}/events/{i}"),
                    Target::Value,
                    format!("event `{}` is listed twice", event.name()),
                );
                self.report(d);
            }
        }
        if self.diagnostics.len() != errors_before {
            return None;
        }
        Some(NotifyTarget {
            kind: raw.kind,
            url_file: url_file?,
            token_file,
            secret_file,
            room: raw.room.clone(),
            events,
        })
    }

    fn absolute_file(&mut self, origin: &Origin, below: &str, path: &str) -> Option<PathBuf> {
        let path = PathBuf::from(path);
        if path.is_absolute() && !path.components().any(|c| c == Component::ParentDir) {
            return Some(path);
        }
        let d = self
            .diagnostic(
                origin,
                below,
                Target::Value,
                format!("`{}` is not an absolute path", path.display()),
            )
            .expected("the absolute path of a file on the operator's host, e.g. /etc/ganeti-operator/slack-url")
            .hint("the file holds the URL or token, so that it stays out of git");
        self.report(d);
        None
    }
}
