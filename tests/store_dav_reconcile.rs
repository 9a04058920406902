//! The reconcile's writers with the store on WebDAV (real nginx): a reconcile against the
//! in-memory RAPI PUTs the new instance's boot pointers and a rerun writes nothing; the
//! secrets publisher removes a host's files and then its directory.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use crate::common;
use common::nginx::DavStore;
use ganeti_operator::backoff::BackoffPolicy;
use ganeti_operator::config::{Overrides, StoreLocation, store_location};
use ganeti_operator::daemon::log_progress::LogProgress;
use ganeti_operator::metrics::Metrics;
use ganeti_operator::rapi::jobs::WaitOptions;
use ganeti_operator::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};
use ganeti_operator::reconcile::cycle::{self, ApplyOptions};
use ganeti_operator::reconcile::execute::ExecuteOptions;
use ganeti_operator::reconcile::reason::RunId;
use ganeti_operator::store::Store;

const WEB: &str = "web1.mem.test";

fn import(dav: &DavStore, work: &std::path::Path) -> String {
    let (kernel, initrd) = (work.join("kernel"), work.join("initrd"));
    std::fs::write(&kernel, b"kernel").unwrap();
    std::fs::write(&initrd, b"initrd").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .args(["image", "import", "--class", "web", "--kernel"])
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .args(dav.args())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

fn puts(dav: &DavStore) -> Vec<String> {
    dav.dav_requests()
        .into_iter()
        .filter(|l| l.contains("\"PUT ") || l.contains("\"DELETE "))
        .collect()
}

async fn apply(
    rapi: &MemoryRapi,
    desired: &ganeti_operator::desired::model::DesiredState,
    store: &Store,
    history: &std::path::Path,
    progress: &LogProgress,
) -> Result<cycle::Report, cycle::CycleError> {
    let run = RunId::new(SystemTime::now());
    let stop = AtomicBool::new(false);
    cycle::apply(
        rapi,
        desired,
        ApplyOptions {
            run: &run,
            execute: ExecuteOptions {
                max_parallel: 4,
                wait: WaitOptions {
                    timeout: Duration::from_secs(10),
                    poll_interval: Duration::from_millis(10),
                },
            },
            backoff: BackoffPolicy::default(),
            history_file: history,
            store: Some(store),
            secrets: None,
            scope: &ganeti_operator::reconcile::plan::scope::EVERYTHING,
            on_plan: &|_| {},
            fresh: None,
            events: &ganeti_operator::event::DISCARD,
        },
        progress,
        &stop,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_writes_boot_pointers_through_webdav_and_a_rerun_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dav = DavStore::start(work.path());
    let image = import(&dav, work.path());
    let desired_dir = work.path().join("desired");
    std::fs::create_dir_all(&desired_dir).unwrap();
    std::fs::write(
        desired_dir.join("state.yaml"),
        format!(
            "cluster: {{name: {MEMORY_CLUSTER}, hypervisor: fake, defaultDiskTemplate: diskless, store: {{baseUrl: 'http://{read}'}}}}
classes:
  ganeti-node: {{image: {image}}}
  web: {{image: {image}, os: noop+default, resources: {{memory: 128M, vcpus: 1}}}}
nodes:
  {MEMORY_NODE}: {{class: ganeti-node, role: master}}
instances:
  {WEB}: {{class: web, primaryNode: {MEMORY_NODE}}}
",
            read = dav.read_addr
        ),
    )
    .unwrap();
    let validation = ganeti_operator::desired::validate_dir(&desired_dir).unwrap();
    let desired = validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics));
    let overrides = Overrides {
        store_url: Some(dav.url.clone()),
        store_credentials_file: Some(dav.credentials_file.clone()),
        store_fingerprint: Some(dav.fingerprint.clone()),
        ..Default::default()
    };
    let Some(StoreLocation::Dav(config)) = store_location(&overrides).unwrap() else {
        panic!("a WebDAV location");
    };
    // Opening asks the server (a blocking request): off the async threads, as the
    // command line does before its runtime starts.
    let store: Store = tokio::task::spawn_blocking(move || Store::open_dav(config))
        .await
        .unwrap()
        .unwrap();
    let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::from_millis(5));
    let history = work.path().join("history.json");
    let progress = LogProgress {
        metrics: std::sync::Arc::new(Metrics::new()),
    };
    let before = puts(&dav).len();
    let first = apply(&rapi, &desired, &store, &history, &progress)
        .await
        .unwrap();
    assert!(
        first.outcomes.iter().all(|o| matches!(
            o.result,
            ganeti_operator::reconcile::execute::ActionResult::Succeeded
        )),
        "{:#?}",
        first.outcomes
    );
    let written = puts(&dav);
    let written = &written[before..];
    assert!(
        written
            .iter()
            .any(|l| l.contains(&format!("\"PUT /boot/by-name/{WEB}.ipxe ")))
            && written
                .iter()
                .any(|l| l.contains("\"PUT /boot/chain.ipxe ")),
        "{written:#?}"
    );
    let pointer =
        std::fs::read_to_string(dav.store.join(format!("boot/by-name/{WEB}.ipxe"))).unwrap();
    assert!(pointer.contains(&image), "{pointer}");

    let after_first = puts(&dav).len();
    let second = apply(&rapi, &desired, &store, &history, &progress)
        .await
        .unwrap();
    assert!(second.outcomes.is_empty(), "{:#?}", second.outcomes);
    assert_eq!(puts(&dav).len(), after_first, "the rerun wrote nothing");
    drop(store);
}

#[test]
fn removing_a_hosts_last_secret_over_webdav_removes_its_directory() {
    use ganeti_operator::secrets::manifest::{FileEntry, HostManifest};
    use ganeti_operator::secrets::publish::{SecretStep, run};
    use ganeti_operator::secrets::{SecretsContext, SourceFiles};
    let work = tempfile::tempdir().unwrap();
    let dav = DavStore::start(work.path());
    let Some(StoreLocation::Dav(config)) = store_location(&Overrides {
        store_url: Some(dav.url.clone()),
        store_credentials_file: Some(dav.credentials_file.clone()),
        store_fingerprint: Some(dav.fingerprint.clone()),
        ..Default::default()
    })
    .unwrap() else {
        panic!("a WebDAV location");
    };
    let store = Store::open_dav(config).unwrap();
    let mut manifest = HostManifest::new();
    for name in ["a", "b"] {
        store
            .put(&format!("secrets/web1/{name}.age"), name.as_bytes())
            .unwrap();
        manifest.files.insert(
            name.into(),
            FileEntry {
                source: "s".into(),
                recipients: vec![],
                published: "p".into(),
            },
        );
    }
    store
        .put("secrets/web1/manifest.json", &manifest.to_json())
        .unwrap();
    let context = SecretsContext {
        sources: SourceFiles::Dir(work.path().to_owned()),
        identity: None,
        notify: None,
    };
    let remove = |secret: &str| {
        run(
            &store,
            &context,
            &SecretStep::Remove {
                host: "web1".into(),
                secret: secret.into(),
            },
        )
        .unwrap()
    };
    let dir = dav.store.join("secrets/web1");
    remove("a");
    assert!(!dir.join("a.age").exists() && dir.join("b.age").exists());
    let left = HostManifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(left.files.keys().collect::<Vec<_>>(), ["b"]);
    remove("b");
    assert!(
        !dir.exists(),
        "the host's directory went with its last secret"
    );
    assert!(
        dav.write_requests()
            .iter()
            .any(|l| l.contains("\"DELETE /secrets/web1/ ")),
        "{:#?}",
        dav.write_requests()
    );
}
