//! The store's executor: boot pointers and chain files written or removed.

use crate::reconcile::plan::StoreWrite;
use crate::store::Store;

use super::StepError;

/// The store's executor: one atomic write or removal, off the async threads since it
/// syncs to disk.
pub(super) async fn write_store(
    store: Option<&Store>,
    write: &StoreWrite,
) -> Result<(), StepError> {
    let store = store.ok_or(StepError::NoStore)?.clone();
    let write = write.clone();
    tokio::task::spawn_blocking(move || {
        store.write(&write.file, write.contents.as_deref().map(str::as_bytes))
    })
    .await
    .map_err(|e| StepError::Store(e.to_string()))?
    .map_err(|e| StepError::Store(e.to_string()))
}
