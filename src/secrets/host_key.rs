//! Host keys the operator generates for new instances (issue 13, agenix#17). The private
//! half exists only in memory, zeroed on drop, until Ganeti hands it to the OS provider
//! as a secret OS parameter of the create job (Ganeti keeps secret parameters out of its
//! configuration). The public half is recorded on the instance as a tag, so later runs
//! and other operators read it back from the cluster, and the host's secrets are
//! encrypted to it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret as _, SecretString};

use crate::desired::names::HOST_KEY_TAG_PREFIX;
use crate::desired::ssh_key::SshPublicKey;

/// The OS parameter the private key is passed as. OS providers that want it declare it in
/// their `parameters.list`; their create script reads `OSP_SSH_HOST_ED25519_KEY`.
pub const HOST_KEY_OS_PARAM: &str = "ssh_host_ed25519_key";

const KEY_TYPE: &str = "ssh-ed25519";

/// One generated ed25519 key pair.
pub struct GeneratedHostKey {
    public: SshPublicKey,
    /// The OpenSSH private key file's text.
    private: SecretString,
}

impl std::fmt::Debug for GeneratedHostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedHostKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HostKeyError {
    #[error("generating an ed25519 host key: {0}")]
    Generate(String),
}

impl GeneratedHostKey {
    /// A fresh key pair from the operating system's random source, named `root@<host>`.
    pub fn generate(host: &str) -> Result<GeneratedHostKey, HostKeyError> {
        let fail = |e: ssh_key::Error| HostKeyError::Generate(e.to_string());
        let mut key = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .map_err(fail)?;
        key.set_comment(format!("root@{host}"));
        let private = key.to_openssh(ssh_key::LineEnding::LF).map_err(fail)?;
        let line = key.public_key().to_openssh().map_err(fail)?;
        let public =
            SshPublicKey::parse(&line).map_err(|e| HostKeyError::Generate(e.to_string()))?;
        Ok(GeneratedHostKey {
            public,
            private: SecretString::from(private.as_str()),
        })
    }

    pub fn public(&self) -> &SshPublicKey {
        &self.public
    }

    pub fn private_openssh(&self) -> &str {
        self.private.expose_secret()
    }

    /// `ganeti-operator:hostkey:<base64 key data>`: 92 characters for ed25519, within
    /// Ganeti's 128, and base64's alphabet is within Ganeti's tag characters.
    pub fn tag(&self) -> String {
        let data = self.public.as_str().split_whitespace().nth(1).unwrap_or("");
        format!("{HOST_KEY_TAG_PREFIX}{data}")
    }
}

/// The host key an instance's tags record, if one does and it is a valid ed25519 key.
pub fn from_tags<'t>(tags: impl IntoIterator<Item = &'t String>) -> Option<SshPublicKey> {
    tags.into_iter().find_map(|tag| {
        let data = tag.strip_prefix(HOST_KEY_TAG_PREFIX)?;
        // `parse` decodes the data and checks it encodes the key type it names: a tag is
        // not trusted to be what it claims.
        SshPublicKey::parse(&format!("{KEY_TYPE} {data}")).ok()
    })
}

/// The keys generated during one execution, by host: the create and the secret steps of
/// the same host share one key, whichever runs first.
#[derive(Debug, Default)]
pub struct HostKeys {
    keys: Mutex<BTreeMap<String, Arc<GeneratedHostKey>>>,
}

impl HostKeys {
    pub fn get_or_generate(&self, host: &str) -> Result<Arc<GeneratedHostKey>, HostKeyError> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = keys.get(host) {
            return Ok(key.clone());
        }
        let key = Arc::new(GeneratedHostKey::generate(host)?);
        keys.insert(host.to_owned(), key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_through_its_tag() {
        let key = GeneratedHostKey::generate("web3.c.test").unwrap();
        let tag = key.tag();
        assert!(tag.len() <= crate::desired::names::MAX_TAG_LEN, "{tag}");
        assert!(crate::desired::names::is_valid_tag(&tag), "{tag}");
        let read = from_tags([&"ganeti-operator:managed".to_owned(), &tag]).unwrap();
        assert_eq!(
            crate::secrets::recipients::normalize(read.as_str()),
            crate::secrets::recipients::normalize(key.public().as_str())
        );
        assert!(
            key.private_openssh()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn two_keys_differ_and_one_host_gets_one_key() {
        let a = GeneratedHostKey::generate("a").unwrap();
        let b = GeneratedHostKey::generate("a").unwrap();
        assert_ne!(a.tag(), b.tag());
        let keys = HostKeys::default();
        let first = keys.get_or_generate("web").unwrap();
        assert_eq!(first.tag(), keys.get_or_generate("web").unwrap().tag());
        assert_ne!(first.tag(), keys.get_or_generate("db").unwrap().tag());
    }

    #[test]
    fn a_tag_that_is_not_an_ed25519_key_is_no_key() {
        let bad = [
            "ganeti-operator:hostkey:not-base64!",
            "ganeti-operator:hostkey:AAAAB3NzaC1yc2EAAAADAQAB",
            "ganeti-operator:hostkey:",
        ];
        for tag in bad {
            assert_eq!(from_tags([&tag.to_owned()]), None, "{tag}");
        }
    }
}
