use super::*;

#[test]
fn a_rotation_runs_through_its_marks_and_survives_a_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.json");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let mut h = History::default();
    h.apply(
        &RotationMark::Start {
            host: "vm1".into(),
            class: "web".into(),
            from: "a".into(),
            to: "b".into(),
        },
        now,
    );
    h.apply(
        &RotationMark::Rebooted {
            host: "vm1".into(),
            timeout: Duration::from_secs(60),
            stamp: RebootStamp {
                image: "b".into(),
                back: false,
            },
        },
        now,
    );
    assert_eq!(h.rotation("vm1").unwrap().deadline(), Some(1_060));
    assert_eq!(h.rotation("vm1").unwrap().target(), "b");
    h.apply(
        &RotationMark::Failed {
            host: "vm1".into(),
            fingerprint: "f1".into(),
            reason: "timed out".into(),
            last_answer: Some("HTTP 404".into()),
        },
        now,
    );
    assert_eq!(h.rotation("vm1").unwrap().target(), "a");
    assert_eq!(h.rotation("vm1").unwrap().rebooted_at(), None);
    h.save(&path).unwrap();
    let h = History::load(&path).unwrap();
    assert_eq!(
        h.stall(Rollout::Instances, "web", Some("f1")).unwrap().host,
        "vm1"
    );
    assert!(
        h.stall(Rollout::Instances, "web", Some("f2")).is_none(),
        "a changed entry lifts it"
    );
    let mut h = h;
    h.apply(
        &RotationMark::GaveUp {
            host: "vm1".into(),
            reason: "no answer".into(),
        },
        now,
    );
    assert!(h.rotation("vm1").is_none());
    assert_eq!(
        h.stall(Rollout::Instances, "web", None)
            .unwrap()
            .old_image_failed
            .as_deref(),
        Some("no answer")
    );
    h.retain_stalls(|_, f| f == "f2");
    assert!(h.stall(Rollout::Instances, "web", None).is_none());
}

/// The history file keeps the format of earlier versions (see [`HostRotation`]).
#[test]
fn records_of_the_earlier_format_load_into_stages_and_save_back_the_same() {
    let back = serde_json::json!({
        "class": "web", "from": "a", "to": "b", "started": 1, "rebooted": 7,
        "deadline": 67, "rollingBack": "unhealthy", "stepFailed": null
    });
    let record: HostRotation = serde_json::from_value(back.clone()).unwrap();
    assert_eq!(
        record.stage,
        HostStage::Rebooted {
            at: 7,
            deadline: 67
        }
    );
    assert_eq!(record.target(), "a", "going back");
    assert_eq!(serde_json::to_value(&record).unwrap(), back);
}
