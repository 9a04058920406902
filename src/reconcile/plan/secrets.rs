//! Secrets, planned like everything else and decided from manifests, never from content:
//! every host that needs a secret must have `secrets/<host>/<name>.age` made from the
//! source's current ciphertext for its current recipients; anything else a host's
//! directory holds is removed. age output is randomized, so a file whose manifest entry
//! still matches is left alone: a rerun writes nothing.

use std::collections::BTreeSet;

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::secrets::publish::SecretStep;
use crate::secrets::recipients::{self, fingerprint, fingerprints, recipients_of};

use super::{Action, ActionKind, BlockReason, Blocked, Phase, Plan, PlanInput, Step};

fn secret_ref(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Secret,
        name: name.to_owned(),
    }
}

pub fn plan_secrets(input: &PlanInput<'_>, plan: &mut Plan) {
    let Some(seen) = &input.observed.secrets else {
        return;
    };
    let desired = input.desired;
    let needs = recipients::hosts(desired);
    let mut unreadable = BTreeSet::new();
    for (host, need) in &needs {
        let Some(key) = &need.host_key else {
            // Validation refuses this for the desired state as written; kept as a guard.
            plan.blocked.push(Blocked {
                object: need.object.clone(),
                why: BlockReason::Secret,
                message: "receives secrets but has no hostKey to encrypt them to".into(),
            });
            continue;
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
            let lines = recipients_of(desired, key, secret);
            let wanted = fingerprints(&lines);
            let entry = on_store
                .and_then(|h| h.manifest.as_ref())
                .and_then(|m| m.files.get(secret));
            let file = on_store.and_then(|h| h.files.get(secret));
            let (kind, reason) = match (entry, file) {
                _ if on_store.is_none() => (ActionKind::SecretPublish, "new host"),
                (None, _) => (ActionKind::SecretPublish, "new secret for this host"),
                (Some(_), None) => (ActionKind::SecretPublish, "the published file is missing"),
                (Some(entry), Some(file)) => {
                    if entry.recipients != wanted {
                        if entry.recipients.contains(&fingerprint(key.as_str())) {
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
                })],
                phase: Phase::Secrets,
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
