//! Errors as the binary prints them (`{:#}`, the whole chain): each cause once.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::daemon::DaemonError;
use crate::rapi::RapiError;
use crate::reconcile::cycle::CycleError;
use crate::reconcile::state::HistoryError;
use crate::secret_file::SecretFileError;

fn io() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the-io-cause")
}

fn tls() -> RapiError {
    RapiError::Tls {
        url: "https://rapi:5080".into(),
        detail: "the-tls-cause".into(),
        hint: "the-hint".into(),
    }
}

fn printed(error: impl Into<anyhow::Error>) -> String {
    format!("{:#}", error.into())
}

#[test]
fn each_cause_is_printed_once() {
    let path = PathBuf::from("/x");
    let cases: Vec<(String, &str)> = vec![
        (printed(CycleError::Observe(tls())), "the-tls-cause"),
        (printed(ConfigError::Rapi(tls())), "the-tls-cause"),
        (
            printed(DaemonError::Listen {
                addr: "127.0.0.1:1".parse().unwrap(),
                cause: io(),
            }),
            "the-io-cause",
        ),
        (
            printed(ConfigError::Read {
                path: path.clone(),
                cause: io(),
            }),
            "the-io-cause",
        ),
        (
            printed(SecretFileError::Io {
                what: "secret",
                path: path.clone(),
                cause: io(),
            }),
            "the-io-cause",
        ),
        (
            printed(CycleError::History(HistoryError::Write {
                path: path.clone(),
                cause: io(),
            })),
            "the-io-cause",
        ),
        (
            printed(crate::desired::DesiredStateError::Directory {
                path: path.clone(),
                cause: io(),
            }),
            "the-io-cause",
        ),
        (
            printed(HistoryError::Lock { path, cause: io() }),
            "the-io-cause",
        ),
    ];
    for (message, cause) in cases {
        assert_eq!(message.matches(cause).count(), 1, "{message}");
    }
}
