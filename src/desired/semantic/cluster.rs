//! The cluster entry: its name, RAPI URL, hypervisor, NIC defaults and store.

use super::*;

impl Checker<'_> {
    pub(super) fn cluster(&mut self) -> Option<Cluster> {
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

    pub(super) fn store_settings(
        &mut self,
        origin: &Origin,
        raw: &RawStore,
    ) -> Option<StoreSettings> {
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
}
