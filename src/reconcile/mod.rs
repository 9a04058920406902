//! observe → plan → execute. Observing reads the cluster, planning is a pure function of
//! (desired, observed, history, now), and executing carries the plan out without
//! deciding anything of its own.

pub mod cycle;
pub mod execute;
#[cfg(test)]
mod fault_tests;
pub mod health;
pub mod history;
#[cfg(test)]
mod loop_tests;
pub mod node_upgrade_record;
pub mod observe;
pub mod plan;
pub mod reason;
pub mod render;
pub mod rotation_record;
