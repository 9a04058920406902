//! Host-key bootstrap on the real sandbox (issue 13, agenix#17). An instance without a
//! `hostKey` whose class has secrets is created with a generated ed25519 key (on a file
//! disk: Ganeti runs no OS script for a diskless instance): the harness's
//! `noop` OS provider declares the secret parameter and its create script records what it
//! receives. The private key reached the create script; Ganeti's `config.data`, its job
//! queue and `gnt-instance info` do not hold it; the instance's tag holds the public half;
//! the published secret opens with the private key the OS script received (real `age`);
//! a rerun writes nothing. An OS provider that does not declare the parameter makes the
//! job fail with Ganeti's own message, and nothing is left behind.

use crate::common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::reconcile::{Workspace, remove_all_instances};
use common::sandbox::sandbox;
use ganeti_operator::rapi::Rapi as _;

const TEST: &str = "secrets_bootstrap";
const CANARY: &str = "CANARY-5d1e-bootstrap-plaintext";
const APP: &str = "boot1.gnt.test";
const BARE: &str = "boot2.gnt.test";

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out.stdout
}

fn state(image: &str, with_bare: bool) -> String {
    let bare = if with_bare {
        format!("  {BARE}: {{class: bare, primaryNode: node1.gnt.test}}\n")
    } else {
        String::new()
    };
    format!(
        "cluster:
  name: cluster.gnt.test
  hypervisor: fake
  defaultDiskTemplate: diskless
  nic: {{link: br-inst, mode: bridged}}
  store: {{baseUrl: 'http://127.0.0.1:9'}}
policy: {{prune: true, maxDeletions: 5}}
classes:
  ganeti-node: {{image: {image}}}
  app: {{image: {image}, os: noop+default, diskTemplate: file, resources: {{memory: 128M, disks: [{{size: 64M}}]}}, secrets: [app-env]}}
  bare: {{image: {image}, os: bare+default, diskTemplate: file, resources: {{memory: 128M, disks: [{{size: 64M}}]}}, generateHostKey: true}}
secrets:
  app-env: {{file: secrets/app-env.age}}
nodes:
  node1.gnt.test: {{class: ganeti-node, role: master}}
instances:
  {APP}: {{class: app, primaryNode: node1.gnt.test}}
{bare}"
    )
}

struct Bootstrap {
    ws: Workspace,
    identity: PathBuf,
    /// The image every class pins, imported into the test's store.
    image: String,
}

impl Bootstrap {
    fn keys(&self) -> PathBuf {
        self.ws.path().join("keys")
    }

    fn store(&self) -> PathBuf {
        self.ws.path().join("store")
    }

