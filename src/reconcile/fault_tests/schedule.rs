//! The fault schedule of a seed: what each submission and each read does. Draws are keyed
//! by what is asked (object, operation, attempt; or pass, read, call), never by arrival
//! order, so a seed injects the same faults whatever order parallel work reaches the
//! cluster in.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::rapi::memory::{Read, SubmitFault};
use crate::rapi::{Operation, RapiError};

use super::checks::Counts;
use super::world::object_of;

/// A job whose answer was lost and that outlives the run that submitted it.
const SLOW_JOB: Duration = Duration::from_millis(40);

/// xorshift64*: `fastrand` is not a direct dependency.
#[derive(Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that neighbouring seeds differ from the first draw.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub(super) fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

/// A deterministic draw for one (seed, key), independent of call order.
pub(super) fn draw(seed: u64, key: &str) -> Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Rng::new(seed ^ h)
}

fn injected_error(kind: u64) -> (SubmitFault, &'static str) {
    let transport = |detail: &str| RapiError::Transport {
        method: "POST",
        route: "/2/instances",
        detail: detail.into(),
    };
    match kind {
        0 => (
            SubmitFault::Refuse(RapiError::Api {
                status: 502,
                method: "POST",
                route: "/2/instances",
                message: "Bad Gateway".into(),
                explain: None,
            }),
            "refused_5xx",
        ),
        1 => (
            SubmitFault::Refuse(transport("connection refused")),
            "refused_connection",
        ),
        2 => (SubmitFault::Refuse(RapiError::Unauthorized), "refused_auth"),
        3 => (SubmitFault::Refuse(RapiError::Forbidden), "refused_auth"),
        4 | 5 => (
            SubmitFault::LoseResponse(transport("connection reset by peer")),
            "lost_reset",
        ),
        6 => (
            SubmitFault::LoseResponse(RapiError::Timeout {
                what: "the answer to POST /2/instances".into(),
                after: Duration::from_secs(60),
            }),
            "lost_timeout",
        ),
        7 => (
            SubmitFault::LoseResponse(RapiError::Decode {
                method: "POST",
                route: "/2/instances",
                detail: "expected value at line 1 column 1".into(),
            }),
            "lost_malformed",
        ),
        _ => unreachable!(),
    }
}

/// The job error classes a scripted job may end with; wrong_input only where asked.
pub(super) const JOB_CLASSES: [&str; 6] = [
    "temp_insufficient_resources",
    "environment_error",
    "insufficient_resources",
    "wrong_state",
    "internal_error",
    "resolver_error",
];

/// What the schedule needs to know to script a submission.
pub(super) struct SubmitPlan {
    pub(super) seed: u64,
    /// The one object whose input Ganeti rejects once, if any.
    pub(super) rejected: Option<String>,
    /// The one object whose first job is left in `waiting`, if any.
    pub(super) stuck: Option<String>,
}

/// Scripts each submission: refused, answer lost, failed with a job error class, or
/// left waiting; fewer faults with each attempt, so every seed can converge.
pub(super) fn submit_script(
    plan: SubmitPlan,
    injected: Arc<Mutex<Counts>>,
) -> impl FnMut(&Operation, &str) -> SubmitFault + Send + 'static {
    let SubmitPlan {
        seed,
        rejected,
        stuck,
    } = plan;
    let mut attempts: BTreeMap<String, u32> = BTreeMap::new();
    move |op, reason| {
        let object = object_of(reason);
        let key = format!("{object} {}", op.kind());
        let attempt = attempts.entry(key.clone()).or_default();
        *attempt += 1;
        let attempt = *attempt;
        if stuck.as_deref() == Some(object.as_str()) && attempt == 1 {
            injected.lock().unwrap().stuck_submitted += 1;
            return SubmitFault::Wait;
        }
        if rejected.as_deref() == Some(object.as_str()) && attempt == 1 {
            *injected
                .lock()
                .unwrap()
                .job_failed
                .entry("wrong_input".into())
                .or_default() += 1;
            return SubmitFault::FailJob("wrong_input".into());
        }
        // Faults thin out with each attempt, so every seed can converge.
        let percent = match attempt {
            1 => 35,
            2 => 20,
            3 => 10,
            _ => 0,
        };
        let mut rng = draw(seed, &format!("{key} #{attempt}"));
        if !rng.chance(percent) {
            return SubmitFault::None;
        }
        let mut c = injected.lock().unwrap();
        let kind = rng.below(12);
        if kind >= 8 {
            let class = JOB_CLASSES[rng.below(JOB_CLASSES.len() as u64) as usize];
            *c.job_failed.entry(class.into()).or_default() += 1;
            return SubmitFault::FailJob(class.into());
        }
        let (mut fault, name) = injected_error(kind);
        if let SubmitFault::LoseResponse(e) = &fault
            && rng.chance(50)
        {
            // Still running when the next run observes: it must be awaited.
            fault = SubmitFault::LoseResponseSlow(e.clone(), SLOW_JOB);
            c.lost_slow += 1;
        }
        match name {
            "refused_5xx" => c.refused_5xx += 1,
            "refused_connection" => c.refused_connection += 1,
            "refused_auth" => c.refused_auth += 1,
            "lost_reset" => c.lost_reset += 1,
            "lost_timeout" => c.lost_timeout += 1,
            _ => c.lost_malformed += 1,
        }
        fault
    }
}

