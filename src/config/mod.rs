//! Where the operator finds its cluster and keeps its state: flags and environment first,
//! then an optional YAML config file, then the desired state's `cluster.rapiUrl`.
//! Credentials come from a file or the environment, never from the command line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::desired::diagnostic::{self, Diagnostic};
use crate::desired::files::FileContent;
use crate::desired::source::{Target, parse_file};
use crate::rapi::{Fingerprint, Password, RapiConfig, RapiError, Trust};

mod store;
pub use store::{StoreLocation, store_location};

/// Causes are in the messages, not `source`s (see [`crate::daemon::DaemonError`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading the config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the config file is not valid:\n{0}")]
    Invalid(String),
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Rapi(#[from] RapiError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// Settings as given on the command line or in the environment; any may be absent.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub rapi_url: Option<String>,
    pub rapi_user: Option<String>,
    pub rapi_password_file: Option<PathBuf>,
    pub rapi_ca_file: Option<PathBuf>,
    pub rapi_fingerprint: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub store: Option<PathBuf>,
    /// The store on WebDAV: the base URL of the location the operator writes through.
    pub store_url: Option<String>,
    /// A file holding `user:password` for the WebDAV location.
    pub store_credentials_file: Option<PathBuf>,
    pub store_ca_file: Option<PathBuf>,
    pub store_fingerprint: Option<String>,
    /// The operator's age identity or SSH private key, which opens the secret sources.
    pub secrets_identity_file: Option<PathBuf>,
}

/// The config file's fields, the same settings in camelCase.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileSettings {
    rapi_url: Option<String>,
    rapi_user: Option<String>,
    rapi_password_file: Option<PathBuf>,
    rapi_ca_file: Option<PathBuf>,
    rapi_fingerprint: Option<String>,
    state_dir: Option<PathBuf>,
    store: Option<PathBuf>,
    store_url: Option<String>,
    store_credentials_file: Option<PathBuf>,
    store_ca_file: Option<PathBuf>,
    store_fingerprint: Option<String>,
    secrets_identity_file: Option<PathBuf>,
    secrets_notify: Option<crate::secrets::notify::NotifySettings>,
}

pub use crate::child_process::PASSWORD_ENV;

/// The config file's keys, as serde knows them: what `--help` must name.
#[cfg(test)]
pub(crate) fn file_keys() -> Vec<String> {
    let refused = serde_json::from_str::<FileSettings>(r#"{"?": 0}"#)
        .expect_err("an unknown key is refused")
        .to_string();
    let listed = refused.split("expected one of ").nth(1).unwrap_or_default();
    let listed = listed.split(" at line").next().unwrap_or_default();
    listed
        .split(", ")
        .map(|key| key.trim_matches(|c: char| c == '`' || !c.is_ascii_alphanumeric()))
        .map(str::to_owned)
        .collect()
}

#[derive(Debug)]
pub struct Settings {
    pub rapi: RapiConfig,
    pub state_dir: PathBuf,
    /// The artifact store's directory, local like the state directory.
    pub store: Option<PathBuf>,
}

/// One history file per cluster, so one state directory can serve several.
pub fn history_file(state_dir: &Path, cluster: &str) -> PathBuf {
    state_dir.join(format!("history-{cluster}.json"))
}

impl Settings {
    pub fn history_file(&self, cluster: &str) -> PathBuf {
        history_file(&self.state_dir, cluster)
    }
}

fn load_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let bytes = std::fs::read(path).map_err(|cause| ConfigError::Read {
        path: path.to_owned(),
        cause,
    })?;
    if has_no_content(&bytes) {
        return Ok(FileSettings::default());
    }
    let display = path.display().to_string();
    let parsed = parse_file(&display, FileContent::from_bytes(bytes))
        .map_err(|d| ConfigError::Invalid(render_without_values(d)))?;
    if parsed.json.is_null() {
        return Ok(FileSettings::default());
    }
    serde_path_to_error::deserialize(&parsed.json).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .map(|segment| format!("/{segment}"))
            .collect();
        let pointer = pointer.replace("/?", "");
        let d = Diagnostic::new(
            parsed.site(&pointer, Target::Key),
            &pointer,
            without_found_value(&e.inner().to_string()),
        )
        .expected(
            "rapiUrl, rapiUser, rapiPasswordFile, rapiCaFile or rapiFingerprint, stateDir, store or storeUrl (with storeCredentialsFile, storeCaFile or storeFingerprint), secretsIdentityFile, secretsNotify",
        );
        ConfigError::Invalid(render_without_values(vec![d]))
    })
}

