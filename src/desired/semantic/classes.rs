//! Classes: the image a class pins (a valid tag, in the store when one is configured),
//! its hypervisor parameters, resources and rotation.

use super::*;

impl Checker<'_> {
    pub(super) fn classes(
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
    pub(super) fn resource_sizes(
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
}
