//! Whether the operator generates an instance's SSH host key at create (agenix#17: a new
//! host's key is not known until it has booted once). It does when the instance has no
//! `hostKey` and needs secrets, or when `generateHostKey: true` says so; `false` opts out.

use super::super::model::Class;
use super::super::raw::RawInstance;
use super::super::source::Target;
use super::{Checker, Origin};

const HOST_KEY_EXPECTED: &str =
    "`hostKey`: the instance's SSH host public key, which its secrets are encrypted to";

impl Checker<'_> {
    pub(super) fn generate_host_key(
        &mut self,
        origin: &Origin,
        name: &str,
        raw: &RawInstance,
        class: Option<&Class>,
        own_secrets: &[String],
    ) -> bool {
        let class_secrets = class.is_some_and(|c| !c.secrets.is_empty());
        let needs_key = class_secrets || !own_secrets.is_empty();
        let asked = raw
            .generate_host_key
            .or_else(|| class.and_then(|c| c.generate_host_key));
        if raw.host_key.is_some() {
            if raw.generate_host_key == Some(true) {
                let d = self
                    .diagnostic(
                        origin,
                        "/generateHostKey",
                        Target::Key,
                        format!("instance `{name}` has a `hostKey` and asks for a generated one"),
                    )
                    .expected("either `hostKey` or `generateHostKey: true`, not both");
                self.report(d);
            }
            return false;
        }
        match asked {
            Some(true) => true,
            None if needs_key => true,
            Some(false) if needs_key => {
                let (below, why) = if class_secrets {
                    let class = raw.class.as_str();
                    (
                        "",
                        format!(
                            "instance `{name}` gets secrets from class `{class}` but has no host key, and `generateHostKey` is false"
                        ),
                    )
                } else {
                    (
                        "/secrets",
                        format!(
                            "instance `{name}` lists secrets but has no host key, and `generateHostKey` is false"
                        ),
                    )
                };
                let d = self
                    .diagnostic(origin, below, Target::Key, why)
                    .expected(HOST_KEY_EXPECTED)
                    .hint("or drop `generateHostKey: false`: the operator then generates a key when it creates the instance");
                self.report(d);
                false
            }
            _ => false,
        }
    }
}
