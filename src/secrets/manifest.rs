//! `secrets/<host>/manifest.json`: for each published file, the digest of the source
//! ciphertext it was made from, the fingerprints of the recipients it was encrypted to,
//! and the digest of the file itself. The planner decides from it, never from content;
//! the host compares it with its last copy to tell whether anything changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "manifest.json";
/// Far above any real manifest (a few hundred bytes per secret).
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostManifest {
    pub version: u32,
    /// By secret name: the file is `<name>.age` beside the manifest.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// SHA-256 of the source ciphertext in the desired state.
    pub source: String,
    /// The recipients' fingerprints (see `recipients::fingerprint`), sorted.
    pub recipients: Vec<String>,
    /// SHA-256 of the published file.
    pub published: String,
}

impl HostManifest {
    pub fn new() -> HostManifest {
        HostManifest {
            version: VERSION,
            files: BTreeMap::new(),
        }
    }

    /// Parses a manifest; the caller has bounded the bytes.
    pub fn from_json(bytes: &[u8]) -> Result<HostManifest, String> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(format!("larger than {MAX_MANIFEST_BYTES} bytes"));
        }
        let manifest: HostManifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if manifest.version != VERSION {
            return Err(format!(
                "version {} (this operator writes {VERSION})",
                manifest.version
            ));
        }
        Ok(manifest)
    }

    /// Deterministic bytes: the same manifest is always the same file.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_strangers() {
        let mut m = HostManifest::new();
        m.files.insert(
            "a".into(),
            FileEntry {
                source: "00".into(),
                recipients: vec!["sha256:11".into()],
                published: "22".into(),
            },
        );
        assert_eq!(HostManifest::from_json(&m.to_json()).unwrap(), m);
        assert!(HostManifest::from_json(b"{\"version\":2,\"files\":{}}").is_err());
        assert!(HostManifest::from_json(b"{\"version\":1,\"files\":{},\"x\":1}").is_err());
        assert!(HostManifest::from_json(b"[").is_err());
    }
}
