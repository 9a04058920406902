//! A plain-HTTP client for talking to the daemon on its local listener.

use std::time::Duration;

pub fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default TLS provider; install ours once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// `path` on the daemon at `url`; an address without a scheme is taken as http, as
/// `--listen` takes it.
pub fn endpoint(url: &str, path: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.contains("://") {
        format!("{base}{path}")
    } else {
        format!("http://{base}{path}")
    }
}
