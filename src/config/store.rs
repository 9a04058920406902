//! Where the artifact store is: a directory, or a WebDAV URL with the file holding its
//! credentials and how its certificate is trusted. Flags and environment decide as a
//! whole before the config file does.

use std::path::PathBuf;

use super::{ConfigError, Overrides, load_file};
use crate::rapi::{Fingerprint, Trust};

/// Where the artifact store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Dir(PathBuf),
    Dav(crate::store::dav::DavConfig),
}

/// The artifact store: the flags and environment decide as a whole (a directory or a
/// WebDAV URL with its credentials and trust), else the config file does.
pub fn store_location(overrides: &Overrides) -> Result<Option<StoreLocation>, ConfigError> {
    let given = StoreSettings {
        dir: overrides.store.clone(),
        url: overrides.store_url.clone(),
        credentials_file: overrides.store_credentials_file.clone(),
        ca_file: overrides.store_ca_file.clone(),
        fingerprint: overrides.store_fingerprint.clone(),
    };
    let (settings, from) = if given.dir.is_some() || given.url.is_some() {
        (given, "the command line or environment")
    } else {
        let Some(path) = &overrides.config_file else {
            return Ok(None);
        };
        let file = load_file(path)?;
        // A flag still names the credentials or the trust of a URL set in the file; the
        // trust is decided as a whole, as the RAPI's is.
        let (ca_file, fingerprint) = if given.ca_file.is_some() || given.fingerprint.is_some() {
            (given.ca_file, given.fingerprint)
        } else {
            (file.store_ca_file, file.store_fingerprint)
        };
        let settings = StoreSettings {
            dir: file.store,
            url: file.store_url,
            credentials_file: given.credentials_file.or(file.store_credentials_file),
            ca_file,
            fingerprint,
        };
        (settings, "the config file")
    };
    settings.location(from)
}

struct StoreSettings {
    dir: Option<PathBuf>,
    url: Option<String>,
    credentials_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    fingerprint: Option<String>,
}

impl StoreSettings {
    fn location(self, from: &str) -> Result<Option<StoreLocation>, ConfigError> {
        let url = match (self.dir, self.url) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Missing(format!(
                    "{from} sets both a store directory (--store, store:) and a store URL \
                     (--store-url, storeUrl:); set one"
                )));
            }
            (Some(dir), None) => return Ok(Some(StoreLocation::Dir(dir))),
            (None, None) => return Ok(None),
            (None, Some(url)) => url,
        };
        let credentials_file = self.credentials_file.ok_or_else(|| {
            ConfigError::Missing(
                "the store on WebDAV needs its credentials: set --store-credentials-file \
                 (GANETI_OPERATOR_STORE_CREDENTIALS_FILE, storeCredentialsFile:), a file \
                 holding `user:password`"
                    .into(),
            )
        })?;
        let trust = match (self.ca_file, self.fingerprint) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Missing(
                    "both a store CA file and a store certificate fingerprint are set; set one"
                        .into(),
                ));
            }
            (Some(ca), None) => Some(Trust::CaFile(ca)),
            (None, Some(pin)) => Some(Trust::Fingerprint(Fingerprint::parse(&pin)?)),
            (None, None) => None,
        };
        Ok(Some(StoreLocation::Dav(crate::store::dav::DavConfig {
            url,
            credentials_file,
            trust,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const PIN: &str = "2eeb8b37ac8fd7f754232a864d4ca32571cc4361269a35c5b5efd396cda1ef3d";

    #[test]
    fn the_config_file_names_a_webdav_store_and_flags_take_precedence() {
        let (_dir, path) = file(&format!(
            "storeUrl: https://router:8481/\nstoreCredentialsFile: /run/dav\nstoreFingerprint: {PIN}\n"
        ));
        let from_file = Overrides {
            config_file: Some(path.clone()),
            ..Default::default()
        };
        let Some(StoreLocation::Dav(dav)) = store_location(&from_file).unwrap() else {
            panic!("a WebDAV store");
        };
        assert_eq!(dav.url, "https://router:8481/");
        assert_eq!(dav.credentials_file, PathBuf::from("/run/dav"));
        assert!(matches!(dav.trust, Some(Trust::Fingerprint(_))));
        // A flag for the trust replaces the file's trust as a whole.
        let ca = Overrides {
            store_ca_file: Some("/etc/ca.pem".into()),
            ..from_file.clone()
        };
        let Some(StoreLocation::Dav(dav)) = store_location(&ca).unwrap() else {
            panic!("a WebDAV store");
        };
        assert_eq!(dav.trust, Some(Trust::CaFile("/etc/ca.pem".into())));
        // A directory on the command line wins over the file's URL.
        let dir = Overrides {
            store: Some("/srv/store".into()),
            ..from_file
        };
        assert_eq!(
            store_location(&dir).unwrap(),
            Some(StoreLocation::Dir("/srv/store".into()))
        );
    }

    #[test]
    fn both_a_directory_and_a_url_or_a_url_without_credentials_are_refused() {
        let (_dir, path) = file("store: /srv/store\nstoreUrl: https://router/\n");
        let both = Overrides {
            config_file: Some(path),
            ..Default::default()
        };
        let message = store_location(&both).unwrap_err().to_string();
        assert!(message.contains("set one"), "{message}");
        let bare = Overrides {
            store_url: Some("https://router/".into()),
            ..Default::default()
        };
        let message = store_location(&bare).unwrap_err().to_string();
        assert!(message.contains("--store-credentials-file"), "{message}");
    }
}
