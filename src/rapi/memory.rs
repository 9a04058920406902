//! An in-memory `Rapi`: a small cluster whose jobs take a set time and then take effect.
//! It is for tests of the executor, the cycle and the daemon loop, which must run without
//! a real cluster; faults of the wire are the fake HTTP RAPI's business
//! (tests/common/fake_rapi.rs). What the loop must react to is scripted here: a job that
//! fails with an error class, and a job left running by an earlier run. For randomized
//! fault runs, `on_submit` scripts each submission: refused before a job exists, or
//! accepted with the answer lost (the job runs, the caller sees an error).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::operation::{Operation, TagTarget, WriteOptions};
use super::types::{ClusterInfo, Group, Instance, Job, JobChange, JobId, JobStatus, Node};
use super::{Rapi, RapiError};

/// A desired state for `MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, _)`: one instance,
/// pinned to the one node, that the cluster lacks until it is created.
pub const MEMORY_STATE: &str = "
cluster: {name: cluster.mem.test, hypervisor: fake, defaultDiskTemplate: diskless}
classes:
  web: {image: sha256-02, os: noop+default, resources: {memory: 128M, vcpus: 1}}
nodes:
  node1.mem.test: {class: web, role: master}
instances:
  web1.mem.test: {class: web, primaryNode: node1.mem.test}
";
pub const MEMORY_CLUSTER: &str = "cluster.mem.test";
pub const MEMORY_NODE: &str = "node1.mem.test";

/// How long Ganeti's long-poll waits before answering "no change".
const LONG_POLL: Duration = Duration::from_secs(10);

struct MemoryJob {
    operation: Operation,
    reason: String,
    submitted_at: Instant,
    done_at: Instant,
    /// Ganeti's error class the job ends with, instead of taking effect.
    fails_with: Option<String>,
    applied: bool,
    /// The job was created but the caller was told the submission failed.
    lost_response: bool,
}

/// What a scripted submission does (see [`MemoryRapi::on_submit`]).
#[derive(Debug, Clone)]
pub enum SubmitFault {
    /// The job is created and its id returned.
    None,
    /// No job is created; the caller gets this error (a 5xx, a refused connection, 401).
    Refuse(RapiError),
    /// The job IS created and runs, but the caller gets this error: the answer was lost
    /// (a reset after the request was sent, a timeout, an unreadable body).
    LoseResponse(RapiError),
    /// As `LoseResponse`, and the job runs this long instead of the set time, so that
    /// the next run still finds it unfinished.
    LoseResponseSlow(RapiError, Duration),
    /// The job is created and ends with Ganeti's error class, changing nothing.
    FailJob(String),
}

type SubmitScript = Box<dyn FnMut(&Operation, &str) -> SubmitFault + Send>;

/// One job as the tests see it: what, why, and when it ran.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: &'static str,
    pub reason: String,
    pub submitted_at: Instant,
    pub done_at: Instant,
    pub operation: Operation,
    /// The error class the job ended with, if it was scripted to fail.
    pub fails_with: Option<String>,
    /// Created, but the caller was told the submission failed.
    pub lost_response: bool,
}

#[derive(Default)]
struct State {
    instances: BTreeMap<String, Instance>,
    jobs: BTreeMap<JobId, MemoryJob>,
    next_id: JobId,
    /// Submission number (1-based, counting `submit` calls only) → error class.
    failures: BTreeMap<usize, String>,
    submits: usize,
    /// The most jobs running at one time, as seen at each submission.
    max_running: usize,
}

pub struct MemoryRapi {
    cluster: ClusterInfo,
    nodes: Vec<Node>,
    job_takes: Duration,
    state: Mutex<State>,
    script: Mutex<Option<SubmitScript>>,
}

impl MemoryRapi {
    /// A one-node cluster named `cluster` whose every job runs for `job_takes`.
    pub fn new(cluster: &str, node: &str, job_takes: Duration) -> MemoryRapi {
        MemoryRapi {
            cluster: ClusterInfo {
                name: cluster.to_owned(),
                master: Some(node.to_owned()),
                mac_prefix: Some("aa:00:00".into()),
                ..ClusterInfo::default()
            },
            nodes: vec![Node {
                name: node.to_owned(),
                role: Some("M".into()),
                ..Node::default()
            }],
            job_takes,
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            script: Mutex::new(None),
        }
    }

    /// Every later submission is first shown to `script` (operation, reason stamp), whose
    /// answer decides what the cluster does with it. `fail_submission` still applies to
    /// submissions the script lets through.
    pub fn on_submit(&self, script: impl FnMut(&Operation, &str) -> SubmitFault + Send + 'static) {
        *self.script.lock().unwrap() = Some(Box::new(script));
    }

