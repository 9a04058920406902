//! Faults the real cluster cannot be made to produce, injected by an in-process fake RAPI.
//! What matters most: reads are retried, writes never once they may have reached Ganeti.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_rapi::{self, FakeRapi, Reply};
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::observer::RequestCounter;
use ganeti_operator::rapi::operation::TagTarget;
use ganeti_operator::rapi::{HttpRapi, Operation, Password, Rapi, RapiError, WriteOptions};

const INFO: &str = r#"{"name": "cluster.fake", "software_version": "3.0.2", "tags": null}"#;

fn add_tag() -> Operation {
    Operation::AddTags {
        target: TagTarget::Cluster,
        tags: vec!["x".into()],
    }
}

#[tokio::test]
async fn reads_are_retried_through_500_502_503() {
    for status in [500, 502, 503] {
        let fake = FakeRapi::start(move |_, n| {
            if n < 2 {
                Reply::Json(status, r#"{"code": 1, "message": "busy"}"#.into())
            } else {
                Reply::Json(200, INFO.into())
            }
        })
        .await;
        let info = HttpRapi::new(fake.config()).unwrap().info().await.unwrap();
        assert_eq!(info.name, "cluster.fake");
        assert_eq!(
            fake.received().len(),
            3,
            "two failures, then the answer ({status})"
        );
    }
}

#[tokio::test]
async fn reads_give_up_after_the_attempt_budget() {
    let fake = FakeRapi::start(|_, _| {
        Reply::Json(
            503,
            r#"{"code": 503, "message": "Service &quot;down&quot;"}"#.into(),
        )
    })
    .await;
    let err = HttpRapi::new(fake.config())
        .unwrap()
        .info()
        .await
        .unwrap_err();
    match err {
        RapiError::Api {
            status: 503,
            ref message,
            ..
        } => assert_eq!(message, "Service \"down\""),
        ref other => panic!("{other:?}"),
    }
    assert_eq!(fake.received().len(), 4);
}

#[tokio::test]
async fn a_write_answered_with_5xx_is_never_retried() {
    let fake = FakeRapi::start(|_, _| Reply::Json(502, "{}".into())).await;
    let err = HttpRapi::new(fake.config())
        .unwrap()
        .submit(&add_tag(), &WriteOptions::new("r"))
        .await
        .unwrap_err();
    assert!(matches!(err, RapiError::Api { status: 502, .. }), "{err:?}");
    assert_eq!(
        fake.received().len(),
        1,
        "a POST/PUT/DELETE must not be sent twice"
    );
}

#[tokio::test]
async fn resets_retry_reads_but_not_writes() {
    let fake = FakeRapi::start(|r, n| {
        if r.method == "GET" && n == 0 {
            Reply::Reset
        } else if r.method == "GET" {
            Reply::Json(200, INFO.into())
        } else {
            Reply::Reset
        }
    })
    .await;
    let rapi = HttpRapi::new(fake.config()).unwrap();
    rapi.info().await.unwrap();
    let err = rapi
        .submit(&add_tag(), &WriteOptions::new("r"))
        .await
        .unwrap_err();
    assert!(matches!(err, RapiError::Transport { .. }), "{err:?}");
    let writes = fake.received().iter().filter(|r| r.method != "GET").count();
    assert_eq!(
        writes, 1,
        "the reset came after the request was sent, so it is not repeated"
    );
}

#[tokio::test]
async fn a_write_whose_connect_failed_is_retried_and_received_once() {
    // Nothing listens on the port at first, so the first connect fails before anything
    // is sent; the fake starts on that port after it, and must see the write exactly once.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = fake_rapi::config_at(addr, "gnt-admin", Password::from_env("PATH").unwrap());
    config.retry.min_delay = Duration::from_millis(500);
    config.retry.max_delay = Duration::from_millis(500);
    let attempts = Arc::new(RequestCounter::default());
    let rapi = HttpRapi::new(config)
        .unwrap()
        .with_observer(attempts.clone());
    let submit =
        tokio::spawn(async move { rapi.submit(&add_tag(), &WriteOptions::new("r")).await });
    while attempts.count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fake = FakeRapi::start_on(addr, |_, _| Reply::Json(200, "7".into())).await;
    assert_eq!(submit.await.unwrap().unwrap(), 7);
    assert!(attempts.count() >= 2, "the failed connect was retried");
    let writes = fake.received().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(writes, 1, "the fake that answered received the write once");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    // A redirect to plain http, where the body and credentials would travel in clear.
    let sink = FakeRapi::start(|_, _| Reply::Json(200, "7".into())).await;
    let location = format!("http://{}/2/tags", sink.addr);
    let fake = FakeRapi::start(move |_, _| Reply::Redirect(307, location.clone())).await;
    let rapi = HttpRapi::new(fake.config()).unwrap();
    let err = rapi
        .submit(&add_tag(), &WriteOptions::new("r"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RapiError::Redirected { status: 307, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("redirects are not followed") && message.contains(&sink.addr.to_string()),
        "{message}"
    );
    assert!(
        sink.received().is_empty(),
        "nothing reached the redirect's target"
    );
    assert_eq!(fake.received().len(), 1, "and it was not retried");
    assert!(matches!(
        rapi.info().await,
        Err(RapiError::Redirected { .. })
    ));
}

#[tokio::test]
async fn hangs_time_out() {
    let fake = FakeRapi::start(|_, _| Reply::Hang).await;
    let mut config = fake.config();
    config.retry.max_attempts = 1;
    let err = HttpRapi::new(config).unwrap().info().await.unwrap_err();
    assert!(matches!(err, RapiError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let fake = FakeRapi::start(|_, _| Reply::Json(200, "{\"name\": ".into())).await;
    let mut config = fake.config();
    config.retry.max_attempts = 1;
    let err = HttpRapi::new(config).unwrap().info().await.unwrap_err();
    assert!(matches!(err, RapiError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn auth_failures_are_typed_and_not_retried() {
    let fake = FakeRapi::start(|r, _| {
        if r.method == "GET" {
            Reply::Json(401, r#"{"code": 401, "message": "Unauthorized"}"#.into())
        } else {
            Reply::Json(403, r#"{"code": 403, "message": "Forbidden"}"#.into())
        }
    })
    .await;
    let rapi = HttpRapi::new(fake.config()).unwrap();
    assert!(matches!(rapi.info().await, Err(RapiError::Unauthorized)));
    assert!(matches!(
        rapi.submit(&add_tag(), &WriteOptions::new("r")).await,
        Err(RapiError::Forbidden)
    ));
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn writes_carry_reason_and_dry_run() {
    let fake = FakeRapi::start(|_, _| Reply::Json(200, "\"42\"".into())).await;
    let rapi = HttpRapi::new(fake.config()).unwrap();
    let id = rapi
        .submit(
            &add_tag(),
            &WriteOptions::new("ganeti-operator:run:cluster").dry_run(),
        )
        .await
        .unwrap();
    assert_eq!(id, 42, "a numeric string is accepted as a job id");
    let request = &fake.received()[0];
    assert_eq!(request.method, "PUT");
    assert!(request.target.starts_with("/2/tags?"), "{}", request.target);
    assert!(
        request
            .target
            .contains("reason=ganeti-operator%3Arun%3Acluster"),
        "{}",
        request.target
    );
    assert!(request.target.contains("dry-run=1"), "{}", request.target);
}

#[tokio::test]
async fn a_lost_job_is_reported_as_lost() {
    let fake = FakeRapi::start(|r, _| {
        if r.target.contains("/wait") {
            Reply::Json(404, r#"{"code": 404, "message": "Not Found"}"#.into())
        } else {
            Reply::Json(200, r#"{"id": 77, "status": null, "ops": null}"#.into())
        }
    })
    .await;
    let rapi = HttpRapi::new(fake.config()).unwrap();
    assert!(rapi.job(77).await.unwrap().is_none());
    let err = wait_for_job(&rapi, 77, WaitOptions::default(), &Quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, RapiError::JobLost { job: 77 }), "{err:?}");
}

#[tokio::test]
async fn the_largest_timeouts_do_not_panic() {
    let fake = FakeRapi::start(|r, _| {
        if r.target.contains("/wait") {
            Reply::Json(
                200,
                r#"{"job_info": ["success"], "log_entries": []}"#.into(),
            )
        } else if r.target.starts_with("/2/jobs/") {
            Reply::Json(200, r#"{"id": 5, "status": "success", "ops": []}"#.into())
        } else {
            Reply::Json(200, INFO.into())
        }
    })
    .await;
    let mut config = fake.config();
    config.connect_timeout = Duration::MAX;
    config.request_timeout = Duration::MAX;
    config.retry.max_delay = Duration::MAX;
    let rapi = HttpRapi::new(config).unwrap();
    assert_eq!(rapi.info().await.unwrap().name, "cluster.fake");
    let options = WaitOptions {
        timeout: Duration::MAX,
        poll_interval: Duration::MAX,
    };
    let job = wait_for_job(&rapi, 5, options, &Quiet).await.unwrap();
    assert_eq!(job.id, 5);
}
