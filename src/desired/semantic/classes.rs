//! Classes: the image a class pins (an id, by the schema; in the store when one is configured),
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
            // The schema has checked that the image is an id (`IMAGE_ID_PATTERN`), so
            // it fits the tag `IMAGE_TAG_PREFIX<id>`; a malformed one never gets here.
            debug_assert!(IMAGE_TAG_PREFIX.len() + raw.image.len() <= MAX_TAG_LEN);
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
                    suspend: raw.suspend.unwrap_or(false),
                    drift: raw.drift,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::super::super::files::{FileProblem, FileRead};
    use super::super::super::{Validation, validate_files};
    use super::super::SecretFiles;

    const FULL: &str = "sha256-3e7d1c9b0a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445";
    const OTHER: &str = "sha256-9f00000000000000000000000000000000000000000000000000000000000000";

    /// Spelled out rather than taken from `names`, so that the wording is pinned too.
    const IMAGE_ID_EXPECTED: &str = "an image id: sha256- followed by 64 lowercase hex digits, as `ganeti-operator image import` prints it";
    const HINT_CUT: &str =
        "it has 4 hex digits, not 64: a cut id? `ganeti-operator image list` prints whole ones";

    /// No secret files; the store's images when there is a store.
    struct Store(Option<BTreeSet<String>>);

    impl SecretFiles for Store {
        fn head(&self, relative: &Path) -> FileRead {
            Err(FileProblem::Missing {
                path: relative.display().to_string(),
            })
        }

        fn store_images(&self) -> Option<&BTreeSet<String>> {
            self.0.as_ref()
        }
    }

    fn validate(image: &str, store: Option<&[&str]>) -> Validation {
        let text = format!(
            "cluster: {{name: cluster.example.org, hypervisor: kvm, defaultDiskTemplate: plain}}\n\
             classes:\n  web:\n    image: {image}\n    os: pxe\n"
        );
        let store = Store(store.map(|s| s.iter().map(|i| (*i).to_owned()).collect()));
        validate_files(vec![("s.yaml".into(), Ok(text.into_bytes()))], &store)
    }

    /// A diagnostic as (line, column, path, expected, hint).
    type Found<'a> = (usize, usize, &'a str, Option<&'a str>, Option<&'a str>);

    fn found(v: &Validation) -> Vec<Found<'_>> {
        v.diagnostics
            .iter()
            .map(|d| {
                let at = d.site.span.start;
                (
                    at.line,
                    at.column,
                    d.path.as_str(),
                    d.expected.as_deref(),
                    d.hint.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn an_image_that_is_not_a_whole_id_is_refused_without_a_store() {
        for image in [
            "myimage",
            "sha256-3e7d1c9b",
            &FULL.to_uppercase(),
            &FULL[7..],
        ] {
            let v = validate(image, None);
            assert!(v.state.is_none(), "{image} was accepted");
            let found = found(&v);
            assert_eq!(found.len(), 1, "{image}: {:?}", v.diagnostics);
            let (line, column, path, expected, _) = found[0];
            assert_eq!(
                (line, column, path, expected),
                (4, 12, "classes.web.image", Some(IMAGE_ID_EXPECTED)),
                "{image}"
            );
        }
        assert_eq!(
            found(&validate("sha256-3e7d1c9b", None))[0].4,
            Some(
                "it has 8 hex digits, not 64: a cut id? `ganeti-operator image list` prints whole ones"
            )
        );
        assert_eq!(
            found(&validate(&FULL[7..], None))[0].4,
            Some(format!("write it as `{FULL}`").as_str())
        );
        assert!(validate(FULL, None).state.is_some());
    }

    #[test]
    fn a_cut_id_is_answered_with_the_one_store_image_it_was_cut_from() {
        let store: &[&str] = &[FULL, OTHER];
        let want = format!("did you mean `{FULL}`?");
        for cut in [
            "sha256-3e7d1c9b",
            "sha256-3E7D",
            "3e7d1c9b0a4f",
            &FULL[..70],
        ] {
            let v = validate(cut, Some(store));
            assert_eq!(
                found(&v),
                [(
                    4,
                    12,
                    "classes.web.image",
                    Some(IMAGE_ID_EXPECTED),
                    Some(want.as_str())
                )],
                "{cut}"
            );
        }
        // A prefix of two images names neither; one of none is not in the store.
        let twins = format!("{}0", &FULL[..70]);
        let hint =
            |cut: &str, store: &[&str]| validate(cut, Some(store)).diagnostics[0].hint.clone();
        assert_eq!(hint("sha256-3e7d", &[FULL, &twins]), Some(HINT_CUT.into()));
        assert_eq!(hint("sha256-3e7d", &[OTHER]), Some(HINT_CUT.into()));
        assert_eq!(hint("myimage", store), None);
        // A whole id is checked against the store as before.
        assert!(validate(FULL, Some(store)).state.is_some());
        let missing = validate(FULL, Some(&[OTHER]));
        assert_eq!(missing.diagnostics.len(), 1);
        assert_eq!(
            missing.diagnostics[0].message,
            format!("image `{FULL}` is not in the artifact store")
        );
    }
}
