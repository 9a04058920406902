//! Secrets against the real `age` CLI (Debian's Go age): sources made with `age -r` and
//! `age -R`, every published copy opened with `age -d -i` and the host's private SSH key
//! (ed25519 and RSA), no churn across reruns, re-encryption of only what changed,
//! removal of a host's directory, a wrong identity that publishes nothing, and a
//! plaintext canary that is never found on disk, in logs, metrics, /status or JSON.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ganeti_operator::backoff::BackoffPolicy;
use ganeti_operator::daemon::log_progress::LogProgress;
use ganeti_operator::daemon::status::Status;
use ganeti_operator::desired::model::DesiredState;
use ganeti_operator::metrics::Metrics;
use ganeti_operator::rapi::jobs::WaitOptions;
use ganeti_operator::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};
use ganeti_operator::reconcile::cycle::{self, ApplyOptions, CycleError, Report};
use ganeti_operator::reconcile::execute::{ActionResult, ExecuteOptions};
use ganeti_operator::reconcile::plan::ActionKind;
use ganeti_operator::reconcile::reason::RunId;
use ganeti_operator::reconcile::render;
use ganeti_operator::secrets::{OperatorIdentity, SecretsContext};
use ganeti_operator::store::Store;

const TEST: &str = "secrets_age";
const CANARY: &str = "CANARY-7f3a9c1e-plaintext-never-on-disk";
const NODE: &str = MEMORY_NODE;
const WEB: &str = "web1.mem.test";

fn tools() -> bool {
    common::skip::tool("age", TEST)
        && common::skip::tool("age-keygen", TEST)
        && common::skip::tool("ssh-keygen", TEST)
}

/// Every log line of this test binary, at debug level, for the canary check.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogSink;
impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| LogSink)
            .finish(),
    );
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out.stdout
}

