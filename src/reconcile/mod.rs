//! observe → plan → execute. Observing reads the cluster, planning is a pure function of
//! (desired, observed, policy, now), and executing carries the plan out without deciding
//! anything of its own.

pub mod observe;
pub mod reason;
