//! Nodes: roles (one master at most), groups, classes and the secrets each lists.

use super::*;

impl Checker<'_> {
    pub(super) fn nodes(&mut self, cluster: Option<&Cluster>) -> BTreeMap<String, Node> {
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
                    suspend: raw.suspend.unwrap_or(false),
                    drift: raw.drift,
                },
            );
        }
        out
    }
}
