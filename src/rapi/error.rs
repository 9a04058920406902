//! Everything that can go wrong talking to the RAPI, each with what to do about it.

use std::time::Duration;

use super::types::{ErrorClass, JobFailure, JobId};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RapiError {
    #[error("invalid RAPI configuration: {0}")]
    Config(String),
    #[error("cannot reach the RAPI ({method} {route}): {detail}")]
    Transport {
        method: &'static str,
        route: &'static str,
        detail: String,
    },
    #[error("TLS failure talking to {url}: {detail}; {hint}")]
    Tls {
        url: String,
        detail: String,
        hint: String,
    },
    #[error(
        "the RAPI refused the credentials (401); check the user and the password file (the users file is /var/lib/ganeti/rapi/users on the master)"
    )]
    Unauthorized,
    #[error(
        "the RAPI user may not do this (403); writes need a user marked `write` in /var/lib/ganeti/rapi/users"
    )]
    Forbidden,
    #[error("the RAPI answered {status} to {method} {route}: {message}")]
    Api {
        status: u16,
        method: &'static str,
        route: &'static str,
        message: String,
        explain: Option<String>,
    },
    #[error(
        "the RAPI answered {status} to {method} {route}, redirecting to {location}; redirects are not followed (they would take the credentials elsewhere): set the RAPI URL to where it serves"
    )]
    Redirected {
        status: u16,
        method: &'static str,
        route: &'static str,
        location: String,
    },
    #[error("unexpected answer to {method} {route}: {detail}")]
    Decode {
        method: &'static str,
        route: &'static str,
        detail: String,
    },
    #[error("job {job} failed: {}", .failure.message)]
    JobFailed { job: JobId, failure: JobFailure },
    #[error("job {job} is unknown to Ganeti (lost from the queue, or from another cluster)")]
    JobLost { job: JobId },
    #[error("gave up after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
}

impl RapiError {
    /// Ganeti's error class when the failure came from a job.
    pub fn error_class(&self) -> Option<&ErrorClass> {
        match self {
            RapiError::JobFailed { failure, .. } => failure.class.as_ref(),
            _ => None,
        }
    }

    /// Worth trying again later: the cluster or the network, not the request, was at fault.
    pub fn is_transient(&self) -> bool {
        match self {
            RapiError::Transport { .. } | RapiError::Timeout { .. } => true,
            RapiError::Api { status, .. } => *status >= 500,
            RapiError::JobFailed { failure, .. } => {
                matches!(
                    failure.class,
                    Some(
                        ErrorClass::TempNores
                            | ErrorClass::InsufficientResources
                            | ErrorClass::EnvironmentError
                    )
                )
            }
            _ => false,
        }
    }
}
