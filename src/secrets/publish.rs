//! The executor of one secret step. It decides nothing: it decrypts the source the plan
//! names (checking it is still the one planned), encrypts it to the recipients the plan
//! names, and writes the file and its manifest entry under the store's lock (a WebDAV
//! store has none: only the leader writes it); or removes a file and its entry, and the
//! host's directory once it is empty.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use super::manifest::{self, FileEntry, HostManifest};
use super::recipients::{fingerprints, parse_recipient};
use super::{SecretsContext, SecretsError, check_component, sha256_hex};
use crate::store::{Store, StoreError};

/// One secret file of one host, as the planner asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretStep {
    /// Encrypt the source to `recipients` and publish `secrets/<host>/<secret>.age`.
    Publish {
        host: String,
        secret: String,
        /// Relative to the desired-state directory.
        source: PathBuf,
        /// The source's SHA-256 when it was planned.
        source_digest: String,
        /// Recipient lines: the host key first, then the admin recipients.
        recipients: Vec<String>,
        /// The host key is the one generated for this host's create in the same run, and
        /// is put first in `recipients` when the step runs (`recipients` then holds only the
        /// admin recipients).
        generated_host_key: bool,
    },
    /// Remove `secrets/<host>/<secret>.age`, and the host's directory once empty.
    Remove { host: String, secret: String },
}

impl SecretStep {
    /// The step with `host_key` as its first recipient, once a generated key exists.
    pub fn with_generated_key(&self, host_key: &str) -> SecretStep {
        let mut step = self.clone();
        if let SecretStep::Publish {
            recipients,
            generated_host_key,
            ..
        } = &mut step
            && *generated_host_key
        {
            recipients.insert(0, super::recipients::normalize(host_key));
            *generated_host_key = false;
        }
        step
    }

    pub fn host(&self) -> &str {
        match self {
            SecretStep::Publish { host, .. } | SecretStep::Remove { host, .. } => host,
        }
    }

    pub fn secret(&self) -> &str {
        match self {
            SecretStep::Publish { secret, .. } | SecretStep::Remove { secret, .. } => secret,
        }
    }

    /// The store path it writes, relative to the store.
    pub fn relative_path(&self) -> String {
        format!("secrets/{}/{}.age", self.host(), self.secret())
    }
}

/// Reads a source and checks that the identity opens it, without decrypting its body:
/// the check made for every source before anything is published.
pub fn check_source(context: &SecretsContext, source: &Path) -> Result<(), SecretsError> {
    let identity = context.identity.as_ref().ok_or(SecretsError::NoIdentity)?;
    let path = context.sources.describe(source);
    identity.check_opens(&context.sources.read(source)?, &path)
}

pub fn run(store: &Store, context: &SecretsContext, step: &SecretStep) -> Result<(), SecretsError> {
    check_component(step.host())?;
    check_component(step.secret())?;
    match step {
        SecretStep::Publish {
            host,
            secret,
            source,
            source_digest,
            recipients,
            generated_host_key,
        } => {
            if *generated_host_key {
                return Err(SecretsError::Encrypt(
                    "the host key generated at create is not known to this step".into(),
                ));
            }
            let identity = context.identity.as_ref().ok_or(SecretsError::NoIdentity)?;
            let path = context.sources.describe(source);
            let ciphertext = context.sources.read(source)?;
            let found = sha256_hex(&ciphertext);
            if found != *source_digest {
                return Err(SecretsError::SourceChanged {
                    path,
                    found,
                    planned: source_digest.clone(),
                });
            }
            let output = {
                let plain = identity.decrypt(&ciphertext, &path)?;
                encrypt(plain.expose_secret(), recipients)?
            };
            let entry = FileEntry {
                source: found,
                recipients: fingerprints(recipients),
                published: sha256_hex(&output),
            };
            let dir = format!("secrets/{host}");
            store_op(store, || {
                store.put(&format!("{dir}/{secret}.age"), &output)?;
                let mut manifest = read_manifest(store, &dir)?;
                manifest.files.insert(secret.clone(), entry);
                store.put(&manifest_path(&dir), &manifest.to_json())
            })
        }
        SecretStep::Remove { host, secret } => {
            let dir = format!("secrets/{host}");
            store_op(store, || {
                let Some(listed) = store.list(&dir)? else {
                    return Ok(());
                };
                let file = format!("{secret}.age");
                store.remove(&format!("{dir}/{file}"))?;
                let mut manifest = read_manifest(store, &dir)?;
                manifest.files.remove(secret);
                let others = listed
                    .iter()
                    .any(|e| e.name.ends_with(".age") && e.name != file);
                if manifest.files.is_empty() && !others {
                    store.remove(&manifest_path(&dir))?;
                    store.remove_dir(&dir)
                } else {
                    store.put(&manifest_path(&dir), &manifest.to_json())
                }
            })
        }
    }
}

/// Runs one step's store work under the store's lock.
fn store_op(store: &Store, f: impl FnOnce() -> Result<(), StoreError>) -> Result<(), SecretsError> {
    store
        .locked(f)
        .map_err(|e| SecretsError::Store(e.to_string()))
}

fn manifest_path(dir: &str) -> String {
    format!("{dir}/{}", manifest::FILE_NAME)
}

/// The manifest in `dir`; a missing or foreign one starts afresh (its files are then
/// all planned again).
fn read_manifest(store: &Store, dir: &str) -> Result<HostManifest, StoreError> {
    Ok(store
        .read(&manifest_path(dir), manifest::MAX_MANIFEST_BYTES)?
        .and_then(|bytes| HostManifest::from_json(&bytes).ok())
        .unwrap_or_else(HostManifest::new))
}

/// Encrypts to every recipient, in age's binary format as agenix writes it.
pub fn encrypt(plain: &[u8], recipients: &[String]) -> Result<Vec<u8>, SecretsError> {
    let parsed = recipients
        .iter()
        .map(|line| {
            parse_recipient(line).map_err(|message| SecretsError::Recipient {
                recipient: super::recipients::fingerprint(line),
                message,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
            .map_err(|e| SecretsError::Encrypt(e.to_string()))?;
    let mut out = Vec::new();
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| SecretsError::Encrypt(e.to_string()))?;
    writer
        .write_all(plain)
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| SecretsError::Encrypt(e.to_string()))?;
    Ok(out)
}
