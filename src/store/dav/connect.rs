//! Reaching the WebDAV store: its URL checked (no credentials in it, https unless on a
//! loopback address), the credentials read from their file, and TLS set up from a CA file
//! or a pinned certificate with the RAPI client's machinery.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::blocking::Client;
use secrecy::SecretString;

use super::Dav;
use crate::rapi::Trust;
use crate::store::StoreError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the WebDAV store is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavConfig {
    /// The write location's base URL; every store path is relative to it.
    pub url: String,
    /// A file holding `user:password` for the location's basic auth.
    pub credentials_file: PathBuf,
    /// Required for https.
    pub trust: Option<Trust>,
}

impl Dav {
    pub fn connect(config: DavConfig) -> Result<Dav, StoreError> {
        let mut base = Url::parse(&config.url).map_err(|e| StoreError::Remote {
            url: "(its URL)".into(),
            message: format!("not a URL: {e}"),
        })?;
        if !base.username().is_empty() || base.password().is_some() {
            let _ = base.set_username("");
            let _ = base.set_password(None);
            return Err(StoreError::Remote {
                url: base.to_string(),
                message: "credentials do not belong in the URL; put `user:password` in the \
                          credentials file"
                    .into(),
            });
        }
        let shown = base.to_string();
        let fail = |message: String| StoreError::Remote {
            url: shown.clone(),
            message,
        };
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let (user, password) = read_credentials(&config, &shown)?;
        let builder = Client::builder()
            .timeout(None::<Duration>)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        let builder = match (base.scheme(), &config.trust) {
            ("https", Some(trust)) => {
                let tls = crate::rapi::tls::client_config(trust)
                    .map_err(|e| fail(format!("TLS setup: {e}")))?;
                builder.tls_backend_preconfigured(tls)
            }
            ("https", None) => {
                return Err(fail(
                    "no way to trust its certificate: set --store-ca-file or --store-fingerprint"
                        .into(),
                ));
            }
            // reqwest wants a TLS configuration even for http; this one trusts nothing.
            ("http", _) if is_loopback(&base) => builder.tls_backend_preconfigured(
                rustls::ClientConfig::builder_with_provider(crate::rapi::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| fail(format!("TLS setup: {e}")))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ),
            ("http", _) => {
                return Err(fail(
                    "plain http would send the store's password in the clear; use https \
                     (http is accepted only on a loopback address)"
                        .into(),
                ));
            }
            (scheme, _) => return Err(fail(format!("unsupported scheme {scheme}"))),
        };
        let client = builder
            .build()
            .map_err(|e| fail(format!("HTTP client: {e}")))?;
        Ok(Dav {
            base,
            client,
            user,
            password: Arc::new(password),
            credentials_file: config.credentials_file,
        })
    }
}

/// `user:password` on the file's first line; the password may itself hold colons.
fn read_credentials(config: &DavConfig, shown: &str) -> Result<(String, SecretString), StoreError> {
    let fail = |message: String| StoreError::Remote {
        url: shown.to_owned(),
        message,
    };
    let bytes = crate::secret_file::read_secret(&config.credentials_file, "store credentials file")
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        fail(format!(
            "the credentials file {} is not UTF-8 text",
            config.credentials_file.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or_default();
    match line.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            Ok((user.to_owned(), SecretString::from(password.to_owned())))
        }
        _ => Err(fail(format!(
            "the credentials file {} must hold `user:password` on its first line",
            config.credentials_file.display()
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, credentials: &str) -> (tempfile::TempDir, DavConfig) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, credentials).unwrap();
        (
            dir,
            DavConfig {
                url: url.into(),
                credentials_file: file,
                trust: None,
            },
        )
    }

    #[test]
    fn paths_join_under_the_base_and_directories_end_with_a_slash() {
        let (_dir, config) = config("http://127.0.0.1:1/store-dav", "op:pw\n");
        let dav = Dav::connect(config).unwrap();
        assert_eq!(
            dav.url("images/sha256-x/manifest.json", false).as_str(),
            "http://127.0.0.1:1/store-dav/images/sha256-x/manifest.json"
        );
        assert_eq!(
            dav.url("images", true).as_str(),
            "http://127.0.0.1:1/store-dav/images/"
        );
        assert_eq!(dav.url("", true).as_str(), "http://127.0.0.1:1/store-dav/");
    }

    #[test]
    fn cleartext_off_loopback_passwords_in_urls_and_bad_files_are_refused() {
        for (url, credentials, expected) in [
            ("http://router/store/", "op:pw", "in the clear"),
            (
                "https://op:pw@router/store/",
                "op:pw",
                "do not belong in the URL",
            ),
            ("https://router/store/", "op:pw", "no way to trust"),
            ("http://127.0.0.1/store/", "no colon", "user:password"),
        ] {
            let (_dir, config) = config(url, credentials);
            let message = Dav::connect(config).unwrap_err().to_string();
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains(":pw"), "{message}");
        }
    }
}
