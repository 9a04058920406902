//! A plain-HTTP client for talking to the daemon on its local listener.

use std::time::Duration;

pub fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default TLS provider; install ours once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}