    fn operator(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("GANETI_OPERATOR_STORE", self.store())
            .env("GANETI_OPERATOR_STATE_DIR", self.ws.state())
            .env("GANETI_OPERATOR_IDENTITY_FILE", &self.identity)
            .output()
            .unwrap();
        eprintln!(
            "$ ganeti-operator {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn reconcile(&self, extra: &[&str]) -> Output {
        let desired = self.ws.desired();
        let mut args = vec!["reconcile", desired.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.operator(&args)
    }
}

fn setup() -> Bootstrap {
    let ws = Workspace::new();
    let root = ws.path().to_owned();
    for d in ["desired/secrets", "store", "keys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let identity = root.join("keys/operator.agekey");
    run(Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .stderr(Stdio::null()));
    let recipient = String::from_utf8(run(Command::new("age-keygen").arg("-y").arg(&identity)))
        .unwrap()
        .trim()
        .to_owned();
    let mut age = Command::new("age")
        .args(["-r", &recipient, "-o"])
        .arg(root.join("desired/secrets/app-env.age"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    age.stdin
        .take()
        .unwrap()
        .write_all(format!("APP_TOKEN={CANARY}\n").as_bytes())
        .unwrap();
    assert!(age.wait().unwrap().success());
    let mut b = Bootstrap {
        ws,
        identity,
        image: String::new(),
    };
    // The store needs the classes' image, or validation refuses the state.
    std::fs::write(b.keys().join("kernel"), b"kernel").unwrap();
    std::fs::write(b.keys().join("initrd"), b"initrd").unwrap();
    let kernel = b.keys().join("kernel");
    let initrd = b.keys().join("initrd");
    let imported = b.operator(&[
        "image",
        "import",
        "--class",
        "app",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
    ]);
    assert!(imported.status.success(), "{imported:?}");
    let text = String::from_utf8_lossy(&imported.stdout).into_owned();
    b.image = text.split_whitespace().nth(1).unwrap().to_owned();
    b.ws.write(&state(&b.image, false));
    b
}

/// The body of an OpenSSH private key: what must appear nowhere in Ganeti's files.
fn key_body(private: &str) -> String {
    private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

/// Whether any file under `dir` holds any of `needles` (each line of the key body is
/// searched on its own, as Ganeti may re-wrap or escape the text).
fn files_holding(dir: &Path, needles: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file()
                && let Ok(bytes) = std::fs::read(&path)
            {
                let text = String::from_utf8_lossy(&bytes);
                if needles.iter().any(|n| text.contains(n)) {
                    found.push(path);
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn a_new_instance_gets_a_generated_host_key_and_its_secrets() {
    let Some(sb) = sandbox(TEST) else {
        return;
    };
    for tool in ["age", "age-keygen", "ssh-keygen"] {
        if !common::skip::tool(tool, TEST) {
            return;
        }
    }
    let sandbox_dir = PathBuf::from(
        std::env::var("GANETI_SANDBOX_DIR").expect("the sandbox env sets GANETI_SANDBOX_DIR"),
    );
    let received = sandbox_dir.join(format!("os-received/{APP}.ssh_host_ed25519_key"));
    let _ = std::fs::remove_file(&received);
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let b = setup();

    let validated = b.operator(&["validate", b.ws.desired().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&validated.stdout);
    assert!(
        text.contains(&format!(
            "host keys generated at create (unless the instance exists and carries one): {APP}"
        )),
        "validate names the instance: {text}"
    );
    let dry = b.reconcile(&["--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        plan.contains(&format!("+ secret app-env -> {APP}")),
        "{plan}"
    );
    assert!(plan.contains("new host, key generated at create"), "{plan}");
    assert!(plan.contains("ed25519, generated at create"), "{plan}");

    let first = b.reconcile(&[]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");

    // What the OS create script received is an OpenSSH ed25519 private key.
    let private = std::fs::read_to_string(&received)
        .unwrap_or_else(|e| panic!("the create script recorded no key at {received:?}: {e}"));
    assert!(
        private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        "{private}"
    );
    let key_file = b.keys().join("received_key");
    std::fs::write(&key_file, &private).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let public = String::from_utf8(run(Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key_file)))
    .unwrap();
    let public_data = public.split_whitespace().nth(1).unwrap().to_owned();

    // The tag holds exactly that public half.
    let instance = rapi
        .instances()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == APP)
        .expect("created");
    let tag = format!("ganeti-operator:hostkey:{public_data}");
    assert!(
        instance.tags.contains(&tag),
        "{:?} lacks {tag}",
        instance.tags
    );

    // The published secret opens with the key the OS script received.
    let published = b.store().join(format!("secrets/{APP}/app-env.age"));
    let opened = Command::new("age")
        .args(["-d", "-i"])
        .arg(&key_file)
        .arg(&published)
        .output()
        .unwrap();
    assert!(opened.status.success(), "{opened:?}");
    assert_eq!(
        String::from_utf8_lossy(&opened.stdout),
        format!("APP_TOKEN={CANARY}\n")
    );

    // Ganeti kept no copy: not in config.data, the job queue or `gnt-instance info`.
    let body = key_body(&private);
    let pieces: Vec<&str> = private
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    assert!(!pieces.is_empty());
    let node_lib = sandbox_dir.join("n1/lib");
    assert!(node_lib.join("config.data").is_file(), "{node_lib:?}");
    let holders = files_holding(&node_lib, &pieces);
    assert!(
        holders.is_empty(),
        "Ganeti's files hold the private key: {holders:?}"
    );
    let info = Command::new(common::project_root().join("tests/harness/ganeti-sandbox.sh"))
        .args(["exec", "gnt-instance", "info", APP])
        .output()
        .unwrap();
    assert!(info.status.success(), "{info:?}");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains(APP), "{info}");
    assert!(
        !pieces.iter().any(|p| info.contains(p)) && !info.contains(&body),
        "gnt-instance info shows the private key"
    );

    // A rerun reads the key back from the tag: nothing to do, nothing rewritten.
    let mtime = std::fs::metadata(&published).unwrap().modified().unwrap();
    let bytes = std::fs::read(&published).unwrap();
    let again = b.reconcile(&["--dry-run"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "converged: {}",
        String::from_utf8_lossy(&again.stdout)
    );
    let second = b.reconcile(&[]);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert_eq!(std::fs::read(&published).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&published).unwrap().modified().unwrap(),
        mtime
    );

    // An OS provider without the parameter: Ganeti refuses the job and says why.
    b.ws.write(&state(&b.image, true));
    let refused = b.reconcile(&[]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(BARE) && shown.contains("ssh_host_ed25519_key"),
        "the failure names the instance and the parameter: {shown}"
    );
    let names: Vec<String> = rapi
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(!names.contains(&BARE.to_owned()), "{names:?}");

    b.ws.write(&state(&b.image, false));
    remove_all_instances(&rapi).await;
}
