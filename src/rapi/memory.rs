//! An in-memory `Rapi`: a small cluster whose jobs take a set time and then take effect.
//! It is for tests of the executor, the cycle and the daemon loop, which must run without
//! a real cluster; faults are the fake HTTP RAPI's business (tests/common/fake_rapi.rs).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::operation::{Operation, WriteOptions};
use super::types::{ClusterInfo, Group, Instance, Job, JobChange, JobId, JobStatus, Node};
use super::{Rapi, RapiError};

/// How long Ganeti's long-poll waits before answering "no change".
const LONG_POLL: Duration = Duration::from_secs(10);

struct MemoryJob {
    operation: Operation,
    reason: String,
    done_at: Instant,
    applied: bool,
}

#[derive(Default)]
struct State {
    instances: BTreeMap<String, Instance>,
    jobs: BTreeMap<JobId, MemoryJob>,
    next_id: JobId,
}

pub struct MemoryRapi {
    cluster: ClusterInfo,
    nodes: Vec<Node>,
    job_takes: Duration,
    state: Mutex<State>,
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
        }
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

    fn settle(&self) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let State {
            instances, jobs, ..
        } = &mut *state;
        for job in jobs.values_mut() {
            if !job.applied && now >= job.done_at {
                job.applied = true;
                apply(instances, &job.operation);
            }
        }
    }

    fn job_json(&self, id: JobId) -> Option<Job> {
        let state = self.state.lock().unwrap();
        let job = state.jobs.get(&id)?;
        let status = if job.applied { "success" } else { "running" };
        let op = json!({"OP_ID": job.operation.kind(), "reason": [["gnt:user", job.reason, 0]]});
        serde_json::from_value(json!({
            "id": id,
            "status": status,
            "summary": [job.operation.kind()],
            "ops": [op],
            "opstatus": [status],
            "opresult": [null],
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
                    tags: create.tags.clone(),
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
        let done_at = self.state.lock().unwrap().jobs.get(&id).map(|j| j.done_at);
        let Some(done_at) = done_at else {
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
            status: Some(JobStatus::Success),
            log: Vec::new(),
        }))
    }

    async fn submit(
        &self,
        operation: &Operation,
        options: &WriteOptions,
    ) -> Result<JobId, RapiError> {
        let mut state = self.state.lock().unwrap();
        let id = state.next_id;
        state.next_id += 1;
        state.jobs.insert(
            id,
            MemoryJob {
                operation: operation.clone(),
                reason: options.reason.clone(),
                done_at: Instant::now() + self.job_takes,
                applied: false,
            },
        );
        Ok(id)
    }
}
