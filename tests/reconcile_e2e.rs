//! `ganeti-operator reconcile` end to end against the real 1-node sandbox: the sandbox
//! example converges from an empty cluster, each edit converges with exactly the plan
//! pinned in tests/golden/plans/, and the safety rules hold.

use crate::common;

use common::cluster::instance;
use common::reconcile::{Workspace, edit, remove_all_instances, sandbox_yaml};
use common::sandbox::sandbox;
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::operation::{InstanceCreate, NicSpec};
use ganeti_operator::rapi::{Operation, Rapi, WriteOptions};

/// The tests share one cluster and each starts by emptying it.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WEB1: &str = "  web1.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n";
const STORE1_POWER: &str = "    power: down\n";

#[tokio::test]
async fn sandbox_example_converges_then_each_edit_converges_with_its_plan() {
    let Some(sb) = sandbox("reconcile_edits") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();

    let base = sandbox_yaml();
    ws.write(&base);
    ws.dry_run_golden("01-create.txt", 2);
    let applied = ws.apply(0);
    assert!(applied.contains("Converged"), "{applied}");
    ws.assert_converged();
    let web1 = instance(&rapi, "web1.gnt.test").await.unwrap();
    assert_eq!(web1.status.as_deref(), Some("running"));
    assert!(web1.tags.contains(&"ganeti-operator:managed".to_owned()));
    let store1 = instance(&rapi, "store1.gnt.test").await.unwrap();
    assert_eq!(store1.admin_state.as_deref(), Some("down"));

    // Memory and vCPUs: modify, then the reboot that makes them live.
    let resized = edit(
        &base,
        &[(
            "      memory: 192M\n",
            "      memory: 256M\n      vcpus: 2\n",
        )],
    );
    ws.write(&resized);
    ws.dry_run_golden("02-memory-vcpus.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    let web2 = instance(&rapi, "web2.gnt.test").await.unwrap();
    assert_eq!(
        (web2.beparams.maxmem, web2.beparams.vcpus, web2.oper_ram),
        (Some(256), Some(2), Some(256))
    );

    // Stop, then start again.
    let stopped = edit(&resized, &[(WEB1, &format!("{WEB1}    power: down\n"))]);
    ws.write(&stopped);
    ws.dry_run_golden("03-stop.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    let web1 = instance(&rapi, "web1.gnt.test").await.unwrap();
    assert_eq!(web1.admin_state.as_deref(), Some("down"));
    ws.write(&resized);
    ws.dry_run_golden("04-start.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    let web1 = instance(&rapi, "web1.gnt.test").await.unwrap();
    assert_eq!(web1.status.as_deref(), Some("running"));

    // A second disk on the stopped store instance: no reboot.
    let disked = edit(
        &resized,
        &[(
            STORE1_POWER,
            "    power: down\n    resources:\n      disks:\n        - size: 64M\n        - size: 32M\n",
        )],
    );
    ws.write(&disked);
    ws.dry_run_golden("05-add-disk.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    let store1 = instance(&rapi, "store1.gnt.test").await.unwrap();
    assert_eq!(store1.disk_sizes, vec![Some(64), Some(32)]);

    // A tag.
    let tagged = edit(
        &disked,
        &[(WEB1, &format!("{WEB1}    tags: [team.media]\n"))],
    );
    ws.write(&tagged);
    ws.dry_run_golden("06-tags.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    let web1 = instance(&rapi, "web1.gnt.test").await.unwrap();
    assert!(
        web1.tags.contains(&"team.media".to_owned()),
        "{:?}",
        web1.tags
    );

    // A deletion with prune on.
    let resized_web2 = "  web2.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n    resources:\n      memory: 256M\n      vcpus: 2\n";
    let deleted = edit(&tagged, &[(resized_web2, "")]);
    ws.write(&deleted);
    ws.dry_run_golden("07-delete-prune-on.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    assert!(instance(&rapi, "web2.gnt.test").await.is_none());

    // A deletion with prune off: reported, not done, and nothing pending.
    let kept = edit(
        &deleted,
        &[
            ("  prune: true\n", "  prune: false\n"),
            (&format!("{WEB1}    tags: [team.media]\n"), ""),
        ],
    );
    ws.write(&kept);
    ws.dry_run_golden("08-delete-prune-off.txt", 0);
    ws.apply(0);
    assert!(instance(&rapi, "web1.gnt.test").await.is_some());
}

#[tokio::test]
async fn prune_safety_protect_conflicts_and_adoption() {
    let Some(sb) = sandbox("reconcile_safety") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let protected = edit(
        &sandbox_yaml(),
        &[(WEB1, &format!("{WEB1}    protect: true\n"))],
    );
    ws.write(&protected);
    ws.apply(0);
    let names = ["store1.gnt.test", "web1.gnt.test", "web2.gnt.test"];

    // Emptying the instances deletes nothing, and says why.
    let instances_at = protected.find("instances:\n").unwrap();
    let emptied = format!("{}instances: {{}}\n", &protected[..instances_at]);
    ws.write(&emptied);
    ws.dry_run_golden("09-empty-instances.txt", 2);
    ws.apply(2);
    for name in names {
        assert!(instance(&rapi, name).await.is_some(), "{name} was deleted");
    }

    // `protect` keeps an instance whose entry is removed.
    let without_web1 = edit(&protected, &[(&format!("{WEB1}    protect: true\n"), "")]);
    ws.write(&without_web1);
    ws.dry_run_golden("10-protected.txt", 2);
    ws.apply(2);
    assert!(instance(&rapi, "web1.gnt.test").await.is_some());

    // An unmanaged instance with a desired name is a conflict, left alone...
    let create = InstanceCreate {
        name: "web9.gnt.test".into(),
        disk_template: "diskless".into(),
        nics: vec![NicSpec::default()],
        os: "noop+default".into(),
        memory_mib: 64,
        vcpus: 1,
        primary_node: Some(sb.master().to_owned()),
        start: true,
        ..InstanceCreate::default()
    };
    let id = rapi
        .submit(
            &Operation::CreateInstance(create),
            &WriteOptions::new("test:unmanaged"),
        )
        .await
        .unwrap();
    wait_for_job(&rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    let web9 = "  web9.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n";
    let conflicting = format!("{protected}{web9}");
    ws.write(&conflicting);
    ws.dry_run_golden("11-conflict.txt", 2);
    ws.apply(2);
    let seen = instance(&rapi, "web9.gnt.test").await.unwrap();
    assert!(seen.tags.is_empty(), "{:?}", seen.tags);
    assert_eq!(seen.beparams.maxmem, Some(64), "left alone");

    // ...until the entry says `adopt: true`.
    ws.write(&format!("{conflicting}    adopt: true\n"));
    ws.dry_run_golden("12-adopt.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    let seen = instance(&rapi, "web9.gnt.test").await.unwrap();
    assert!(seen.tags.contains(&"ganeti-operator:managed".to_owned()));
    assert_eq!(seen.beparams.maxmem, Some(128));
}

#[tokio::test]
async fn a_change_ganeti_rejects_stalls_until_the_entry_changes() {
    let Some(sb) = sandbox("reconcile_stall") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let base = sandbox_yaml();
    ws.write(&base);
    let checked = ws.reconcile(&["--dry-run", "--server-check"]);
    let checked = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(
        checked
            .matches("ganeti: accepted (would use node1.gnt.test)")
            .count(),
        3,
        "{checked}"
    );
    ws.apply(0);

    // Valid YAML, but below the cluster's instance policy: Ganeti says wrong_input.
    let too_small = edit(&base, &[("      memory: 192M\n", "      memory: 16M\n")]);
    ws.write(&too_small);
    // --server-check asks Ganeti first, and shows its refusal.
    let checked = ws.reconcile(&["--dry-run", "--server-check"]);
    let checked = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.contains("ganeti: refused:"), "{checked}");
    assert!(checked.contains("violates policy"), "{checked}");
    let applied = ws.apply(1);
    assert!(applied.contains("1 failed"), "{applied}");
    assert!(applied.contains("violates policy"), "{applied}");

    // The next run does not try again: the object is stalled on this entry.
    let output = ws.reconcile(&["--dry-run"]);
    let plan = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{plan}");
    assert!(plan.contains("! instance web2.gnt.test"), "{plan}");
    assert!(plan.contains("blocked (stalled)"), "{plan}");
    let history = std::fs::read_to_string(ws.state().join("history-cluster.gnt.test.json"))
        .expect("the state file is written");
    assert!(history.contains("instance/web2.gnt.test"), "{history}");
    assert!(history.contains("stalledOn"), "{history}");

    // A changed entry lifts the stall.
    let fixed = edit(&base, &[("      memory: 192M\n", "      memory: 224M\n")]);
    ws.write(&fixed);
    ws.apply(0);
    ws.assert_converged();
    let web2 = instance(&rapi, "web2.gnt.test").await.unwrap();
    assert_eq!(web2.beparams.maxmem, Some(224));
    let history =
        std::fs::read_to_string(ws.state().join("history-cluster.gnt.test.json")).unwrap();
    assert!(
        !history.contains("web2"),
        "success resets the history: {history}"
    );
}
