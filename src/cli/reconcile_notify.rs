//! Notifications at the end of one-shot `reconcile`: what each pass saw is told to the
//! desired state's targets, with a bounded wait, so a slow or failing target neither
//! holds the command nor changes its exit code. What is not sent in time stays in the
//! ledger and is retried by the next run (or the daemon).

use std::path::Path;
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::desired::DesiredState;
use crate::notify::Seen;

/// The longest one-shot `reconcile` waits for its notifications.
pub const NOTIFY_WAIT: Duration = Duration::from_secs(15);

pub fn send(
    runtime: &tokio::runtime::Runtime,
    desired: &DesiredState,
    state_dir: &Path,
    seen: Vec<Seen>,
) {
    if desired.notifications.is_empty() {
        return;
    }
    let file = crate::config::notifications_file(state_dir, &desired.cluster.name);
    let delivery = crate::notify::deliver(
        &desired.notifications,
        &file,
        move |ledger, now| seen.iter().flat_map(|s| s.notices(ledger, now)).collect(),
        BackoffPolicy::default(),
    );
    match runtime.block_on(tokio::time::timeout(NOTIFY_WAIT, delivery)) {
        Ok(Ok(delivered)) => {
            let failed = delivered
                .attempts
                .iter()
                .filter(|a| a.result.is_err())
                .count();
            if failed > 0 {
                eprintln!(
                    "{failed} notification(s) failed; the next run retries them after the backoff"
                );
            }
        }
        Ok(Err(e)) => eprintln!("notifications: {e}; nothing was sent"),
        Err(_) => eprintln!(
            "notifications: still sending after {}s; the next run retries what is left",
            NOTIFY_WAIT.as_secs()
        ),
    }
}
