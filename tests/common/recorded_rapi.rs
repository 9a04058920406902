//! The fake RAPI serving what a real Ganeti 3.0.2 answered, recorded by
//! tests/harness/capture-rapi-fixtures.sh into tests/fixtures/rapi/. It knows only the
//! requests recorded there; anything else gets a loud 599 so a test cannot pass on a
//! shape Ganeti never sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use base64::Engine;
use serde_json::Value;

use super::fake_rapi::{FakeRapi, Received, Reply};

/// The users the recording was made with; the password is never checked except for the
/// one the contract uses as wrong.
pub const WRITE_USER: &str = "gnt-admin";
pub const READONLY_USER: &str = "gnt-reader";
pub const WRONG_PASSWORD: &str = "not-the-password";

pub struct Recording {
    files: BTreeMap<String, (u16, Value)>,
    /// Names created through the fake: the first create succeeds, later ones find the
    /// instance there, as on the real cluster.
    created: Mutex<BTreeSet<String>>,
}

impl Recording {
    pub fn load() -> Recording {
        let dir = super::project_root().join("tests/fixtures/rapi");
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let recorded: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let status = recorded["status"].as_u64().unwrap() as u16;
            files.insert(name.to_owned(), (status, recorded["body"].clone()));
        }
        Recording {
            files,
            created: Mutex::default(),
        }
    }

    pub fn body(&self, name: &str) -> &Value {
        &self
            .files
            .get(name)
            .unwrap_or_else(|| panic!("no recording {name}"))
            .1
    }

    fn reply(&self, name: &str) -> Reply {
        let (status, body) = &self.files[name];
        Reply::Json(*status, body.to_string())
    }

    fn job_named(&self, id: &str) -> Option<&'static str> {
        ["success", "already-exists", "unknown-entity"]
            .into_iter()
            .find(|kind| self.body(&format!("job-{kind}"))["id"].as_u64() == id.parse().ok())
    }

    pub fn answer(&self, request: &Received) -> Reply {
        let (path, _query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        match user_of(request) {
            Some((_, password)) if password == WRONG_PASSWORD => {
                return self.reply("unauthorized");
            }
            Some((user, _)) if user == WRITE_USER => {}
            Some((user, _)) if user == READONLY_USER && request.method == "GET" => {}
            Some((user, _)) if user == READONLY_USER => return self.reply("forbidden"),
            _ => return self.reply("unauthorized"),
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let known_instance = |name: &str| {
            self.body("instances")
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["name"] == name)
        };
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["2", "info"]) => self.reply("info"),
            ("GET", ["2", "features"]) => self.reply("features"),
            ("GET", ["2", "nodes"]) => self.reply("nodes"),
            ("GET", ["2", "instances"]) => self.reply("instances"),
            ("GET", ["2", "groups"]) => self.reply("groups"),
            ("GET", ["2", "jobs"]) => self.reply("jobs"),
            ("GET", ["2", "jobs", id]) => match self.job_named(id) {
                Some(kind) => self.reply(&format!("job-{kind}")),
                None => {
                    let mut unknown = self.body("job-unknown").clone();
                    unknown["id"] = id.parse::<u64>().map(Value::from).unwrap_or(Value::Null);
                    Reply::Json(200, unknown.to_string())
                }
            },
            ("GET", ["2", "jobs", id, "wait"]) => match self.job_named(id) {
                Some(kind) => self.reply(&format!("wait-{kind}")),
                None => self.reply("wait-unknown"),
            },
            ("POST", ["2", "instances"]) => {
                let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
                let name = body["name"].as_str().unwrap_or_default().to_owned();
                if self.created.lock().unwrap().insert(name) {
                    self.reply("submit-create")
                } else {
                    self.reply("submit-create-existing")
                }
            }
            ("DELETE", ["2", "instances", name]) if !known_instance(name) => {
                self.reply("submit-remove-unknown")
            }
            _ => not_recorded(request),
        }
    }
}

fn user_of(request: &Received) -> Option<(String, String)> {
    let encoded = request.authorization.as_deref()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (user, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some((user, password))
}

fn not_recorded(request: &Received) -> Reply {
    Reply::Json(
        599,
        format!(
            r#"{{"code": 599, "message": "not recorded: {} {}"}}"#,
            request.method, request.target
        ),
    )
}

/// Starts the fake on loopback, answering from the recording.
pub async fn start() -> FakeRapi {
    let recording = Recording::load();
    FakeRapi::start(move |request, _| recording.answer(request)).await
}
