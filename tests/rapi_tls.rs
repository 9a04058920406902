//! Trust: a CA file or a pinned fingerprint, never "accept anything".

use crate::common;

use common::sandbox::sandbox_serving;
use ganeti_operator::rapi::{Fingerprint, HttpRapi, Rapi, RapiError, Trust};

#[tokio::test]
async fn the_right_pin_is_accepted_and_a_wrong_one_refused() {
    let Some(sb) = sandbox_serving("tls_pinning", "ca") else {
        return;
    };
    let pinned = HttpRapi::new(sb.config(sb.pinned_trust())).unwrap();
    assert_eq!(pinned.info().await.unwrap().name, "cluster.gnt.test");

    let wrong = Trust::Fingerprint(Fingerprint::parse(&"ab".repeat(32)).unwrap());
    let err = HttpRapi::new(sb.config(wrong))
        .unwrap()
        .info()
        .await
        .unwrap_err();
    match err {
        RapiError::Tls { detail, hint, .. } => {
            assert!(
                detail.contains(&sb.fingerprint),
                "the error shows the fingerprint seen: {detail}"
            );
            assert!(hint.contains("pinned"), "{hint}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_certificate_is_refused() {
    let Some(sb) = sandbox_serving("tls_other_ca", "ca") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other_ca = rcgen::generate_simple_self_signed(vec!["other-ca".into()]).unwrap();
    let path = dir.path().join("other-ca.pem");
    std::fs::write(&path, other_ca.cert.pem()).unwrap();
    let err = HttpRapi::new(sb.config(Trust::CaFile(path)))
        .unwrap()
        .info()
        .await
        .unwrap_err();
    assert!(matches!(err, RapiError::Tls { .. }), "{err:?}");
}

#[test]
fn plain_http_is_refused() {
    let config = ganeti_operator::rapi::RapiConfig::new(
        "http://127.0.0.1:5080",
        "u",
        ganeti_operator::rapi::Password::from_env("PATH").unwrap(),
        Trust::Fingerprint(Fingerprint::parse(&"00".repeat(32)).unwrap()),
    );
    assert!(matches!(HttpRapi::new(config), Err(RapiError::Config(_))));
}
