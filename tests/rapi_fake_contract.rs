//! The recorded fake RAPI (tests/common/recorded_rapi.rs) passes the same contract checks
//! as the real cluster, for every shape it serves. Together with
//! `fixtures_have_the_shapes_the_real_cluster_serves` this keeps the fake from drifting.

use crate::common;

use common::contract;
use common::recorded_rapi::{self, READONLY_USER, WRITE_USER, WRONG_PASSWORD};
use ganeti_operator::rapi::{HttpRapi, Password};

const MASTER: &str = "node1.gnt.test";
const RECORDED_INSTANCE: &str = "fixture1.gnt.test";

fn password(text: &str) -> (tempfile::TempDir, Password) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{text}\n")).unwrap();
    let password = Password::from_file(&file).unwrap();
    (dir, password)
}

#[tokio::test]
async fn fake_typed_reads() {
    let fake = recorded_rapi::start().await;
    contract::typed_reads(&HttpRapi::new(fake.config()).unwrap(), MASTER).await;
}

#[tokio::test]
async fn fake_create_then_create_again_then_remove_unknown() {
    let fake = recorded_rapi::start().await;
    let rapi = HttpRapi::new(fake.config()).unwrap();
    let create = contract::diskless(RECORDED_INSTANCE, MASTER);
    contract::create_succeeds(&rapi, &create).await;
    contract::create_existing_is_already_exists(&rapi, &create).await;
    contract::remove_unknown_is_unknown_entity(&rapi, "nosuch.gnt.test").await;
}

#[tokio::test]
async fn fake_unknown_jobs_are_lost() {
    let fake = recorded_rapi::start().await;
    contract::unknown_jobs_are_lost(&HttpRapi::new(fake.config()).unwrap()).await;
}

#[tokio::test]
async fn fake_auth_errors() {
    let fake = recorded_rapi::start().await;
    let (_dir, wrong) = password(WRONG_PASSWORD);
    contract::wrong_password_is_unauthorized(
        &HttpRapi::new(fake.config_as(WRITE_USER, wrong)).unwrap(),
    )
    .await;
    let (_dir, right) = password("whatever");
    contract::readonly_writes_are_forbidden(
        &HttpRapi::new(fake.config_as(READONLY_USER, right)).unwrap(),
    )
    .await;
}
