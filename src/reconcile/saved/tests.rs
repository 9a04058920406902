//! Saved plans against the in-memory RAPI: a plan that still holds applies exactly its
//! actions; a stale one, one of another cluster, version or format, and a damaged file
//! are refused with nothing submitted. The refusals are pinned in
//! `tests/golden/saved-plans/` (`UPDATE_GOLDEN=1` rewrites them).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use super::{SavedPlan, SavedPlanError};
use crate::backoff::BackoffPolicy;
use crate::desired::model::DesiredState;
use crate::rapi::Rapi as _;
use crate::rapi::jobs::{JobObserver, WaitOptions};
use crate::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MEMORY_STATE, MemoryRapi};
use crate::reconcile::cycle::{self, ApplyOptions, Report};
use crate::reconcile::execute::{ExecuteOptions, Progress};
use crate::reconcile::plan::ActionKind;
use crate::reconcile::reason::RunId;

pub(super) struct Silent;
impl JobObserver for Silent {}
impl Progress for Silent {}

const PLAN_FILE: &str = "plan.json";

pub(super) fn desired(yaml: &str) -> DesiredState {
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.as_bytes().to_vec()))],
        &crate::reconcile::plan::tests::NoSecrets,
    );
    validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics))
}

pub(super) fn revision(yaml: &str) -> String {
    crate::source::dir_revision(&[("state.yaml".into(), Ok(yaml.as_bytes().to_vec()))])
}

/// The memory state with web1 at `memory`.
fn with_memory(memory: &str) -> String {
    MEMORY_STATE.replace(
        "web1.mem.test: {class: web, primaryNode: node1.mem.test}",
        &format!(
            "web1.mem.test: {{class: web, primaryNode: node1.mem.test, resources: {{memory: {memory}}}}}"
        ),
    )
}

pub(super) fn run_id() -> RunId {
    RunId("saved-test".into())
}

pub(super) fn options<'a>(run: &'a RunId, history: &'a Path) -> ApplyOptions<'a> {
    ApplyOptions {
        run,
        execute: ExecuteOptions {
            max_parallel: 4,
            wait: WaitOptions {
                timeout: Duration::from_secs(10),
                poll_interval: Duration::from_millis(10),
            },
        },
        backoff: BackoffPolicy::default(),
        history_file: history,
        store: None,
        secrets: None,
        scope: &crate::reconcile::plan::scope::EVERYTHING,
        on_plan: &|_| {},
        events: &crate::event::DISCARD,
        fresh: None,
    }
}

/// A cluster with web1 created as `MEMORY_STATE` says (128M), and its history file.
pub(super) async fn cluster() -> (MemoryRapi, tempfile::TempDir) {
    let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::from_millis(5));
    let state = tempfile::tempdir().unwrap();
    let history = state.path().join("history.json");
    let run = run_id();
    let first = cycle::apply(
        &rapi,
        &desired(MEMORY_STATE),
        options(&run, &history),
        &Silent,
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert!(!first.after.has_changes(), "{:?}", first.after);
    (rapi, state)
}

/// As `gnt-instance modify -B memory=512M` would leave web1.
pub(super) async fn change_by_hand(rapi: &MemoryRapi) {
    let mut web1 = rapi
        .instances()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == "web1.mem.test")
        .unwrap();
    web1.beparams.maxmem = Some(512);
    web1.beparams.minmem = Some(512);
    rapi.insert_instance(web1);
}

/// The plan for `yaml`, saved and read back from its text as `--apply-plan` reads it.
pub(super) async fn save(rapi: &MemoryRapi, yaml: &str, history: &Path) -> SavedPlan {
    let (_, saved) = super::make(
        rapi,
        None,
        None,
        &desired(yaml),
        &crate::reconcile::plan::scope::EVERYTHING,
        &revision(yaml),
        history,
        SystemTime::now(),
    )
    .await
    .unwrap();
    let text = saved.to_text().unwrap();
    SavedPlan::parse(Path::new(PLAN_FILE), text.as_bytes()).unwrap()
}

