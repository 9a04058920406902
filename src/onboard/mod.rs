//! `init --from-cluster`: a desired-state directory that describes a running cluster, so
//! that a cluster built by hand comes under the operator without being changed. The
//! inference is a pure function of what `observe` reads (`infer`); the document is
//! rendered to YAML (`render`) and written only once it validates (`write`).

mod classes;
mod infer;
mod model;
mod render;
mod seen;
mod write;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use infer::{Snapshot, infer};
pub use model::{
    ClassDoc, ClassOrigin, ClusterDoc, DiskDoc, Document, InstanceDoc, NicDoc, NodeDoc, Notes,
    ResourcesDoc,
};
pub use render::{FILE_NAMES, RenderedFile, render};
pub use write::{Written, validate, write_dir};

/// The image id a class pins when none of its hosts carries an image tag: well formed, so
/// the state validates, and plainly not a real image. Without `cluster.store` no image is
/// booted or rotated, so it changes nothing until a person pins a real one.
pub const PLACEHOLDER_IMAGE: &str =
    "sha256-0000000000000000000000000000000000000000000000000000000000000000";

/// The class of nodes without an operator class tag, as the examples name it.
pub const NODE_CLASS: &str = "ganeti-node";

#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    #[error(
        "cannot tell the cluster's hypervisor: Ganeti reports {}, which the desired state does \
         not know",
        reported.as_deref().unwrap_or("none")
    )]
    Hypervisor { reported: Option<String> },
    #[error(
        "{} already exist{}; nothing was written (--force overwrites)",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        if paths.len() == 1 { "s" } else { "" }
    )]
    Exists { paths: Vec<PathBuf> },
    /// The diagnostics are in the message: the binary prints it whole.
    #[error(
        "the desired state inferred from the cluster does not validate, so nothing was written:\n{report}"
    )]
    Invalid { report: String },
    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// An enum's name as Ganeti and the desired state spell it (`kvm`, `diskless`).
fn ganeti_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The enum Ganeti's name stands for, if the desired state knows it.
fn parse_ganeti<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}
