//! The harness's node verbs against a real 3-node sandbox (`GNT_NODES=3`), as the rolling
//! node upgrade needs them: `reboot` with a delay (the node is gone for Ganeti while it is
//! down, and comes back on the image its boot pointer names), `reboot --no-return` with
//! `start`, the node health endpoint, and `master-failover` there and back.
//! Every test name starts with `threenode_`; tests/run.sh runs them in its 3-node phase.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ganeti_operator::rapi::{HttpRapi, Node, Rapi};
use ganeti_operator::store::manifest::{ImageKind, Manifest};
use ganeti_operator::store::pointer::{Mac, PointerSpec, render};

/// The tests take nodes down and move the master; one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn harness_path() -> PathBuf {
    common::project_root().join("tests/harness/ganeti-sandbox.sh")
}

/// Runs a harness verb, with how long it took to return.
fn harness(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(harness_path())
        .args(args)
        .env_remove("GANETI_OPERATOR_STORE")
        .output()
        .expect("the harness runs");
    (output, started.elapsed())
}

fn harness_ok(args: &[&str]) -> Duration {
    let (output, took) = harness(args);
    assert!(
        output.status.success(),
        "harness {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    took
}

/// `name=value` pairs of a `GANETI_SANDBOX_NODE_*` variable, for one node.
fn node_env(var: &str, node: &str) -> String {
    let all = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set"));
    all.split_whitespace()
        .find_map(|pair| pair.strip_prefix(&format!("{node}=")))
        .unwrap_or_else(|| panic!("{var} has no entry for {node}: {all}"))
        .to_owned()
}

/// A boot pointer as the operator writes it, naming `image`: by MAC or by name.
fn write_pointer(store: &Path, node: &str, image: &str, by_name: bool) {
    let mac = Mac::parse(&node_env("GANETI_SANDBOX_NODE_MACS", node)).expect("a MAC");
    let manifest = Manifest {
        id: image.to_owned(),
        kind: ImageKind::KexecTree,
        files: vec![],
        cmdline: "init=/init".into(),
        source: "tests/harness_nodes.rs".into(),
        imported_for: Some("ganeti-node".into()),
        imported_at: 0,
    };
    let text = render(&PointerSpec {
        base_url: "http://10.221.0.1:8480",
        host: node,
        mac: Some(mac),
        image: &manifest,
        kernel_args: None,
    });
    let path = if by_name {
        store.join("boot/by-name").join(format!("{node}.ipxe"))
    } else {
        store.join("boot").join(format!("{}.ipxe", mac.hexhyp()))
    };
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `GET /health` on the node's endpoint: the body of a 200, else what happened instead.
fn health(node: &str) -> Result<String, String> {
    let ip = node_env("GANETI_SANDBOX_NODE_IPS", node);
    let url = node_env("GANETI_SANDBOX_NODE_HEALTH_URLS", node);
    let port: u16 = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .expect("a port in the health URL");
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok();
    stream
        .write_all(format!("GET /health HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
        Ok(body.to_owned())
    } else {
        Err(head.lines().next().unwrap_or("").to_owned())
    }
}

/// Whether the master reaches the node: Ganeti's live fields (memory, disk, CPUs) come from
/// the node's noded, and are null while it does not answer.
fn live(node: &Node) -> bool {
    node.mfree.is_some() && node.mtotal.is_some()
}

async fn node_view(rapi: &HttpRapi, name: &str) -> Option<Node> {
    let nodes = rapi.nodes().await.ok()?;
    nodes.into_iter().find(|n| n.name == name)
}

/// Polls until the node's liveness is `want`; the time it took.
async fn wait_live(rapi: &HttpRapi, name: &str, want: bool, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let view = node_view(rapi, name).await;
        if view.as_ref().is_some_and(|n| live(n) == want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{name}: not {} for the RAPI within {within:?}; last view: {view:?}",
            if want { "live" } else { "gone" }
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_health(node: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        match health(node) {
            Ok(body) => return body,
            Err(e) => assert!(
                started.elapsed() < within,
                "{node}: health endpoint not back within {within:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Brings a node back whatever a test left it in (`start` is a no-op on a node that is up).
struct StartOnDrop(String);

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let (output, _) = harness(&["start", &self.0]);
        if !output.status.success() {
            eprintln!(
                "restoring {}: {}",
                self.0,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

fn unique_image(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("sha256-{tag}{nanos:x}")
}

#[tokio::test(flavor = "multi_thread")]
async fn threenode_reboot_is_gone_while_down_and_back_on_the_pointer_image() {
    let test = "threenode_reboot_is_gone_while_down_and_back_on_the_pointer_image";
    let Some((sandbox, rapi)) = common::sandbox::three_nodes(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let node = sandbox.nodes[2].clone();
    let _restore = StartOnDrop(node.clone());
    wait_live(&rapi, &node, true, Duration::from_secs(60)).await;
    let before = health(&node).expect("the health endpoint answers before the reboot");
    assert!(before.starts_with("IMAGE="), "{before}");

    let store = tempfile::tempdir().unwrap();
    let image = unique_image("reboot");
    write_pointer(store.path(), &node, &image, false);
    let delay = 12;
    let started = Instant::now();
    let returned = harness_ok(&[
        "reboot",
        &node,
        "--delay",
        &delay.to_string(),
        "--store",
        store.path().to_str().unwrap(),
    ]);
    let refused = health(&node).expect_err("no health endpoint while the node is down");
    let gone = wait_live(&rapi, &node, false, Duration::from_secs(30)).await;
    let view = node_view(&rapi, &node)
        .await
        .expect("the node is still listed");
    eprintln!(
        "{test}: reboot returned in {returned:?}; health while down: {refused}; the RAPI shows it gone {:?} after the reboot returned: {view:?}",
        gone
    );

    let back = wait_live(&rapi, &node, true, Duration::from_secs(delay + 90)).await;
    let total = started.elapsed();
    assert!(
        total >= Duration::from_secs(delay),
        "back after {total:?}, before the {delay} s delay"
    );
    let body = wait_health(&node, Duration::from_secs(10)).await;
    assert!(
        body.lines().any(|l| l == format!("IMAGE={image}")),
        "{node} serves {body:?}, not IMAGE={image}"
    );
    eprintln!(
        "{test}: live again {:?} after the reboot started ({back:?} of polling), health: {body:?}",
        total
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn threenode_reboot_no_return_stays_down_until_start() {
    let test = "threenode_reboot_no_return_stays_down_until_start";
    let Some((sandbox, rapi)) = common::sandbox::three_nodes(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let node = sandbox.nodes[2].clone();
    let _restore = StartOnDrop(node.clone());
    wait_live(&rapi, &node, true, Duration::from_secs(60)).await;

    // A node name, as the operator's `{node}` fills it in; nothing to boot yet.
    harness_ok(&["reboot", &node, "--no-return"]);
    wait_live(&rapi, &node, false, Duration::from_secs(30)).await;
    // Well past any delay: it does not come back by itself.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let view = node_view(&rapi, &node).await.expect("still listed");
        assert!(!live(&view), "{node} came back by itself: {view:?}");
        assert!(health(&node).is_err(), "health answers while down");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Booted with a store whose only pointer for it is by name.
    let store = tempfile::tempdir().unwrap();
    let image = unique_image("start");
    write_pointer(store.path(), &node, &image, true);
    let took = harness_ok(&["start", "n3", "--store", store.path().to_str().unwrap()]);
    // `start` returns once noded answers: the master sees it live almost at once.
    let live_after = wait_live(&rapi, &node, true, Duration::from_secs(30)).await;
    let body = health(&node).expect("health answers once start returned");
    assert!(
        body.lines().any(|l| l == format!("IMAGE={image}")),
        "{body:?}"
    );
    eprintln!("{test}: start took {took:?}, live {live_after:?} later, health {body:?}");

    // No store: it boots, and knows no image.
    harness_ok(&["reboot", "n3"]);
    wait_live(&rapi, &node, true, Duration::from_secs(60)).await;
    let body = wait_health(&node, Duration::from_secs(30)).await;
    assert!(body.lines().any(|l| l == "IMAGE="), "{body:?}");
}

async fn master(rapi: &HttpRapi) -> String {
    rapi.info()
        .await
        .expect("the RAPI answers")
        .master
        .expect("a master")
}

/// Fails the master back to the first node whatever the test did.
struct MasterBackOnDrop(String);

impl Drop for MasterBackOnDrop {
    fn drop(&mut self) {
        let (output, _) = harness(&["master-failover", &self.0]);
        if !output.status.success() {
            eprintln!(
                "failing the master back to {}: {}",
                self.0,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn threenode_master_failover_to_node2_and_back() {
    let test = "threenode_master_failover_to_node2_and_back";
    let Some((sandbox, rapi)) = common::sandbox::three_nodes(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let first = sandbox.nodes[0].clone();
    let second = sandbox.nodes[1].clone();
    assert_eq!(master(&rapi).await, first);
    for n in &sandbox.nodes {
        wait_live(&rapi, n, true, Duration::from_secs(60)).await;
    }
    let _back = MasterBackOnDrop(first.clone());

    for (to, from) in [(&second, &first), (&first, &second)] {
        let took = harness_ok(&["master-failover", to]);
        // The same client, trusting the CA: the new master serves the same certificate.
        assert_eq!(&master(&rapi).await, to);
        let nodes = rapi.nodes().await.expect("the RAPI lists the nodes");
        let role = |name: &str| {
            nodes
                .iter()
                .find(|n| n.name == name)
                .and_then(|n| n.role.clone())
        };
        assert_eq!(role(to).as_deref(), Some("M"), "{nodes:?}");
        assert_eq!(role(from).as_deref(), Some("C"), "{nodes:?}");
        rapi.instances()
            .await
            .expect("the RAPI lists the instances");
        eprintln!("{test}: master-failover to {to} took {took:?}");
    }
}