/// Empty, blank or only comments: a config that sets nothing, which is allowed.
fn has_no_content(bytes: &[u8]) -> bool {
    bytes.split(|b| *b == b'\n').all(|line| {
        let line = line.trim_ascii();
        line.is_empty() || line.starts_with(b"#")
    })
}

/// The diagnostics with their locations but not the quoted lines: a mistyped key may
/// sit next to a password (`rapiPassword: ...`), and errors end up in logs.
fn render_without_values(mut diagnostics: Vec<Diagnostic>) -> String {
    for d in &mut diagnostics {
        d.site.line_text = None;
        if let Some((site, _)) = &mut d.related {
            site.line_text = None;
        }
    }
    diagnostic::render_text(&diagnostics)
}

/// serde's "invalid type: integer `1234`, expected a string", without the value found.
fn without_found_value(message: &str) -> String {
    for kind in ["invalid type", "invalid value", "invalid length"] {
        if message.starts_with(kind) {
            return match message.split_once(", expected ") {
                Some((_, expected)) => format!("{kind}: expected {expected}"),
                None => kind.to_owned(),
            };
        }
    }
    message.to_owned()
}

fn default_state_dir() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("STATE_DIRECTORY") {
        return dir;
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return dir.join("ganeti-operator");
    }
    var("HOME")
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".local/state/ganeti-operator")
}

/// The operator identity's file: the flag or environment, else the config file.
pub fn identity_file(overrides: &Overrides) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = &overrides.secrets_identity_file {
        return Ok(Some(path.clone()));
    }
    match &overrides.config_file {
        Some(path) => Ok(load_file(path)?.secrets_identity_file),
        None => Ok(None),
    }
}

/// The operator identity, read once, when one is configured. A file that is given but
/// missing, unreadable or not an identity is an error here, before anything is done.
pub fn identity(
    overrides: &Overrides,
) -> Result<Option<std::sync::Arc<crate::secrets::OperatorIdentity>>, ConfigError> {
    match identity_file(overrides)? {
        Some(path) => Ok(Some(std::sync::Arc::new(
            crate::secrets::OperatorIdentity::from_file(&path)?,
        ))),
        None => Ok(None),
    }
}

/// The notify command from the config file, checked.
pub fn notify(
    overrides: &Overrides,
) -> Result<Option<crate::secrets::notify::NotifySettings>, ConfigError> {
    let Some(path) = &overrides.config_file else {
        return Ok(None);
    };
    let settings = load_file(path)?.secrets_notify;
    if let Some(settings) = &settings {
        settings
            .check()
            .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
    }
    Ok(settings)
}

/// The notifications' once-per ledger of a cluster (see [`crate::notify::ledger`]).
pub fn notifications_file(state_dir: &Path, cluster: &str) -> PathBuf {
    state_dir.join(format!("notifications-{cluster}.json"))
}

/// The notify state file of a cluster.
pub fn notify_file(state_dir: &Path, cluster: &str) -> PathBuf {
    state_dir.join(format!("notify-{cluster}.json"))
}

