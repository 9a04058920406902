//! The operator's identity: an age X25519 identity file (`AGE-SECRET-KEY-1…`, as
//! `age-keygen` writes it) or an unencrypted SSH private key (ed25519 or RSA). It is read
//! once, from a file (systemd's `LoadCredential` hands one out), never from argv.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretBox};
use zeroize::Zeroizing;

use super::SecretsError;
use crate::secret_file::read_secret;

/// The most plaintext one secret may hold once decrypted: secrets are keys and tokens,
/// and the bound keeps a hostile source from filling memory.
pub const MAX_PLAINTEXT_BYTES: u64 = 1024 * 1024;

/// An identity that can open the secret sources. Its `Debug` shows only the path.
pub struct OperatorIdentity {
    path: PathBuf,
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl std::fmt::Debug for OperatorIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorIdentity")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OperatorIdentity {
    /// Reads and parses the identity file. Every failure names the file and says why,
    /// without quoting any of its bytes.
    pub fn from_file(path: &Path) -> Result<OperatorIdentity, SecretsError> {
        let fail = |message: String| SecretsError::Identity {
            path: path.to_owned(),
            message,
        };
        let bytes = Zeroizing::new(
            read_secret(path, "operator identity file")
                .map_err(|e| fail(strip_path(&e.to_string(), path)))?,
        );
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| fail("not text: expected an age identity or an SSH private key".into()))?;
        let identities: Vec<Box<dyn age::Identity + Send + Sync>> =
            if text.contains("AGE-SECRET-KEY-") {
                age::IdentityFile::from_buffer(text.as_bytes())
                    .map_err(|_| fail("not a valid age identity file".into()))?
                    .into_identities()
                    .map_err(|_| fail("not a valid age identity file".into()))?
            } else if text.contains("-----BEGIN") {
                match age::ssh::Identity::from_buffer(text.as_bytes(), None) {
                    Ok(age::ssh::Identity::Unencrypted(key)) => {
                        vec![Box::new(age::ssh::Identity::Unencrypted(key))]
                    }
                    Ok(age::ssh::Identity::Encrypted(_)) => {
                        return Err(fail(
                            "the SSH key is passphrase-protected; the operator runs unattended, \
                             give it an unencrypted key (or an age identity)"
                                .into(),
                        ));
                    }
                    Ok(age::ssh::Identity::Unsupported(_)) => {
                        return Err(fail(
                            "this SSH key type cannot open age files; use ed25519 or RSA".into(),
                        ));
                    }
                    Err(_) => return Err(fail("not a valid SSH private key".into())),
                }
            } else {
                return Err(fail(
                    "neither an age identity (AGE-SECRET-KEY-1…) nor an SSH private key \
                     (-----BEGIN OPENSSH PRIVATE KEY-----)"
                        .into(),
                ));
            };
        if identities.is_empty() {
            return Err(fail("holds no identity".into()));
        }
        Ok(OperatorIdentity {
            path: path.to_owned(),
            identities,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decrypts an age file (binary or armored) into memory that is zeroed on drop.
    /// `source` names the file in errors.
    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        source: &Path,
    ) -> Result<SecretBox<Vec<u8>>, SecretsError> {
        let decryptor =
            age::Decryptor::new(age::armor::ArmoredReader::new(ciphertext)).map_err(|e| {
                SecretsError::Source {
                    path: source.to_owned(),
                    message: format!("not a readable age file: {e}"),
                }
            })?;
        let reader = decryptor
            .decrypt(
                self.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map_err(|e| SecretsError::WrongIdentity {
                path: source.to_owned(),
                identity: self.path.clone(),
                message: e.to_string(),
            })?;
        // Allocated once at its bound: a growing Vec would free copies of the plaintext
        // without zeroing them.
        let mut plain = SecretBox::new(Box::new(Vec::with_capacity(
            MAX_PLAINTEXT_BYTES as usize + 1,
        )));
        let read = reader
            .take(MAX_PLAINTEXT_BYTES + 1)
            .read_to_end(secrecy::ExposeSecretMut::expose_secret_mut(&mut plain));
        if let Err(e) = read {
            return Err(SecretsError::Source {
                path: source.to_owned(),
                message: format!("the encrypted body does not decrypt: {e}"),
            });
        }
        if plain.expose_secret().len() as u64 > MAX_PLAINTEXT_BYTES {
            return Err(SecretsError::Source {
                path: source.to_owned(),
                message: format!("decrypts to more than {MAX_PLAINTEXT_BYTES} bytes"),
            });
        }
        Ok(plain)
    }

    /// Whether the identity opens the file's header (no body is decrypted): the check
    /// made before anything is published.
    pub fn check_opens(&self, ciphertext: &[u8], source: &Path) -> Result<(), SecretsError> {
        let decryptor =
            age::Decryptor::new(age::armor::ArmoredReader::new(ciphertext)).map_err(|e| {
                SecretsError::Source {
                    path: source.to_owned(),
                    message: format!("not a readable age file: {e}"),
                }
            })?;
        decryptor
            .decrypt(
                self.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map(drop)
            .map_err(|e| SecretsError::WrongIdentity {
                path: source.to_owned(),
                identity: self.path.clone(),
                message: e.to_string(),
            })
    }
}

/// `read_secret`'s messages start with the path, which the caller's error names already.
fn strip_path(message: &str, path: &Path) -> String {
    message.replace(&format!(" {}", path.display()), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_clear_and_never_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = OperatorIdentity::from_file(&missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing") && e.contains("No such file"), "{e}");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hunter2-not-a-key\n").unwrap();
        let e = OperatorIdentity::from_file(&junk).unwrap_err().to_string();
        assert!(e.contains("neither an age identity"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let bad_age = dir.path().join("bad-age");
        std::fs::write(&bad_age, "AGE-SECRET-KEY-1hunter2\n").unwrap();
        let e = OperatorIdentity::from_file(&bad_age)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a valid age identity") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn an_x25519_identity_round_trips() {
        use std::io::Write as _;
        use std::str::FromStr as _;
        let key = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        std::fs::write(
            &path,
            format!(
                "# test\n{}\n",
                secrecy::ExposeSecret::expose_secret(&key.to_string())
            ),
        )
        .unwrap();
        let id = OperatorIdentity::from_file(&path).unwrap();
        let recipient = age::x25519::Recipient::from_str(&key.to_public().to_string()).unwrap();
        let mut out = vec![];
        let mut w =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .unwrap()
                .wrap_output(&mut out)
                .unwrap();
        w.write_all(b"plain").unwrap();
        w.finish().unwrap();
        assert_eq!(
            id.decrypt(&out, Path::new("s.age"))
                .unwrap()
                .expose_secret(),
            b"plain"
        );
        let other = age::x25519::Identity::generate();
        std::fs::write(
            &path,
            secrecy::ExposeSecret::expose_secret(&other.to_string()).as_bytes(),
        )
        .unwrap();
        let wrong = OperatorIdentity::from_file(&path).unwrap();
        let e = wrong.check_opens(&out, Path::new("s.age")).unwrap_err();
        assert!(matches!(e, SecretsError::WrongIdentity { .. }), "{e}");
    }
}
