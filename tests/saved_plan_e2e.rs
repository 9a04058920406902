//! Issue 24, must-show 1, on the real sandbox: a plan saved with `--dry-run --out` is
//! refused by `--apply-plan` once someone changed a touched instance's memory with
//! `gnt-instance modify`, naming the object and the field, with nothing submitted in
//! Ganeti's job list; with the hand-made change undone, the same file applies and the
//! cluster converges.

use crate::common;

use common::cluster::{gnt, instance, last_job_id};
use common::reconcile::{Workspace, edit, remove_all_instances, sandbox_yaml};
use common::sandbox::sandbox;

const WEB2: &str = "web2.gnt.test";

#[tokio::test]
async fn a_saved_plan_is_refused_after_a_hand_made_change_and_applies_without_it() {
    let Some(sb) = sandbox("saved_plan_e2e") else {
        return;
    };
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let base = sandbox_yaml();
    ws.write(&base);
    ws.apply(0);
    let before = instance(&rapi, WEB2).await.unwrap();
    let memory = before.beparams.maxmem.unwrap();

    // web2 from 192M to 256M, saved as a plan.
    ws.write(&edit(
        &base,
        &[("      memory: 192M\n", "      memory: 256M\n")],
    ));
    let plan = ws.path().join("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let saved = ws.reconcile(&["--dry-run", "--out", plan_arg]);
    assert_eq!(saved.status.code(), Some(2), "{saved:?}");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains(WEB2), "{text}");

    // Someone changes web2 by hand during an incident.
    gnt(&["gnt-instance", "modify", "-B", "memory=160M", WEB2]);
    let last = last_job_id(&rapi).await;
    let refused = ws.reconcile(&["--apply-plan", plan_arg]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the saved plan is stale"), "{stderr}");
    assert!(stderr.contains(&format!("instance {WEB2}")), "{stderr}");
    assert!(stderr.contains("memory: now 160"), "{stderr}");
    assert_eq!(
        last_job_id(&rapi).await,
        last,
        "Ganeti's job list shows a job submitted by a refused plan"
    );
    let web2 = instance(&rapi, WEB2).await.unwrap();
    assert_eq!(
        web2.beparams.maxmem,
        Some(160),
        "the hand-made change stays"
    );

    // Undone, the cluster is what the plan was made from: the same file applies.
    gnt(&[
        "gnt-instance",
        "modify",
        "-B",
        &format!("memory={memory}M"),
        WEB2,
    ]);
    let applied = ws.reconcile(&["--apply-plan", plan_arg]);
    let stdout = String::from_utf8_lossy(&applied.stdout);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(stdout.contains("Converged"), "{stdout}");
    ws.assert_converged();
    let web2 = instance(&rapi, WEB2).await.unwrap();
    assert_eq!(
        (web2.beparams.maxmem, web2.oper_ram),
        (Some(256), Some(256))
    );
}
