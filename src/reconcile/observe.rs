//! One snapshot of the cluster, from a constant number of RAPI requests whatever its size.

use std::collections::BTreeMap;

use crate::rapi::{ClusterInfo, Instance, JobFilter, JobId, JobStatus, Node, Rapi, RapiError};
use crate::store::catalog::{self, FoundPointer};
use crate::store::manifest::Manifest;
use crate::store::{Store, StoreError, StoreFile};

use super::reason::JobReason;
use super::state::rotation::RebootStamp;

/// What the cluster looks like, as far as planning needs to know.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub cluster: ClusterInfo,
    pub nodes: BTreeMap<String, Node>,
    pub instances: BTreeMap<String, Instance>,
    /// Unfinished jobs that carry the operator's reason stamp, from this or an earlier run.
    pub pending: Vec<PendingJob>,
    /// The artifact store, when one is configured.
    pub store: Option<ObservedStore>,
    /// This reconcile's health answers, by host, for the hosts a rotation looks at.
    pub health: BTreeMap<String, super::health::HealthAnswer>,
    /// Secret sources and what the store's `secrets/` holds, when secrets are published.
    pub secrets: Option<crate::secrets::observe::ObservedSecrets>,
    /// Ganeti's job filters, read only where the node-work freeze is in play.
    pub filters: ObservedFilters,
    /// The latest reboot a rotation stamped, by host, for the hosts that may be under
    /// way (read only when some may be).
    pub reboots: BTreeMap<String, SeenReboot>,
}

/// A rotation's reboot as Ganeti's job list shows it: the job is the mark that says the
/// host was rebooted, onto which image, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenReboot {
    pub job: JobId,
    pub stamp: RebootStamp,
    /// When Ganeti received it (Unix seconds): the rotation's deadline runs from here.
    pub submitted: u64,
    /// `None` while it runs or once it succeeded; how it ended when it did not.
    pub failed: Option<String>,
}

/// The latest stamped rotation reboot of each of `hosts` that Ganeti still lists.
pub async fn observe_reboots<R: Rapi + ?Sized>(
    rapi: &R,
    hosts: &[String],
) -> Result<BTreeMap<String, SeenReboot>, RapiError> {
    let mut latest: BTreeMap<String, SeenReboot> = BTreeMap::new();
    for job in rapi.reboot_jobs(hosts).await? {
        let Some((host, stamp)) = job.reasons().iter().find_map(|r| {
            let reason = JobReason::parse(r)?;
            let stamp = RebootStamp::parse(reason.step.as_deref()?)?;
            Some((reason.object.name, stamp))
        }) else {
            continue; // not a rotation's reboot
        };
        if latest.get(&host).is_some_and(|seen| seen.job > job.id) {
            continue;
        }
        let failed = match job.status {
            Some(status @ (JobStatus::Error | JobStatus::Canceled)) => {
                Some(format!("reboot job {} ended {status:?}", job.id).to_lowercase())
            }
            _ => None,
        };
        let submitted = job
            .received_ts
            .map_or(0, |(seconds, _)| u64::try_from(seconds).unwrap_or(0));
        latest.insert(
            host,
            SeenReboot {
                job: job.id,
                stamp,
                submitted,
                failed,
            },
        );
    }
    Ok(latest)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum ObservedFilters {
    /// Not asked for: no freeze is configured or may be left behind.
    #[default]
    NotRead,
    /// This Ganeti has no job filters (before 2.13).
    Unsupported,
    Listed(Vec<JobFilter>),
}

impl ObservedFilters {
    /// The filters the operator's freeze placed.
    pub fn freeze(&self) -> impl Iterator<Item = &JobFilter> {
        let listed = match self {
            ObservedFilters::Listed(filters) => filters.as_slice(),
            _ => &[],
        };
        listed.iter().filter(|f| f.is_freeze())
    }
}

/// The artifact store as far as planning needs it: the complete images and every pointer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedStore {
    pub images: BTreeMap<String, Manifest>,
    pub pointers: BTreeMap<StoreFile, FoundPointer>,
}

/// Reads the store: a directory listing, the manifests and the pointers, all small.
pub fn observe_store(store: &Store) -> Result<ObservedStore, StoreError> {
    let images = catalog::manifests(store)?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let pointers = catalog::read_pointers(store)?;
    Ok(ObservedStore { images, pointers })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJob {
    pub id: JobId,
    pub reason: JobReason,
    pub summary: String,
}

/// The number of RAPI requests `observe` makes without the job filters, whatever the
/// cluster's size (one more with them).
pub const OBSERVE_REQUESTS: u64 = 4;

/// Reads the unfinished jobs first and the rest after them: a job that is not listed
/// has finished, so its effects are in the nodes and instances read afterwards, and a job
/// still pending is awaited, never planned around. Reading them the other way round could miss a create
/// that finished in between and plan it twice.
///
/// With `with_filters`, the job filters are read beside the nodes and instances (one more
/// request, in parallel: a rolling upgrade observes once per step).
pub async fn observe<R: Rapi + ?Sized>(
    rapi: &R,
    with_filters: bool,
) -> Result<Observed, RapiError> {
    let jobs = rapi.pending_jobs().await?;
    let filters = async {
        if !with_filters {
            return Ok(ObservedFilters::NotRead);
        }
        Ok(match rapi.filters().await? {
            Some(filters) => ObservedFilters::Listed(filters),
            None => ObservedFilters::Unsupported,
        })
    };
    let (cluster, nodes, instances, filters) =
        tokio::try_join!(rapi.info(), rapi.nodes(), rapi.instances(), filters)?;
    let pending = jobs
        .into_iter()
        .filter(|job| job.status.is_some_and(|s| !s.is_finished()))
        .filter_map(|job| {
            let reason = job.reasons().iter().find_map(|r| JobReason::parse(r))?;
            Some(PendingJob {
                id: job.id,
                reason,
                summary: job.summary.join(", "),
            })
        })
        .collect();
    Ok(Observed {
        cluster,
        nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
        instances: instances.into_iter().map(|i| (i.name.clone(), i)).collect(),
        pending,
        store: None,
        health: BTreeMap::new(),
        secrets: None,
        filters,
        reboots: BTreeMap::new(),
    })
}
