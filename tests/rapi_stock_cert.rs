//! Against ganeti-rapi serving Ganeti's own certificate (X.509 v1, self-signed, CN
//! ganeti.example.com, no SAN): tests/run.sh switches the sandbox to it for this module's test.

use crate::common;

use common::sandbox::sandbox_serving;
use ganeti_operator::rapi::{Fingerprint, HttpRapi, Rapi, RapiError, Trust};

#[tokio::test]
async fn stock_cert_needs_pinning_and_pinning_works() {
    let Some(sb) = sandbox_serving("stock_cert", "stock") else {
        return;
    };
    // A CA file cannot vouch for a v1 certificate: the error must point at pinning.
    let err = HttpRapi::new(sb.config(sb.ca_trust()))
        .unwrap()
        .info()
        .await
        .unwrap_err();
    match err {
        RapiError::Tls { ref hint, .. } => assert!(hint.contains("--rapi-fingerprint"), "{err}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    // Its exact fingerprint is trusted.
    let pin = Trust::Fingerprint(Fingerprint::parse(&sb.stock_fingerprint).unwrap());
    let info = HttpRapi::new(sb.config(pin)).unwrap().info().await.unwrap();
    assert_eq!(info.software_version.as_deref(), Some("3.0.2"));
    // Any other is not.
    let wrong = Trust::Fingerprint(Fingerprint::parse(&"cd".repeat(32)).unwrap());
    let err = HttpRapi::new(sb.config(wrong))
        .unwrap()
        .info()
        .await
        .unwrap_err();
    assert!(matches!(err, RapiError::Tls { .. }), "{err:?}");
}
