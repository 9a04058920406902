//! agenix secrets: sources in the desired-state repository are age files encrypted to the
//! operator's identity; each host that needs one gets it re-encrypted to its SSH host key
//! under `secrets/<host>/<name>.age` in the artifact store, with a per-host manifest that
//! records what each file was made from, so a rerun with nothing changed writes nothing.
//!
//! - [`identity`]: the operator's identity, read once from a file, never from argv.
//! - [`recipients`]: who a host's copy of a secret is encrypted to, and their fingerprints
//!   (pure: the planner compares them with the manifests).
//! - [`manifest`]: the per-host manifest, bounded when read.
//! - [`observe`]: digests of the sources and what the store holds, for the planner.
//! - [`publish`]: the executor of one secret step: decrypt in memory, encrypt, write.
//!
//! Plaintext lives only in a [`secrecy::SecretBox`], zeroed on drop, and never reaches
//! disk, logs, metrics or `/status`.

pub mod host_key;
pub mod identity;
pub mod manifest;
pub mod notify;
pub mod observe;
pub mod publish;
pub mod recipients;

use std::path::PathBuf;

pub use identity::OperatorIdentity;

/// Causes are in the messages, not `source`s (see [`crate::daemon::DaemonError`]); none
/// of them ever holds plaintext.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretsError {
    #[error("the operator identity {path}: {message}")]
    Identity { path: PathBuf, message: String },
    #[error(
        "no operator identity: set --secrets-identity-file, GANETI_OPERATOR_IDENTITY_FILE or \
         secretsIdentityFile in the config file (an age X25519 identity or an unencrypted \
         ed25519/RSA SSH private key; never on the command line)"
    )]
    NoIdentity,
    #[error(
        "the secret source {path} cannot be opened with the operator identity {identity}: \
         {message}; nothing was published (is it encrypted to the operator's key?)"
    )]
    WrongIdentity {
        path: PathBuf,
        identity: PathBuf,
        message: String,
    },
    #[error("the secret source {path}: {message}")]
    Source { path: PathBuf, message: String },
    #[error(
        "the secret source {path} changed since it was planned (digest {found}, planned \
         {planned}); the next reconcile plans it again"
    )]
    SourceChanged {
        path: PathBuf,
        found: String,
        planned: String,
    },
    #[error("encrypting to {recipient}: {message}")]
    Recipient { recipient: String, message: String },
    #[error("encrypting: {0}")]
    Encrypt(String),
    #[error("the store: {0}")]
    Store(String),
    #[error("`{0}` cannot name a directory or file in the store")]
    BadName(String),
}

/// What secret steps need besides the store: where the sources are, and the identity
/// that opens them (absent for a dry run, which never decrypts).
#[derive(Debug, Clone)]
pub struct SecretsContext {
    pub sources: SourceFiles,
    pub identity: Option<std::sync::Arc<OperatorIdentity>>,
    /// Who to tell when a host's files changed, and where failures are remembered.
    pub notify: Option<Notify>,
}

#[derive(Debug, Clone)]
pub struct Notify {
    pub settings: notify::NotifySettings,
    /// `notify-<cluster>.json` in the state directory.
    pub state_file: PathBuf,
}

/// Where the secrets' `file`s are: a desired-state directory, or a directory inside a git
/// commit (the daemon's `--git-repo` source), read with `git cat-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFiles {
    Dir(PathBuf),
    Git {
        repo: PathBuf,
        commit: String,
        /// The desired-state directory inside the repository; empty for its root.
        root: String,
    },
}

impl SourceFiles {
    /// How errors name the source file.
    pub fn describe(&self, relative: &std::path::Path) -> PathBuf {
        match self {
            SourceFiles::Dir(dir) => dir.join(relative),
            SourceFiles::Git { commit, .. } => {
                PathBuf::from(format!("{commit}:{}", self.in_repo(relative)))
            }
        }
    }

    fn in_repo(&self, relative: &std::path::Path) -> String {
        let relative = relative.to_string_lossy();
        let relative = relative.trim_start_matches("./");
        match self {
            SourceFiles::Git { root, .. } if !root.is_empty() => {
                format!("{}/{relative}", root.trim_end_matches('/'))
            }
            _ => relative.to_owned(),
        }
    }

    /// The source's bytes, bounded by [`observe::MAX_SOURCE_BYTES`].
    pub fn read(&self, relative: &std::path::Path) -> Result<Vec<u8>, SecretsError> {
        match self {
            SourceFiles::Dir(dir) => observe::read_source(&dir.join(relative)),
            SourceFiles::Git { repo, commit, .. } => {
                let path = self.describe(relative);
                let object = format!("{commit}:{}", self.in_repo(relative));
                let fail = |message: String| SecretsError::Source {
                    path: path.clone(),
                    message,
                };
                let git = |args: &[&str]| {
                    let out = crate::child_process::command("git")
                        .arg("-C")
                        .arg(repo)
                        .args(args)
                        .output()
                        .map_err(|e| fail(format!("cannot run git: {e}")))?;
                    if out.status.success() {
                        Ok(out.stdout)
                    } else {
                        Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
                    }
                };
                let size: u64 = String::from_utf8_lossy(&git(&["cat-file", "-s", &object])?)
                    .trim()
                    .parse()
                    .map_err(|_| fail("git did not say its size".into()))?;
                if size > observe::MAX_SOURCE_BYTES {
                    return Err(fail(format!(
                        "larger than {} bytes",
                        observe::MAX_SOURCE_BYTES
                    )));
                }
                git(&["cat-file", "blob", &object])
            }
        }
    }
}

/// A secret or host name is safe as one path component in the store.
pub(crate) fn check_component(name: &str) -> Result<(), SecretsError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SecretsError::BadName(name.to_owned()))
    }
}

/// The SHA-256 of some bytes, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