/// `age ARGS -o out`, the plaintext on stdin so it never touches the disk.
fn age_encrypt(args: &[&str], plaintext: &str, out: &Path) {
    let mut child = Command::new("age")
        .args(args)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plaintext.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn age_decrypt(key: &Path, file: &Path) -> Result<String, String> {
    let out = Command::new("age")
        .args(["-d", "-i"])
        .arg(key)
        .arg(file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ssh_key(dir: &Path, name: &str, kind: &[&str]) -> (PathBuf, String) {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    run(Command::new("ssh-keygen")
        .args(kind)
        .args(["-N", "", "-q", "-C", name, "-f"])
        .arg(&path));
    let public = std::fs::read_to_string(format!("{}.pub", path.display())).unwrap();
    (path, public.trim().to_owned())
}

fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    run(Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .stderr(Stdio::null()));
    let public = run(Command::new("age-keygen").arg("-y").arg(&path));
    (path, String::from_utf8(public).unwrap().trim().to_owned())
}

struct Work {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    keys: PathBuf,
    desired: PathBuf,
    store: Store,
    state: PathBuf,
    metrics: Arc<Metrics>,
    outputs: Mutex<Vec<String>>,
    plans: Mutex<Vec<String>>,
    notify: Option<ganeti_operator::secrets::Notify>,
    /// The jobs the last run submitted.
    jobs: Mutex<Vec<ganeti_operator::rapi::memory::JobRecord>>,
}

impl Work {
    fn new() -> Work {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        for d in ["keys", "desired/secrets", "store", "state"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        Work {
            keys: root.join("keys"),
            desired: root.join("desired"),
            store: Store::open(root.join("store")).unwrap(),
            state: root.join("state"),
            root,
            _tmp: tmp,
            metrics: Arc::new(Metrics::new()),
            outputs: Mutex::new(Vec::new()),
            plans: Mutex::new(Vec::new()),
            notify: None,
            jobs: Mutex::new(Vec::new()),
        }
    }

    fn write_state(&self, node_key: &str, web_key: Option<&str>, admin: &str) {
        let web = match web_key {
            Some(key) => format!(
                "instances:\n  {WEB}: {{class: web, primaryNode: {NODE}, hostKey: '{key}', secrets: [extra]}}\n"
            ),
            None => String::new(),
        };
        let yaml = format!(
            "cluster: {{name: {MEMORY_CLUSTER}, hypervisor: fake, defaultDiskTemplate: diskless, store: {{baseUrl: 'http://127.0.0.1:9'}}}}
classes:
  ganeti-node: {{image: sha256-0100000000000000000000000000000000000000000000000000000000000000, secrets: [rapi-users]}}
  web: {{image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {{memory: 128M, vcpus: 1}}, secrets: [app-env]}}
secrets:
  rapi-users: {{file: secrets/rapi-users.age}}
  app-env: {{file: secrets/app-env.age}}
  extra: {{file: secrets/extra.age, recipients: ['{admin}']}}
nodes:
  {NODE}: {{class: ganeti-node, role: master, hostKey: '{node_key}'}}
{web}"
        );
        std::fs::write(self.desired.join("state.yaml"), yaml).unwrap();
    }

    fn desired_state(&self) -> DesiredState {
        let validation = ganeti_operator::desired::validate_dir(&self.desired).unwrap();
        validation
            .state
            .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics))
    }

    fn source(&self, name: &str) -> PathBuf {
        self.desired.join("secrets").join(format!("{name}.age"))
    }

    fn secret_file(&self, host: &str, name: &str) -> PathBuf {
        self.store
            .local_root()
            .unwrap()
            .join("secrets")
            .join(host)
            .join(format!("{name}.age"))
    }

    /// Every file under the store's secrets/, with its bytes and mtime.
    fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
        let mut out = BTreeMap::new();
        for host in std::fs::read_dir(self.store.local_root().unwrap().join("secrets")).unwrap() {
            let host = host.unwrap().path();
            if !host.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&host).unwrap() {
                let file = file.unwrap().path();
                let meta = std::fs::metadata(&file).unwrap();
                out.insert(
                    file.clone(),
                    (std::fs::read(&file).unwrap(), meta.modified().unwrap()),
                );
            }
        }
        out
    }

    async fn reconcile(&self, identity: &Path) -> Result<Report, CycleError> {
        let desired = self.desired_state();
        let identity = Arc::new(OperatorIdentity::from_file(identity).unwrap());
        let context = SecretsContext {
            sources: ganeti_operator::secrets::SourceFiles::Dir(self.desired.clone()),
            identity: Some(identity),
            notify: self.notify.clone(),
        };
        let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::from_millis(5));
        let progress = LogProgress {
            metrics: self.metrics.clone(),
        };
        let result = cycle::apply(
            &rapi,
            &desired,
            ApplyOptions {
                run: &RunId::new(SystemTime::now()),
                execute: ExecuteOptions {
                    max_parallel: 4,
                    wait: WaitOptions {
                        timeout: Duration::from_secs(10),
                        poll_interval: Duration::from_millis(10),
                    },
                },
                backoff: BackoffPolicy::default(),
                history_file: &self.state.join("history.json"),
                store: Some(&self.store),
                secrets: Some(&context),
                scope: &ganeti_operator::reconcile::plan::scope::EVERYTHING,
                on_plan: &|plan| {
                    let text = render::text(plan, None, false);
                    self.outputs.lock().unwrap().push(text.clone());
                    self.plans.lock().unwrap().push(text);
                },
                fresh: None,
                events: &ganeti_operator::event::DISCARD,
            },
            &progress,
            &AtomicBool::new(false),
        )
        .await;
        *self.jobs.lock().unwrap() = rapi.records();
        // What `--output json`, /status and /metrics would show of this run.
        let mut outputs = self.outputs.lock().unwrap();
        match &result {
            Ok(report) => {
                outputs.push(render::json(&report.plan, None).to_string());
                outputs.push(render::json(&report.after, None).to_string());
                for o in &report.outcomes {
                    if let ActionResult::Failed(e) = &o.result {
                        outputs.push(e.to_string());
                    }
                }
                let mut status = Status::default();
                status.record_plan(&desired, &report.after, "dir:test", SystemTime::now());
                outputs.push(serde_json::to_string(&status).unwrap());
                ganeti_operator::daemon::record::report(&self.metrics, report, &status);
                outputs.push(self.metrics.encode());
            }
            Err(e) => outputs.push(format!("{e} {e:?}")),
        }
        result
    }
}

/// The plan as `reconcile --dry-run` prints it, pinned: what the last run planned.
fn assert_plan_golden(w: &Work, name: &str) {
    let text = w.plans.lock().unwrap().last().cloned().unwrap();
    common::assert_golden(
        &common::project_root().join(format!("tests/golden/secrets/{name}")),
        &text,
    );
}

