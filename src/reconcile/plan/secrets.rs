//! Secrets, planned like everything else and decided from manifests, never from content:
//! every host that needs a secret must have `secrets/<host>/<name>.age` made from the
//! source's current ciphertext for its current recipients; anything else a host's
//! directory holds is removed. age output is randomized, so a file whose manifest entry
//! still matches is left alone: a rerun writes nothing.

use std::collections::BTreeSet;

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::desired::ssh_key::SshPublicKey;
use crate::secrets::host_key;
use crate::secrets::publish::SecretStep;
use crate::secrets::recipients::{
    self, HostNeeds, admin_recipients, fingerprint, fingerprints, recipients_of,
};

use super::{Action, ActionKind, BlockReason, Blocked, Phase, PlanInput, Step};
use super::{Finished, Part};

fn secret_ref(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Secret,
        name: name.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKey {
    Known(SshPublicKey),
    /// The instance is created in this plan with a key generated then.
    GeneratedAtCreate,
}

/// The key a host's secrets are encrypted to: its `hostKey`, else the one the operator
/// generated for it (read back from the instance's tag), else the one its create in this
/// plan will generate. `None` when there is none yet; a block says why if nothing else does.
fn host_key(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    host: &str,
    need: &HostNeeds,
) -> Option<HostKey> {
    if let Some(key) = &need.host_key {
        return Some(HostKey::Known(key.clone()));
    }
    let block = |plan: &mut Part<'_>, message: &str| {
        plan.blocked.push(Blocked {
            object: need.object.clone(),
            why: BlockReason::Secret,
            message: message.into(),
        });
    };
    if !need.generated_key {
        // Validation refuses this for the desired state as written; kept as a guard.
        block(
            plan,
            "receives secrets but has no hostKey to encrypt them to",
        );
        return None;
    }
    if let Some(seen) = input.observed.instances.get(host) {
        let key = host_key::from_tags(&seen.tags).map(HostKey::Known);
        if key.is_none() {
            block(
                plan,
                "exists without a host key the operator generated (it was created before, or \
                 adopted), so its secrets have no recipient; give it `hostKey`",
            );
        }
        return key;
    }
    let created_now = plan
        .all_actions()
        .any(|a| a.kind == ActionKind::Create && a.object == need.object);
    created_now.then_some(HostKey::GeneratedAtCreate)
}

pub fn plan(input: &PlanInput<'_>, mut part: Part<'_>) -> Finished {
    plan_secrets(input, &mut part);
    part.finish()
}

fn plan_secrets(input: &PlanInput<'_>, plan: &mut Part<'_>) {
    let Some(seen) = &input.observed.secrets else {
        return;
    };
    let desired = input.desired;
    let needs = recipients::hosts(desired);
    let mut unreadable = BTreeSet::new();
    for (host, need) in &needs {
        let key = match host_key(input, plan, host, need) {
            Some(key) => key,
            None => continue,
        };
        let on_store = seen.hosts.get(host);
        for secret in &need.secrets {
            let digest = match seen.sources.get(secret) {
                Some(Ok(digest)) => digest,
                Some(Err(problem)) => {
                    if unreadable.insert(secret.clone()) {
                        plan.blocked.push(Blocked {
                            object: secret_ref(secret),
                            why: BlockReason::Secret,
                            message: format!("the source cannot be read: {problem}"),
                        });
                    }
                    continue;
                }
                None => continue,
            };
            let (lines, wanted) = match &key {
                HostKey::Known(key) => {
                    let lines = recipients_of(desired, key, secret);
                    let wanted = fingerprints(&lines);
                    (lines, wanted)
                }
                // Made at execution: every copy is new, whatever the store holds.
                HostKey::GeneratedAtCreate => {
                    (admin_recipients(desired, Vec::new(), secret), Vec::new())
                }
            };
            let entry = on_store
                .and_then(|h| h.manifest.as_ref())
                .and_then(|m| m.files.get(secret));
            let file = on_store.and_then(|h| h.files.get(secret));
            let (kind, reason) = match (entry, file) {
                _ if key == HostKey::GeneratedAtCreate => (
                    ActionKind::SecretPublish,
                    "new host, key generated at create",
                ),
                _ if on_store.is_none() => (ActionKind::SecretPublish, "new host"),
                (None, _) => (ActionKind::SecretPublish, "new secret for this host"),
                (Some(_), None) => (ActionKind::SecretPublish, "the published file is missing"),
                (Some(entry), Some(file)) => {
                    if entry.recipients != wanted {
                        if lines
                            .first()
                            .is_some_and(|k| entry.recipients.contains(&fingerprint(k)))
                        {
                            (ActionKind::SecretRekey, "admin recipients changed")
                        } else {
                            (ActionKind::SecretRekey, "key changed")
                        }
                    } else if entry.source != *digest {
                        (ActionKind::SecretRekey, "source changed")
                    } else if entry.published != *file {
                        (
                            ActionKind::SecretRekey,
                            "the published file differs from its manifest",
                        )
                    } else {
                        continue;
                    }
                }
            };
            let Some(source) = desired.secrets.get(secret).map(|s| s.file.clone()) else {
                continue;
            };
            plan.actions.push(Action {
                object: secret_ref(secret),
                kind,
                reason: reason.into(),
                changes: Vec::new(),
                steps: vec![Step::Secret(SecretStep::Publish {
                    host: host.clone(),
                    secret: secret.clone(),
                    source,
                    source_digest: digest.clone(),
                    recipients: lines,
                    generated_host_key: key == HostKey::GeneratedAtCreate,
                })],
                // A new host's secrets go out before its create, so that they are there
                // when it first boots.
                phase: if key == HostKey::GeneratedAtCreate {
                    Phase::FirstBootSecrets
                } else {
                    Phase::Secrets
                },
            });
        }
    }
    for (host, on_store) in &seen.hosts {
        let needed = needs.get(host).map(|n| &n.secrets);
        let mut present: BTreeSet<&String> = on_store.files.keys().collect();
        if let Some(manifest) = &on_store.manifest {
            present.extend(manifest.files.keys());
        }
        for secret in present {
            if needed.is_some_and(|n| n.contains(secret)) {
                continue;
            }
            let reason =
                if !desired.nodes.contains_key(host) && !desired.instances.contains_key(host) {
                    "host left the desired state"
                } else {
                    "no longer needed by this host"
                };
            plan.actions.push(Action {
                object: secret_ref(secret),
                kind: ActionKind::SecretRemove,
                reason: reason.into(),
                changes: Vec::new(),
                steps: vec![Step::Secret(SecretStep::Remove {
                    host: host.clone(),
                    secret: secret.clone(),
                })],
                phase: Phase::Secrets,
            });
        }
    }
}
