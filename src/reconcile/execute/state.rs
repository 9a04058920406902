//! The state's executor: a rotation's or a node upgrade's mark saved in the history file,
//! under its lock, before the step after it runs.

use std::path::Path;

use crate::reconcile::state::History;
use crate::reconcile::state::node_upgrade::NodeMark;
use crate::reconcile::state::rotation::RotationMark;

use super::StepError;

/// The history's executor: one mark saved before the next step runs.
pub(super) async fn record(
    history_file: Option<&Path>,
    mark: &RotationMark,
) -> Result<(), StepError> {
    let mark = mark.clone();
    update_history(history_file, move |h, now| h.apply(&mark, now)).await
}

/// As [`record`], for a node upgrade's mark.
pub(super) async fn record_node(
    history_file: Option<&Path>,
    mark: &NodeMark,
) -> Result<(), StepError> {
    let mark = mark.clone();
    update_history(history_file, move |h, now| h.apply_node(&mark, now)).await
}

/// One change to the history file, under its lock, off the async threads.
pub(super) async fn update_history(
    history_file: Option<&Path>,
    change: impl FnOnce(&mut History, std::time::SystemTime) + Send + 'static,
) -> Result<(), StepError> {
    let path = history_file
        .ok_or_else(|| StepError::Journal("no history file is configured".into()))?
        .to_owned();
    tokio::task::spawn_blocking(move || {
        History::update(&path, |h| change(h, std::time::SystemTime::now())).map(|_| ())
    })
    .await
    .map_err(|e| StepError::Journal(e.to_string()))?
    .map_err(|e| StepError::Journal(e.to_string()))
}
