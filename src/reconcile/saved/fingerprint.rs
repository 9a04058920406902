//! What was observed of one object, reduced to the fields the planner reads, and hashed
//! canonically (objects with sorted keys, compact JSON, SHA-256). Defined once, here: the
//! saved plan records it when it is made and compares it when it is applied.
//!
//! Each field is hashed on its own as well as all together, so that a stale plan can
//! name the field that changed without the file holding any observed value (an OS
//! parameter, a pointer's contents): the file only ever holds digests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::desired::names::CLASS_TAG_PREFIX;
use crate::reconcile::observe::Observed;

/// An object's observed fingerprint: the digest of every field, and of them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    pub object: ObjectRef,
    pub digest: String,
    /// By field name, the digest of its value.
    pub fields: BTreeMap<String, String>,
}

impl Fingerprint {
    /// The fields whose digest differs, or that one side lacks, sorted.
    pub fn changed_fields(&self, now: &Fingerprint) -> Vec<String> {
        let mut names: Vec<&String> = self.fields.keys().chain(now.fields.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|n| self.fields.get(*n) != now.fields.get(*n))
            .cloned()
            .collect()
    }
}

/// The fingerprint of `object` as `observed` shows it.
pub fn fingerprint(observed: &Observed, object: &ObjectRef) -> Fingerprint {
    let fields: BTreeMap<String, String> = fields(observed, object)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), digest(&value)))
        .collect();
    let all = Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    );
    Fingerprint {
        object: object.clone(),
        digest: digest(&all),
        fields,
    }
}

/// One field's value now, for the message that names it. `None` when the object has no
/// such field (it is gone, or never had it).
pub fn field_value(observed: &Observed, object: &ObjectRef, field: &str) -> Option<Value> {
    fields(observed, object)
        .into_iter()
        .find(|(name, _)| *name == field)
        .map(|(_, value)| value)
}

/// The observed fields of one object that planning reads. Volatile figures that change
/// without anyone acting (free memory, a serial number) are left out: they would make
/// every saved plan stale.
pub fn fields(observed: &Observed, object: &ObjectRef) -> Vec<(&'static str, Value)> {
    match object.kind {
        ObjectKind::Instance => instance_fields(observed, &object.name),
        ObjectKind::Node => node_fields(observed, &object.name),
        ObjectKind::Cluster => cluster_fields(observed),
        ObjectKind::Secret => secret_fields(observed, &object.name),
        ObjectKind::Class => class_fields(observed, &object.name),
    }
}

fn instance_fields(observed: &Observed, name: &str) -> Vec<(&'static str, Value)> {
    let Some(i) = observed.instances.get(name) else {
        return vec![("exists", json!(false))];
    };
    vec![
        ("exists", json!(true)),
        ("uuid", json!(i.uuid)),
        ("admin_state", json!(i.admin_state)),
        ("status", json!(i.status)),
        ("primary", json!(i.pnode)),
        ("secondaries", json!(i.snodes)),
        ("os", json!(i.os)),
        ("hypervisor", json!(i.hypervisor)),
        ("disk_template", json!(i.disk_template)),
        ("memory", json!(i.beparams.maxmem)),
        ("memory.min", json!(i.beparams.minmem)),
        ("vcpus", json!(i.beparams.vcpus)),
        ("memory.running", json!(i.oper_ram)),
        ("vcpus.running", json!(i.oper_vcpus)),
        ("hvparams", Value::Object(i.hvparams.clone())),
        ("disks", json!(i.disk_sizes)),
        ("disk.names", json!(i.disk_names)),
        ("nic.links", json!(i.nic_links)),
        ("nic.modes", json!(i.nic_modes)),
        ("nic.macs", json!(i.nic_macs)),
        ("tags", sorted(&i.tags)),
        ("pointers", pointers_of(observed, name)),
    ]
}