fn secret_actions(report: &Report) -> Vec<String> {
    report
        .plan
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ActionKind::SecretPublish | ActionKind::SecretRekey | ActionKind::SecretRemove
            )
        })
        .map(|a| format!("{} {} ({})", a.kind.symbol(), a.object.name, a.reason))
        .collect()
}

/// Files whose bytes or mtime differ between two snapshots, or that appeared or went.
fn changed(
    before: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
    after: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
    root: &Path,
) -> Vec<String> {
    let mut paths: Vec<&PathBuf> = before.keys().chain(after.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect()
}

fn grep_tree(dir: &Path, needle: &[u8], hits: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        // The build tree is large and holds no run's output.
        if kind.is_dir() && (path.ends_with("target") || path.ends_with(".git")) {
            continue;
        }
        if kind.is_dir() {
            grep_tree(&path, needle, hits);
        } else if kind.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_secrets_open_with_real_age_and_reruns_write_nothing() {
    if !tools() {
        return;
    }
    capture_logs();
    let started = SystemTime::now();
    let w = Work::new();
    let (operator, operator_pub) = age_key(&w.keys, "operator.agekey");
    let (admin, admin_pub) = age_key(&w.keys, "admin.agekey");
    let (node_key, node_pub) = ssh_key(&w.keys, "node_host_ed25519_key", &["-t", "ed25519"]);
    let (web_key, web_pub) = ssh_key(&w.keys, "web_host_rsa_key", &["-t", "rsa", "-b", "3072"]);
    let plain = |name: &str| format!("{name}={CANARY}\n");
    for name in ["rapi-users", "app-env", "extra"] {
        age_encrypt(&["-r", &operator_pub], &plain(name), &w.source(name));
    }
    w.write_state(&node_pub, Some(&web_pub), &admin_pub);

    // First run: every host gets its class's secrets and its own.
    let first = w.reconcile(&operator).await.unwrap();
    assert_eq!(
        secret_actions(&first),
        [
            "+ app-env (new host)",
            "+ extra (new host)",
            "+ rapi-users (new host)"
        ]
    );
    assert!(
        !first
            .after
            .actions
            .iter()
            .any(|a| a.phase == ganeti_operator::reconcile::plan::Phase::Secrets),
        "{:?}",
        first.after
    );
    assert_eq!(
        age_decrypt(&node_key, &w.secret_file(NODE, "rapi-users")).unwrap(),
        plain("rapi-users")
    );
    assert_eq!(
        age_decrypt(&web_key, &w.secret_file(WEB, "app-env")).unwrap(),
        plain("app-env")
    );
    assert_eq!(
        age_decrypt(&web_key, &w.secret_file(WEB, "extra")).unwrap(),
        plain("extra")
    );
    assert_eq!(
        age_decrypt(&admin, &w.secret_file(WEB, "extra")).unwrap(),
        plain("extra"),
        "the admin recipient opens it too"
    );
    assert!(
        age_decrypt(&node_key, &w.secret_file(WEB, "app-env")).is_err(),
        "another host's key does not"
    );
    assert!(!w.secret_file(NODE, "app-env").exists());
    assert_plan_golden(&w, "01-new-hosts.txt");

    // Second run: nothing planned, nothing written, not even an mtime.
    let before = w.snapshot();
    std::thread::sleep(Duration::from_millis(20));
    let second = w.reconcile(&operator).await.unwrap();
    assert!(
        secret_actions(&second).is_empty(),
        "{:?}",
        secret_actions(&second)
    );
    assert!(changed(&before, &w.snapshot(), w.store.local_root().unwrap()).is_empty());

    // The node's key changes: only the node's files are encrypted again.
    let (node_key, node_pub) = ssh_key(&w.keys, "node_host_ed25519_key", &["-t", "ed25519"]);
    w.write_state(&node_pub, Some(&web_pub), &admin_pub);
    let before = w.snapshot();
    let rekey = w.reconcile(&operator).await.unwrap();
    assert_eq!(secret_actions(&rekey), ["~ rapi-users (key changed)"]);
    assert_plan_golden(&w, "02-key-changed.txt");
    let node_dir = format!("secrets/{NODE}/");
    assert_eq!(
        changed(&before, &w.snapshot(), w.store.local_root().unwrap()),
        [
            format!("{node_dir}manifest.json"),
            format!("{node_dir}rapi-users.age")
        ]
    );
    assert_eq!(
        age_decrypt(&node_key, &w.secret_file(NODE, "rapi-users")).unwrap(),
        plain("rapi-users")
    );

    // One source changes: only that secret's files.
    age_encrypt(
        &["-r", &operator_pub],
        &format!("v2 {}", plain("app-env")),
        &w.source("app-env"),
    );
    let before = w.snapshot();
    let source = w.reconcile(&operator).await.unwrap();
    assert_eq!(secret_actions(&source), ["~ app-env (source changed)"]);
    assert_plan_golden(&w, "03-source-changed.txt");
    let web_dir = format!("secrets/{WEB}/");
    assert_eq!(
        changed(&before, &w.snapshot(), w.store.local_root().unwrap()),
        [
            format!("{web_dir}app-env.age"),
            format!("{web_dir}manifest.json")
        ]
    );
    assert_eq!(
        age_decrypt(&web_key, &w.secret_file(WEB, "app-env")).unwrap(),
        format!("v2 {}", plain("app-env"))
    );

    // A wrong identity: the run fails clearly, nothing is published, nothing touched.
    age_encrypt(
        &["-r", &operator_pub],
        &format!("v3 {}", plain("app-env")),
        &w.source("app-env"),
    );
    let (stranger, _) = age_key(&w.keys, "stranger.agekey");
    let before = w.snapshot();
    let err = w
        .reconcile(&stranger)
        .await
        .err()
        .expect("a wrong identity fails the run");
    let message = err.to_string();
    assert!(
        message.contains("cannot be opened with the operator identity")
            && message.contains("app-env.age"),
        "{message}"
    );
    assert!(changed(&before, &w.snapshot(), w.store.local_root().unwrap()).is_empty());

    // The host leaves the desired state: its directory goes.
    w.write_state(&node_pub, None, &admin_pub);
    let gone = w.reconcile(&operator).await.unwrap();
    assert_eq!(
        secret_actions(&gone),
        [
            "- app-env (host left the desired state)",
            "- extra (host left the desired state)"
        ]
    );
    assert!(
        !w.store
            .local_root()
            .unwrap()
            .join("secrets")
            .join(WEB)
            .exists()
    );
    assert_plan_golden(&w, "04-host-removed.txt");
    assert!(
        w.store
            .local_root()
            .unwrap()
            .join("secrets")
            .join(NODE)
            .join("manifest.json")
            .exists()
    );

    // The canary: nowhere on disk (work dir with store, state and sources; the temp
    // dir's files made during the test; the cwd), nor in anything shown.
    let mut hits = Vec::new();
    grep_tree(&w.root, CANARY.as_bytes(), &mut hits);
    grep_tree(
        &std::env::current_dir().unwrap(),
        CANARY.as_bytes(),
        &mut hits,
    );
    for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        let fresh = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|m| m >= started);
        if fresh && entry.path() != w.root {
            if entry.path().is_dir() {
                grep_tree(&entry.path(), CANARY.as_bytes(), &mut hits);
            } else if std::fs::read(entry.path())
                .is_ok_and(|b| b.windows(CANARY.len()).any(|x| x == CANARY.as_bytes()))
            {
                hits.push(entry.path());
            }
        }
    }
    // This test's own source file names the canary; nothing else may.
    hits.retain(|p| {
        !p.ends_with("tests/secrets_age.rs")
            && !p.starts_with(common::project_root().join("target"))
    });
    assert!(hits.is_empty(), "the canary is on disk: {hits:?}");
    let shown = w.outputs.lock().unwrap().join("\n");
    assert!(shown.contains("secret app-env -> web1.mem.test"), "{shown}");
    assert!(shown.contains("secrets_stale"), "{shown}");
    assert!(!shown.contains(CANARY), "the canary was shown");
    let logs = String::from_utf8(LOGS.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("secret step done"), "the run logged: {logs}");
    assert!(!logs.contains(CANARY), "the canary was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_operator_identity_reads_sources_made_with_age_dash_capital_r() {
    if !tools() {
        return;
    }
    let w = Work::new();
    let (operator, operator_pub) = ssh_key(&w.keys, "operator_ed25519", &["-t", "ed25519"]);
    let (_, admin_pub) = age_key(&w.keys, "admin.agekey");
    let (node_key, node_pub) = ssh_key(&w.keys, "node_rsa", &["-t", "rsa", "-b", "3072"]);
    let (web_key, web_pub) = ssh_key(&w.keys, "web_ed25519", &["-t", "ed25519"]);
    std::fs::write(w.keys.join("operator.pub"), &operator_pub).unwrap();
    let recipients = w.keys.join("operator.pub");
    for name in ["rapi-users", "app-env", "extra"] {
        age_encrypt(
            &["-R", recipients.to_str().unwrap()],
            &format!("{name} {CANARY}"),
            &w.source(name),
        );
    }
    w.write_state(&node_pub, Some(&web_pub), &admin_pub);
    let report = w.reconcile(&operator).await.unwrap();
    assert_eq!(secret_actions(&report).len(), 3);
    assert_eq!(
        age_decrypt(&node_key, &w.secret_file(NODE, "rapi-users")).unwrap(),
        format!("rapi-users {CANARY}")
    );
    assert_eq!(
        age_decrypt(&web_key, &w.secret_file(WEB, "extra")).unwrap(),
        format!("extra {CANARY}")
    );

    // `secrets status`: all current; `secrets rekey` (no RAPI) encrypts every copy again.
    let dir = w.desired.to_str().unwrap().to_owned();
    let store_env = [("GANETI_OPERATOR_STORE", w.store.local_root().unwrap())];
    let status = common::operator_with_env(&["secrets", "status", &dir], &store_env);
    let shown = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert_eq!(shown.matches("  current").count(), 3, "{shown}");
    let before = w.snapshot();
    let without = common::operator_with_env(&["secrets", "rekey", &dir], &store_env);
    assert_eq!(without.status.code(), Some(1), "no identity: {without:?}");
    assert!(String::from_utf8_lossy(&without.stderr).contains("no operator identity"));
    let rekey = common::operator_with_env(
        &["secrets", "rekey", &dir],
        &[
            ("GANETI_OPERATOR_STORE", w.store.local_root().unwrap()),
            ("GANETI_OPERATOR_IDENTITY_FILE", operator.as_path()),
        ],
    );
    assert!(rekey.status.success(), "{rekey:?}");
    let after = w.snapshot();
    let redone = changed(&before, &after, w.store.local_root().unwrap());
    assert_eq!(
        redone.iter().filter(|p| p.ends_with(".age")).count(),
        3,
        "{redone:?}"
    );
    // The same store served by nginx over WebDAV: `secrets status` reads it the same way,
    // and `secrets rekey` writes every copy again through PUT.
    let dav_work = tempfile::tempdir().unwrap();
    let dav = common::nginx::DavStore::serving(dav_work.path(), w.store.local_root().unwrap());
    let mut dav_args = vec!["secrets".to_owned(), "status".into(), dir.clone()];
    dav_args.extend(dav.args());
    let dav_args: Vec<&str> = dav_args.iter().map(String::as_str).collect();
    let over_dav = common::operator_with_env(&dav_args, &[]);
    let shown = String::from_utf8_lossy(&over_dav.stdout).into_owned();
    assert_eq!(over_dav.status.code(), Some(0), "{over_dav:?}");
    assert_eq!(shown.matches("  current").count(), 3, "{shown}");
    let before_dav = w.snapshot();
    let mut rekey_args = dav_args.clone();
    rekey_args[1] = "rekey";
    let rekey_dav = common::operator_with_env(
        &rekey_args,
        &[("GANETI_OPERATOR_IDENTITY_FILE", operator.as_path())],
    );
    assert!(rekey_dav.status.success(), "{rekey_dav:?}");
    let redone = changed(&before_dav, &w.snapshot(), w.store.local_root().unwrap());
    assert_eq!(
        redone.iter().filter(|p| p.ends_with(".age")).count(),
        3,
        "{redone:?}"
    );
    assert_eq!(
        dav.dav_requests()
            .iter()
            .filter(|l| l.contains("\"PUT /secrets/") && l.contains(".age "))
            .count(),
        3
    );
    let over_dav = common::operator_with_env(&dav_args, &[]);
    assert_eq!(over_dav.status.code(), Some(0), "{over_dav:?}");
    drop(dav);
    let status =
        common::operator_with_env(&["secrets", "status", &dir, "--output", "json"], &store_env);
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    for out in [&status.stdout, &status.stderr, &rekey.stdout, &rekey.stderr] {
        assert!(!String::from_utf8_lossy(out).contains(CANARY));
    }
    // A missing source copy on disk shows as missing.
    std::fs::remove_file(w.secret_file(WEB, "extra")).unwrap();
    let status = common::operator_with_env(&["secrets", "status", &dir], &store_env);
    let shown = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.status.code(), Some(2), "{status:?}");
    assert!(
        shown.contains("extra       missing (the published file is missing)"),
        "{shown}"
    );
}

