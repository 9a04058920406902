//! What the benchmarks share. Each bench includes it once:
//!
//!     #[path = "support/mod.rs"]
//!     mod support;
//!     use support::{bench_mode, stats};

// Every bench compiles its own copy of this module and uses only part of it (import_1gib
// needs no sandbox, plan_10k no rounds), so the rest would warn as unused in each.
#![allow(dead_code)]

pub mod bench_mode;
pub mod sandbox_env;
pub mod stats;