pub(super) async fn apply(
    rapi: &MemoryRapi,
    yaml: &str,
    saved: &SavedPlan,
    history: &Path,
) -> Result<Report, SavedPlanError> {
    let run = run_id();
    super::apply(
        rapi,
        &desired(yaml),
        &revision(yaml),
        (Path::new(PLAN_FILE), saved),
        options(&run, history),
        &Silent,
        &AtomicBool::new(false),
    )
    .await
}

fn golden(name: &str, text: &str) {
    crate::golden::assert_golden(&format!("saved-plans/{name}.txt"), text);
}

#[tokio::test]
async fn a_plan_that_still_holds_applies_exactly_its_actions_and_converges() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let yaml = with_memory("256M");
    let saved = save(&rapi, &yaml, &history).await;
    assert_eq!(saved.actions.len(), 1, "{:?}", saved.actions);
    assert_eq!(saved.actions[0].kind, ActionKind::Change);
    let before = rapi.records().len();

    let report = apply(&rapi, &yaml, &saved, &history).await.unwrap();
    assert_eq!(report.plan.actions, saved.actions);
    assert_eq!(report.failures(), 0, "{:?}", report.outcomes);
    assert!(!report.after.has_changes(), "{:?}", report.after);
    let submitted: Vec<&str> = rapi.records()[before..].iter().map(|r| r.kind).collect();
    let planned: Vec<&str> = saved.actions[0]
        .operations()
        .iter()
        .map(|o| o.kind())
        .collect();
    assert_eq!(submitted, planned);
}

#[tokio::test]
async fn a_hand_made_change_of_a_touched_instance_refuses_the_plan_naming_the_field() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let yaml = with_memory("256M");
    let saved = save(&rapi, &yaml, &history).await;
    change_by_hand(&rapi).await;
    let before = rapi.records().len();

    let Err(error) = apply(&rapi, &yaml, &saved, &history).await else {
        panic!("applied");
    };
    assert!(matches!(error, SavedPlanError::Stale(_)), "{error}");
    golden("changed-instance-field", &format!("{error}\n"));
    assert_eq!(rapi.records().len(), before, "nothing is submitted");
}

#[tokio::test]
async fn a_plan_from_another_desired_revision_is_refused_before_the_cluster_is_asked() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let saved = save(&rapi, &with_memory("256M"), &history).await;
    let before = rapi.records().len();

    let Err(error) = apply(&rapi, &with_memory("384M"), &saved, &history).await else {
        panic!("applied");
    };
    golden("stale-desired-revision", &format!("{error}\n"));
    assert_eq!(rapi.records().len(), before, "nothing is submitted");
}

/// An action on an object the file holds no fingerprint of (a file edited by hand)
/// would go unchecked: refused, nothing submitted.
#[tokio::test]
async fn an_action_without_a_fingerprint_is_refused() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let yaml = with_memory("256M");
    let mut saved = save(&rapi, &yaml, &history).await;
    saved.observed.clear();
    let before = rapi.records().len();

    let Err(error) = apply(&rapi, &yaml, &saved, &history).await else {
        panic!("applied");
    };
    assert!(
        matches!(&error, SavedPlanError::Unchecked { object, .. } if object == "instance/web1.mem.test"),
        "{error}"
    );
    assert_eq!(rapi.records().len(), before, "nothing is submitted");
}

#[tokio::test]
async fn a_plan_for_another_cluster_is_refused() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let yaml = with_memory("256M");
    let mut saved = save(&rapi, &yaml, &history).await;
    saved.cluster = "cluster.other.test".into();
    let before = rapi.records().len();

    let Err(error) = apply(&rapi, &yaml, &saved, &history).await else {
        panic!("applied");
    };
    golden("another-cluster", &format!("{error}\n"));
    assert_eq!(rapi.records().len(), before, "nothing is submitted");
}

