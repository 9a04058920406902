//! The daemon's event trail: the last [`CAPACITY`] events in memory, each numbered, served
//! at `GET /events?since=SEQ`. Every event is also written to the log, which is where a
//! longer history lives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::event::{Emitter, Event, EventSink, Outcome};

/// How many events the ring keeps. At a few hundred bytes each that is about a megabyte
/// at most; a rotation of a hundred hosts makes well under a thousand events.
pub const CAPACITY: usize = 4096;

/// The newest events, oldest first, with the sequence numbers given so far.
#[derive(Debug)]
pub struct EventRing {
    events: VecDeque<Event>,
    capacity: usize,
    /// The number the next event gets; sequence numbers start at 1.
    next_seq: u64,
    /// Names this daemon's start: a follower that saw another one knows the numbers
    /// started again, even once they have passed its cursor.
    boot: String,
}

/// What `/events?since=SEQ` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// The events numbered after `since`, oldest first, as far as the ring still holds
    /// them.
    pub events: Vec<Event>,
    /// The newest sequence number given so far (0: none yet). The next poll asks for
    /// `since` this.
    pub latest: u64,
    /// Events after `since` that already fell out of the ring: they are in the log only.
    pub missed: u64,
    /// `since` was beyond `latest`, or came from another daemon start (`boot`): the
    /// daemon started again since the client last asked, and numbers from 1 anew. The
    /// page then holds the whole ring.
    pub restarted: bool,
    /// The daemon start the numbers belong to; `since` with another `boot` is a restart.
    #[serde(default)]
    pub boot: String,
}

impl Default for EventRing {
    fn default() -> Self {
        EventRing::with_capacity(CAPACITY)
    }
}

impl EventRing {
    pub fn with_capacity(capacity: usize) -> Self {
        EventRing {
            events: VecDeque::with_capacity(capacity.min(CAPACITY)),
            capacity: capacity.max(1),
            next_seq: 1,
            boot: boot_id(),
        }
    }

    /// Numbers the event, keeps it (dropping the oldest when full), and returns it.
    pub fn push(&mut self, mut event: Event) -> Event {
        event.seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        if self.events.len() >= self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        event
    }

    pub fn since(&self, since: u64) -> EventPage {
        self.since_boot(since, None)
    }

    /// [`EventRing::since`] for a follower whose cursor came from daemon start `boot`.
    pub fn since_boot(&self, since: u64, boot: Option<&str>) -> EventPage {
        let latest = self.next_seq - 1;
        let restarted = since > latest || boot.is_some_and(|b| !b.is_empty() && b != self.boot);
        let since = if restarted { 0 } else { since };
        let oldest = self.events.front().map_or(self.next_seq, |e| e.seq);
        EventPage {
            events: self
                .events
                .iter()
                .filter(|e| e.seq > since)
                .cloned()
                .collect(),
            latest,
            missed: oldest.saturating_sub(since.saturating_add(1)),
            restarted,
            boot: self.boot.clone(),
        }
    }
}

/// This process's start, in the clock's nanoseconds and the process id: two starts of
/// the daemon never share it.
fn boot_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos:x}-{:x}", std::process::id())
}

/// The daemon's sink: each event numbered into the ring, then logged with its number.
#[derive(Clone, Default)]
pub struct RingSink {
    pub ring: Arc<Mutex<EventRing>>,
}

impl RingSink {
    /// The daemon's own decision on a new desired state (`Accepted` or `Refused`),
    /// outside any run: on the cluster of the state in force, `cluster/-` before one.
    pub fn on_state(&self, cluster: Option<&str>, revision: &str, reason: &str, outcome: Outcome) {
        let action = match outcome {
            Outcome::Refused => "refuse",
            _ => "accept",
        };
        let cluster = ObjectRef {
            kind: ObjectKind::Cluster,
            name: cluster.unwrap_or("-").to_owned(),
        };
        Emitter::new(self, "", Some(revision)).decided(&cluster, action, reason, outcome);
    }
}

impl EventSink for RingSink {
    fn emit(&self, event: Event) {
        // A poisoned lock only means a panic elsewhere; the ring itself is still whole.
        let event = match self.ring.lock() {
            Ok(mut ring) => ring.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        };
        crate::event::log(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Category;

    fn event(action: &str) -> Event {
        Event {
            seq: 0,
            time: "2026-11-23T08:04:12Z".into(),
            category: Category::Decision,
            object: "instance/web1".into(),
            action: action.into(),
            reason: String::new(),
            revision: None,
            job: None,
            outcome: Outcome::Planned,
            run: "r".into(),
        }
    }

    fn seqs(page: &EventPage) -> Vec<u64> {
        page.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn numbers_from_one_and_answers_what_came_after_since() {
        let mut ring = EventRing::with_capacity(10);
        let empty = ring.since(0);
        assert_eq!((seqs(&empty), empty.latest, empty.missed), (vec![], 0, 0));
        for n in 0..4 {
            assert_eq!(ring.push(event(&format!("a{n}"))).seq, n + 1);
        }
        assert_eq!(seqs(&ring.since(0)), vec![1, 2, 3, 4]);
        let page = ring.since(2);
        assert_eq!((seqs(&page), page.latest, page.missed), (vec![3, 4], 4, 0));
        let caught_up = ring.since(4);
        assert!(caught_up.events.is_empty() && !caught_up.restarted);
    }

    #[test]
    fn keeps_only_the_newest_and_counts_what_fell_out() {
        let mut ring = EventRing::with_capacity(3);
        for n in 0..7 {
            ring.push(event(&format!("a{n}")));
        }
        let page = ring.since(0);
        assert_eq!(seqs(&page), vec![5, 6, 7], "bounded to the capacity");
        assert_eq!((page.latest, page.missed), (7, 4), "1..=4 are gone");
        let page = ring.since(3);
        assert_eq!((seqs(&page), page.missed), (vec![5, 6, 7], 1));
        let page = ring.since(4);
        assert_eq!((seqs(&page), page.missed), (vec![5, 6, 7], 0));
    }

    /// A restarted daemon whose numbers have already passed the follower's cursor: the
    /// start it names tells the follower, which gets the whole ring.
    #[test]
    fn another_boot_means_the_daemon_started_again_whatever_the_numbers() {
        let mut before = EventRing::with_capacity(8);
        before.push(event("old"));
        let cursor = before.since(0);
        let mut after = EventRing::with_capacity(8);
        after.boot = format!("{}-other", cursor.boot);
        for n in 0..5 {
            after.push(event(&format!("new{n}")));
        }
        let page = after.since_boot(cursor.latest, Some(&cursor.boot));
        assert!(page.restarted);
        assert_eq!(seqs(&page), vec![1, 2, 3, 4, 5]);
        let same = after.since_boot(3, Some(&page.boot));
        assert!(!same.restarted);
        assert_eq!(seqs(&same), vec![4, 5]);
    }

    #[test]
    fn a_since_beyond_the_newest_means_the_daemon_started_again() {
        let mut ring = EventRing::with_capacity(3);
        ring.push(event("a"));
        let page = ring.since(40);
        assert!(page.restarted);
        assert_eq!(seqs(&page), vec![1]);
    }
}