#[test]
fn a_missing_or_unreadable_identity_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = OperatorIdentity::from_file(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("operator identity") && missing.contains("nope"),
        "{missing}"
    );
    let encrypted = dir.path().join("enc");
    if common::skip::tool("ssh-keygen", TEST) {
        run(Command::new("ssh-keygen")
            .args(["-t", "ed25519", "-N", "a passphrase", "-q", "-f"])
            .arg(&encrypted));
        let e = OperatorIdentity::from_file(&encrypted)
            .unwrap_err()
            .to_string();
        assert!(e.contains("passphrase-protected"), "{e}");
    }
}

#[test]
fn git_sources_are_read_from_the_commit_bounded() {
    if !common::skip::tool("git", TEST) {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join("desired-state/secrets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.age"), b"age-encryption.org/v1\nstand-in\n").unwrap();
    common::git_ok(repo.path(), &["init", "-q", "-b", "main"]);
    common::git_ok(repo.path(), &["add", "."]);
    common::git_ok(repo.path(), &["commit", "-q", "-m", "s"]);
    let commit = common::git_ok(repo.path(), &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    // Changed on disk after the commit: the commit's bytes are what counts.
    std::fs::write(dir.join("a.age"), b"uncommitted").unwrap();
    let sources = ganeti_operator::secrets::SourceFiles::Git {
        repo: repo.path().to_owned(),
        commit: commit.clone(),
        root: "desired-state".into(),
    };
    assert_eq!(
        sources.read(Path::new("secrets/a.age")).unwrap(),
        b"age-encryption.org/v1\nstand-in\n"
    );
    let missing = sources
        .read(Path::new("secrets/b.age"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains(&format!("{commit}:desired-state/secrets/b.age")),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_runs_once_per_changed_host_and_retries_failures_without_blocking() {
    if !tools() {
        return;
    }
    let mut w = Work::new();
    let log = w.root.join("notify.log");
    let fail = w.root.join("fail");
    std::fs::create_dir_all(&fail).unwrap();
    let state_file = w.state.join("notify-cluster.mem.test.json");
    w.notify = Some(ganeti_operator::secrets::Notify {
        settings: ganeti_operator::secrets::notify::NotifySettings {
            command: vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "echo \"$0\" >> {}; test ! -e {}/\"$0\" || (echo refused >&2; exit 7)",
                    log.display(),
                    fail.display()
                ),
                "{host}".into(),
            ],
            timeout_seconds: Some(10),
        },
        state_file: state_file.clone(),
    });
    // Hosts are notified concurrently: the log's order is not the test's business.
    let notified = || {
        let mut lines: Vec<String> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines.iter().map(|l| format!("{l}\n")).collect::<String>()
    };
    let (operator, operator_pub) = age_key(&w.keys, "operator.agekey");
    let (_, admin_pub) = age_key(&w.keys, "admin.agekey");
    let (_, node_pub) = ssh_key(&w.keys, "node", &["-t", "ed25519"]);
    let (web_key, web_pub) = ssh_key(&w.keys, "web", &["-t", "ed25519"]);
    for name in ["rapi-users", "app-env", "extra"] {
        age_encrypt(&["-r", &operator_pub], name, &w.source(name));
    }
    w.write_state(&node_pub, Some(&web_pub), &admin_pub);
    w.reconcile(&operator).await.unwrap();
    assert_eq!(notified(), format!("{NODE}\n{WEB}\n"));
    w.reconcile(&operator).await.unwrap();
    assert_eq!(
        notified(),
        format!("{NODE}\n{WEB}\n"),
        "nothing changed, nobody told"
    );

    // One secret changes: only the host that needs it.
    age_encrypt(&["-r", &operator_pub], "v2", &w.source("app-env"));
    w.reconcile(&operator).await.unwrap();
    assert_eq!(notified(), format!("{NODE}\n{WEB}\n{WEB}\n"));

    // A failing notify: reported, remembered, and the file is published all the same.
    std::fs::write(fail.join(WEB), b"").unwrap();
    age_encrypt(&["-r", &operator_pub], "v3", &w.source("app-env"));
    let report = w.reconcile(&operator).await.unwrap();
    let failed = report.notified[WEB].as_ref().unwrap_err();
    assert!(failed.contains("refused"), "{failed}");
    assert_eq!(
        age_decrypt(&web_key, &w.secret_file(WEB, "app-env")).unwrap(),
        "v3"
    );
    let state = ganeti_operator::secrets::notify::NotifyState::load(&state_file).unwrap();
    assert_eq!(state.hosts[WEB].attempts, 1);
    // Within its backoff it is not tried again; once due, it is, and succeeds.
    let report = w.reconcile(&operator).await.unwrap();
    assert!(report.notified.is_empty(), "{:?}", report.notified);
    std::fs::remove_file(fail.join(WEB)).unwrap();
    let mut state = state;
    state.hosts.get_mut(WEB).unwrap().retry_after = 0;
    ganeti_operator::state_file::save(&state_file, &state).unwrap();
    let report = w.reconcile(&operator).await.unwrap();
    assert_eq!(report.notified.get(WEB), Some(&Ok(())));
    assert!(
        ganeti_operator::secrets::notify::NotifyState::load(&state_file)
            .unwrap()
            .hosts
            .is_empty()
    );
}

/// Host-key bootstrap with the in-memory RAPI: a keyless instance's secrets are published
/// before its create, encrypted to the key generated for it; the create carries the
/// private half and tags the public half; the real `age` opens the copy with that key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_instance_gets_a_generated_key_that_opens_its_secrets() {
    if !tools() {
        return;
    }
    capture_logs();
    let w = Work::new();
    let (operator, operator_pub) = age_key(&w.keys, "operator.agekey");
    let (_, admin_pub) = age_key(&w.keys, "admin.agekey");
    let (_, node_pub) = ssh_key(&w.keys, "node", &["-t", "ed25519"]);
    for name in ["rapi-users", "app-env", "extra"] {
        age_encrypt(
            &["-r", &operator_pub],
            &format!("{name} {CANARY}"),
            &w.source(name),
        );
    }
    w.write_state(&node_pub, Some(""), &admin_pub);
    let yaml = std::fs::read_to_string(w.desired.join("state.yaml"))
        .unwrap()
        .replace(", hostKey: ''", "");
    std::fs::write(w.desired.join("state.yaml"), yaml).unwrap();
    let report = w.reconcile(&operator).await.unwrap();
    assert_plan_golden(&w, "05-generated-host-key.txt");
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o.result, ActionResult::Succeeded)),
        "{:?}",
        report.outcomes
    );
    let jobs = w.jobs.lock().unwrap().clone();
    let create = jobs
        .iter()
        .find_map(|j| match &j.operation {
            ganeti_operator::rapi::Operation::CreateInstance(c) => Some(c.clone()),
            _ => None,
        })
        .expect("the instance was created");
    let Some(ganeti_operator::rapi::operation::CreateHostKey::Generated(key)) = &create.host_key
    else {
        panic!("the create carried no generated key: {create:?}");
    };
    assert!(create.all_tags().contains(&key.tag()));
    let body = create.body();
    assert_eq!(
        body["osparams_secret"]["ssh_host_ed25519_key"].as_str(),
        Some(key.private_openssh())
    );
    let private = w.keys.join("generated");
    std::fs::write(&private, key.private_openssh()).unwrap();
    for secret in ["app-env", "extra"] {
        assert_eq!(
            age_decrypt(&private, &w.secret_file(WEB, secret)).unwrap(),
            format!("{secret} {CANARY}"),
            "{secret}"
        );
    }
    // The key never shows: not in the plan's text or JSON, the logs, metrics or /status.
    let needle = key
        .private_openssh()
        .lines()
        .nth(1)
        .expect("a key body line")
        .to_owned();
    for output in w.outputs.lock().unwrap().iter() {
        assert!(
            !output.contains(&needle),
            "the private key is shown: {output}"
        );
    }
    assert!(!String::from_utf8_lossy(&LOGS.lock().unwrap()).contains(&needle));
}
