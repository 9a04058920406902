//! Stage two of validation: what the schema cannot say. References resolve, names follow
//! Ganeti's rules, sizes are positive, one master at most, pinned instances fit their
//! node, secret files exist. Raw objects become the validated model here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

mod host_key;
mod instances;
mod known;
mod node_work;
mod placement;
mod rotation;
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
    is_host_name, is_short_name, is_valid_tag,
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
            && entries_typed(&self.merged.secrets);
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
        })
    }

    /// Secrets are published into the artifact store: hosts that receive some while
    /// `cluster.store` is unset would never get them.
    fn check_secrets_have_a_store(
        &mut self,
        cluster: Option<&Cluster>,
        classes: &BTreeMap<String, Class>,
        nodes: &BTreeMap<String, Node>,
        instances: &BTreeMap<String, Instance>,
    ) {
        let Some(cluster) = cluster else { return };
        if cluster.store.is_some() {
            return;
        }
        let receives = |class: &str, own: &[String]| {
            !own.is_empty() || classes.get(class).is_some_and(|c| !c.secrets.is_empty())
        };
        let first = nodes
            .iter()
            .find(|(_, n)| receives(&n.class, &n.secrets))
            .map(|(name, _)| format!("node `{name}`"))
            .or_else(|| {
                instances
                    .iter()
                    .find(|(_, i)| receives(&i.class, &i.secrets))
                    .map(|(name, _)| format!("instance `{name}`"))
            });
        let (Some(first), Some(entry)) = (first, &self.merged.cluster) else {
            return;
        };
        let origin = entry.origin.clone();
        let d = self
            .diagnostic(
                &origin,
                "",
                Target::Key,
                format!("{first} receives secrets, but `cluster.store` is not set"),
            )
            .expected("`store: {baseUrl: …}`: secrets are published into the artifact store the hosts fetch from")
            .hint("set cluster.store, or remove the secrets from the classes and hosts");
        self.report(d);
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

    fn cluster(&mut self) -> Option<Cluster> {
        let Some(entry) = &self.merged.cluster else {
            if !self.merged.incomplete
                && let Some(first) = self.files.first()
            {
                let site = first.site("", Target::Value);
                let d = Diagnostic::new(site, "cluster", "no file defines the `cluster` section")
                    .expected("one file with `cluster: {name: …, hypervisor: …}`");
                self.report(d);
            }
            return None;
        };
        let raw = entry.raw.as_ref()?;
        let origin = &entry.origin;
        if !is_host_name(&raw.name) {
            let d = self
                .diagnostic(
                    origin,
                    "/name",
                    Target::Value,
                    invalid_name(&raw.name, "cluster", true),
                )
                .expected(HOST_NAME_EXPECTED);
            self.report(d);
        }
        let groups = raw
            .groups
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_GROUP.to_owned()]);
        let mut seen = BTreeSet::new();
        for (i, group) in groups.iter().enumerate() {
            if !is_short_name(group) {
                let d = self
                    .diagnostic(
                        origin,
                        &format!("/groups/{i}"),
                        Target::Value,
                        invalid_name(group, "group", false),
                    )
                    .expected(SHORT_NAME_EXPECTED);
                self.report(d);
            } else if !seen.insert(group) {
                let d = self.diagnostic(
                    origin,
                    &format!("/groups/{i}"),
                    Target::Value,
                    format!("group `{group}` is listed twice"),
                );
                self.report(d);
            }
        }
        if let Some(url) = &raw.rapi_url {
            self.url(
                origin,
                "/rapiUrl",
                url,
                Query::Refused,
                "https://host[:port], e.g. https://cluster.example.org:5080; the user and password go in the operator's config",
            );
        }
        let nic = Self::nic(raw.nic.as_ref());
        Some(Cluster {
            name: raw.name.clone(),
            rapi_url: raw.rapi_url.clone(),
            hypervisor: raw.hypervisor,
            default_disk_template: raw.default_disk_template.unwrap_or(DiskTemplate::Diskless),
            nic,
            groups,
            store: raw
                .store
                .as_ref()
                .and_then(|store| self.store_settings(origin, store)),
            node_reboot: self.node_reboot(origin, raw.node_reboot.as_ref()),
            master_failover: self.master_failover(origin, raw.master_failover.as_ref()),
        })
    }

    fn store_settings(&mut self, origin: &Origin, raw: &RawStore) -> Option<StoreSettings> {
        let usable = self.url(
            origin,
            "/store/baseUrl",
            &raw.base_url,
            Query::Refused,
            "http://host[:port][/path], as the hosts reach the store",
        );
        usable.then(|| StoreSettings {
            base_url: raw.base_url.trim_end_matches('/').to_owned(),
        })
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

    fn secrets(&mut self, files: &dyn SecretFiles) -> BTreeMap<String, Secret> {
        let mut out = BTreeMap::new();
        for (name, entry) in &self.merged.secrets {
            let Some(raw) = &entry.raw else { continue };
            let relative = PathBuf::from(&raw.file);
            let inside = relative
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !inside || raw.file.is_empty() {
                let d = self
                    .diagnostic(
                        &entry.origin,
                        "/file",
                        Target::Value,
                        format!("`{}` leaves the desired-state directory", raw.file),
                    )
                    .expected("a path relative to the desired-state directory, without `..`");
                self.report(d);
                continue;
            }
            match files.head(&relative).map(|head| age_file::check(&head)) {
                Err(problem) => {
                    let d = self
                        .diagnostic(
                            &entry.origin,
                            "/file",
                            Target::Value,
                            format!("the secret file {problem}"),
                        )
                        .hint(format!(
                            "{}; encrypt it with `age -r <operator key> -o …`",
                            problem.hint()
                        ));
                    self.report(d);
                }
                Ok(Err(problem)) => {
                    let d = self
                        .diagnostic(&entry.origin, "/file", Target::Value, format!("`{}` is not an age-encrypted file: {problem}", raw.file))
                        .expected("a file written by age or agenix: the `age-encryption.org/v1` header, a recipient stanza and the encrypted body")
                        .hint("never commit a plaintext secret; encrypt it to the operator's key");
                    self.report(d);
                }
                Ok(Ok(())) => {
                    let mut recipients = Vec::new();
                    for (i, line) in raw.recipients.iter().flatten().enumerate() {
                        match crate::secrets::recipients::check_admin_recipient(line) {
                            Ok(()) => recipients.push(line.trim().to_owned()),
                            Err(problem) => {
                                let d = self
                                    .diagnostic(
                                        &entry.origin,
                                        &format!("/recipients/{i}"),
                                        Target::Value,
                                        format!("bad admin recipient: {problem}"),
                                    )
                                    .expected(crate::secrets::recipients::ADMIN_RECIPIENT_EXPECTED);
                                self.report(d);
                            }
                        }
                    }
                    out.insert(
                        name.clone(),
                        Secret {
                            file: relative,
                            description: raw.description.clone(),
                            recipients,
                        },
                    );
                }
            }
        }
        out
    }

    fn classes(
        &mut self,
        default_window: Option<&crate::window::MaintenanceWindow>,
    ) -> BTreeMap<String, Class> {
        let secret_names: Vec<&str> = self.merged.secrets.keys().map(String::as_str).collect();
        let mut out = BTreeMap::new();
        for (name, entry) in &self.merged.classes {
            let Some(raw) = &entry.raw else { continue };
            let origin = &entry.origin;
            if !is_valid_tag(&raw.image) || IMAGE_TAG_PREFIX.len() + raw.image.len() > MAX_TAG_LEN {
                let d = self
                    .diagnostic(origin, "/image", Target::Value, format!("the image id `{}` cannot be written into a Ganeti tag", raw.image))
                    .expected(format!(
                        "letters, digits and . + * / : @ _ - only, at most {} characters (it becomes the tag `{IMAGE_TAG_PREFIX}<id>`)",
                        MAX_TAG_LEN - IMAGE_TAG_PREFIX.len()
                    ));
                self.report(d);
            }
            if let Some(images) = self.images
                && !images.contains(&raw.image)
            {
                let d = self
                    .diagnostic(
                        origin,
                        "/image",
                        Target::Value,
                        format!("image `{}` is not in the artifact store", raw.image),
                    )
                    .expected(format!("one of the {} image(s) in the store", images.len()))
                    .hint(format!(
                        "import it first: ganeti-operator image import --class {name} ./result"
                    ));
                self.report(d);
            }
            if let Some(os) = &raw.os
                && !is_os_name(os)
            {
                let d = self
                    .diagnostic(origin, "/os", Target::Value, format!("`{os}` is not a Ganeti OS name"))
                    .expected("an OS provider with an optional variant, e.g. `debootstrap+default` or `pxe`");
                self.report(d);
            }
            let mut secrets = Vec::new();
            for (i, secret) in raw.secrets.iter().flatten().enumerate() {
                if self.reference(
                    origin,
                    &format!("/secrets/{i}"),
                    "secret",
                    secret,
                    &secret_names,
                ) {
                    secrets.push(secret.clone());
                }
            }
            let mut hvparams = BTreeMap::new();
            for (key, value) in raw.hvparams.iter().flatten() {
                if !key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    || key.is_empty()
                {
                    let d = self
                        .diagnostic(origin, &format!("/hvparams/{key}"), Target::Key, format!("`{key}` is not a Ganeti hypervisor parameter name"))
                        .expected("lowercase letters, digits and `_`, as `gnt-instance modify -H` takes them");
                    self.report(d);
                }
                hvparams.insert(key.clone(), value.0.clone());
            }
            // Class resources are only checked here; instances resolve them against overrides.
            if let Some(resources) = &raw.resources {
                self.resource_sizes(origin, "/resources", resources);
            }
            let rotation = self.rotation(origin, raw.rotation.as_ref(), default_window);
            out.insert(
                name.clone(),
                Class {
                    image: raw.image.clone(),
                    hypervisor: raw.hypervisor,
                    os: raw.os.clone(),
                    disk_template: raw.disk_template,
                    kernel_args: raw.kernel_args.clone(),
                    hvparams,
                    secrets,
                    generate_host_key: raw.generate_host_key,
                    rotation,
                },
            );
        }
        out
    }

    /// Checks every size in a resources block; returns memory and disks that parsed.
    fn resource_sizes(
        &mut self,
        origin: &Origin,
        below: &str,
        raw: &RawResources,
    ) -> (Option<Size>, Option<Vec<Disk>>) {
        let memory = raw
            .memory
            .as_ref()
            .and_then(|m| self.size(origin, || format!("{below}/memory"), m));
        // Sized exactly, not by `collect` after a filter (which reserves 4): one of these
        // is kept per instance.
        let disks = raw.disks.as_ref().map(|disks| {
            let mut out = Vec::with_capacity(disks.len());
            for (i, d) in disks.iter().enumerate() {
                if let Some(size) = self.size(origin, || format!("{below}/disks/{i}/size"), &d.size)
                {
                    out.push(Disk {
                        size,
                        name: d.name.clone(),
                    });
                }
            }
            out
        });
        (memory, disks)
    }

    fn nodes(&mut self, cluster: Option<&Cluster>) -> BTreeMap<String, Node> {
        let class_names: Vec<&str> = self.merged.classes.keys().map(String::as_str).collect();
        let mut group_names: Vec<&str> = cluster
            .map(|c| c.groups.iter().map(String::as_str).collect())
            .unwrap_or_default();
        group_names.sort_unstable();
        let mut first_master: Option<&Origin> = None;
        let mut macs: BTreeMap<Mac, &str> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for (name, entry) in &self.merged.nodes {
            let Some(raw) = &entry.raw else { continue };
            let origin = &entry.origin;
            if let Some(mac) = raw.mac.as_deref().and_then(Mac::parse)
                && let Some(other) = macs.insert(mac, name)
            {
                let d = self
                    .diagnostic(
                        origin,
                        "/mac",
                        Target::Value,
                        format!("MAC {mac} is also node `{other}`'s"),
                    )
                    .expected("one MAC per node: it names the node's boot pointer");
                self.report(d);
            }
            self.reference(origin, "/class", "class", &raw.class, &class_names);
            let group = raw
                .group
                .clone()
                .unwrap_or_else(|| DEFAULT_GROUP.to_owned());
            if cluster.is_some() {
                let below = if raw.group.is_some() { "/group" } else { "" };
                self.reference(origin, below, "group", &group, &group_names);
            }
            let role = raw.role.unwrap_or(NodeRole::Regular);
            if role == NodeRole::Master {
                match first_master {
                    Some(first) => {
                        let first_site = self.files[first.file]
                            .site(&format!("{}/role", first.pointer), Target::Value);
                        let d = self
                            .diagnostic(
                                origin,
                                "/role",
                                Target::Value,
                                format!("node `{name}` is a second master"),
                            )
                            .expected("at most one node with `role: master`")
                            .related(first_site, "the first master is declared")
                            .hint("make the others `master-candidate`");
                        self.report(d);
                    }
                    None => first_master = Some(origin),
                }
            }
            let host_key = raw
                .host_key
                .as_deref()
                .and_then(|k| self.host_key(origin, k));
            let secrets = self.own_secrets(origin, raw.secrets.as_deref());
            let class_has_secrets = self
                .merged
                .classes
                .get(&raw.class)
                .and_then(|e| e.raw.as_ref())
                .is_some_and(|c| c.secrets.as_ref().is_some_and(|s| !s.is_empty()));
            if raw.host_key.is_none() && (class_has_secrets || !secrets.is_empty()) {
                let d = self
                    .diagnostic(origin, "", Target::Key, format!("node `{name}` receives secrets but has no host key"))
                    .expected("`hostKey`: the node's SSH host public key, which its secrets are encrypted to");
                self.report(d);
            }
            let capacity = raw
                .capacity
                .as_ref()
                .map(|c| Capacity {
                    memory: c
                        .memory
                        .as_ref()
                        .and_then(|m| self.size(origin, || "/capacity/memory".into(), m)),
                    disk: c
                        .disk
                        .as_ref()
                        .and_then(|d| self.size(origin, || "/capacity/disk".into(), d)),
                })
                .unwrap_or_default();
            out.insert(
                name.clone(),
                Node {
                    class: raw.class.clone(),
                    role,
                    group,
                    host_key,
                    secrets,
                    mac: raw.mac.as_deref().and_then(Mac::parse),
                    capacity,
                },
            );
        }
        out
    }

    /// A host entry's own `secrets:`, each a defined secret, none twice.
    fn own_secrets(&mut self, origin: &Origin, listed: Option<&[String]>) -> Vec<String> {
        let mut known: Vec<&str> = self.merged.secrets.keys().map(String::as_str).collect();
        known.sort_unstable();
        let known: Vec<String> = known.into_iter().map(str::to_owned).collect();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let mut out: Vec<String> = Vec::new();
        for (i, secret) in listed.into_iter().flatten().enumerate() {
            let below = format!("/secrets/{i}");
            if out.contains(secret) {
                let d = self.diagnostic(
                    origin,
                    &below,
                    Target::Value,
                    format!("the secret `{secret}` is listed twice"),
                );
                self.report(d);
            } else if self.reference(origin, &below, "secret", secret, &known) {
                out.push(secret.clone());
            }
        }
        out
    }

    fn host_key(&mut self, origin: &Origin, text: &str) -> Option<SshPublicKey> {
        match SshPublicKey::parse(text) {
            Ok(key) => Some(key),
            Err(e) => {
                let d = self
                    .diagnostic(
                        origin,
                        "/hostKey",
                        Target::Value,
                        format!("bad SSH host key: {e}"),
                    )
                    .expected(SSH_KEY_EXPECTED);
                self.report(d);
                None
            }
        }
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
