//! SSH public keys (`ssh-ed25519 AAAA… comment`), the recipients agenix encrypts host secrets to.

use base64::Engine as _;

pub const SSH_KEY_EXPECTED: &str = "an SSH public key line, e.g. \"ssh-ed25519 AAAAC3Nza… root@host\" (the contents of ssh_host_ed25519_key.pub)";

const KEY_TYPES: &[&str] = &["ssh-ed25519", "ssh-rsa"];

/// A validated SSH public key line. Only the types age can encrypt to are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SshPublicKey {
    line: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshKeyError {
    #[error("the key type {0:?} cannot receive age-encrypted secrets; use ssh-ed25519 or ssh-rsa")]
    UnsupportedType(String),
    #[error("not an SSH public key line: expected \"<type> <base64 key> [comment]\"")]
    Malformed,
    #[error("the key data is not valid base64")]
    BadBase64,
    #[error("the key data does not encode the {0} key its type names")]
    TypeMismatch(String),
}

impl SshPublicKey {
    pub fn parse(text: &str) -> Result<Self, SshKeyError> {
        let mut fields = text.split_whitespace();
        let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
            return Err(SshKeyError::Malformed);
        };
        if !KEY_TYPES.contains(&kind) {
            if kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-") {
                return Err(SshKeyError::UnsupportedType(kind.to_owned()));
            }
            return Err(SshKeyError::Malformed);
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| SshKeyError::BadBase64)?;
        // The blob starts with the key type as an SSH string: u32 length, then the bytes.
        let embedded = blob
            .get(..4)
            .map(|len| u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)
            .and_then(|len| blob.get(4..4 + len));
        if embedded != Some(kind.as_bytes()) {
            return Err(SshKeyError::TypeMismatch(kind.to_owned()));
        }
        Ok(SshPublicKey {
            line: text.trim().to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0ZQvdw0q6WlkWg4xyo0Ov2fq4oaR1d0K8Q0cSZ8b8h root@host";

    #[test]
    fn accepts_ed25519() {
        assert_eq!(SshPublicKey::parse(ED25519).unwrap().as_str(), ED25519);
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(SshPublicKey::parse("hello"), Err(SshKeyError::Malformed));
        assert_eq!(
            SshPublicKey::parse("ssh-ed25519 !!!notbase64"),
            Err(SshKeyError::BadBase64)
        );
        assert_eq!(
            SshPublicKey::parse(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIJ0ZQvdw0q6WlkWg4xyo0Ov2fq4oaR1d0K8Q0cSZ8b8h"
            ),
            Err(SshKeyError::TypeMismatch("ssh-rsa".into()))
        );
        assert!(matches!(
            SshPublicKey::parse("ssh-dss AAAAB3NzaC1kc3M="),
            Err(SshKeyError::UnsupportedType(_))
        ));
    }
}
