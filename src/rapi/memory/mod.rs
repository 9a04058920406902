//! An in-memory `Rapi`: a small cluster whose jobs take a set time and then take effect.
//! It is for tests of the executor, the cycle and the daemon loop, which must run without
//! a real cluster; faults of the wire are the fake HTTP RAPI's business
//! (tests/common/fake_rapi.rs). What the loop must react to is scripted here: a job that
//! fails with an error class, and a job left running by an earlier run. For randomized
//! fault runs, `on_submit` scripts each submission (refused before a job exists, accepted
//! with the answer lost, or left `waiting`), and `on_read` fails chosen reads.

mod apply;
mod faults;
mod setup;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::time::Instant;

use super::filter::{FreezeRule, JobFilter};
use super::operation::{Operation, WriteOptions};
use super::types::{ClusterInfo, Group, Instance, Job, JobChange, JobId, JobStatus, Node};
use super::{Rapi, RapiError};
use apply::apply;
use faults::hold;
pub use faults::{Read, SubmitFault};

/// A desired state for `MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, _)`: one instance,
/// pinned to the one node, that the cluster lacks until it is created.
pub const MEMORY_STATE: &str = "
cluster: {name: cluster.mem.test, hypervisor: fake, defaultDiskTemplate: diskless}
classes:
  web: {image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {memory: 128M, vcpus: 1}}
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
    /// The wall clock at submission: Ganeti's `received_ts`.
    received: SystemTime,
    done_at: Instant,
    /// Ganeti's error class the job ends with, instead of taking effect.
    fails_with: Option<String>,
    applied: bool,
    /// The job was created but the caller was told the submission failed.
    lost_response: bool,
    /// Held in Ganeti's `waiting` status until released; `done_at` means nothing yet.
    waiting: bool,
}

type SubmitScript = Box<dyn FnMut(&Operation, &str) -> SubmitFault + Send>;
type ReadScript = Box<dyn FnMut(&Read<'_>) -> Option<RapiError> + Send>;

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
    /// The cluster's own tags, which jobs change.
    cluster_tags: Vec<String>,
    jobs: BTreeMap<JobId, MemoryJob>,
    next_id: JobId,
    /// Submission number (1-based, counting `submit` calls only) → error class.
    failures: BTreeMap<usize, String>,
    submits: usize,
    /// The most jobs running at one time, as seen at each submission.
    max_running: usize,
    /// Job filters by UUID; the memory cluster lists them but does not apply them.
    filters: BTreeMap<String, JobFilter>,
    /// Answer as a Ganeti before 2.13 would: no `/2/filters`.
    no_filters: bool,
}

pub struct MemoryRapi {
    cluster: ClusterInfo,
    nodes: Vec<Node>,
    groups: Vec<Group>,
    job_takes: Duration,
    state: Mutex<State>,
    script: Mutex<Option<SubmitScript>>,
    reads: Mutex<Option<ReadScript>>,
    /// Wakes long-polls when waiting jobs are released.
    released: tokio::sync::Notify,
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
            groups: Vec::new(),
            job_takes,
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            script: Mutex::new(None),
            reads: Mutex::new(None),
            released: tokio::sync::Notify::new(),
        }
    }

    /// A cluster whose Ganeti has no job filters (before 2.13).
    pub fn without_filters(self) -> MemoryRapi {
        self.state.lock().unwrap().no_filters = true;
        self
    }

    /// Adds a filter as someone else, or a crashed run, would have left it.
    /// An instance the cluster has from the start (as another client made it).
    pub fn insert_instance(&self, instance: Instance) {
        let mut state = self.state.lock().unwrap();
        state.instances.insert(instance.name.clone(), instance);
    }

    pub fn add_filter(&self, filter: JobFilter) {
        let mut state = self.state.lock().unwrap();
        state.filters.insert(filter.uuid.clone(), filter);
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
            instances,
            cluster_tags,
            jobs,
            ..
        } = &mut *state;
        for job in jobs.values_mut() {
            if !job.applied && !job.waiting && now >= job.done_at {
                job.applied = true;
                if job.fails_with.is_none() {
                    apply(instances, cluster_tags, &job.operation);
                }
            }
        }
    }

    fn job_json(&self, id: JobId) -> Option<Job> {
        let state = self.state.lock().unwrap();
        let job = state.jobs.get(&id)?;
        let (status, result) = match (&job.fails_with, job.applied) {
            _ if job.waiting => ("waiting", json!(null)),
            (_, false) => ("running", json!(null)),
            (None, true) => ("success", json!(null)),
            (Some(class), true) => (
                "error",
                json!(["OpPrereqError", ["scripted failure", class]]),
            ),
        };
        let op = json!({"OP_ID": job.operation.kind(), "reason": [["gnt:user", job.reason, 0]]});
        let received = job
            .received
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // Ganeti's summary names the instance a reboot or start is for.
        let summary = match &job.operation {
            Operation::RebootInstance { instance, .. } => format!("INSTANCE_REBOOT({instance})"),
            Operation::StartupInstance { instance } => format!("INSTANCE_STARTUP({instance})"),
            other => other.kind().to_owned(),
        };
        serde_json::from_value(json!({
            "id": id,
            "status": status,
            "summary": [summary],
            "received_ts": [received, 0],
            "end_ts": job.applied.then_some([received, 0]),
            "ops": [op],
            "opstatus": [status],
            "opresult": [result],
        }))
        .ok()
    }
}

