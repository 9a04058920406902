//! How the client trusts the RAPI's certificate: a CA file, or a pinned SHA-256 fingerprint.
//! Stock Ganeti clusters serve an X.509 v1 self-signed certificate without a SAN, which no
//! CA-based verifier accepts; pinning that exact certificate is how they are trusted.
//! There is no mode that accepts any certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature_with_raw_key};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

use super::error::RapiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Verify the chain and host name against this CA bundle (PEM).
    CaFile(PathBuf),
    /// Accept exactly the certificate with this SHA-256 fingerprint (of its DER bytes).
    Fingerprint(Fingerprint),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Accepts `ab12…`, `AB:12:…` (as `openssl x509 -fingerprint -sha256` prints it, with
    /// or without its `sha256 Fingerprint=`), and `sha256sum`'s line (`ab12…  -`).
    pub fn parse(text: &str) -> Result<Fingerprint, RapiError> {
        let value = text.trim();
        let value = value.rsplit_once('=').map_or(value, |(_, v)| v);
        let value = value.split_whitespace().next().unwrap_or_default();
        let hex_digits: String = value
            .trim_start_matches("sha256:")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let bytes = hex::decode(&hex_digits).ok().filter(|b| b.len() == 32).ok_or_else(|| {
            RapiError::Config(format!(
                "{text:?} is not a SHA-256 fingerprint (64 hex digits); get it with `openssl x509 -in rapi.pem -outform der | sha256sum`"
            ))
        })?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        Ok(Fingerprint(out))
    }

    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where clients of public services (HTTPS health checks, notification targets) find the
/// CAs they trust.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The rustls configuration of a client of public services: the system's CAs when it
/// speaks TLS, else one that trusts nothing (reqwest wants a configuration all the same).
/// Verification is never turned off.
pub fn system_client_config(wants_tls: bool) -> Result<ClientConfig, RapiError> {
    if wants_tls {
        return client_config(&Trust::CaFile(SYSTEM_CA_BUNDLE.into()));
    }
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| RapiError::Config(format!("TLS setup: {e}")))
        .map(|builder| {
            builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
}

/// The rustls configuration for a trust choice.
pub fn client_config(trust: &Trust) -> Result<ClientConfig, RapiError> {
    let provider = provider();
    let tls_error = |e: rustls::Error| RapiError::Config(format!("TLS setup: {e}"));
    match trust {
        Trust::CaFile(path) => {
            let roots = load_roots(path)?;
            Ok(ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(tls_error)?
                .with_root_certificates(roots)
                .with_no_client_auth())
        }
        Trust::Fingerprint(pin) => {
            let verifier = PinnedCertificate {
                pin: *pin,
                provider: provider.clone(),
            };
            // TLS 1.3 only: its handshake signature can be checked against the raw key of a
            // v1 certificate; ganeti-rapi on OpenSSL 3 negotiates 1.3.
            Ok(ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(tls_error)?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth())
        }
    }
}

fn load_roots(path: &Path) -> Result<RootCertStore, RapiError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        RapiError::Config(format!("cannot read the CA file {}: {e}", path.display()))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        roots.add(cert).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(RapiError::Config(format!(
            "the CA file {} holds no certificate",
            path.display()
        )));
    }
    Ok(roots)
}

#[derive(Debug)]
struct PinnedCertificate {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

/// Carries the fingerprint that was seen, so the error can say what to pin if it is right.
#[derive(Debug)]
struct PinMismatch {
    seen: Fingerprint,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's certificate does not match the pinned fingerprint (it has {})",
            self.seen
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity.as_ref());
        // Not secret material, so a plain comparison leaks nothing worth having.
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch { seen })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS 1.2 is not offered with a pinned certificate".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // webpki cannot parse v1 certificates, so take the key out with x509-cert.
        let bad = |e: x509_cert::der::Error| {
            rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                Arc::new(e),
            )))
        };
        let parsed = x509_cert::Certificate::from_der(cert.as_ref()).map_err(bad)?;
        let spki = parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(bad)?;
        verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki),
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A person's next step for a TLS failure, judged from rustls's words.
pub fn hint_for(detail: &str, trust: &Trust) -> String {
    if detail.contains("UnsupportedCertVersion") || detail.contains("CaUsedAsEndEntity") {
        "this looks like Ganeti's stock self-signed certificate, which cannot be checked against a CA; \
         pin it instead with --rapi-fingerprint (GANETI_RAPI_FINGERPRINT), the SHA-256 of \
         `openssl x509 -in /var/lib/ganeti/rapi.pem -outform der | sha256sum`"
            .into()
    } else if detail.contains("pinned fingerprint") || detail.contains("PinMismatch") {
        "if the cluster's certificate was renewed on purpose, update the pinned fingerprint".into()
    } else if detail.contains("UnknownIssuer") {
        match trust {
            Trust::CaFile(p) => format!("the certificate is not signed by a CA in {}", p.display()),
            Trust::Fingerprint(_) => "the certificate is not the pinned one".into(),
        }
    } else if detail.contains("NotValidForName") || detail.contains("not valid for name") {
        "the certificate does not name this host; use a host name from its SAN, or pin the certificate".into()
    } else {
        "check --rapi-ca-file or --rapi-fingerprint".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_both_notations_and_as_the_hinted_commands_print_them() {
        let plain = "2eeb8b37ac8fd7f754232a864d4ca32571cc4361269a35c5b5efd396cda1ef3d";
        let colons = "2E:EB:8B:37:AC:8F:D7:F7:54:23:2A:86:4D:4C:A3:25:71:CC:43:61:26:9A:35:C5:B5:EF:D3:96:CD:A1:EF:3D";
        assert_eq!(
            Fingerprint::parse(plain).unwrap(),
            Fingerprint::parse(colons).unwrap()
        );
        assert!(Fingerprint::parse("abc").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
        // What the commands the hints name print, pasted whole.
        for pasted in [
            format!("{plain}  -\n"),
            format!("sha256 Fingerprint={colons}\n"),
        ] {
            assert_eq!(
                Fingerprint::parse(&pasted).unwrap(),
                Fingerprint::parse(plain).unwrap(),
                "{pasted:?}"
            );
        }
    }
}