fn node_fields(observed: &Observed, name: &str) -> Vec<(&'static str, Value)> {
    let Some(n) = observed.nodes.get(name) else {
        return vec![("exists", json!(false))];
    };
    vec![
        ("exists", json!(true)),
        ("uuid", json!(n.uuid)),
        ("role", json!(n.role)),
        ("offline", json!(n.offline)),
        ("drained", json!(n.drained)),
        ("master_candidate", json!(n.master_candidate)),
        ("master_capable", json!(n.master_capable)),
        ("vm_capable", json!(n.vm_capable)),
        ("group", json!(n.group_uuid)),
        ("primary_instances", sorted(&n.pinst_list)),
        ("secondary_instances", sorted(&n.sinst_list)),
        ("tags", sorted(&n.tags)),
        ("pointers", pointers_of(observed, name)),
    ]
}

fn cluster_fields(observed: &Observed) -> Vec<(&'static str, Value)> {
    let filters: Vec<&str> = observed.filters.freeze().map(|f| f.uuid.as_str()).collect();
    let chain = observed.store.as_ref().and_then(|s| {
        s.pointers
            .get(&crate::store::StoreFile::Chain)
            .map(|p| p.contents.clone())
    });
    vec![
        ("name", json!(observed.cluster.name)),
        ("master", json!(observed.cluster.master)),
        ("tags", sorted(&observed.cluster.tags)),
        ("freeze_filters", json!(filters)),
        ("chain", json!(chain)),
    ]
}

/// A secret's source digest and, per host, the manifest entry and the file's digest. All
/// digests already: what is observed of a secret never includes its content.
fn secret_fields(observed: &Observed, name: &str) -> Vec<(&'static str, Value)> {
    let Some(secrets) = &observed.secrets else {
        return vec![("observed", json!(false))];
    };
    let source = match secrets.sources.get(name) {
        Some(Ok(digest)) => json!(digest),
        Some(Err(why)) => json!({ "unreadable": why }),
        None => Value::Null,
    };
    let hosts: Map<String, Value> = secrets
        .hosts
        .iter()
        .filter_map(|(host, seen)| {
            let entry = seen
                .manifest
                .as_ref()
                .and_then(|m| m.files.get(name))
                .map(|e| json!([e.source, e.recipients, e.published]));
            let file = seen.files.get(name);
            (entry.is_some() || file.is_some())
                .then(|| (host.clone(), json!({ "entry": entry, "file": file })))
        })
        .collect();
    vec![("source", source), ("hosts", Value::Object(hosts))]
}

/// A class is not a Ganeti object: what is seen of it is which hosts carry its tag.
fn class_fields(observed: &Observed, name: &str) -> Vec<(&'static str, Value)> {
    let tag = format!("{CLASS_TAG_PREFIX}{name}");
    let instances: Vec<&String> = observed
        .instances
        .values()
        .filter(|i| i.tags.contains(&tag))
        .map(|i| &i.name)
        .collect();
    let nodes: Vec<&String> = observed
        .nodes
        .values()
        .filter(|n| n.tags.contains(&tag))
        .map(|n| &n.name)
        .collect();
    vec![("instances", json!(instances)), ("nodes", json!(nodes))]
}

/// The boot pointers that name this host in their header, by file, as contents digests.
fn pointers_of(observed: &Observed, host: &str) -> Value {
    let Some(store) = &observed.store else {
        return Value::Null;
    };
    Value::Object(
        store
            .pointers
            .iter()
            .filter(|(_, p)| p.header.as_ref().is_some_and(|h| h.host == host))
            .map(|(file, p)| (file.to_string(), json!(p.contents)))
            .collect(),
    )
}

fn sorted(items: &[String]) -> Value {
    let mut items = items.to_vec();
    items.sort();
    json!(items)
}

/// `sha256:` and the first 32 hex digits of the SHA-256 of the canonical JSON.
pub fn digest(value: &Value) -> String {
    let text = canonical(value).to_string();
    let hash = sha2::Sha256::digest(text.as_bytes());
    format!("sha256:{}", &hex::encode(hash)[..32])
}

/// The value with every object's keys sorted: serde_json keeps insertion order here
/// (`preserve_order`), and Ganeti's maps come in the order Ganeti sends them.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .filter_map(|k| map.get(k).map(|v| (k.clone(), canonical(v))))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}
