use super::*;

#[test]
fn an_upgrade_runs_through_its_marks_and_survives_a_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.json");
    let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let mut h = History::default();
    h.apply_node(
        &NodeMark::Start {
            node: "n2".into(),
            class: "ganeti-node".into(),
            from: "a".into(),
            to: "b".into(),
            phase: NodePhase::Drain,
        },
        at(1_000),
    );
    let phase = NodeMark::Phase {
        node: "n2".into(),
        phase: NodePhase::Migrate,
        left: NodePhase::Drain,
        left_since: 1_000,
    };
    assert_eq!(phase.ended_phase(1_004), Some((NodePhase::Drain, 4)));
    h.apply_node(&phase, at(1_004));
    h.apply_node(
        &NodeMark::Rebooting {
            node: "n2".into(),
            left: NodePhase::Migrate,
            left_since: 1_004,
            within: Duration::from_secs(60),
        },
        at(1_010),
    );
    h.save(&path).unwrap();
    let mut h = History::load(&path).unwrap();
    let r = h.node_upgrade("n2").unwrap();
    assert_eq!(
        (r.phase(), r.rebooted(), r.deadline()),
        (NodePhase::Reboot, Some(1_010), Some(1_070))
    );
    h.node_step_failed("n2", "exit status 1");
    assert_eq!(
        h.node_upgrade("n2").unwrap().step_failed.as_deref(),
        Some("exit status 1")
    );
    h.apply_node(
        &NodeMark::Failed {
            node: "n2".into(),
            fingerprint: "f1".into(),
            reason: "the reboot command failed".into(),
            last_answer: None,
        },
        at(1_020),
    );
    assert!(h.node_upgrade("n2").is_none());
    let stall = h.stall(Rollout::Nodes, "ganeti-node", Some("f1")).unwrap();
    assert_eq!((stall.host.as_str(), stall.image.as_str()), ("n2", "b"));
}

/// Review defect 7: stalls were keyed by class alone, so a class used by nodes and
/// instances alike had a node upgrade's stall hold its rotation (and the reverse).
#[test]
fn a_node_upgrade_stall_does_not_hold_the_same_class_rotation() {
    let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let mut h = History::default();
    h.apply_node(
        &NodeMark::Start {
            node: "n1".into(),
            class: "shared".into(),
            from: "a".into(),
            to: "b".into(),
            phase: NodePhase::Drain,
        },
        at(1_000),
    );
    h.apply_node(
        &NodeMark::Failed {
            node: "n1".into(),
            fingerprint: "f1".into(),
            reason: "no".into(),
            last_answer: None,
        },
        at(1_001),
    );
    assert!(h.stall(Rollout::Nodes, "shared", Some("f1")).is_some());
    assert!(h.stall(Rollout::Instances, "shared", Some("f1")).is_none());
    // The class's entry changed: the stall goes, with its kind's key.
    h.retain_stalls(|class, fingerprint| class == "shared" && fingerprint == "f2");
    assert!(h.stall(Rollout::Nodes, "shared", None).is_none());

    // A file from before stalls had kinds: its stall holds both, as it did.
    let old: History = serde_json::from_str(
        r#"{"objects": {}, "stalls": {"shared": {"fingerprint": "f1", "image": "b", "host": "n1", "reason": "no", "since": 1}}}"#,
    )
    .unwrap();
    assert!(old.stall(Rollout::Nodes, "shared", Some("f1")).is_some());
    assert!(
        old.stall(Rollout::Instances, "shared", Some("f1"))
            .is_some()
    );
}

/// The history file keeps the format of earlier versions: a record written by one
/// loads into its stage, and saves back the same.
#[test]
fn records_of_the_earlier_format_load_into_stages_and_save_back_the_same() {
    let rebooting = serde_json::json!({
        "class": "c", "from": "a", "to": "b", "started": 1, "phase": "rejoin",
        "phaseSince": 5, "rebooted": 4, "deadline": 64, "stepFailed": null
    });
    let record: NodeUpgrade = serde_json::from_value(rebooting.clone()).unwrap();
    assert_eq!(
        record.stage,
        NodeStage::Rebooted {
            phase: PostRebootPhase::Rejoin,
            since: 5,
            rebooted: 4,
            deadline: 64
        }
    );
    assert_eq!(serde_json::to_value(&record).unwrap(), rebooting);
    let draining = serde_json::json!({
        "class": "c", "from": "a", "to": "b", "started": 1, "phase": "drain",
        "phaseSince": 2, "rebooted": null, "deadline": null, "stepFailed": null
    });
    let record: NodeUpgrade = serde_json::from_value(draining.clone()).unwrap();
    assert_eq!(
        (record.phase(), record.rebooted()),
        (NodePhase::Drain, None)
    );
    assert_eq!(serde_json::to_value(&record).unwrap(), draining);
}
