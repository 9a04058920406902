//! Signed webhooks as GitHub, Gitea and Forgejo send them: `X-Hub-Signature-256:
//! sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time.

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The header value for `body`, as a sender computes it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is a valid signature of `body` under `secret`. An empty secret
/// verifies nothing: anyone can compute a signature with the empty key.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Some(signature) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(signature) = hex::decode(signature) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_right_signature() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let header = sign(b"s3cret", body);
        assert!(verify(b"s3cret", body, Some(&header)));
        assert!(!verify(b"other", body, Some(&header)));
        assert!(!verify(b"s3cret", b"tampered", Some(&header)));
        assert!(!verify(b"s3cret", body, None));
        assert!(!verify(b"s3cret", body, Some("sha256=zz")));
        assert!(!verify(
            b"s3cret",
            body,
            Some(header.trim_start_matches("sha256="))
        ));
    }

    #[test]
    fn the_empty_key_verifies_nothing() {
        let body = b"{}";
        assert!(!verify(b"", body, Some(&sign(b"", body))));
    }

    #[test]
    fn matches_githubs_documented_example() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
