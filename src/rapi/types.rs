//! What the RAPI returns, typed. Every field Ganeti may leave out or send as null is
//! optional or defaulted, and unknown fields (Ganeti 3.1 adds some) are ignored.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `null` where a list or map is expected means "empty" to us.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ClusterInfo {
    pub name: String,
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub software_version: Option<String>,
    #[serde(default)]
    pub protocol_version: Option<u64>,
    #[serde(default)]
    pub default_hypervisor: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub enabled_hypervisors: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub enabled_disk_templates: Vec<String>,
    #[serde(default)]
    pub default_iallocator: Option<String>,
    #[serde(default)]
    pub max_running_jobs: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// The first three bytes of the MACs Ganeti generates, e.g. `aa:00:00`.
    #[serde(default)]
    pub mac_prefix: Option<String>,
    /// Cluster-wide NIC parameters by group: `{"default": {"link": "br0", "mode":
    /// "bridged"}}`. What a NIC created without its own link and mode gets.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Map::is_empty"
    )]
    pub nicparams: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Node {
    pub name: String,
    /// One letter: M(aster), C(andidate), R(egular), D(rained), O(ffline).
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub offline: Option<bool>,
    #[serde(default)]
    pub drained: Option<bool>,
    #[serde(default)]
    pub master_candidate: Option<bool>,
    #[serde(default)]
    pub master_capable: Option<bool>,
    #[serde(default)]
    pub vm_capable: Option<bool>,
    /// Memory in MiB: total, free, and used by the node itself.
    #[serde(default)]
    pub mtotal: Option<u64>,
    #[serde(default)]
    pub mfree: Option<u64>,
    #[serde(default)]
    pub mnode: Option<u64>,
    #[serde(default)]
    pub dtotal: Option<u64>,
    #[serde(default)]
    pub dfree: Option<u64>,
    #[serde(default)]
    pub ctotal: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub pinst_list: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub sinst_list: Vec<String>,
    /// Primary IP: where a node's health check reaches it (`{ip}`).
    #[serde(default)]
    pub pip: Option<String>,
    #[serde(default, rename = "group.uuid")]
    pub group_uuid: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Group {
    pub name: String,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub node_list: Vec<String>,
    #[serde(default)]
    pub alloc_policy: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct BeParams {
    #[serde(default)]
    pub maxmem: Option<u64>,
    #[serde(default)]
    pub minmem: Option<u64>,
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default)]
    pub auto_balance: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Instance {
    pub name: String,
    /// "up", "down" or "offline": what the admin asked for.
    #[serde(default)]
    pub admin_state: Option<String>,
    /// Derived: "running", "ADMIN_down", "ERROR_down", ...
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub oper_state: Option<bool>,
    #[serde(default)]
    pub pnode: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub snodes: Vec<String>,
    #[serde(default)]
    pub os: Option<String>,
    /// The hypervisor the instance runs on, e.g. `kvm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
    #[serde(default)]
    pub disk_template: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub beparams: BeParams,
    #[serde(default, deserialize_with = "nullable")]
    pub hvparams: Map<String, Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub custom_beparams: Map<String, Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub custom_hvparams: Map<String, Value>,
    #[serde(default, rename = "disk.sizes", deserialize_with = "nullable")]
    pub disk_sizes: Vec<Option<u64>>,
    #[serde(default, rename = "disk.names", deserialize_with = "nullable")]
    pub disk_names: Vec<Option<String>>,
    #[serde(default, rename = "nic.links", deserialize_with = "nullable")]
    pub nic_links: Vec<Option<String>>,
    #[serde(default, rename = "nic.modes", deserialize_with = "nullable")]
    pub nic_modes: Vec<Option<String>>,
    #[serde(default, rename = "nic.macs", deserialize_with = "nullable")]
    pub nic_macs: Vec<Option<String>>,
    /// The NICs' IP addresses where Ganeti knows them: a health check's `{ip}`.
    #[serde(default, rename = "nic.ips", deserialize_with = "nullable")]
    pub nic_ips: Vec<Option<String>>,
    /// Memory the instance runs with now; lags `beparams.maxmem` until a reboot.
    #[serde(default)]
    pub oper_ram: Option<u64>,
    #[serde(default)]
    pub oper_vcpus: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub serial_no: Option<u64>,
}

pub type JobId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Waiting,
    Running,
    Canceling,
    Canceled,
    Success,
    Error,
}

impl JobStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Error | JobStatus::Canceled
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Job {
    pub id: JobId,
    /// `None` for a job Ganeti does not know (it answers 200 with every field null).
    #[serde(default)]
    pub status: Option<JobStatus>,
    #[serde(default, deserialize_with = "nullable")]
    pub summary: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub ops: Vec<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub opstatus: Vec<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub opresult: Vec<Value>,
    #[serde(default)]
    pub received_ts: Option<(i64, i64)>,
    #[serde(default)]
    pub start_ts: Option<(i64, i64)>,
    #[serde(default)]
    pub end_ts: Option<(i64, i64)>,
}

impl Job {
    /// The reason texts of every opcode (`ops[i].reason` is `[[source, text, ts], ...]`).
    pub fn reasons(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter_map(|op| op.get("reason")?.as_array())
            .flatten()
            .filter_map(|entry| entry.get(1)?.as_str().map(str::to_owned))
            .collect()
    }

