//! Node commands' executor: the configured reboot or master-failover command, no shell,
//! no credentials, killed at its timeout.

use std::time::Instant;

use crate::desired::model::ObjectRef;
use crate::reconcile::plan::NodeCommand;

use super::{Progress, StepError};

pub(super) async fn run_command(
    object: &ObjectRef,
    command: &NodeCommand,
    progress: &dyn Progress,
) -> Result<(), StepError> {
    progress.command_started(object, command);
    let started = Instant::now();
    let result = crate::child_process::run_bounded(&command.argv, command.timeout).await;
    progress.command_finished(object, command, &result, started.elapsed());
    result.map(|_| ()).map_err(StepError::Command)
}
