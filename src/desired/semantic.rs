//! Stage two of validation: what the schema cannot say. References resolve, names follow
//! Ganeti's rules, sizes are positive, one master at most, pinned instances fit their
//! node, secret files exist. Raw objects become the validated model here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

mod classes;
mod cluster;
mod host_key;
mod instances;
mod known;
mod node_work;
mod nodes;
mod notifications;
mod placement;
mod rotation;
mod secrets;
mod url_field;
mod window;

use super::age_file;
use super::diagnostic::Diagnostic;
use super::files::FileRead;
use super::merge::{Entry, Merged, Origin};
use super::model::{
    Capacity, Class, Cluster, DesiredState, Disk, Instance, Mac, Nic, Node, Policy, Secret,
    StoreSettings,
};
use super::names::{
    HOST_NAME_EXPECTED, IMAGE_TAG_PREFIX, MAX_TAG_LEN, SHORT_NAME_EXPECTED, closest, invalid_name,
    is_host_name, is_short_name,
};
use super::raw::{DiskTemplate, NodeRole, RawInstance, RawNic, RawResources, RawStore, SizeText};
use super::source::{ParsedFile, Target};
use super::ssh_key::{SSH_KEY_EXPECTED, SshPublicKey};
use super::units::{Size, parse_duration};
use super::urls::Query;

/// What the semantic checks need from the place the desired state came from.
pub trait SecretFiles {
    /// The first bytes (up to `SECRET_HEAD_BYTES`) of a file relative to the desired-state
    /// root, read by the rule in `files`, or why it cannot be used.
    fn head(&self, relative: &Path) -> FileRead;
    /// The images in the artifact store, when one is configured: every class's image
    /// must then be among them.
    fn store_images(&self) -> Option<&BTreeSet<String>> {
        None
    }
}

const DEFAULT_GROUP: &str = "default";

/// Checks the merged state; `merged`'s instances are used up (see `Checker::instances`).
pub fn check(
    files: &[ParsedFile],
    merged: &mut Merged,
    secret_files: &dyn SecretFiles,
) -> (Option<DesiredState>, Vec<Diagnostic>) {
    let instances = std::mem::take(&mut merged.instances);
    let mut checker = Checker {
        files,
        merged,
        instances_typed: entries_typed(&instances),
        images: secret_files.store_images(),
        diagnostics: Vec::new(),
    };
    let state = checker.run(secret_files, instances);
    (state, checker.diagnostics)
}