    /// Child jobs an opcode fanned out (`node migrate`, `node evacuate`):
    /// `{"jobs": [[true, 156], [false, "why not"]]}`.
    pub fn child_jobs(&self) -> Vec<Result<JobId, String>> {
        self.opresult
            .iter()
            .filter_map(|r| r.get("jobs")?.as_array())
            .flatten()
            .filter_map(|entry| {
                let submitted = entry.get(0)?.as_bool()?;
                let detail = entry.get(1)?;
                Some(if submitted {
                    detail.as_u64().ok_or_else(|| detail.to_string())
                } else {
                    Err(detail
                        .as_str()
                        .map_or_else(|| detail.to_string(), html_unescape))
                })
            })
            .collect()
    }

    /// Why the job failed, from the first opcode that did.
    pub fn failure(&self) -> Option<JobFailure> {
        match self.status? {
            JobStatus::Success => None,
            JobStatus::Canceled => Some(JobFailure {
                exception: "Canceled".into(),
                message: "the job was canceled".into(),
                class: None,
            }),
            _ => {
                let index = self
                    .opstatus
                    .iter()
                    .position(|s| s.as_deref() == Some("error"))
                    .unwrap_or(0);
                Some(JobFailure::from_opresult(
                    self.opresult.get(index).unwrap_or(&Value::Null),
                ))
            }
        }
    }
}

/// Ganeti's error codes (`errors.ECODE_*`) that tell how to react to a failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    AlreadyExists,
    UnknownEntity,
    WrongState,
    WrongInput,
    InsufficientResources,
    ResolverError,
    EnvironmentError,
    NotUnique,
    TempNores,
    Nores,
    Fault,
    Other(String),
}

impl ErrorClass {
    pub fn parse(code: &str) -> ErrorClass {
        match code {
            "already_exists" => ErrorClass::AlreadyExists,
            "unknown_entity" => ErrorClass::UnknownEntity,
            "wrong_state" => ErrorClass::WrongState,
            "wrong_input" => ErrorClass::WrongInput,
            "insufficient_resources" => ErrorClass::InsufficientResources,
            "resolver_error" => ErrorClass::ResolverError,
            "environment_error" => ErrorClass::EnvironmentError,
            "not_unique" => ErrorClass::NotUnique,
            "temp_insufficient_resources" => ErrorClass::TempNores,
            "insufficient_resources_nores" => ErrorClass::Nores,
            "internal_error" => ErrorClass::Fault,
            other => ErrorClass::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobFailure {
    /// Ganeti's exception class, e.g. `OpPrereqError`.
    pub exception: String,
    /// The message, HTML entities unescaped.
    pub message: String,
    pub class: Option<ErrorClass>,
}

impl JobFailure {
    /// `opresult[i]` of a failed opcode: `["OpPrereqError", ["message", "wrong_input"]]`,
    /// sometimes without the code, sometimes a bare string.
    pub fn from_opresult(result: &Value) -> JobFailure {
        let exception = result
            .get(0)
            .and_then(Value::as_str)
            .unwrap_or("JobError")
            .to_owned();
        let detail = result.get(1);
        let (message, class) = match detail {
            Some(Value::Array(parts)) => (
                parts.first().map(text_of).unwrap_or_default(),
                parts.get(1).and_then(Value::as_str).map(ErrorClass::parse),
            ),
            Some(other) => (text_of(other), None),
            None => (text_of(result), None),
        };
        JobFailure {
            exception,
            message: html_unescape(&message),
            class,
        }
    }
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// ganeti-rapi escapes error texts for HTML (`&#x27;`, `&quot;`); people read them plain.
pub fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What `/2/jobs/<id>/wait` reports when something changed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobChange {
    pub status: Option<JobStatus>,
    /// `(serial, message)` of new log lines.
    pub log: Vec<(u64, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unescapes_ganeti_messages() {
        assert_eq!(
            html_unescape("Object OpInstanceCreate doesn&#x27;t support &quot;x&quot; &amp; y"),
            "Object OpInstanceCreate doesn't support \"x\" & y"
        );
        assert_eq!(html_unescape("a & b; c"), "a & b; c");
    }

    #[test]
    fn failures_carry_the_error_class() {
        let f = JobFailure::from_opresult(&json!([
            "OpPrereqError",
            [
                "Instance &#x27;x&#x27; is already in the cluster",
                "already_exists"
            ]
        ]));
        assert_eq!(f.class, Some(ErrorClass::AlreadyExists));
        assert_eq!(f.message, "Instance 'x' is already in the cluster");
        let f = JobFailure::from_opresult(&json!(["OpExecError", ["OS validation failed"]]));
        assert_eq!((f.exception.as_str(), f.class), ("OpExecError", None));
    }

    #[test]
    fn tolerates_nulls_and_unknown_fields() {
        let i: Instance = serde_json::from_value(json!({
            "name": "a", "nic.links": null, "snodes": null, "tags": null, "beparams": null,
            "disk.sizes": [128, null], "a_field_from_ganeti_3_1": {"x": 1}
        }))
        .unwrap();
        assert_eq!(i.disk_sizes, vec![Some(128), None]);
        assert!(i.tags.is_empty());
        let unknown: Job =
            serde_json::from_value(json!({"id": 99, "status": null, "ops": null})).unwrap();
        assert_eq!(unknown.status, None);
    }

    #[test]
    fn reads_child_jobs() {
        let job = Job {
            opresult: vec![json!({"jobs": [[true, 156], [false, "no way"]]})],
            ..Job::default()
        };
        assert_eq!(job.child_jobs(), vec![Ok(156), Err("no way".into())]);
    }
}