#[tokio::test]
async fn a_damaged_file_or_one_of_another_version_is_refused_with_where() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let text = save(&rapi, &with_memory("256M"), &history)
        .await
        .to_text()
        .unwrap();
    let path = Path::new(PLAN_FILE);
    let cases = [
        ("truncated", text[..text.len() / 2].to_owned()),
        (
            "a step of an unknown kind",
            text.replacen("\"ModifyInstance\"", "\"ModifyEverything\"", 1),
        ),
        (
            "another format",
            text.replacen("\"format\": 1", "\"format\": 2", 1),
        ),
        (
            "another operator version",
            text.replacen(
                &format!("\"operatorVersion\": \"{}\"", super::OPERATOR_VERSION),
                "\"operatorVersion\": \"0.0.0-elsewhere\"",
                1,
            ),
        ),
    ];
    let mut shown = String::new();
    for (what, damaged) in cases {
        assert_ne!(damaged, text, "{what}: the edit applies");
        let error = SavedPlan::parse(path, damaged.as_bytes()).unwrap_err();
        // The running version is in the message; the golden holds a placeholder.
        let message = error
            .to_string()
            .replace(super::OPERATOR_VERSION, "<this version>");
        shown.push_str(&format!("{what}:\n{message}\n\n"));
    }
    golden("damaged-file", &shown);
}

#[test]
fn a_plan_with_secret_steps_names_secrets_and_holds_no_content() {
    use crate::rapi::Operation;
    use crate::rapi::operation::{CreateHostKey, InstanceCreate};
    use crate::reconcile::plan::{Action, Phase, Plan, Step};
    use crate::secrets::host_key::GeneratedHostKey;
    use crate::secrets::publish::SecretStep;

    const PLAINTEXT: &str = "the-db-password-hunter2";
    const CIPHERTEXT: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
    let step = |step| Action {
        object: crate::desired::model::ObjectRef {
            kind: crate::desired::model::ObjectKind::Secret,
            name: "db-password".into(),
        },
        kind: ActionKind::SecretPublish,
        reason: "missing on the host".into(),
        changes: Vec::new(),
        steps: vec![Step::Secret(step)],
        phase: Phase::Secrets,
    };
    let create = |host_key| Action {
        object: crate::reconcile::plan::instance_ref("web1.mem.test"),
        kind: ActionKind::Create,
        reason: "missing".into(),
        changes: Vec::new(),
        steps: vec![Step::Rapi(Operation::CreateInstance(InstanceCreate {
            name: "web1.mem.test".into(),
            host_key: Some(host_key),
            ..InstanceCreate::default()
        }))],
        phase: Phase::Instances,
    };
    let mut plan = Plan::empty(MEMORY_CLUSTER, Vec::new());
    plan.actions = vec![
        create(CreateHostKey::Generate),
        step(SecretStep::Publish {
            host: "web1.mem.test".into(),
            secret: "db-password".into(),
            source: "secrets/db-password.age".into(),
            source_digest: crate::secrets::sha256_hex(CIPHERTEXT.as_bytes()),
            recipients: vec![
                "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq".into(),
            ],
            generated_host_key: true,
        }),
        step(SecretStep::Remove {
            host: "old.mem.test".into(),
            secret: "db-password".into(),
        }),
    ];
    let saved = SavedPlan::new(
        &plan,
        &crate::reconcile::plan::scope::EVERYTHING,
        "dir:0",
        Vec::new(),
        Vec::new(),
        serde_json::json!({}),
        SystemTime::UNIX_EPOCH,
    );
    let text = saved.to_text().unwrap();
    assert!(text.contains("db-password"), "the secret is named");
    for payload in [PLAINTEXT, CIPHERTEXT, "AGE-SECRET-KEY", "PRIVATE KEY"] {
        assert!(!text.contains(payload), "{payload} in {text}");
    }
    let back = SavedPlan::parse(Path::new(PLAN_FILE), text.as_bytes()).unwrap();
    assert_eq!(back.actions, plan.actions);

    // A generated host key exists only inside the executor: never in a file.
    let key = GeneratedHostKey::generate("web1.mem.test").unwrap();
    let private = key.private_openssh().to_owned();
    plan.actions = vec![create(CreateHostKey::Generated(std::sync::Arc::new(key)))];
    let saved = SavedPlan {
        actions: plan.actions.clone(),
        ..saved
    };
    let error = saved.to_text().unwrap_err().to_string();
    assert!(error.contains("never written out"), "{error}");
    assert!(!error.contains(&private));
}

