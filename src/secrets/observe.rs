//! What the planner needs to know about secrets, read without decrypting anything: the
//! digest of every source file, and for every host directory in the store its manifest
//! and the digest of each `.age` file present.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use super::manifest::{self, HostManifest};
use super::{SecretsError, sha256_hex};
use crate::desired::model::DesiredState;
use crate::store::Store;

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
    let store_err = |e: std::io::Error| SecretsError::Store(e.to_string());
    let mut hosts = BTreeMap::new();
    let dir = store.secrets_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ObservedSecrets { sources, hosts });
        }
        Err(e) => return Err(store_err(e)),
    };
    for entry in entries {
        let entry = entry.map_err(store_err)?;
        let Some(host) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if host.starts_with('.') || !entry.file_type().map_err(store_err)?.is_dir() {
            continue;
        }
        hosts.insert(host, observe_host(&entry.path())?);
    }
    Ok(ObservedSecrets { sources, hosts })
}

fn observe_host(dir: &Path) -> Result<ObservedHost, SecretsError> {
    let store_err = |e: std::io::Error| SecretsError::Store(format!("{}: {e}", dir.display()));
    let mut seen = ObservedHost::default();
    for entry in std::fs::read_dir(dir).map_err(store_err)? {
        let entry = entry.map_err(store_err)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !entry.file_type().map_err(store_err)?.is_file() || name.starts_with('.') {
            continue;
        }
        if name == manifest::FILE_NAME {
            let bytes =
                read_bounded(&entry.path(), manifest::MAX_MANIFEST_BYTES).map_err(store_err)?;
            seen.manifest = HostManifest::from_json(&bytes).ok();
        } else if let Some(secret) = name.strip_suffix(".age") {
            let bytes = read_bounded(&entry.path(), MAX_SOURCE_BYTES * 2).map_err(store_err)?;
            seen.files.insert(secret.to_owned(), sha256_hex(&bytes));
        }
    }
    Ok(seen)
}

fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}