/// Merges the sources. `desired_url` is the desired state's `cluster.rapiUrl`.
pub fn resolve(overrides: &Overrides, desired_url: Option<&str>) -> Result<Settings, ConfigError> {
    let file = match &overrides.config_file {
        Some(path) => load_file(path)?,
        None => FileSettings::default(),
    };
    let url = overrides
        .rapi_url
        .clone()
        .or(file.rapi_url)
        .or(desired_url.map(str::to_owned))
        .ok_or_else(|| {
            ConfigError::Missing(
                "no RAPI URL: set --rapi-url, GANETI_RAPI_URL, rapiUrl in the config file, \
                 or cluster.rapiUrl in the desired state"
                    .into(),
            )
        })?;
    let user = overrides
        .rapi_user
        .clone()
        .or(file.rapi_user)
        .ok_or_else(|| {
            ConfigError::Missing(
                "no RAPI user: set --rapi-user, GANETI_RAPI_USER or rapiUser in the config file"
                    .into(),
            )
        })?;
    let password = match overrides
        .rapi_password_file
        .clone()
        .or(file.rapi_password_file)
    {
        Some(path) => Password::from_file(&path)?,
        None if std::env::var_os(PASSWORD_ENV).is_some() => Password::from_env(PASSWORD_ENV)?,
        None => {
            return Err(ConfigError::Missing(format!(
                "no RAPI password: set --rapi-password-file, GANETI_RAPI_PASSWORD_FILE, \
                 rapiPasswordFile in the config file, or {PASSWORD_ENV} (never on the command line)"
            )));
        }
    };
    // The command line and environment decide trust as a whole, before the file does.
    let (ca, pin) = if overrides.rapi_ca_file.is_some() || overrides.rapi_fingerprint.is_some() {
        (
            overrides.rapi_ca_file.clone(),
            overrides.rapi_fingerprint.clone(),
        )
    } else {
        (file.rapi_ca_file, file.rapi_fingerprint)
    };
    let trust = match (ca, pin) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Missing(
                "both a CA file and a certificate fingerprint are set; set one: the CA file \
                 for a certificate your CA signed, the fingerprint for Ganeti's stock one"
                    .into(),
            ));
        }
        (Some(ca), None) => Trust::CaFile(ca),
        (None, Some(pin)) => Trust::Fingerprint(Fingerprint::parse(&pin)?),
        (None, None) => {
            return Err(ConfigError::Missing(
                "no way to trust the RAPI's certificate: set --rapi-ca-file \
                 (GANETI_RAPI_CA_FILE) or --rapi-fingerprint (GANETI_RAPI_FINGERPRINT, the \
                 SHA-256 of the certificate: `openssl x509 -in /var/lib/ganeti/rapi.pem \
                 -outform der | sha256sum`)"
                    .into(),
            ));
        }
    };
    let state_dir = overrides
        .state_dir
        .clone()
        .or(file.state_dir)
        .unwrap_or_else(default_state_dir);
    let store = overrides.store.clone().or(file.store);
    Ok(Settings {
        rapi: RapiConfig::new(url, user, password, trust),
        state_dir,
        store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<FileSettings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        load_file(&path)
    }

    #[test]
    fn an_empty_or_comment_only_config_sets_nothing() {
        for text in ["", "\n  \n", "# nothing yet\n  # really\n"] {
            let settings = load(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(settings.rapi_url.is_none() && settings.state_dir.is_none());
        }
    }

    #[test]
    fn errors_never_quote_a_value() {
        for text in [
            "rapiUrl: https://x\nrapiPassword: hunter2\n",
            "rapiUser: 4242hunter2\nrapiPasword: hunter2\n",
            "rapiUser: [hunter2,\n",
            "rapiUser: 123456789\n",
            "rapiUser: {password: hunter2}\n",
        ] {
            let message = load(text).unwrap_err().to_string();
            for secret in ["hunter2", "123456789"] {
                assert!(!message.contains(secret), "{text:?} echoed:\n{message}");
            }
            assert!(message.contains("config.yaml:"), "located: {message}");
        }
        let typo = load("rapiPassword: hunter2\n").unwrap_err().to_string();
        assert!(typo.contains("rapiPassword"), "names the key: {typo}");
    }
}
