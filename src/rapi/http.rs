//! The RAPI over HTTPS. The only code that knows URLs, methods and bodies.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Instant;

use backon::{ExponentialBuilder, Retryable as _};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::Rapi;
use super::config::{Password, RapiConfig, RetryPolicy};
use super::error::RapiError;
use super::filter::{FreezeRule, JobFilter};
use super::observer::{NoObserver, RequestObserver, RequestRecord};
use super::operation::{Operation, TagTarget, WriteOptions};
use super::tls::{self, Trust};
use super::types::{
    ClusterInfo, Group, Instance, Job, JobChange, JobId, JobStatus, Node, html_unescape,
};

mod answers;
mod filters;
mod write;

pub use answers::{error_text, job_change, job_id, job_rows};

pub struct HttpRapi {
    client: reqwest::Client,
    base: String,
    user: String,
    password: Password,
    trust: Trust,
    limiter: Arc<Semaphore>,
    retry: RetryPolicy,
    request_timeout: std::time::Duration,
    observer: Arc<dyn RequestObserver>,
}

/// One request, described before it is sent.
struct Request {
    method: Method,
    /// The route template, e.g. `/2/instances/{name}/modify`: bounded, for logs and metrics.
    route: &'static str,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    /// Safe to send twice (reads). Writes are retried only if they never left the machine.
    idempotent: bool,
}

impl Request {
    fn get(route: &'static str, path: impl Into<String>) -> Request {
        Request {
            method: Method::GET,
            route,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent: true,
        }
    }

    fn write(
        method: Method,
        route: &'static str,
        path: impl Into<String>,
        body: Option<Value>,
    ) -> Request {
        Request {
            method,
            route,
            path: path.into(),
            query: Vec::new(),
            body,
            idempotent: false,
        }
    }

    fn method_name(&self) -> &'static str {
        match self.method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            _ => "OTHER",
        }
    }
}

/// A failed attempt, and whether another is safe and useful.
struct Attempt {
    error: RapiError,
    retry: bool,
    /// The HTTP status, when an answer arrived at all.
    status: Option<u16>,
}

impl HttpRapi {
    pub fn new(config: RapiConfig) -> Result<HttpRapi, RapiError> {
        let base = config.url.trim_end_matches('/').to_owned();
        check_url(&base)?;
        let tls = tls::client_config(&config.trust)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // ganeti-rapi closes every connection; an idle pool would only hold dead sockets.
            .pool_max_idle_per_host(0)
            // A redirect would carry the credentials and a write's body to another
            // address, perhaps over plain http; the RAPI never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("ganeti-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RapiError::Config(format!("HTTP client: {e}")))?;
        Ok(HttpRapi {
            client,
            base,
            user: config.user,
            password: config.password,
            trust: config.trust,
            limiter: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
            retry: config.retry,
            request_timeout: config.request_timeout,
            observer: Arc::new(NoObserver),
        })
    }

    /// Reports every request sent (each attempt, retries included), for metrics and
    /// request counting.
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> HttpRapi {
        self.observer = observer;
        self
    }

