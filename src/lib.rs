//! ganeti-operator: keeps a Ganeti cluster matching a desired state kept as YAML in git.

pub mod atomic_file;
pub mod backoff;
pub mod child_process;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod deadline;
pub mod desired;
pub mod event;
#[cfg(test)]
mod golden;
pub mod http_listener;
pub mod metrics;
pub mod notify;
pub mod onboard;
pub mod rapi;
pub mod reconcile;
pub mod rfc3339;
pub mod run_lock;
pub mod secret_file;
pub mod secrets;
pub mod source;
pub mod state_file;
pub mod store;
pub mod unix_time;
pub mod window;