/// What the read script shares with the pass loop.
#[derive(Default)]
pub(super) struct ReadState {
    pub(super) pass: AtomicUsize,
    /// Set by `on_plan`: a read failing after it is not one the plan was made from.
    pub(super) planned: AtomicBool,
    /// An observe read failed before this pass's plan was made.
    pub(super) failed_before_plan: AtomicBool,
}

impl ReadState {
    pub(super) fn start_pass(&self, pass: usize) {
        self.pass.store(pass, Ordering::SeqCst);
        self.planned.store(false, Ordering::SeqCst);
        self.failed_before_plan.store(false, Ordering::SeqCst);
    }
}

/// The read fault classes; `job_lost` only on polls (Ganeti no longer knows the job).
const READ_KINDS: [&str; 7] = [
    "5xx",
    "reset",
    "timeout",
    "malformed",
    "401",
    "403",
    "job_lost",
];

fn read_error(kind: &str, read: &Read<'_>) -> RapiError {
    let route = read.route();
    match kind {
        "5xx" => RapiError::Api {
            status: 503,
            method: "GET",
            route,
            message: "Service Unavailable".into(),
            explain: None,
        },
        "reset" => RapiError::Transport {
            method: "GET",
            route,
            detail: "connection reset by peer".into(),
        },
        "timeout" => RapiError::Timeout {
            what: format!("the answer to GET {route}"),
            after: Duration::from_secs(60),
        },
        "malformed" => RapiError::Decode {
            method: "GET",
            route,
            detail: "EOF while parsing a value at line 1 column 4096".into(),
        },
        "401" => RapiError::Unauthorized,
        "403" => RapiError::Forbidden,
        _ => match read {
            Read::Job { id, .. } => RapiError::JobLost { job: *id },
            _ => unreachable!("job_lost is drawn for polls only"),
        },
    }
}

/// Scripts the reads: the four an observe makes (keyed by pass, read and call within the
/// pass; none after the third pass) and each job's polls (keyed by the job's object,
/// kind and poll count, thinning out), so that every seed can converge.
pub(super) fn read_script(
    seed: u64,
    shared: Arc<ReadState>,
    injected: Arc<Mutex<Counts>>,
) -> impl FnMut(&Read<'_>) -> Option<RapiError> + Send + 'static {
    let mut calls: BTreeMap<String, u32> = BTreeMap::new();
    move |read| {
        let observe = matches!(
            read,
            Read::Info | Read::Nodes | Read::Instances | Read::PendingJobs
        );
        let key = match read {
            Read::Job {
                reason,
                kind,
                long_poll,
                ..
            } => format!(
                "poll {} {kind} {}",
                object_of(reason),
                if *long_poll { "wait" } else { "get" }
            ),
            _ if observe => format!("pass{} {read:?}", shared.pass.load(Ordering::SeqCst)),
            // Not part of a reconcile: left alone.
            _ => return None,
        };
        let call = calls.entry(key.clone()).or_default();
        *call += 1;
        let percent = if observe {
            [8, 5, 3]
                .get(shared.pass.load(Ordering::SeqCst))
                .copied()
                .unwrap_or(0)
        } else {
            [10, 5].get(*call as usize - 1).copied().unwrap_or(0)
        };
        let mut rng = draw(seed, &format!("{key} #{call}"));
        if !rng.chance(percent) {
            return None;
        }
        let kinds = if observe { 6 } else { READ_KINDS.len() };
        let kind = READ_KINDS[rng.below(kinds as u64) as usize];
        let mut c = injected.lock().unwrap();
        if observe {
            *c.observe_faults.entry(kind.into()).or_default() += 1;
            if !shared.planned.load(Ordering::SeqCst) {
                shared.failed_before_plan.store(true, Ordering::SeqCst);
            }
        } else {
            *c.poll_faults.entry(kind.into()).or_default() += 1;
        }
        Some(read_error(kind, read))
    }
}
