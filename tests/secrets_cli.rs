//! `ganeti-operator reconcile` itself, against the recorded fake RAPI, publishing secrets
//! made by the real `age` CLI: a first run, a re-key after a host key change, a run
//! with a failing action and one with a wrong identity. The canary plaintext is never in
//! `--output json`, the text output, the progress lines on stderr, nor on disk.

use crate::common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::recorded_rapi;

const TEST: &str = "secrets_cli";
const CANARY: &str = "CANARY-91b2-cli-plaintext";

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out.stdout
}

fn keygen(path: &Path) -> String {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    run(Command::new("ssh-keygen")
        .args(["-t", "ed25519", "-N", "", "-q", "-f"])
        .arg(path));
    std::fs::read_to_string(format!("{}.pub", path.display()))
        .unwrap()
        .trim()
        .to_owned()
}

fn encrypt(recipient: &str, plaintext: &str, out: &Path) {
    let mut child = Command::new("age")
        .args(["-r", recipient, "-o"])
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

struct Cli {
    root: PathBuf,
    env: Vec<(String, String)>,
}

impl Cli {
    fn operator(&self, args: &[&str], identity: &Path) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"));
        command
            .args(args)
            .current_dir(&self.root)
            .env("NO_COLOR", "1");
        for name in [
            "GANETI_RAPI_PASSWORD",
            "GANETI_RAPI_CA_FILE",
            "GANETI_OPERATOR_CONFIG",
        ] {
            command.env_remove(name);
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command.env("GANETI_OPERATOR_IDENTITY_FILE", identity);
        command.output().unwrap()
    }
}

fn state(image: &str, node1: &str, node2: &str, node2_role: &str) -> String {
    format!(
        "cluster: {{name: cluster.gnt.test, hypervisor: fake, defaultDiskTemplate: diskless, store: {{baseUrl: 'http://127.0.0.1:9'}}}}
policy: {{prune: false}}
classes:
  ganeti-node: {{image: {image}, secrets: [rapi-users]}}
secrets:
  rapi-users: {{file: secrets/rapi-users.age}}
  extra: {{file: secrets/extra.age}}
nodes:
  node1.gnt.test: {{class: ganeti-node, role: master, hostKey: '{node1}'}}
  node2.gnt.test: {{class: ganeti-node, role: {node2_role}, hostKey: '{node2}', secrets: [extra]}}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_publishes_secrets_and_never_shows_the_plaintext() {
    if !common::skip::tool("age", TEST) || !common::skip::tool("ssh-keygen", TEST) {
        return;
    }
    // The recording, plus an empty job query (observe asks for unfinished jobs).
    let recording = recorded_rapi::Recording::load();
    let fake = common::fake_rapi::FakeRapi::start(move |request, _| {
        if request.method == "PUT" && request.target.starts_with("/2/query/job") {
            return common::fake_rapi::Reply::Json(200, r#"{"fields": [], "data": []}"#.into());
        }
        recording.answer(request)
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    for d in ["desired/secrets", "store", "state", "keys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let password = root.join("keys/password");
    std::fs::write(&password, "any").unwrap();
    let cli = Cli {
        root: root.clone(),
        env: vec![
            ("GANETI_RAPI_URL".into(), format!("https://{}", fake.addr)),
            ("GANETI_RAPI_USER".into(), recorded_rapi::WRITE_USER.into()),
            (
                "GANETI_RAPI_PASSWORD_FILE".into(),
                password.display().to_string(),
            ),
            (
                "GANETI_RAPI_FINGERPRINT".into(),
                fake.fingerprint.to_string(),
            ),
            (
                "GANETI_OPERATOR_STORE".into(),
                root.join("store").display().to_string(),
            ),
            (
                "GANETI_OPERATOR_STATE_DIR".into(),
                root.join("state").display().to_string(),
            ),
        ],
    };
    let identity = root.join("keys/operator.agekey");
    run(Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .stderr(Stdio::null()));
    let recipient = String::from_utf8(run(Command::new("age-keygen").arg("-y").arg(&identity)))
        .unwrap()
        .trim()
        .to_owned();
    for name in ["rapi-users", "extra"] {
        encrypt(
            &recipient,
            &format!("{name} {CANARY}"),
            &root.join(format!("desired/secrets/{name}.age")),
        );
    }
    // The store needs the class's image, or validation refuses the state.
    std::fs::write(root.join("keys/kernel"), b"kernel").unwrap();
    std::fs::write(root.join("keys/initrd"), b"initrd").unwrap();
    let imported = cli.operator(
        &[
            "image",
            "import",
            "--class",
            "ganeti-node",
            "--kernel",
            "keys/kernel",
            "--initrd",
            "keys/initrd",
        ],
        &identity,
    );
    assert!(imported.status.success(), "{imported:?}");
    let text = String::from_utf8_lossy(&imported.stdout).into_owned();
    let image = text.split_whitespace().nth(1).unwrap().to_owned();
    let key1 = keygen(&root.join("keys/node1"));
    let key2 = keygen(&root.join("keys/node2"));
    let desired = root.join("desired/state.yaml");
    std::fs::write(&desired, state(&image, &key1, &key2, "master-candidate")).unwrap();

    let mut shown = String::new();
    let mut record = |out: &Output| {
        shown.push_str(&String::from_utf8_lossy(&out.stdout));
        shown.push_str(&String::from_utf8_lossy(&out.stderr));
    };
    let dry = cli.operator(&["reconcile", "desired", "--dry-run"], &identity);
    record(&dry);
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        text.contains("+ secret rapi-users -> node1.gnt.test"),
        "{dry:?}"
    );
    assert!(text.contains("+ secret extra -> node2.gnt.test"), "{text}");

    let first = cli.operator(&["reconcile", "desired", "--output", "json"], &identity);
    record(&first);
    let json: serde_json::Value =
        serde_json::from_slice(&first.stdout).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    let hosts: Vec<&str> = json["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["host"].as_str())
        .collect();
    assert_eq!(hosts.len(), 3, "{json:#}");
    let age_d = |key: &str, file: &str| {
        let out = Command::new("age")
            .args(["-d", "-i"])
            .arg(root.join("keys").join(key))
            .arg(root.join("store/secrets").join(file))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        age_d("node2", "node2.gnt.test/extra.age"),
        format!("extra {CANARY}")
    );

    // A re-key and a failing action in one run: node2's role change is not in the
    // recording, so the fake refuses it; the re-key is published regardless.
    let key2 = keygen(&root.join("keys/node2"));
    std::fs::write(&desired, state(&image, &key1, &key2, "regular")).unwrap();
    let second = cli.operator(&["reconcile", "desired", "--output", "json"], &identity);
    record(&second);
    assert_eq!(
        second.status.code(),
        Some(1),
        "an action failed: {second:?}"
    );
    let json: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    let results: Vec<(String, String)> = json["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["object"]["name"].as_str().unwrap().to_owned(),
                o["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        results.contains(&("node2.gnt.test".into(), "failed".into())),
        "{results:?}"
    );
    assert!(
        results.iter().filter(|(_, r)| r == "succeeded").count() >= 2,
        "{results:?}"
    );
    assert_eq!(
        age_d("node2", "node2.gnt.test/rapi-users.age"),
        format!("rapi-users {CANARY}")
    );

    // A wrong identity: a clear error, nothing published.
    let stranger = root.join("keys/stranger.agekey");
    run(Command::new("age-keygen")
        .arg("-o")
        .arg(&stranger)
        .stderr(Stdio::null()));
    encrypt(
        &recipient,
        &format!("v2 {CANARY}"),
        &root.join("desired/secrets/extra.age"),
    );
    let before = std::fs::read(root.join("store/secrets/node2.gnt.test/extra.age")).unwrap();
    let wrong = cli.operator(&["reconcile", "desired"], &stranger);
    record(&wrong);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .contains("cannot be opened with the operator identity"),
        "{wrong:?}"
    );
    assert_eq!(
        std::fs::read(root.join("store/secrets/node2.gnt.test/extra.age")).unwrap(),
        before
    );

    assert!(!shown.contains(CANARY), "the canary was shown:\n{shown}");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
                    "canary in {}",
                    path.display()
                );
            }
        }
    }
}
