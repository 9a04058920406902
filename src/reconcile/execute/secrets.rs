//! The secrets' executor: a host's copy of a secret published, re-keyed or removed.

use crate::secrets::host_key::HostKeys;
use crate::secrets::publish::SecretStep;

use super::{Backends, StepError};

/// The secrets' executor: decrypt, encrypt and write one file, off the async threads.
pub(super) async fn run_secret(
    backends: Backends<'_>,
    keys: &HostKeys,
    step: &SecretStep,
) -> Result<(), StepError> {
    let store = backends.store.ok_or(StepError::NoStore)?.clone();
    let context = backends
        .secrets
        .ok_or(crate::secrets::SecretsError::NoIdentity)?
        .clone();
    let step = match step {
        SecretStep::Publish {
            host,
            generated_host_key: true,
            ..
        } => step.with_generated_key(keys.get_or_generate(host)?.public().as_str()),
        _ => step.clone(),
    };
    tokio::task::spawn_blocking(move || crate::secrets::publish::run(&store, &context, &step))
        .await
        .map_err(|e| StepError::Store(e.to_string()))?
        .map_err(StepError::from)
}
