//! Bytes → the webhook: signature verification, then the daemon's axum router in
//! process (`tower::ServiceExt::oneshot`), the way a connection hands it a request.
//!
//! Input: one control byte, then the signature header's value up to the first `\n`,
//! then the body. Control bits: 0 sends the right signature of the body instead,
//! 1 runs a daemon with no webhook secret, 2..=4 pick the method and route.

#![no_main]

use std::sync::{Arc, OnceLock, RwLock};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use ganeti_operator::daemon::server::{AppState, router};
use ganeti_operator::daemon::status::Status;
use ganeti_operator::daemon::webhook::{SIGNATURE_HEADER, sign, verify};
use ganeti_operator::metrics::Metrics;
use http_body_util::BodyExt as _;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

const SECRET: &[u8] = b"fuzz-webhook-secret";
const ROUTES: [(&str, &str); 8] = [
    ("POST", "/hooks/git"),
    ("POST", "/hooks/git"),
    ("GET", "/hooks/git"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/status"),
    ("GET", "/metrics"),
    ("PUT", "/status"),
];

struct Shared {
    runtime: tokio::runtime::Runtime,
    status: Arc<RwLock<Status>>,
    metrics: Arc<Metrics>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime"),
        status: Arc::new(RwLock::new(Status::default())),
        metrics: Arc::new(Metrics::new()),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let (header, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };

    // verify never panics, on any bytes, and accepts what sign makes.
    let header_text = String::from_utf8_lossy(header);
    let _ = verify(SECRET, body, Some(&header_text));
    let _ = verify(header, body, Some(&header_text));
    assert!(!verify(b"", body, Some(&sign(b"", body))));
    assert!(verify(SECRET, body, Some(&sign(SECRET, body))));

    // The router, in process.
    let signed;
    let header: &[u8] = if control & 1 == 1 {
        signed = sign(SECRET, body);
        signed.as_bytes()
    } else {
        header
    };
    let has_secret = control & 2 == 0;
    let (method, path) = ROUTES[usize::from(control >> 2) % ROUTES.len()];
    let header_value = HeaderValue::from_bytes(header).ok();
    // What the handler sees: a header that is not visible ASCII is no header.
    let seen = header_value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = header_value {
        request = request.header(SIGNATURE_HEADER, value);
    }
    let request = request
        .body(Body::from(body.to_vec()))
        .expect("a valid request");

    let shared = shared();
    let (triggers, _receiver) = tokio::sync::mpsc::channel(1);
    let app = router(AppState {
        status: shared.status.clone(),
        events: Default::default(),
        metrics: shared.metrics.clone(),
        triggers,
        webhook_secret: has_secret.then(|| Arc::new(SECRET.to_vec())),
    });
    let status = shared.runtime.block_on(async move {
        let response = app
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let _ = response.into_body().collect().await;
        status
    });
    if (method, path) == ("POST", "/hooks/git") {
        let accepted = has_secret && verify(SECRET, body, seen.as_deref());
        let expected = if accepted {
            StatusCode::ACCEPTED
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "webhook answer for header {seen:?}");
    }
});
