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
