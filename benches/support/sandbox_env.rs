//! The sandbox connection for the benchmarks that need the real cluster, from the env
//! `tests/harness/ganeti-sandbox.sh env` prints.

use ganeti_operator::rapi::{HttpRapi, Password, RapiConfig, Trust};

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!(
            "{name} is not set; bring the sandbox up and \
             `eval \"$(tests/harness/ganeti-sandbox.sh env)\"` first"
        );
        std::process::exit(1)
    })
}

pub fn rapi() -> HttpRapi {
    let config = RapiConfig::new(
        env("GANETI_RAPI_URL"),
        env("GANETI_RAPI_USER"),
        Password::from_file(env("GANETI_RAPI_PASSWORD_FILE").as_ref()).unwrap(),
        Trust::CaFile(env("GANETI_SANDBOX_CA_FILE").into()),
    );
    HttpRapi::new(config).unwrap()
}

/// Removes every instance whose name starts with `prefix`, all at once, and waits.
pub async fn remove_instances(rapi: &HttpRapi, prefix: &str) {
    use futures_util::future::join_all;
    use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
    use ganeti_operator::rapi::{Operation, Rapi as _, WriteOptions};
    let names: Vec<String> = rapi
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .filter(|n| n.starts_with(prefix))
        .collect();
    let options = WriteOptions::new("bench:cleanup");
    let ids = join_all(names.into_iter().map(|instance| {
        let options = &options;
        async move {
            rapi.submit(&Operation::RemoveInstance { instance }, options)
                .await
                .unwrap()
        }
    }))
    .await;
    join_all(ids.into_iter().map(|id| async move {
        wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
            .await
            .unwrap()
    }))
    .await;
}