    async fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T, RapiError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_attempts.saturating_sub(1))
            .with_jitter();
        let value = (|| self.attempt(&request))
            .retry(backoff)
            .when(|a: &Attempt| a.retry)
            .notify(|a: &Attempt, delay| {
                tracing::debug!(route = request.route, error = %a.error, ?delay, "RAPI request failed; retrying");
            })
            .await
            .map_err(|a| a.error)?;
        serde_json::from_value(value).map_err(|e| RapiError::Decode {
            method: request.method_name(),
            route: request.route,
            detail: e.to_string(),
        })
    }

    async fn attempt(&self, request: &Request) -> Result<Value, Attempt> {
        let _permit = self
            .limiter
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let result = self.send(request).await;
        self.observer.request(&RequestRecord {
            method: request.method_name(),
            route: request.route,
            status: result.as_ref().map_or_else(|a| a.status, |_| Some(200)),
            elapsed: started.elapsed(),
        });
        result
    }

    async fn send(&self, request: &Request) -> Result<Value, Attempt> {
        let method = request.method_name();
        let route = request.route;
        let mut builder = self
            .client
            .request(
                request.method.clone(),
                format!("{}{}", self.base, request.path),
            )
            .basic_auth(&self.user, Some(self.password.expose()))
            .header(reqwest::header::ACCEPT, "application/json");
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(e, request)),
        };
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(self.transport_failure(e, request)),
        };
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| Attempt {
                error: RapiError::Decode {
                    method,
                    route,
                    detail: format!("invalid JSON: {e}"),
                },
                retry: request.idempotent,
                status: Some(status.as_u16()),
            });
        }
        let error = match status {
            _ if status.is_redirection() => RapiError::Redirected {
                status: status.as_u16(),
                method,
                route,
                location: location.unwrap_or_else(|| "nowhere".to_owned()),
            },
            StatusCode::UNAUTHORIZED => RapiError::Unauthorized,
            StatusCode::FORBIDDEN => RapiError::Forbidden,
            _ => {
                let (message, explain) = error_text(&bytes);
                RapiError::Api {
                    status: status.as_u16(),
                    method,
                    route,
                    message,
                    explain,
                }
            }
        };
        let retry = request.idempotent && status.is_server_error();
        Err(Attempt {
            error,
            retry,
            status: Some(status.as_u16()),
        })
    }

    fn transport_failure(&self, error: reqwest::Error, request: &Request) -> Attempt {
        let detail = error_chain(&error);
        let method = request.method_name();
        if is_tls_failure(&error, &detail) {
            let hint = tls::hint_for(&detail, &self.trust);
            return Attempt {
                error: RapiError::Tls {
                    url: self.base.clone(),
                    detail,
                    hint,
                },
                retry: false,
                status: None,
            };
        }
        // A failed connect never sent the request, so even a write may be tried again.
        let retry = request.idempotent || error.is_connect();
        if error.is_timeout() {
            let what = format!("{method} {}", request.route);
            return Attempt {
                error: RapiError::Timeout {
                    what,
                    after: self.request_timeout,
                },
                retry,
                status: None,
            };
        }
        Attempt {
            error: RapiError::Transport {
                method,
                route: request.route,
                detail,
            },
            retry,
            status: None,
        }
    }
}

/// The summaries of the jobs that reboot an instance, or start one that was down.
const REBOOT_SUMMARIES: [&str; 2] = ["INSTANCE_REBOOT", "INSTANCE_STARTUP"];

impl HttpRapi {
    /// The jobs `qfilter` selects, with the fields planning reads. A user without write
    /// access may not PUT a query: then the bulk list is filtered with `keep` instead.
    async fn query_jobs(
        &self,
        qfilter: Value,
        keep: impl Fn(&Job) -> bool,
    ) -> Result<Vec<Job>, RapiError> {
        let mut request = Request::get("/2/query/job", "/2/query/job");
        // A query with a filter must be a PUT; it changes nothing, so it may be retried.
        request.method = Method::PUT;
        request.body = Some(json!({
            "fields": ["id", "status", "summary", "ops", "received_ts", "end_ts"],
            "qfilter": qfilter,
        }));
        match self.call::<Value>(request).await {
            Ok(answer) => Ok(job_rows(&answer)),
            Err(
                RapiError::Forbidden
                | RapiError::Api {
                    status: 404 | 405 | 501,
                    ..
                },
            ) => Ok(self.jobs().await?.into_iter().filter(keep).collect()),
            Err(e) => Err(e),
        }
    }
}

impl Rapi for HttpRapi {
    async fn info(&self) -> Result<ClusterInfo, RapiError> {
        self.call(Request::get("/2/info", "/2/info")).await
    }

    async fn features(&self) -> Result<Vec<String>, RapiError> {
        self.call(Request::get("/2/features", "/2/features")).await
    }

    async fn nodes(&self) -> Result<Vec<Node>, RapiError> {
        self.call(bulk(Request::get("/2/nodes", "/2/nodes"))).await
    }

    async fn instances(&self) -> Result<Vec<Instance>, RapiError> {
        self.call(bulk(Request::get("/2/instances", "/2/instances")))
            .await
    }

    async fn groups(&self) -> Result<Vec<Group>, RapiError> {
        self.call(bulk(Request::get("/2/groups", "/2/groups")))
            .await
    }

    async fn jobs(&self) -> Result<Vec<Job>, RapiError> {
        self.call(bulk(Request::get("/2/jobs", "/2/jobs"))).await
    }

    async fn pending_jobs(&self) -> Result<Vec<Job>, RapiError> {
        let unfinished = json!([
            "|",
            ["=", "status", "queued"],
            ["=", "status", "waiting"],
            ["=", "status", "running"],
            ["=", "status", "canceling"]
        ]);
        self.query_jobs(unfinished, |j| j.status.is_some_and(|s| !s.is_finished()))
            .await
    }

