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
