//! The freeze's executor: Ganeti's job filters placed or lifted, noted in the history.

use std::path::Path;

use crate::rapi::{FreezeRule, Rapi};
use crate::reconcile::plan::step::FreezeStep;

use super::StepError;
use super::state::update_history;

/// The freeze's executor. Placing notes it in the history first, so a crash after the
/// filters went in still has them looked for; lifting clears the note last.
pub(super) async fn run_freeze<R: Rapi + ?Sized>(
    rapi: &R,
    history_file: Option<&Path>,
    step: &FreezeStep,
) -> Result<(), StepError> {
    match step {
        FreezeStep::Place { why } => {
            update_history(history_file, |h, _| h.set_freeze_placed(true)).await?;
            for rule in FreezeRule::BOTH {
                rapi.put_freeze(rule, why).await?;
            }
        }
        FreezeStep::Lift { uuids, last } => {
            for uuid in uuids {
                rapi.delete_filter(uuid).await?;
            }
            if *last {
                update_history(history_file, |h, _| h.set_freeze_placed(false)).await?;
            }
        }
    }
    Ok(())
}
