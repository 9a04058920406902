//! Connection settings of the real Ganeti cluster that tests/harness/ganeti-sandbox.sh
//! started, read from the environment its `env` command prints.

use std::path::PathBuf;

use ganeti_operator::rapi::{Fingerprint, HttpRapi, Password, RapiConfig, Trust};

pub struct Sandbox {
    pub url: String,
    pub user: String,
    pub password_file: PathBuf,
    pub readonly_user: String,
    pub readonly_password_file: PathBuf,
    pub ca_file: PathBuf,
    pub fingerprint: String,
    pub stock_fingerprint: String,
    pub nodes: Vec<String>,
    pub cert: String,
    /// Held as long as the test holds the sandbox.
    _exclusive: Exclusive,
}

/// The sandbox's share held by the tests of one module (one source file): while any of
/// them holds it, tests of other modules wait. Tests were once separate binaries, run one
/// after the other, and each file's tests assume the cluster is theirs (a chaos test
/// restarts ganeti-rapi; the e2e tests count jobs and VMs).
struct Exclusive {
    module: &'static str,
}

/// Which module holds the sandbox, and how many of its tests.
static HOLDER: std::sync::Mutex<(Option<&'static str>, usize)> = std::sync::Mutex::new((None, 0));
static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

impl Exclusive {
    #[track_caller]
    fn take() -> Exclusive {
        let module = std::panic::Location::caller().file();
        // A test that panicked while holding the lock poisons nothing we rely on.
        let mut holder = HOLDER.lock().unwrap_or_else(|e| e.into_inner());
        while holder.0.is_some_and(|m| m != module) {
            holder = RELEASED.wait(holder).unwrap_or_else(|e| e.into_inner());
        }
        *holder = (Some(module), holder.1 + 1);
        Exclusive { module }
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        let mut holder = HOLDER.lock().unwrap_or_else(|e| e.into_inner());
        debug_assert_eq!(holder.0, Some(self.module));
        holder.1 -= 1;
        if holder.1 == 0 {
            *holder = (None, 0);
            RELEASED.notify_all();
        }
    }
}

/// The sandbox with its client, when it runs 3 nodes (`GNT_NODES=3`), for the `threenode_*`
/// tests; otherwise `None`, as [`sandbox`] says why.
#[track_caller]
pub fn three_nodes(test: &str) -> Option<(Sandbox, HttpRapi)> {
    let sandbox = sandbox(test)?;
    if sandbox.nodes.len() < 3 {
        super::skip::unavailable(
            test,
            &format!("the sandbox has {} node(s), not 3", sandbox.nodes.len()),
            "`GNT_NODES=3 tests/harness/ganeti-sandbox.sh up`",
        );
        return None;
    }
    let client = sandbox.client();
    Some((sandbox, client))
}

/// The sandbox, or `None` when it is not up (see [`super::skip::unavailable`]: under CI
/// that fails the test). The caller's module holds the sandbox while the result lives
/// (see [`Exclusive`]).
#[track_caller]
pub fn sandbox(test: &str) -> Option<Sandbox> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(url) = var("GANETI_RAPI_URL") else {
        super::skip::unavailable(
            test,
            "no Ganeti sandbox: GANETI_RAPI_URL is not set",
            "tests/run.sh brings it up; by hand, `eval \"$(tests/harness/ganeti-sandbox.sh env)\"` after `up`",
        );
        return None;
    };
    let need = |name: &str| var(name).unwrap_or_else(|| panic!("{name} is not set"));
    let exclusive = Exclusive::take();
    Some(Sandbox {
        url,
        user: need("GANETI_RAPI_USER"),
        password_file: need("GANETI_RAPI_PASSWORD_FILE").into(),
        readonly_user: need("GANETI_RAPI_READONLY_USER"),
        readonly_password_file: need("GANETI_RAPI_READONLY_PASSWORD_FILE").into(),
        ca_file: need("GANETI_SANDBOX_CA_FILE").into(),
        fingerprint: need("GANETI_SANDBOX_FINGERPRINT"),
        stock_fingerprint: need("GANETI_SANDBOX_STOCK_FINGERPRINT"),
        nodes: need("GANETI_SANDBOX_NODES")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        cert: need("GANETI_SANDBOX_CERT"),
        _exclusive: exclusive,
    })
}

/// The sandbox, only while it serves `cert` ("ca" or "stock"; tests/run.sh switches
/// between them and runs each module's tests in their phase).
#[track_caller]
pub fn sandbox_serving(test: &str, cert: &str) -> Option<Sandbox> {
    let sandbox = sandbox(test)?;
    if sandbox.cert != cert {
        super::skip::unavailable(
            test,
            &format!(
                "the sandbox serves the `{}` certificate, not `{cert}`",
                sandbox.cert
            ),
            &format!("run `tests/harness/ganeti-sandbox.sh cert {cert}`"),
        );
        return None;
    }
    Some(sandbox)
}

impl Sandbox {
    pub fn config(&self, trust: Trust) -> RapiConfig {
        RapiConfig::new(
            &self.url,
            &self.user,
            Password::from_file(&self.password_file).unwrap(),
            trust,
        )
    }

    pub fn ca_trust(&self) -> Trust {
        Trust::CaFile(self.ca_file.clone())
    }

    pub fn pinned_trust(&self) -> Trust {
        Trust::Fingerprint(Fingerprint::parse(&self.fingerprint).unwrap())
    }

    /// The client as the operator builds it: CA file when the sandbox serves our CA's
    /// certificate, the pinned fingerprint when it serves Ganeti's stock one.
    pub fn client(&self) -> HttpRapi {
        let trust = if self.cert == "stock" {
            self.pinned_trust()
        } else {
            self.ca_trust()
        };
        HttpRapi::new(self.config(trust)).unwrap()
    }

    pub fn readonly_client(&self) -> HttpRapi {
        let password = Password::from_file(&self.readonly_password_file).unwrap();
        HttpRapi::new(RapiConfig::new(
            &self.url,
            &self.readonly_user,
            password,
            self.ca_trust(),
        ))
        .unwrap()
    }

    pub fn master(&self) -> &str {
        &self.nodes[0]
    }
}

/// A name no other test or run uses.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}.gnt.test", std::process::id())
}
