//! The integration tests: one binary, one module per concern (the shape of ripgrep's
//! `tests/tests.rs`), so `tests/common` and the crate are compiled and linked once.
//! Tests that use the Ganeti sandbox get it from `common::sandbox::sandbox` (or
//! `three_nodes`, `sandbox_serving`), which holds it for the caller's module: tests of one
//! module may share the cluster, tests of different modules never run against it at
//! once (as separate binaries never did). `hostile_yaml` is a binary of its own: its
//! allocator governs the whole process.

mod common;

mod chaos_noded;
mod chaos_operator_kill;
mod chaos_rapi_restart;
mod completions_and_man;
mod daemon_e2e;
mod daemon_listener;
mod daemon_waits;
mod desired_files;
mod doc_links;
mod docs_guide;
mod events_e2e;
mod examples;
mod freeze_filter;
mod harness_nodes;
mod health_sampler;
mod hook_cli;
mod init_e2e;
mod metrics_prometheus;
mod monitoring_files;
mod netboot_e2e;
mod nix_modules;
mod node_upgrade_e2e;
mod notifications;
mod rapi_contract;
mod rapi_fake_contract;
mod rapi_faults;
mod rapi_multinode;
mod rapi_stock_cert;
mod rapi_tls;
mod reconcile_cli;
mod reconcile_crash;
mod reconcile_e2e;
mod reconcile_multinode;
mod reference_docs;
mod rollout_gates_e2e;
mod rotation_e2e;
mod saved_plan_e2e;
mod secrets_age;
mod secrets_bootstrap;
mod secrets_cli;
mod store_dav;
mod store_dav_reconcile;
mod store_images;
mod store_serve;
mod suspend_drift_e2e;
mod validate_corpus;