struct Checker<'a> {
    files: &'a [ParsedFile],
    /// Without its instances, which `run` is given to use up.
    merged: &'a Merged,
    /// Every instance passed the schema (read before the instances were used up).
    instances_typed: bool,
    images: Option<&'a BTreeSet<String>>,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn diagnostic(
        &self,
        origin: &Origin,
        below: &str,
        target: Target,
        message: impl Into<String>,
    ) -> Diagnostic {
        let file = &self.files[origin.file];
        let pointer = format!("{}{below}", origin.pointer);
        Diagnostic::new(
            file.site(&pointer, target),
            &file.yaml_path(&pointer),
            message,
        )
    }

    fn report(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn run(
        &mut self,
        secret_files: &dyn SecretFiles,
        instances: BTreeMap<String, Entry<RawInstance>>,
    ) -> Option<DesiredState> {
        let errors_before = self.diagnostics.len();
        self.check_names(&instances);
        let cluster = self.cluster();
        let policy = self.policy();
        let secrets = self.secrets(secret_files);
        let notifications = self.notifications();
        let classes = self.classes(policy.rotation_window.as_ref());
        let nodes = self.nodes(cluster.as_ref());
        let instances = self.instances(cluster.as_ref(), &classes, instances);
        self.check_capacity(&nodes, &instances);
        self.check_node_classes_do_not_settle(&nodes, &instances);
        self.check_secrets_have_a_store(cluster.as_ref(), &classes, &nodes, &instances);
        let complete = self.diagnostics.len() == errors_before && !self.merged.incomplete;
        let all_typed = entries_typed(&self.merged.classes)
            && entries_typed(&self.merged.nodes)
            && self.instances_typed
            && entries_typed(&self.merged.secrets)
            && (self.merged.notifications.as_ref()).is_none_or(|e| e.raw.is_some());
        if !complete || !all_typed {
            return None;
        }
        Some(DesiredState {
            cluster: cluster?,
            policy,
            classes,
            nodes,
            instances,
            secrets,
            notifications,
        })
    }

    fn check_names(&mut self, instances: &BTreeMap<String, Entry<RawInstance>>) {
        let merged = self.merged;
        let rules = [
            NameRule {
                kind: "class",
                entries: named(&merged.classes),
                valid: is_short_name,
                host: false,
                expected: SHORT_NAME_EXPECTED,
            },
            NameRule {
                kind: "secret",
                entries: named(&merged.secrets),
                valid: is_short_name,
                host: false,
                expected: SHORT_NAME_EXPECTED,
            },
            NameRule {
                kind: "node",
                entries: named(&merged.nodes),
                valid: is_host_name,
                host: true,
                expected: HOST_NAME_EXPECTED,
            },
            NameRule {
                kind: "instance",
                entries: named(instances),
                valid: is_host_name,
                host: true,
                expected: HOST_NAME_EXPECTED,
            },
        ];
        for rule in rules {
            for (name, origin) in rule.entries {
                if (rule.valid)(name) {
                    continue;
                }
                let lower = name.to_ascii_lowercase();
                let hint = (lower != *name && (rule.valid)(&lower))
                    .then(|| format!("Ganeti names are lowercase: `{lower}`"));
                let d = self
                    .diagnostic(
                        origin,
                        "",
                        Target::Key,
                        invalid_name(name, rule.kind, rule.host),
                    )
                    .expected(rule.expected)
                    .maybe_hint(hint);
                self.report(d);
            }
        }
    }

    fn policy(&mut self) -> Policy {
        let defaults = Policy::default();
        let Some(Entry {
            raw: Some(raw),
            origin,
        }) = &self.merged.policy
        else {
            return defaults;
        };
        Policy {
            prune: raw.prune.unwrap_or(defaults.prune),
            max_deletions: raw.max_deletions.unwrap_or(defaults.max_deletions),
            max_parallel_jobs: raw.max_parallel_jobs.unwrap_or(defaults.max_parallel_jobs),
            resync_interval: self.duration(
                origin,
                "/resyncInterval",
                raw.resync_interval.as_ref().map(|d| d.0.as_str()),
                defaults.resync_interval,
            ),
            freeze_during_node_work: raw
                .freeze_during_node_work
                .unwrap_or(defaults.freeze_during_node_work),
            rotation_window: match raw
                .rotation_window
                .as_ref()
                .map(|w| self.window(origin, "/rotationWindow", w))
            {
                Some(window::WindowChoice::Window(w)) => Some(w),
                _ => None,
            },
            suspend: raw.suspend.unwrap_or(defaults.suspend),
            drift: raw.drift.unwrap_or(defaults.drift),
        }
    }

    fn duration(
        &mut self,
        origin: &Origin,
        below: &str,
        text: Option<&str>,
        default: Duration,
    ) -> Duration {
        let Some(text) = text else { return default };
        match parse_duration(text) {
            Ok(d) if d.is_zero() => {
                let d2 = self
                    .diagnostic(origin, below, Target::Value, "a duration of zero")
                    .expected("a duration greater than zero");
                self.report(d2);
                default
            }
            Ok(d) => d,
            Err(e) => {
                let d = self.diagnostic(origin, below, Target::Value, e.to_string());
                self.report(d);
                default
            }
        }
    }

    /// `below` is made only for an error: a valid size (nearly all of them) costs no
    /// pointer string.
    fn size(
        &mut self,
        origin: &Origin,
        below: impl Fn() -> String,
        text: &SizeText,
    ) -> Option<Size> {
        match Size::parse(&text.0) {
            Ok(size) if size.mib() == 0 => {
                let d = self
                    .diagnostic(
                        origin,
                        &below(),
                        Target::Value,
                        format!("the size {:?} is zero", text.0),
                    )
                    .expected("a size greater than zero");
                self.report(d);
                None
            }
            Ok(size) => Some(size),
            Err(e) => {
                let d = self.diagnostic(origin, &below(), Target::Value, e.to_string());
                self.report(d);
                None
            }
        }
    }

    fn nic(raw: Option<&RawNic>) -> Nic {
        let raw = raw.cloned().unwrap_or_default();
        Nic {
            link: raw.link,
            mode: raw.mode,
        }
    }

    /// Whether `name` is among `known` (sorted), reporting it if not.
    fn reference(
        &mut self,
        origin: &Origin,
        below: &str,
        kind: &str,
        name: &str,
        known: &[&str],
    ) -> bool {
        debug_assert!(
            known.is_sorted(),
            "known names are looked up by binary search"
        );
        if known.binary_search(&name).is_ok() {
            return true;
        }
        if !self.merged.incomplete {
            let hint = closest(name, known.iter().copied()).map(|c| format!("did you mean `{c}`?"));
            let expected = if known.is_empty() {
                format!("a {kind} defined in the desired state (none are defined)")
            } else {
                format!("one of the defined {}: {}", plural(kind), name_list(known))
            };
            let d = self
                .diagnostic(
                    origin,
                    below,
                    Target::Value,
                    format!("unknown {kind} `{name}`"),
                )
                .expected(expected)
                .maybe_hint(hint);
            self.report(d);
        }
        false
    }
}

/// Which names a section takes, for `check_names`.
struct NameRule<'a> {
    kind: &'static str,
    entries: Vec<(&'a String, &'a Origin)>,
    valid: fn(&str) -> bool,
    /// A host name, rather than a short name.
    host: bool,
    expected: &'static str,
}

fn named<T>(entries: &BTreeMap<String, Entry<T>>) -> Vec<(&String, &Origin)> {
    entries.iter().map(|(n, e)| (n, &e.origin)).collect()
}

/// Names for a message: all of a few, the first ten of many, so one error on a large
/// state does not carry thousands of names.
fn name_list(names: &[&str]) -> String {
    const SHOWN: usize = 10;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{}, … ({} more)",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

fn plural(kind: &str) -> String {
    match kind {
        "class" => "classes".into(),
        other => format!("{other}s"),
    }
}

fn entries_typed<T>(entries: &BTreeMap<String, Entry<T>>) -> bool {
    entries.values().all(|e| e.raw.is_some())
}

fn is_os_name(os: &str) -> bool {
    !os.is_empty()
        && os
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b))
}

fn template_name(template: DiskTemplate) -> String {
    serde_json::to_value(template)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
