//! Notifications: notices of rollouts, failed reconciles, refused desired states and
//! drift, sent to the targets of the desired state's `notifications:` section (a signed
//! JSON webhook, a Slack-compatible incoming webhook, ntfy, Matrix).
//!
//! - [`notice`] derives what to tell from what a reconcile already knows (pure).
//! - [`ledger`] remembers what was sent and what waits for a retry, once per target,
//!   object and revision, in `notifications-<cluster>.json` in the state directory.
//! - [`wire`] renders each service's request (pure; the goldens pin it).
//! - [`send`] reads the URL and token files, sends, and records the results.
//!
//! Sending never blocks nor fails a reconcile: the daemon sends from a background task,
//! and one-shot `reconcile` waits a bounded time at its end, leaving the rest to the next
//! run. No URL, token or secret is logged or shown: a target is named by its name and
//! kind only.

pub mod ledger;
pub mod notice;
pub mod of_cycle;
pub mod send;
pub mod wire;

pub use ledger::Ledger;
pub use notice::{Drifted, Notice};
pub use of_cycle::Seen;
pub use send::{Delivered, deliver};