    async fn reboot_jobs(&self, instances: &[String]) -> Result<Vec<Job>, RapiError> {
        if instances.is_empty() {
            return Ok(Vec::new());
        }
        // A job's summary is `INSTANCE_REBOOT(<name>)`: matched exactly, in the list.
        let mut any = vec![json!("|")];
        for name in instances {
            for op in REBOOT_SUMMARIES {
                any.push(json!(["=[]", "summary", format!("{op}({name})")]));
            }
        }
        self.query_jobs(Value::Array(any), |j| {
            j.summary.iter().any(|s| {
                instances.iter().any(|name| {
                    REBOOT_SUMMARIES
                        .iter()
                        .any(|op| s.strip_prefix(op) == Some(&format!("({name})")))
                })
            })
        })
        .await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, RapiError> {
        let job: Job = self
            .call(Request::get("/2/jobs/{id}", format!("/2/jobs/{id}")))
            .await?;
        Ok(job.status.is_some().then_some(job))
    }

    async fn wait_for_job_change(
        &self,
        id: JobId,
        known_status: Option<JobStatus>,
        known_log_serial: Option<u64>,
    ) -> Result<Option<JobChange>, RapiError> {
        let mut request = Request::get("/2/jobs/{id}/wait", format!("/2/jobs/{id}/wait"));
        request.body = Some(json!({
            "fields": ["status"],
            "previous_job_info": known_status.map(|s| json!([s])),
            "previous_log_serial": known_log_serial,
        }));
        let answer: Value = match self.call(request).await {
            // 3.0.2 answers 500 "Can't load job file" for a job it never had, or 404.
            Err(RapiError::Api { status: 404, .. }) => return Err(RapiError::JobLost { job: id }),
            Err(RapiError::Api {
                status: 500,
                ref message,
                ..
            }) if message.contains("Can't load job file") => {
                return Err(RapiError::JobLost { job: id });
            }
            other => other?,
        };
        Ok(job_change(&answer))
    }

    async fn filters(&self) -> Result<Option<Vec<JobFilter>>, RapiError> {
        self.list_filters().await
    }

    async fn put_freeze(&self, rule: FreezeRule, why: &str) -> Result<(), RapiError> {
        self.replace_freeze(rule, why).await
    }

    async fn delete_filter(&self, uuid: &str) -> Result<(), RapiError> {
        self.remove_filter(uuid).await
    }

    async fn submit(
        &self,
        operation: &Operation,
        options: &WriteOptions,
    ) -> Result<JobId, RapiError> {
        let mut request = write::write_request(operation);
        request.query.push(("reason", options.reason.clone()));
        if options.dry_run {
            request.query.push(("dry-run", "1".into()));
        }
        let (method, route) = (request.method_name(), request.route);
        let answer: Value = self.call(request).await?;
        job_id(&answer).ok_or_else(|| RapiError::Decode {
            method,
            route,
            detail: format!("expected a job id, got {answer}"),
        })
    }
}

fn bulk(mut request: Request) -> Request {
    request.query.push(("bulk", "1".into()));
    request
}

/// A name as one path segment; Ganeti names never need more than this.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn is_tls_failure(error: &reqwest::Error, detail: &str) -> bool {
    let mut source = error.source();
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = s.source();
    }
    detail.contains("invalid peer certificate") || detail.contains("certificate")
}

/// The runtime URL gets the desired state's checks, and an error never quotes a password.
fn check_url(base: &str) -> Result<(), RapiError> {
    use crate::desired::urls::{self, Query, UrlProblem};
    let shown = urls::redact(base);
    if !base.starts_with("https://") {
        return Err(RapiError::Config(format!(
            "the RAPI URL must start with https:// (got {shown})"
        )));
    }
    match urls::check(base, Query::Refused) {
        Ok(()) => Ok(()),
        Err(UrlProblem::Credentials) => Err(RapiError::Config(format!(
            "the RAPI URL {shown} carries credentials; give the user with --rapi-user or \
             GANETI_RAPI_USER and the password in a file (--rapi-password-file)"
        ))),
        Err(problem) => Err(RapiError::Config(format!(
            "the RAPI URL {shown}: {problem}"
        ))),
    }
}

#[cfg(test)]
mod url_tests {
    use super::check_url;

    #[test]
    fn a_runtime_url_needs_https_a_host_and_no_credentials_and_is_never_quoted_whole() {
        assert!(check_url("https://10.0.0.1:5080").is_ok());
        for (url, words) in [
            ("http://10.0.0.1:5080", "must start with https://"),
            ("https://", "names no host"),
            ("https://:5080", "names no host"),
            ("https://admin:hunter2@10.0.0.1:5080", "carries credentials"),
            (
                "http://admin:hunter2@10.0.0.1:5080",
                "must start with https://",
            ),
            ("https://10.0.0.1:5080?x=1", "query or fragment"),
        ] {
            let e = check_url(url).unwrap_err().to_string();
            assert!(e.contains(words), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }
}