#[test]
fn the_fingerprint_is_canonical_and_names_what_changed() {
    use super::fingerprint::fingerprint;
    use crate::rapi::Instance;
    use crate::reconcile::observe::Observed;

    let web1 = crate::reconcile::plan::instance_ref("web1.mem.test");
    let mut hv = serde_json::Map::new();
    hv.insert("kernel_path".into(), "/k".into());
    hv.insert("boot_order".into(), "disk".into());
    let mut observed = Observed::default();
    observed.instances.insert(
        web1.name.clone(),
        Instance {
            name: web1.name.clone(),
            hvparams: hv,
            tags: vec!["b".into(), "a".into()],
            ..Instance::default()
        },
    );
    let then = fingerprint(&observed, &web1);

    // The same values in another order are the same fingerprint.
    let mut reordered = observed.clone();
    let instance = reordered.instances.get_mut(&web1.name).unwrap();
    instance.hvparams = instance.hvparams.clone().into_iter().rev().collect();
    instance.tags.reverse();
    assert_eq!(fingerprint(&reordered, &web1), then);

    let mut changed = observed.clone();
    changed
        .instances
        .get_mut(&web1.name)
        .unwrap()
        .beparams
        .vcpus = Some(4);
    assert_eq!(
        then.changed_fields(&fingerprint(&changed, &web1)),
        ["vcpus"]
    );
    let gone = fingerprint(&Observed::default(), &web1);
    assert!(then.changed_fields(&gone).contains(&"exists".to_owned()));
}

#[tokio::test]
async fn actions_the_planner_would_not_make_now_are_refused() {
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let yaml = with_memory("256M");
    let mut saved = save(&rapi, &yaml, &history).await;
    // The cluster and the desired state are as planned, but the actions are not what
    // the planner makes of them (edited by hand here; a backoff or a window in life).
    saved.actions[0].steps.truncate(1);
    let before = rapi.records().len();

    let Err(error) = apply(&rapi, &yaml, &saved, &history).await else {
        panic!("applied");
    };
    let message = error.to_string();
    assert!(
        message.contains("instance web1.mem.test: the plan for it would now be different"),
        "{message}"
    );
    assert_eq!(rapi.records().len(), before, "nothing is submitted");
}

/// A targeted plan keeps its scope in the file: applied, it is checked against the plan
/// of now cut down the same way, carries out only its own actions, and reports on its
/// scope (web2, left out, is neither created nor counted as pending).
#[tokio::test]
async fn a_targeted_plan_applies_within_the_scope_it_was_made_in() {
    use crate::reconcile::plan::scope::Scope;
    let (rapi, state) = cluster().await;
    let history = state.path().join("history.json");
    let yaml = with_memory("256M") + "  web2.mem.test: {class: web, primaryNode: node1.mem.test}\n";
    let targets = ["instance/web1.mem.test".to_string()];
    let scope = Scope::new(&desired(&yaml), &targets, &[]).unwrap();
    let (_, saved) = super::make(
        &rapi,
        None,
        None,
        &desired(&yaml),
        &scope,
        &revision(&yaml),
        &history,
        SystemTime::now(),
    )
    .await
    .unwrap();
    let saved =
        SavedPlan::parse(Path::new(PLAN_FILE), saved.to_text().unwrap().as_bytes()).unwrap();
    assert_eq!(saved.targets, targets);
    let objects: Vec<String> = saved.actions.iter().map(|a| a.object.to_string()).collect();
    assert_eq!(objects, ["instance/web1.mem.test"]);

    let read_back = Scope::new(&desired(&yaml), &saved.targets, &saved.excludes).unwrap();
    assert_eq!(read_back, scope);
    let run = run_id();
    let report = super::apply(
        &rapi,
        &desired(&yaml),
        &revision(&yaml),
        (Path::new(PLAN_FILE), &saved),
        ApplyOptions {
            scope: &read_back,
            ..options(&run, &history)
        },
        &Silent,
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert!(!report.after.has_changes(), "{:?}", report.after);
    let names: Vec<String> = rapi
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["web1.mem.test"]);
}