    /// Every operation submitted so far, with its reason, in order.
    pub fn submitted(&self) -> Vec<(String, String)> {
        let state = self.state.lock().unwrap();
        state
            .jobs
            .values()
            .map(|j| (j.operation.kind().to_owned(), j.reason.clone()))
            .collect()
    }

    /// The `n`-th job submitted from now on (1-based) fails with Ganeti's error class
    /// `class` (e.g. `wrong_input`) and changes nothing.
    pub fn fail_submission(&self, n: usize, class: &str) {
        let mut state = self.state.lock().unwrap();
        let n = state.submits + n;
        state.failures.insert(n, class.to_owned());
    }

    /// A job left unfinished by an earlier run: queued under `reason`, it runs for the
    /// set time from now and then takes effect, like any other.
    pub fn add_running_job(&self, operation: Operation, reason: &str) -> JobId {
        let mut state = self.state.lock().unwrap();
        insert_job(
            &mut state,
            operation,
            reason.to_owned(),
            self.job_takes,
            None,
        )
    }

    /// Every job, in the order it reached the cluster.
    pub fn records(&self) -> Vec<JobRecord> {
        let state = self.state.lock().unwrap();
        state
            .jobs
            .iter()
            .map(|(id, j)| JobRecord {
                id: *id,
                kind: j.operation.kind(),
                reason: j.reason.clone(),
                submitted_at: j.submitted_at,
                done_at: j.done_at,
                operation: j.operation.clone(),
                fails_with: j.fails_with.clone(),
                lost_response: j.lost_response,
            })
            .collect()
    }

    /// The most jobs that ran at one time.
    pub fn max_running(&self) -> usize {
        self.state.lock().unwrap().max_running
    }

    fn settle(&self) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let State {
            instances, jobs, ..
        } = &mut *state;
        for job in jobs.values_mut() {
            if !job.applied && now >= job.done_at {
                job.applied = true;
                if job.fails_with.is_none() {
                    apply(instances, &job.operation);
                }
            }
        }
    }

    fn job_json(&self, id: JobId) -> Option<Job> {
        let state = self.state.lock().unwrap();
        let job = state.jobs.get(&id)?;
        let (status, result) = match (&job.fails_with, job.applied) {
            (_, false) => ("running", json!(null)),
            (None, true) => ("success", json!(null)),
            (Some(class), true) => (
                "error",
                json!(["OpPrereqError", ["scripted failure", class]]),
            ),
        };
        let op = json!({"OP_ID": job.operation.kind(), "reason": [["gnt:user", job.reason, 0]]});
        serde_json::from_value(json!({
            "id": id,
            "status": status,
            "summary": [job.operation.kind()],
            "ops": [op],
            "opstatus": [status],
            "opresult": [result],
        }))
        .ok()
    }
}

/// What a finished job leaves behind, as far as planning can see.
fn apply(instances: &mut BTreeMap<String, Instance>, operation: &Operation) {
    match operation {
        Operation::CreateInstance(create) => {
            let running = create.start;
            instances.insert(
                create.name.clone(),
                Instance {
                    name: create.name.clone(),
                    admin_state: Some(if running { "up" } else { "down" }.into()),
                    status: Some(if running { "running" } else { "ADMIN_down" }.into()),
                    pnode: create.primary_node.clone(),
                    os: Some(create.os.clone()),
                    disk_template: Some(create.disk_template.clone()),
                    tags: create.all_tags(),
                    nic_macs: create.nics.iter().map(|n| n.mac.clone()).collect(),
                    nic_links: create.nics.iter().map(|n| n.link.clone()).collect(),
                    nic_modes: create.nics.iter().map(|n| n.mode.clone()).collect(),
                    beparams: super::types::BeParams {
                        maxmem: Some(create.memory_mib),
                        minmem: Some(create.memory_mib),
                        vcpus: Some(create.vcpus),
                        auto_balance: None,
                    },
                    oper_ram: running.then_some(create.memory_mib),
                    oper_vcpus: running.then_some(create.vcpus),
                    ..Instance::default()
                },
            );
        }
        Operation::RemoveInstance { instance } => {
            instances.remove(instance);
        }
        Operation::StartupInstance { instance } => {
            if let Some(i) = instances.get_mut(instance) {
                i.admin_state = Some("up".into());
                i.status = Some("running".into());
                i.oper_ram = i.beparams.maxmem;
                i.oper_vcpus = i.beparams.vcpus;
            }
        }
        Operation::ShutdownInstance { instance, .. } => {
            if let Some(i) = instances.get_mut(instance) {
                i.admin_state = Some("down".into());
                i.status = Some("ADMIN_down".into());
                i.oper_ram = None;
                i.oper_vcpus = None;
            }
        }
        Operation::AddTags {
            target: TagTarget::Instance(instance),
            tags,
        } => {
            if let Some(i) = instances.get_mut(instance) {
                for tag in tags {
                    if !i.tags.contains(tag) {
                        i.tags.push(tag.clone());
                    }
                }
            }
        }
        Operation::RemoveTags {
            target: TagTarget::Instance(instance),
            tags,
        } => {
            if let Some(i) = instances.get_mut(instance) {
                i.tags.retain(|t| !tags.contains(t));
            }
        }
        _ => {}
    }
}

