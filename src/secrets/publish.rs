//! The executor of one secret step. It decides nothing: it decrypts the source the plan
//! names (checking it is still the one planned), encrypts it to the recipients the plan
//! names, and writes the file and its manifest entry under the store's lock; or removes
//! a file and its entry, and the host's directory once it is empty.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use super::manifest::{self, FileEntry, HostManifest};
use super::recipients::{fingerprints, parse_recipient};
use super::{SecretsContext, SecretsError, check_component, sha256_hex};
use crate::atomic_file;
use crate::store::{FILE_MODE, Store};

const DIR_MODE: u32 = 0o755;

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
            write_locked(store, host, |dir| {
                atomic_file::create_dir_all(dir, DIR_MODE)?;
                atomic_file::write_atomic(&dir.join(format!("{secret}.age")), &output, FILE_MODE)?;
                let mut manifest = read_manifest(dir)?;
                manifest.files.insert(secret.clone(), entry);
                atomic_file::write_atomic(
                    &dir.join(manifest::FILE_NAME),
                    &manifest.to_json(),
                    FILE_MODE,
                )
            })
        }
        SecretStep::Remove { host, secret } => write_locked(store, host, |dir| {
            if !dir.is_dir() {
                return Ok(());
            }
            atomic_file::remove_durably(&dir.join(format!("{secret}.age")))?;
            let mut manifest = read_manifest(dir)?;
            manifest.files.remove(secret);
            let others = std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".age")));
            if manifest.files.is_empty() && !others {
                atomic_file::remove_durably(&dir.join(manifest::FILE_NAME))?;
                std::fs::remove_dir(dir)?;
                atomic_file::sync_dir(atomic_file::parent_of(dir))
            } else {
                atomic_file::write_atomic(
                    &dir.join(manifest::FILE_NAME),
                    &manifest.to_json(),
                    FILE_MODE,
                )
            }
        }),
    }
}

fn write_locked(
    store: &Store,
    host: &str,
    f: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), SecretsError> {
    let dir = store.secrets_dir().join(host);
    atomic_file::with_dir_lock(store.root(), || f(&dir))
        .map_err(|e| SecretsError::Store(format!("{}: {e}", dir.display())))
}

/// The manifest in `dir`; a missing or foreign one starts afresh (its files are then
/// all planned again).
fn read_manifest(dir: &Path) -> std::io::Result<HostManifest> {
    match std::fs::read(dir.join(manifest::FILE_NAME)) {
        Ok(bytes) => Ok(HostManifest::from_json(&bytes).unwrap_or_else(|_| HostManifest::new())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HostManifest::new()),
        Err(e) => Err(e),
    }
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
