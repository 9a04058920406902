//! What the real cluster holds right now, for assertions.

use ganeti_operator::rapi::{HttpRapi, Instance, Rapi};

pub async fn instance(rapi: &HttpRapi, name: &str) -> Option<Instance> {
    rapi.instances()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
}

pub async fn primary_of(rapi: &HttpRapi, name: &str) -> Option<String> {
    instance(rapi, name).await?.pnode
}

/// One letter: M, C, R, D or O.
pub async fn role_of(rapi: &HttpRapi, node: &str) -> Option<String> {
    rapi.nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.name == node)?
        .role
}

/// The newest job id Ganeti knows; jobs after it are the test's.
pub async fn last_job_id(rapi: &HttpRapi) -> u64 {
    rapi.jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .max()
        .unwrap_or(0)
}

/// A job of the test's own, not the operator's: its reason stamp is not the operator's.
pub async fn run_job(rapi: &HttpRapi, operation: ganeti_operator::rapi::Operation) {
    use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
    let id = rapi
        .submit(
            &operation,
            &ganeti_operator::rapi::WriteOptions::new("test:own-job"),
        )
        .await
        .unwrap();
    wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
}

/// The operator's node-work freeze filters now listed, by UUID.
pub async fn freeze_filters(rapi: &HttpRapi) -> Vec<String> {
    let filters = rapi
        .filters()
        .await
        .unwrap()
        .expect("Ganeti 3.0.2 has job filters");
    filters
        .into_iter()
        .filter(|f| f.is_freeze())
        .map(|f| f.uuid)
        .collect()
}

/// A diskless create on `node` submitted with `reason`, and how its job ended: what
/// another client (or, with the operator's stamp, the operator) meets under the freeze.
pub async fn create_as(
    rapi: &HttpRapi,
    name: &str,
    node: &str,
    reason: &str,
) -> ganeti_operator::rapi::JobStatus {
    use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
    let create =
        ganeti_operator::rapi::Operation::CreateInstance(super::contract::diskless(name, node));
    let id = rapi
        .submit(&create, &ganeti_operator::rapi::WriteOptions::new(reason))
        .await
        .unwrap();
    let _ = wait_for_job(rapi, id, WaitOptions::default(), &Quiet).await;
    rapi.job(id)
        .await
        .unwrap()
        .and_then(|j| j.status)
        .expect("the job is known")
}

/// A Ganeti command on the sandbox's master, as an admin would type it.
pub fn gnt(args: &[&str]) {
    let output =
        std::process::Command::new(super::project_root().join("tests/harness/ganeti-sandbox.sh"))
            .arg("exec")
            .args(args)
            .output()
            .unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
}