impl Rapi for MemoryRapi {
    async fn info(&self) -> Result<ClusterInfo, RapiError> {
        Ok(self.cluster.clone())
    }

    async fn features(&self) -> Result<Vec<String>, RapiError> {
        Ok(vec!["instance-create-reqv1".into()])
    }

    async fn nodes(&self) -> Result<Vec<Node>, RapiError> {
        Ok(self.nodes.clone())
    }

    async fn instances(&self) -> Result<Vec<Instance>, RapiError> {
        self.settle();
        Ok(self
            .state
            .lock()
            .unwrap()
            .instances
            .values()
            .cloned()
            .collect())
    }

    async fn groups(&self) -> Result<Vec<Group>, RapiError> {
        Ok(Vec::new())
    }

    async fn jobs(&self) -> Result<Vec<Job>, RapiError> {
        self.settle();
        let ids: Vec<JobId> = self.state.lock().unwrap().jobs.keys().copied().collect();
        Ok(ids.into_iter().filter_map(|id| self.job_json(id)).collect())
    }

    async fn pending_jobs(&self) -> Result<Vec<Job>, RapiError> {
        Ok(self
            .jobs()
            .await?
            .into_iter()
            .filter(|j| j.status.is_some_and(|s| !s.is_finished()))
            .collect())
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, RapiError> {
        self.settle();
        Ok(self.job_json(id))
    }

    async fn wait_for_job_change(
        &self,
        id: JobId,
        known_status: Option<JobStatus>,
        _known_log_serial: Option<u64>,
    ) -> Result<Option<JobChange>, RapiError> {
        let job = self
            .state
            .lock()
            .unwrap()
            .jobs
            .get(&id)
            .map(|j| (j.done_at, j.fails_with.is_some()));
        let Some((done_at, fails)) = job else {
            return Ok(None);
        };
        let now = Instant::now();
        if known_status != Some(JobStatus::Running) && now < done_at {
            return Ok(Some(JobChange {
                status: Some(JobStatus::Running),
                log: Vec::new(),
            }));
        }
        let until = done_at.min(now + LONG_POLL);
        tokio::time::sleep_until(until).await;
        self.settle();
        Ok((until >= done_at).then_some(JobChange {
            status: Some(if fails {
                JobStatus::Error
            } else {
                JobStatus::Success
            }),
            log: Vec::new(),
        }))
    }

    async fn submit(
        &self,
        operation: &Operation,
        options: &WriteOptions,
    ) -> Result<JobId, RapiError> {
        let fault = match self.script.lock().unwrap().as_mut() {
            Some(script) => script(operation, &options.reason),
            None => SubmitFault::None,
        };
        let mut state = self.state.lock().unwrap();
        state.submits += 1;
        let submission = state.submits;
        let scripted = state.failures.remove(&submission);
        let mut takes = self.job_takes;
        let (fails_with, lost) = match fault {
            SubmitFault::Refuse(e) => return Err(e),
            SubmitFault::None => (scripted, None),
            SubmitFault::FailJob(class) => (Some(class), None),
            SubmitFault::LoseResponse(e) => (scripted, Some(e)),
            SubmitFault::LoseResponseSlow(e, slow) => {
                takes = slow;
                (scripted, Some(e))
            }
        };
        let id = insert_job(
            &mut state,
            operation.clone(),
            options.reason.clone(),
            takes,
            fails_with,
        );
        match lost {
            Some(e) => {
                if let Some(job) = state.jobs.get_mut(&id) {
                    job.lost_response = true;
                }
                Err(e)
            }
            None => Ok(id),
        }
    }
}

fn insert_job(
    state: &mut State,
    operation: Operation,
    reason: String,
    takes: Duration,
    fails_with: Option<String>,
) -> JobId {
    let now = Instant::now();
    let id = state.next_id;
    state.next_id += 1;
    state.jobs.insert(
        id,
        MemoryJob {
            operation,
            reason,
            submitted_at: now,
            done_at: now + takes,
            fails_with,
            applied: false,
            lost_response: false,
        },
    );
    let running = state.jobs.values().filter(|j| j.done_at > now).count();
    state.max_running = state.max_running.max(running);
    id
}
