use std::time::UNIX_EPOCH;

use super::*;
use crate::desired::model::NotifyEvent;
use crate::notify::notice;

fn targets() -> BTreeMap<String, NotifyTarget> {
    let target = |kind, events: &[NotifyEvent]| NotifyTarget {
        kind,
        url_file: "/u".into(),
        token_file: None,
        secret_file: None,
        room: None,
        events: events.iter().copied().collect(),
    };
    BTreeMap::from([
        (
            "all".to_owned(),
            target(
                NotifyKind::Slack,
                &[NotifyEvent::ReconcileFailed, NotifyEvent::RolloutStalled],
            ),
        ),
        (
            "stalls".to_owned(),
            target(NotifyKind::Ntfy, &[NotifyEvent::RolloutStalled]),
        ),
    ])
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn each_notice_goes_once_to_each_target_that_takes_its_event() {
    let targets = targets();
    let mut ledger = Ledger::default();
    let failed = notice::reconcile_failed("c1", "rev1", "1 action(s) failed", at(100));
    assert_eq!(
        ledger.enqueue(&targets, std::slice::from_ref(&failed), at(100)),
        1
    );
    // The next reconcile fails the same way at the same revision: nothing new.
    assert_eq!(
        ledger.enqueue(&targets, std::slice::from_ref(&failed), at(200)),
        0
    );
    let due = ledger.due(at(200));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1.target, "all");
    ledger.record(&due[0].0, Ok(()), at(201), BackoffPolicy::default());
    assert!(ledger.due(at(300)).is_empty());
    assert_eq!(ledger.enqueue(&targets, &[failed], at(300)), 0, "sent once");
    assert!(ledger.was_sent("reconcile-failed:cluster/c1@rev1"));
    // Another revision is another notice.
    let again = notice::reconcile_failed("c1", "rev2", "x", at(400));
    assert_eq!(ledger.enqueue(&targets, &[again], at(400)), 1);
}

#[test]
fn a_failure_waits_out_its_backoff_and_shows_without_secrets() {
    let targets = targets();
    let mut ledger = Ledger::default();
    let stall = notice::reconcile_failed("c1", "r", "m", at(1000));
    let stall = Notice {
        event: NotifyEvent::RolloutStalled,
        ..stall
    };
    assert_eq!(ledger.enqueue(&targets, &[stall], at(1000)), 2);
    let policy = BackoffPolicy::default();
    for (slot, _) in ledger.due(at(1000)) {
        ledger.record(&slot, Err("HTTP 500".into()), at(1000), policy);
    }
    assert!(ledger.due(at(1009)).is_empty(), "waits at least 10 s");
    // Jitter adds at most a quarter.
    assert_eq!(ledger.due(at(1013)).len(), 2);
    assert!(ledger.next_retry().unwrap() <= at(1013));
    let failing = ledger.failing();
    assert_eq!(
        failing.get("stalls"),
        Some(&(NotifyKind::Ntfy, 1, Some("HTTP 500".into())))
    );
    // The second failure waits twice as long.
    let (slot, _) = ledger.due(at(1013)).remove(0);
    ledger.record(&slot, Err("HTTP 500".into()), at(1013), policy);
    assert_eq!(ledger.pending.get(&slot).unwrap().attempts, 2);
    assert!(ledger.pending.get(&slot).unwrap().retry_after >= 1033);
}

#[test]
fn pruning_gives_up_stale_notices_and_forgets_removed_targets() {
    let mut targets = targets();
    let mut ledger = Ledger::default();
    let failed = notice::reconcile_failed("c1", "rev1", "m", at(0));
    ledger.enqueue(&targets, &[failed], at(0));
    let dropped = ledger.prune(&targets, at(GIVE_UP_AFTER.as_secs() + 1));
    assert_eq!(dropped.given_up, [NotifyKind::Slack]);
    assert!(ledger.pending.is_empty());

    let other = notice::reconcile_failed("c1", "rev2", "m", at(10));
    ledger.enqueue(&targets, &[other], at(10));
    targets.remove("all");
    let dropped = ledger.prune(&targets, at(20));
    assert!(
        dropped.given_up.is_empty(),
        "a removed target is not a failure"
    );
    assert!(ledger.pending.is_empty());
}

/// A notice handed to one sender is not handed to a second one meanwhile; if the first
/// never records a result, it is due again once the hold is over.
#[test]
fn a_claimed_notice_is_held_from_a_second_sender_until_its_hold_ends() {
    let targets = targets();
    let mut ledger = Ledger::default();
    let failed = notice::reconcile_failed("c1", "rev1", "x", at(100));
    assert_eq!(ledger.enqueue(&targets, &[failed], at(100)), 1);
    let hold = std::time::Duration::from_secs(30);
    let first = ledger.claim(at(100), hold);
    assert_eq!(first.len(), 1);
    assert!(
        ledger.claim(at(101), hold).is_empty(),
        "a second sender gets nothing"
    );
    assert!(ledger.claim(at(129), hold).is_empty());
    assert_eq!(
        ledger.claim(at(130), hold).len(),
        1,
        "free again after the hold"
    );
    ledger.record(&first[0].0, Ok(()), at(131), BackoffPolicy::default());
    assert!(ledger.claim(at(200), hold).is_empty(), "sent: never again");
}