impl Rapi for MemoryRapi {
    async fn info(&self) -> Result<ClusterInfo, RapiError> {
        self.read_fault(Read::Info)?;
        self.settle();
        let tags = self.state.lock().unwrap().cluster_tags.clone();
        Ok(ClusterInfo {
            tags,
            ..self.cluster.clone()
        })
    }

    async fn features(&self) -> Result<Vec<String>, RapiError> {
        self.read_fault(Read::Features)?;
        Ok(vec!["instance-create-reqv1".into()])
    }

    async fn nodes(&self) -> Result<Vec<Node>, RapiError> {
        self.read_fault(Read::Nodes)?;
        Ok(self.nodes.clone())
    }

    async fn instances(&self) -> Result<Vec<Instance>, RapiError> {
        self.read_fault(Read::Instances)?;
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
        self.read_fault(Read::Groups)?;
        Ok(self.groups.clone())
    }

    async fn jobs(&self) -> Result<Vec<Job>, RapiError> {
        self.read_fault(Read::Jobs)?;
        Ok(self.all_jobs())
    }

    async fn pending_jobs(&self) -> Result<Vec<Job>, RapiError> {
        self.read_fault(Read::PendingJobs)?;
        Ok(self
            .all_jobs()
            .into_iter()
            .filter(|j| j.status.is_some_and(|s| !s.is_finished()))
            .collect())
    }

    async fn reboot_jobs(&self, instances: &[String]) -> Result<Vec<Job>, RapiError> {
        self.read_fault(Read::Jobs)?;
        let wanted: Vec<String> = instances
            .iter()
            .flat_map(|i| {
                [
                    format!("INSTANCE_REBOOT({i})"),
                    format!("INSTANCE_STARTUP({i})"),
                ]
            })
            .collect();
        Ok(self
            .all_jobs()
            .into_iter()
            .filter(|j| j.summary.iter().any(|s| wanted.contains(s)))
            .collect())
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, RapiError> {
        self.poll_fault(id, false)?;
        self.settle();
        Ok(self.job_json(id))
    }

    async fn wait_for_job_change(
        &self,
        id: JobId,
        known_status: Option<JobStatus>,
        _known_log_serial: Option<u64>,
    ) -> Result<Option<JobChange>, RapiError> {
        self.poll_fault(id, true)?;
        let poll_ends = Instant::now() + LONG_POLL;
        loop {
            // Registered before the state is read, so a release in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let job = self
                .state
                .lock()
                .unwrap()
                .jobs
                .get(&id)
                .map(|j| (j.done_at, j.fails_with.is_some(), j.waiting));
            let Some((done_at, fails, waiting)) = job else {
                return Ok(None);
            };
            let now = Instant::now();
            let current = match () {
                _ if waiting => JobStatus::Waiting,
                _ if now < done_at => JobStatus::Running,
                _ if fails => JobStatus::Error,
                _ => JobStatus::Success,
            };
            if known_status != Some(current) {
                self.settle();
                return Ok(Some(JobChange {
                    status: Some(current),
                    log: Vec::new(),
                }));
            }
            if now >= poll_ends {
                return Ok(None);
            }
            let until = if waiting {
                poll_ends
            } else {
                done_at.min(poll_ends)
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = released => {}
            }
        }
    }

    async fn filters(&self) -> Result<Option<Vec<JobFilter>>, RapiError> {
        self.read_fault(Read::Filters)?;
        let state = self.state.lock().unwrap();
        Ok((!state.no_filters).then(|| state.filters.values().cloned().collect()))
    }

    async fn put_freeze(&self, rule: FreezeRule, why: &str) -> Result<(), RapiError> {
        self.add_filter(rule.listed(why));
        Ok(())
    }

    async fn delete_filter(&self, uuid: &str) -> Result<(), RapiError> {
        self.state.lock().unwrap().filters.remove(uuid);
        Ok(())
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
        let mut waits = false;
        let (fails_with, lost) = match fault {
            SubmitFault::Refuse(e) => return Err(e),
            SubmitFault::None => (scripted, None),
            SubmitFault::FailJob(class) => (Some(class), None),
            SubmitFault::LoseResponse(e) => (scripted, Some(e)),
            SubmitFault::LoseResponseSlow(e, slow) => {
                takes = slow;
                (scripted, Some(e))
            }
            SubmitFault::Wait => {
                waits = true;
                (scripted, None)
            }
        };
        let id = insert_job(
            &mut state,
            operation.clone(),
            options.reason.clone(),
            takes,
            fails_with,
        );
        if waits {
            hold(&mut state, id);
        }
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

impl MemoryRapi {
    fn all_jobs(&self) -> Vec<Job> {
        self.settle();
        let ids: Vec<JobId> = self.state.lock().unwrap().jobs.keys().copied().collect();
        ids.into_iter().filter_map(|id| self.job_json(id)).collect()
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
            received: SystemTime::now(),
            done_at: now + takes,
            fails_with,
            applied: false,
            lost_response: false,
            waiting: false,
        },
    );
    let running = state.jobs.values().filter(|j| j.done_at > now).count();
    state.max_running = state.max_running.max(running);
    id
}
