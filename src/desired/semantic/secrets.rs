//! Secrets: each desired secret's source file and recipients, the secrets a host lists,
//! the host keys they are encrypted to, and the store they are published into.

use super::*;

impl Checker<'_> {
    /// Secrets are published into the artifact store: hosts that receive some while
    /// `cluster.store` is unset would never get them.
    pub(super) fn check_secrets_have_a_store(
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

    pub(super) fn secrets(&mut self, files: &dyn SecretFiles) -> BTreeMap<String, Secret> {
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

    /// A host entry's own `secrets:`, each a defined secret, none twice.
    pub(super) fn own_secrets(
        &mut self,
        origin: &Origin,
        listed: Option<&[String]>,
    ) -> Vec<String> {
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

    pub(super) fn host_key(&mut self, origin: &Origin, text: &str) -> Option<SshPublicKey> {
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
