//! The secret rules on plain values: manifests decide, content never does.

use std::collections::BTreeMap;
use std::path::Path;

use crate::desired::model::DesiredState;
use crate::reconcile::observe::Observed;
use crate::reconcile::state::History;
use crate::secrets::manifest::{FileEntry, HostManifest};
use crate::secrets::observe::{ObservedHost, ObservedSecrets};
use crate::secrets::recipients::{fingerprints, recipients_of};

use super::tests::now;
use super::*;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0ZQvdw0q6WlkWg4xyo0Ov2fq4oaR1d0K8Q0cSZ8b8h";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA5q2ObI2+r1NjmPd8DqZ+vF3vCw8Qb9L1K60h1UMO3+";

struct AgeHeads;
impl crate::desired::semantic::SecretFiles for AgeHeads {
    fn head(&self, _: &Path) -> crate::desired::files::FileRead {
        let key = age::x25519::Identity::generate().to_public();
        crate::secrets::publish::encrypt(b"x", &[key.to_string()]).map_err(|_| {
            crate::desired::files::FileProblem::Missing {
                path: String::new(),
            }
        })
    }
}

fn desired(key: &str, hosts: &str) -> DesiredState {
    let yaml = format!(
        "cluster: {{name: c.test, hypervisor: fake, defaultDiskTemplate: diskless, store: {{baseUrl: 'http://s'}}}}
classes:
  web: {{image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {{memory: 128M, vcpus: 1}}, secrets: [app-env]}}
secrets:
  app-env: {{file: secrets/app-env.age}}
  other: {{file: secrets/other.age}}
instances:
  web1.c.test: {{class: web, hostKey: '{key}'}}
{hosts}"
    );
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.into_bytes()))],
        &AgeHeads,
    );
    validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics))
}

fn sources() -> BTreeMap<String, Result<String, String>> {
    [("app-env", "s1"), ("other", "o1")]
        .into_iter()
        .map(|(n, d)| (n.to_owned(), Ok(d.to_owned())))
        .collect()
}

/// The store as a publish for `key` and source digest `source` leaves it.
fn published(desired: &DesiredState, host: &str, key: &str, source: &str) -> ObservedHost {
    let key = crate::desired::ssh_key::SshPublicKey::parse(key).unwrap();
    let mut manifest = HostManifest::new();
    manifest.files.insert(
        "app-env".into(),
        FileEntry {
            source: source.into(),
            recipients: fingerprints(&recipients_of(desired, &key, "app-env")),
            published: "f1".into(),
        },
    );
    let _ = host;
    ObservedHost {
        manifest: Some(manifest),
        files: [("app-env".to_owned(), "f1".to_owned())].into(),
    }
}

fn plan_for(desired: &DesiredState, hosts: BTreeMap<String, ObservedHost>) -> Plan {
    let observed = Observed {
        secrets: Some(ObservedSecrets {
            sources: sources(),
            hosts,
        }),
        ..Observed::default()
    };
    let mut plan = plan(&PlanInput {
        desired,
        observed: &observed,
        history: &History::default(),
        now: now(),
    });
    plan.actions.retain(|a| a.phase == Phase::Secrets);
    plan
}

fn summary(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| match a.steps.first() {
            Some(Step::Secret(s)) => {
                format!(
                    "{} {} {} ({})",
                    a.kind.symbol(),
                    a.object.name,
                    s.host(),
                    a.reason
                )
            }
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn a_new_host_gets_its_class_secrets() {
    let d = desired(KEY_A, "");
    let plan = plan_for(&d, BTreeMap::new());
    assert_eq!(summary(&plan), ["+ app-env web1.c.test (new host)"]);
    assert_eq!(plan.stale_secrets(), 1);
}

#[test]
fn a_matching_manifest_plans_nothing() {
    let d = desired(KEY_A, "");
    let hosts = [(
        "web1.c.test".to_owned(),
        published(&d, "web1.c.test", KEY_A, "s1"),
    )]
    .into();
    assert!(plan_for(&d, hosts).actions.is_empty());
}

#[test]
fn a_key_change_or_source_change_re_keys_and_says_why() {
    let old = desired(KEY_A, "");
    let d = desired(KEY_B, "");
    let hosts = [(
        "web1.c.test".to_owned(),
        published(&old, "web1.c.test", KEY_A, "s1"),
    )]
    .into();
    assert_eq!(
        summary(&plan_for(&d, hosts)),
        ["~ app-env web1.c.test (key changed)"]
    );
    let hosts = [(
        "web1.c.test".to_owned(),
        published(&d, "web1.c.test", KEY_B, "s0"),
    )]
    .into();
    assert_eq!(
        summary(&plan_for(&d, hosts)),
        ["~ app-env web1.c.test (source changed)"]
    );
}

#[test]
fn host_entry_secrets_add_and_a_gone_host_is_removed() {
    let d = desired(
        KEY_A,
        &format!("  web2.c.test: {{class: web, hostKey: '{KEY_B}', secrets: [other]}}\n"),
    );
    let hosts = [
        (
            "web1.c.test".to_owned(),
            published(&d, "web1.c.test", KEY_A, "s1"),
        ),
        (
            "gone.c.test".to_owned(),
            published(&d, "gone.c.test", KEY_A, "s1"),
        ),
    ]
    .into();
    assert_eq!(
        summary(&plan_for(&d, hosts)),
        [
            "+ app-env web2.c.test (new host)",
            "- app-env gone.c.test (host left the desired state)",
            "+ other web2.c.test (new host)",
        ]
    );
}
