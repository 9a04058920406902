//! How to reach a RAPI: URL, credentials, trust and limits. Passwords come from a file or
//! the environment and never appear in `Debug` output.

use std::path::Path;
use std::time::Duration;

use super::error::RapiError;
use super::tls::Trust;

#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn from_file(path: &Path) -> Result<Password, RapiError> {
        let bytes = crate::secret_file::read_secret(path, "RAPI password file")
            .map_err(|e| RapiError::Config(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            RapiError::Config(format!(
                "the RAPI password file {} is not UTF-8 text",
                path.display()
            ))
        })?;
        Ok(Password(text.trim_end_matches(['\n', '\r']).to_owned()))
    }

    pub fn from_env(variable: &str) -> Result<Password, RapiError> {
        match std::env::var(variable) {
            Ok(p) if !p.is_empty() => Ok(Password(p)),
            _ => Err(RapiError::Config(format!(
                "the environment variable {variable} is not set"
            ))),
        }
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RapiConfig {
    pub url: String,
    pub user: String,
    pub password: Password,
    pub trust: Trust,
    pub connect_timeout: Duration,
    /// Per request; must exceed the 10 s that `/2/jobs/<id>/wait` may hold a request.
    pub request_timeout: Duration,
    /// ganeti-rapi forks one child per connection and serves about 20 at once.
    pub max_concurrent_requests: usize,
    pub retry: RetryPolicy,
}

impl RapiConfig {
    pub fn new(
        url: impl Into<String>,
        user: impl Into<String>,
        password: Password,
        trust: Trust,
    ) -> Self {
        RapiConfig {
            url: url.into(),
            user: user.into(),
            password,
            trust,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 10,
            retry: RetryPolicy::default(),
        }
    }
}
