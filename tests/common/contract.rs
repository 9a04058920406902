//! Contract checks that the real cluster (tests/rapi_contract.rs) and the recorded fake
//! (tests/rapi_fake_contract.rs) must both pass. Each takes any `Rapi`, so the fake cannot
//! quietly answer in a shape Ganeti does not.

use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::operation::{InstanceCreate, NicSpec};
use ganeti_operator::rapi::{
    ErrorClass, Job, JobId, JobStatus, Operation, Rapi, RapiError, WriteOptions,
};

/// The reason every contract write carries; the recording was made with it too.
pub const REASON: &str = "ganeti-operator:fixture:create";
/// A job id no cluster in these tests reaches.
pub const UNKNOWN_JOB: JobId = 9_999_999;

pub fn diskless(name: &str, node: &str) -> InstanceCreate {
    InstanceCreate {
        name: name.to_owned(),
        disk_template: "diskless".into(),
        nics: vec![NicSpec::default()],
        os: "noop+default".into(),
        memory_mib: 64,
        vcpus: 1,
        primary_node: Some(node.to_owned()),
        start: true,
        tags: vec!["ganeti-operator:managed".into()],
        ..InstanceCreate::default()
    }
}

pub async fn run(rapi: &impl Rapi, operation: Operation) -> Result<Job, RapiError> {
    let id = rapi.submit(&operation, &WriteOptions::new(REASON)).await?;
    wait_for_job(rapi, id, WaitOptions::default(), &Quiet).await
}

pub async fn typed_reads(rapi: &impl Rapi, master: &str) {
    let info = rapi.info().await.unwrap();
    assert_eq!(info.name, "cluster.gnt.test");
    assert_eq!(info.software_version.as_deref(), Some("3.0.2"));
    assert_eq!(info.master.as_deref(), Some(master));
    assert!(info.enabled_hypervisors.contains(&"fake".to_owned()));
    let features = rapi.features().await.unwrap();
    assert!(
        features.contains(&"instance-create-reqv1".to_owned()),
        "{features:?}"
    );
    let nodes = rapi.nodes().await.unwrap();
    let node = nodes
        .iter()
        .find(|n| n.name == master)
        .expect("the master is listed");
    assert_eq!(node.role.as_deref(), Some("M"));
    assert!(node.mtotal.unwrap_or(0) > 0);
    let groups = rapi.groups().await.unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g.name == "default" && g.node_list.contains(&master.to_owned()))
    );
    rapi.instances().await.unwrap();
    let jobs = rapi.jobs().await.unwrap();
    assert!(
        jobs.iter().all(|j| j.status.is_some()),
        "listed jobs are known"
    );
}

/// Creates the instance, which must not exist yet, and checks what Ganeti reports.
pub async fn create_succeeds(rapi: &impl Rapi, create: &InstanceCreate) {
    let job = run(rapi, Operation::CreateInstance(create.clone()))
        .await
        .unwrap();
    assert_eq!(job.status, Some(JobStatus::Success));
    assert!(
        job.reasons().contains(&REASON.to_owned()),
        "{:?}",
        job.reasons()
    );
    let instances = rapi.instances().await.unwrap();
    let seen = instances
        .iter()
        .find(|i| i.name == create.name)
        .expect("created");
    assert_eq!(seen.pnode, create.primary_node);
    assert_eq!(seen.admin_state.as_deref(), Some("up"));
    assert!(seen.tags.contains(&"ganeti-operator:managed".to_owned()));
}

/// The instance exists already.
pub async fn create_existing_is_already_exists(rapi: &impl Rapi, create: &InstanceCreate) {
    let err = run(rapi, Operation::CreateInstance(create.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.error_class(), Some(&ErrorClass::AlreadyExists), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "Instance '{}' is already in the cluster",
            create.name
        )),
        "messages are HTML-unescaped: {err}"
    );
}

pub async fn remove_unknown_is_unknown_entity(rapi: &impl Rapi, name: &str) {
    let err = run(
        rapi,
        Operation::RemoveInstance {
            instance: name.to_owned(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_class(), Some(&ErrorClass::UnknownEntity), "{err}");
}

pub async fn unknown_jobs_are_lost(rapi: &impl Rapi) {
    assert!(
        rapi.job(UNKNOWN_JOB).await.unwrap().is_none(),
        "status null means unknown"
    );
    let lost = wait_for_job(rapi, UNKNOWN_JOB, WaitOptions::default(), &Quiet).await;
    assert!(
        matches!(lost, Err(RapiError::JobLost { job: UNKNOWN_JOB })),
        "{lost:?}"
    );
}

pub async fn wrong_password_is_unauthorized(rapi: &impl Rapi) {
    let err = rapi.info().await.unwrap_err();
    assert!(matches!(err, RapiError::Unauthorized), "{err:?}");
}

pub async fn readonly_writes_are_forbidden(readonly: &impl Rapi) {
    readonly.info().await.unwrap();
    let err = readonly
        .submit(
            &Operation::AddTags {
                target: ganeti_operator::rapi::operation::TagTarget::Cluster,
                tags: vec!["contract:forbidden".into()],
            },
            &WriteOptions::new(REASON),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RapiError::Forbidden), "{err:?}");
}

/// A rotation's stamped reboot of `instance`, read back from the job list as a rollout
/// reads it: the latest one, with its stamp and when Ganeti received it.
pub async fn stamped_reboot_is_read_back(rapi: &impl Rapi, instance: &str) {
    use ganeti_operator::reconcile::observe::observe_reboots;
    let stamp = format!("ganeti-operator:contract-1:instance/{instance}:rotate@sha256-cc");
    let operation = Operation::RebootInstance {
        instance: instance.to_owned(),
        kind: ganeti_operator::rapi::operation::RebootKind::Hard,
    };
    let id = rapi
        .submit(&operation, &WriteOptions::new(stamp))
        .await
        .unwrap();
    wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    let jobs = rapi.reboot_jobs(&[instance.to_owned()]).await.unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.summary == [format!("INSTANCE_REBOOT({instance})")]
                || j.summary == [format!("INSTANCE_STARTUP({instance})")]),
        "only this instance's reboots and starts: {jobs:?}"
    );
    let seen = observe_reboots(rapi, &[instance.to_owned()]).await.unwrap();
    let latest = seen.get(instance).expect("the stamped reboot is listed");
    assert_eq!(latest.job, id);
    assert_eq!(latest.stamp.image, "sha256-cc");
    assert!(!latest.stamp.back);
    assert_eq!(latest.failed, None);
    let now = ganeti_operator::unix_time::seconds(std::time::SystemTime::now());
    assert!(
        latest.submitted > 0 && latest.submitted <= now,
        "received_ts read: {}",
        latest.submitted
    );
}
