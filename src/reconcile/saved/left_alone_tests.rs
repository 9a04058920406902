//! Objects left alone through the whole cycle against the in-memory RAPI: a hand-made
//! change on a suspended instance is observed and reported, and nothing is submitted; a
//! plan saved before the suspend is refused once it is set.

use std::sync::atomic::AtomicBool;

use super::SavedPlanError;
use super::tests::{Silent, apply, change_by_hand, cluster, desired, options, run_id, save};
use crate::rapi::memory::MEMORY_STATE;
use crate::reconcile::cycle;
use crate::reconcile::plan::reported::LeftAlone;

const SUSPENDED: &str = "web1.mem.test: {class: web, primaryNode: node1.mem.test, suspend: true}";
const WEB1: &str = "web1.mem.test: {class: web, primaryNode: node1.mem.test}";

#[tokio::test]
async fn a_suspended_instance_changed_by_hand_is_reported_and_nothing_is_submitted() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    change_by_hand(&rapi).await;
    let before = rapi.records().len();
    let yaml = MEMORY_STATE.replace(WEB1, SUSPENDED);
    let run = run_id();
    let report = cycle::apply(
        &rapi,
        &desired(&yaml),
        options(&run, &history),
        &Silent,
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert_eq!(rapi.records().len(), before, "nothing is submitted");
    assert!(!report.after.has_changes(), "{:?}", report.after);
    let web1 = report
        .after
        .reported
        .iter()
        .find(|r| r.object.name == "web1.mem.test")
        .expect("web1 is reported");
    assert!(matches!(web1.why, LeftAlone::Suspended { .. }));
    assert!(
        web1.changes
            .iter()
            .any(|c| c.field == "memory" && c.before.as_deref() == Some("512M")),
        "{:?}",
        web1.changes
    );

    // Unsuspended, the next reconcile corrects it.
    let report = cycle::apply(
        &rapi,
        &desired(MEMORY_STATE),
        options(&run, &history),
        &Silent,
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert!(rapi.records().len() > before, "the modify is submitted");
    assert!(!report.after.has_changes(), "{:?}", report.after);
    assert!(report.after.reported.is_empty());
}

#[tokio::test]
async fn a_plan_saved_before_a_suspend_is_refused_once_it_is_set() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    change_by_hand(&rapi).await;
    let saved = save(&rapi, MEMORY_STATE, &history).await;
    assert_eq!(saved.actions.len(), 1, "the plan corrects web1");
    let before = rapi.records().len();
    let suspended = MEMORY_STATE.replace(WEB1, SUSPENDED);
    let Err(error) = apply(&rapi, &suspended, &saved, &history).await else {
        panic!("a saved plan changed a suspended instance");
    };
    assert!(matches!(error, SavedPlanError::Stale(_)), "{error}");
    assert!(
        error.to_string().contains("instance web1.mem.test"),
        "{error}"
    );
    assert_eq!(rapi.records().len(), before, "nothing is submitted");
}
