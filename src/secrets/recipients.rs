//! Who each host's copy of a secret is encrypted to: the host's `hostKey` plus the
//! admin recipients listed on the secret. A host needs its class's secrets and those on
//! its own entry. All pure: the planner compares the fingerprints computed here with the
//! ones a host's manifest recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::desired::ssh_key::SshPublicKey;

pub const ADMIN_RECIPIENT_EXPECTED: &str =
    "an age X25519 recipient (age1…) or an SSH public key line (ssh-ed25519 … or ssh-rsa …)";

/// What one host needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNeeds {
    pub object: ObjectRef,
    pub host_key: Option<SshPublicKey>,
    /// An instance whose key the operator generates at create: its key is read from the
    /// instance's host-key tag, or made in the run that creates it.
    pub generated_key: bool,
    pub secrets: BTreeSet<String>,
}

/// Every host (node or instance) that needs at least one secret, by host name.
pub fn hosts(desired: &DesiredState) -> BTreeMap<String, HostNeeds> {
    let mut out = BTreeMap::new();
    let mut add = |name: &str,
                   kind,
                   class: &str,
                   own: &[String],
                   key: &Option<SshPublicKey>,
                   generated_key: bool| {
        let mut secrets: BTreeSet<String> = own.iter().cloned().collect();
        if let Some(class) = desired.classes.get(class) {
            secrets.extend(class.secrets.iter().cloned());
        }
        secrets.retain(|s| desired.secrets.contains_key(s));
        if secrets.is_empty() {
            return;
        }
        out.insert(
            name.to_owned(),
            HostNeeds {
                object: ObjectRef {
                    kind,
                    name: name.to_owned(),
                },
                host_key: key.clone(),
                generated_key,
                secrets,
            },
        );
    };
    for (name, node) in &desired.nodes {
        add(
            name,
            ObjectKind::Node,
            &node.class,
            &node.secrets,
            &node.host_key,
            false,
        );
    }
    for (name, instance) in &desired.instances {
        add(
            name,
            ObjectKind::Instance,
            &instance.class,
            &instance.secrets,
            &instance.host_key,
            instance.generate_host_key,
        );
    }
    out
}

/// The recipient lines one host's copy of `secret` is encrypted to: the host key first,
/// then the secret's admin recipients, without repeats.
pub fn recipients_of(desired: &DesiredState, host_key: &SshPublicKey, secret: &str) -> Vec<String> {
    admin_recipients(desired, vec![normalize(host_key.as_str())], secret)
}

/// `lines` followed by the secret's admin recipients that are not among them.
pub fn admin_recipients(
    desired: &DesiredState,
    mut lines: Vec<String>,
    secret: &str,
) -> Vec<String> {
    if let Some(secret) = desired.secrets.get(secret) {
        for admin in &secret.recipients {
            let line = normalize(admin);
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines
}

/// A recipient without its comment: the key type and data of an SSH line, or the
/// `age1…` string.
pub fn normalize(line: &str) -> String {
    let mut fields = line.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(data)) if kind.starts_with("ssh-") => format!("{kind} {data}"),
        (Some(first), _) => first.to_owned(),
        _ => String::new(),
    }
}

/// A recipient's fingerprint as the manifest records it: `sha256:` and 32 hex digits of
/// the normalized line. A comment change is no key change.
pub fn fingerprint(line: &str) -> String {
    format!(
        "sha256:{}",
        &super::sha256_hex(normalize(line).as_bytes())[..32]
    )
}

/// The fingerprints of a recipient set, sorted: order does not change who can decrypt.
pub fn fingerprints(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = lines.iter().map(|l| fingerprint(l)).collect();
    out.sort();
    out.dedup();
    out
}

/// Checks an admin recipient from the desired state; the error says why, without
/// quoting it.
pub fn check_admin_recipient(text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.starts_with("age1") {
        return age::x25519::Recipient::from_str(text)
            .map(drop)
            .map_err(|_| "not a valid age X25519 recipient".to_owned());
    }
    SshPublicKey::parse(text)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Parses a recipient line for encryption.
pub fn parse_recipient(line: &str) -> Result<Box<dyn age::Recipient + Send>, String> {
    if line.starts_with("age1") {
        return age::x25519::Recipient::from_str(line)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
            .map_err(|_| "not a valid age X25519 recipient".to_owned());
    }
    age::ssh::Recipient::from_str(line)
        .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_comments_and_order() {
        let a = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0ZQvdw0q6WlkWg4xyo0Ov2fq4oaR1d0K8Q0cSZ8b8h root@a";
        let b = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0ZQvdw0q6WlkWg4xyo0Ov2fq4oaR1d0K8Q0cSZ8b8h other";
        assert_eq!(fingerprint(a), fingerprint(b));
        let x = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".to_owned();
        assert_eq!(
            fingerprints(&[a.to_owned(), x.clone()]),
            fingerprints(&[x, b.to_owned()])
        );
        assert!(check_admin_recipient("age1nothing").is_err());
        assert!(check_admin_recipient(a).is_ok());
    }
}
