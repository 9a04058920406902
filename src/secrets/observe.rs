//! What the planner needs to know about secrets, read without decrypting anything: the
//! digest of every source file, and for every host directory in the store its manifest
//! and the digest of each `.age` file present.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use super::manifest::{self, HostManifest};
use super::{SecretsError, sha256_hex};
use crate::desired::model::DesiredState;
use crate::store::{Store, StoreError};

/// A source holds one secret; the bound keeps a stray large file from being read whole.
pub const MAX_SOURCE_BYTES: u64 = 2 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedSecrets {
    /// By secret name: the SHA-256 of the source file, or why it cannot be read.
    pub sources: BTreeMap<String, Result<String, String>>,
    /// By host name: what `secrets/<host>/` holds.
    pub hosts: BTreeMap<String, ObservedHost>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedHost {
    /// `None` when there is none, or it is not one this operator wrote (every file is
    /// then made again).
    pub manifest: Option<HostManifest>,
    /// By secret name: the SHA-256 of `<name>.age`.
    pub files: BTreeMap<String, String>,
}

/// Reads a source file, bounded.
pub fn read_source(path: &Path) -> Result<Vec<u8>, SecretsError> {
    let fail = |message: String| SecretsError::Source {
        path: path.to_owned(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(fail(format!("larger than {MAX_SOURCE_BYTES} bytes")));
    }
    Ok(bytes)
}

pub fn observe(
    store: &Store,
    desired: &DesiredState,
    sources: &super::SourceFiles,
) -> Result<ObservedSecrets, SecretsError> {
    let sources = desired
        .secrets
        .iter()
        .map(|(name, secret)| {
            let digest = sources
                .read(&secret.file)
                .map(|bytes| sha256_hex(&bytes))
                .map_err(|e| e.to_string());
            (name.clone(), digest)
        })
        .collect();
    let store_err = |e: StoreError| SecretsError::Store(e.to_string());
    let mut hosts = BTreeMap::new();
    for entry in store
        .list("secrets")
        .map_err(store_err)?
        .unwrap_or_default()
    {
        if entry.is_dir {
            let dir = format!("secrets/{}", entry.name);
            hosts.insert(entry.name, observe_host(store, &dir).map_err(store_err)?);
        }
    }
    Ok(ObservedSecrets { sources, hosts })
}

fn observe_host(store: &Store, dir: &str) -> Result<ObservedHost, StoreError> {
    let mut seen = ObservedHost::default();
    for entry in store.list(dir)?.unwrap_or_default() {
        if entry.is_dir {
            continue;
        }
        let path = format!("{dir}/{}", entry.name);
        if entry.name == manifest::FILE_NAME {
            let bytes = store.read(&path, manifest::MAX_MANIFEST_BYTES + 1)?;
            seen.manifest = bytes.and_then(|b| HostManifest::from_json(&b).ok());
        } else if let Some(secret) = entry.name.strip_suffix(".age")
            && let Some(bytes) = store.read(&path, MAX_SOURCE_BYTES * 2 + 1)?
        {
            seen.files.insert(secret.to_owned(), sha256_hex(&bytes));
        }
    }
    Ok(seen)
}
