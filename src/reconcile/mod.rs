//! observe → plan → execute. Observing reads the cluster, planning is a pure function of
//! (desired, observed, state, now), and executing carries the plan out without deciding
//! anything of its own. The layers point one way: `state` ← `plan` ← `execute` ← `cycle`
//! (see `architecture_tests`).

#[cfg(test)]
mod architecture_tests;
pub mod cycle;
pub mod execute;
#[cfg(test)]
mod fault_tests;
pub mod health;
#[cfg(test)]
mod loop_tests;
pub mod observe;
pub mod plan;
pub mod promote;
pub mod reason;
pub mod render;
pub mod saved;
pub mod state;
pub mod watch;
