//! Rolling node upgrades on the real 3-node sandbox (issue 12). The nodes netboot the
//! `ganeti-node` class as the harness plays it: `reboot` stops every daemon of a node and
//! boots it on the image its pointer names, which its health endpoint then serves. The
//! operator's `nodeReboot.command` and `masterFailover.command` are the harness's verbs.
//!
//! Every test name starts with `threenode_`; tests/run.sh runs them in its 3-node phase.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ganeti_operator::rapi::{HttpRapi, JobStatus, Rapi};

use common::reconcile::{operator_jobs, remove_all_instances};

use common::upgrade_sampler::{NODES, sample_every_200ms};
/// One at a time: the tests reboot nodes and move the master.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn harness_path() -> PathBuf {
    common::project_root().join("tests/harness/ganeti-sandbox.sh")
}

/// A desired-state directory, a state directory and an artifact store with two images.
struct Upgrade {
    dir: tempfile::TempDir,
    a: String,
    b: String,
    guests: Option<Guests>,
}

/// Real netbooted VMs beside the fake-hypervisor instances: the netboot harness's guest
/// image, the store served to them, and each VM's primary node.
struct Guests {
    image: String,
    base_url: String,
    vms: Vec<(&'static str, &'static str)>,
    _server: common::netboot::StoreServer,
}

impl Upgrade {
    fn new() -> Upgrade {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["desired", "state", "store", "files"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let mut upgrade = Upgrade {
            dir,
            a: String::new(),
            b: String::new(),
            guests: None,
        };
        upgrade.a = upgrade.import("A");
        upgrade.b = upgrade.import("B");
        upgrade
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// Adds the kvm VMs `vms` (name, primary node), which boot guest image A from this
    /// store, served by the built-in server where the nodes' forwarders reach it.
    fn with_guests(&mut self, nb: &common::netboot::Netboot, vms: &[(&'static str, &'static str)]) {
        let result = nb.result("A");
        let out = common::operator(&[
            "image",
            "import",
            "--class",
            "netboot",
            result.to_str().unwrap(),
            "--store",
            self.path("store").to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{out:?}");
        let image = text
            .split_whitespace()
            .find(|w| w.starts_with("sha256-"))
            .unwrap()
            .to_owned();
        let logs = self.path("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let server =
            common::netboot::StoreServer::builtin(&self.path("store"), &nb.store_addr, &logs);
        self.guests = Some(Guests {
            image,
            base_url: nb.base_url.clone(),
            vms: vms.to_vec(),
            _server: server,
        });
    }

    /// A node image as `image import` takes it; the harness's nodes only read its id.
    fn import(&self, label: &str) -> String {
        let files = self.path("files");
        let kernel = files.join(format!("bzImage-{label}"));
        let initrd = files.join(format!("initrd-{label}"));
        std::fs::write(&kernel, format!("kernel {label}")).unwrap();
        std::fs::write(&initrd, format!("initrd {label}")).unwrap();
        let out = common::operator(&[
            "image",
            "import",
            "--class",
            "ganeti-node",
            "--kernel",
            kernel.to_str().unwrap(),
            "--initrd",
            initrd.to_str().unwrap(),
            "--store",
            self.path("store").to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.split_whitespace()
            .find(|w| w.starts_with("sha256-"))
            .unwrap_or_else(|| panic!("no id in {text}"))
            .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .to_owned()
    }

    /// The cluster with three nodes on `image`, `instances` (name, node, memory) and the
    /// harness as the reboot command (or `reboot` instead).
    fn write(&self, image: &str, instances: &[(&str, &str, &str)], reboot: Option<&[&str]>) {
        let harness = harness_path();
        let harness = harness.to_str().unwrap();
        let store = self.path("store");
        let default_reboot = [
            harness,
            "reboot",
            "{node}",
            "--store",
            store.to_str().unwrap(),
        ];
        let reboot: Vec<String> = reboot
            .unwrap_or(&default_reboot)
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
        let roles = ["master", "master-candidate", "master-candidate"];
        let nodes: String = NODES
            .iter()
            .zip(roles)
            .enumerate()
            .map(|(i, (n, role))| {
                format!(
                    "  {n}: {{class: ganeti-node, role: {role}, mac: \"52:54:00:67:6e:0{}\"}}\n",
                    i + 1
                )
            })
            .collect();
        let listed: String = instances
            .iter()
            .map(|(name, node, memory)| {
                format!(
                    "  {name}: {{class: web, primaryNode: {node}, resources: {{memory: {memory}}}}}\n"
                )
            })
            .collect();
        let (base_url, netboot, vms) = match &self.guests {
            None => (
                "http://10.221.0.1:8480".to_owned(),
                String::new(),
                String::new(),
            ),
            Some(g) => {
                let kernel_args =
                    std::env::var("GANETI_NETBOOT_KERNEL_ARGS").unwrap_or_else(|_| {
                        "|| ifconf -c dhcp net0 && chain http://10.222.0.1:8080/boot/chain.ipxe ||"
                            .into()
                    });
                let class = format!(
                    r#"  netboot:
    image: {}
    hypervisor: kvm
    os: noop+default
    kernelArgs: hostname={{host}}
    hvparams: {{kernel_args: "{kernel_args}"}}
    resources: {{memory: 96M, vcpus: 1}}
"#,
                    g.image
                );
                let vms: String = g
                    .vms
                    .iter()
                    .map(|(name, node)| {
                        format!("  {name}: {{class: netboot, primaryNode: {node}}}\n")
                    })
                    .collect();
                (g.base_url.clone(), class, vms)
            }
        };
        let listed = format!("{listed}{vms}");
        let listed = if listed.is_empty() {
            " {}\n".to_owned()
        } else {
            format!("\n{listed}")
        };
        let yaml = format!(
            r#"cluster:
  name: cluster.gnt.test
  rapiUrl: https://10.221.0.10:5080
  hypervisor: fake
  defaultDiskTemplate: diskless
  nic: {{link: br-inst, mode: bridged}}
  store: {{baseUrl: "{base_url}"}}
  nodeReboot: {{command: [{reboot}], timeout: 1m}}
  masterFailover: {{command: ["{harness}", master-failover, "{{node}}"], timeout: 3m}}
policy: {{prune: true, maxDeletions: 5, freezeDuringNodeWork: true}}
classes:
  ganeti-node:
    image: {image}
    rotation:
      timeout: 3m
      healthCheck: {{url: "http://{{ip}}:8099/health", expectBody: "IMAGE={{image}}", timeout: 3s}}
  web:
    image: {a}
    os: noop+default
    resources: {{memory: 128M, vcpus: 1}}
{netboot}nodes:
{nodes}instances:{listed}"#,
            reboot = reboot.join(", "),
            a = self.a,
        );
        std::fs::write(self.path("desired").join("desired-state.yaml"), yaml).unwrap();
    }

    fn reconcile(&self, extra: &[&str]) -> std::process::Output {
        let desired = self.path("desired");
        let mut args = vec!["reconcile", desired.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (state, store) = (self.path("state"), self.path("store"));
        common::operator_with_env(
            &args,
            &[
                ("GANETI_OPERATOR_STATE_DIR", state.as_path()),
                ("GANETI_OPERATOR_STORE", store.as_path()),
            ],
        )
    }

    /// `reconcile` in the background, its stderr going to a file read while it runs.
    fn spawn(&self) -> (std::process::Child, PathBuf) {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, Ordering::SeqCst);
        let log = self.path(&format!("reconcile-{run}.log"));
        let desired = self.path("desired");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args(["reconcile", desired.to_str().unwrap()])
            .current_dir(common::project_root())
            .env("NO_COLOR", "1")
            .env("GANETI_OPERATOR_STATE_DIR", self.path("state"))
            .env("GANETI_OPERATOR_STORE", self.path("store"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, log)
    }

    fn apply(&self, code: i32) -> String {
        let out = self.reconcile(&[]);
        let text = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{text}");
        text
    }
}

/// Waits for a line containing `text` in a growing log, and returns it.
fn wait_for_line(log: &Path, text: &str, within: Duration) -> String {
    let until = Instant::now() + within;
    loop {
        let content = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = content.lines().find(|l| l.contains(text)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < until,
            "no `{text}` within {within:?}:\n{content}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /health` on a node's endpoint, its body.
fn health(node: &str) -> Option<String> {
    let i = NODES.iter().position(|n| *n == node)? + 1;
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-m",
            "2",
            &format!("http://10.221.0.1{i}:8099/health"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn runs(node: &str, image: &str) -> bool {
    health(node).is_some_and(|b| b.lines().any(|l| l == format!("IMAGE={image}")))
}

/// Boots every node on what its pointer names, one at a time, and waits for each.
async fn boot_all_on_pointers(rapi: &HttpRapi, store: &Path, image: &str) {
    for node in NODES {
        if runs(node, image) {
            continue;
        }
        let out = std::process::Command::new(harness_path())
            .args(["reboot", node, "--store", store.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let until = Instant::now() + Duration::from_secs(180);
        while !(runs(node, image) && live(rapi, node).await) {
            assert!(
                Instant::now() < until,
                "{node} did not come back on {image}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn live(rapi: &HttpRapi, node: &str) -> bool {
    rapi.nodes()
        .await
        .ok()
        .and_then(|nodes| nodes.into_iter().find(|n| n.name == node))
        .is_some_and(|n| n.mfree.is_some())
}

/// No instances and no freeze, the master on node1, every node undrained and without an image tag,
/// whatever a test (or the benchmark) left.
async fn clean_slate(rapi: &HttpRapi) {
    remove_all_instances(rapi).await;
    for uuid in common::cluster::freeze_filters(rapi).await {
        rapi.delete_filter(&uuid).await.unwrap();
    }
    let _ = std::process::Command::new(harness_path())
        .args(["master-failover", "node1.gnt.test"])
        .output();
    // What an earlier test's upgrade left on the cluster: its stall, its nodes' tags.
    let stalls: Vec<String> = rapi
        .info()
        .await
        .unwrap()
        .tags
        .into_iter()
        .filter(|t| t.starts_with("ganeti-operator:stall:"))
        .collect();
    if !stalls.is_empty() {
        let op = ganeti_operator::rapi::Operation::RemoveTags {
            target: ganeti_operator::rapi::operation::TagTarget::Cluster,
            tags: stalls,
        };
        common::cluster::run_job(rapi, op).await;
    }
    for node in rapi.nodes().await.unwrap() {
        let tags: Vec<String> = node
            .tags
            .iter()
            .filter(|t| t.starts_with("ganeti-operator:"))
            .cloned()
            .collect();
        if !tags.is_empty() {
            let op = ganeti_operator::rapi::Operation::RemoveTags {
                target: ganeti_operator::rapi::operation::TagTarget::Node(node.name.clone()),
                tags,
            };
            common::cluster::run_job(rapi, op).await;
        }
        if node.drained == Some(true) {
            let op = ganeti_operator::rapi::Operation::SetNodeRole {
                node: node.name.clone(),
                role: ganeti_operator::rapi::operation::NodeRoleName::MasterCandidate,
            };
            common::cluster::run_job(rapi, op).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn threenode_rolling_upgrade_of_all_three_nodes_keeps_every_instance_running() {
    let test = "threenode_rolling_upgrade_of_all_three_nodes_keeps_every_instance_running";
    let Some((sandbox, rapi)) = common::sandbox::three_nodes(test) else {
        return;
    };
    let Some(nb) = common::netboot::netboot(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    clean_slate(&rapi).await;
    let mut up = Upgrade::new();
    let instances = [
        ("up1.gnt.test", "node1.gnt.test", "128M"),
        ("up2.gnt.test", "node2.gnt.test", "128M"),
        ("up3.gnt.test", "node3.gnt.test", "128M"),
        ("up4.gnt.test", "node3.gnt.test", "128M"),
    ];
    // Real VMs under Ganeti's kvm hypervisor, netbooted from the store: one on the master.
    let vms = [
        ("upvm1.gnt.test", "node1.gnt.test"),
        ("upvm3.gnt.test", "node3.gnt.test"),
    ];
    up.with_guests(&nb, &vms);
    // The nodes first boot image A, as their pointers say.
    up.write(&up.a, &[], None);
    up.apply(0);
    boot_all_on_pointers(&rapi, &up.path("store"), &up.a).await;
    up.write(&up.a, &instances, None);
    up.apply(0);
    let guest = up.guests.as_ref().unwrap().image.clone();
    for (vm, _) in vms {
        let until = Instant::now() + Duration::from_secs(180);
        while common::netboot::ask_health(vm).as_deref() != Ok(guest.as_str()) {
            assert!(
                Instant::now() < until,
                "{vm} did not boot {guest}: {:?}\n{}",
                common::netboot::ask_health(vm),
                nb.console(vm)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let addresses = common::netboot::vm_addresses();
    let vm_ips: Vec<(String, String)> = vms
        .iter()
        .map(|(vm, _)| {
            let ip = addresses
                .get(*vm)
                .unwrap_or_else(|| panic!("{vm}: no address in {addresses:?}"));
            ((*vm).to_owned(), ip.clone())
        })
        .collect();
    let boots: Vec<usize> = vms.iter().map(|(vm, _)| nb.boots(vm)).collect();
    let before = common::cluster::last_job_id(&rapi).await;

    // One edit of the class's image upgrades all three.
    up.write(&up.b, &instances, None);
    let dry = up.reconcile(&["--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_eq!(dry.status.code(), Some(2), "{plan}");
    assert!(
        plan.contains("~ node node2.gnt.test")
            && plan.contains("n+1:")
            && plan.contains("order: node2.gnt.test, node3.gnt.test, node1.gnt.test"),
        "the dry run shows the first node's step, the N+1 figures and the order:\n{plan}"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_every_200ms(sandbox.client(), stop.clone(), vm_ips);
    let started = Instant::now();
    let mut logs = Vec::new();
    // SIGKILL during the first drain, a migration and the wait to rejoin, each time with
    // the state directory removed after it (the seeds' nodes boot from RAM): each run
    // resumes where the last one was, from what the cluster shows (the nodes' upgrading
    // and rebooted tags, drain flags, instances and pointers).
    for (when, line) in [
        ("during a drain", "node_role submitted as job"),
        ("during a migration", "instance_migrate submitted as job"),
        ("while waiting to rejoin", "node_reboot_command done"),
    ] {
        let (mut child, log) = up.spawn();
        let seen = wait_for_line(&log, line, Duration::from_secs(300));
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir_all(up.path("state")).unwrap();
        eprintln!(
            "{test}: killed {when}, state directory removed, at {:?} ({})",
            started.elapsed(),
            seen.trim()
        );
        logs.push(std::fs::read_to_string(&log).unwrap());
        if when == "during a drain" {
            // The freeze holds while the node is out, the operator killed or not.
            let status = common::cluster::create_as(
                &rapi,
                "rogue.gnt.test",
                "node1.gnt.test",
                "someone-else",
            )
            .await;
            assert_eq!(
                status,
                JobStatus::Canceled,
                "another client's create is rejected"
            );
        }
    }
    let log = up.apply(0);
    logs.push(log.clone());
    let took = started.elapsed();
    // A few rounds more: the last move back's switchover needs a sample after it.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let sampled = sampler.join().unwrap();
    let (switchovers, outages) = sampled.not_running();
    eprintln!(
        "{test}: upgraded 3 nodes in {took:?}; sampler: {} rounds, {} unanswered, at most {} drained; \
         not running at a migration's switchover: {switchovers:?}; VM health answers: {:?}",
        sampled.rounds, sampled.unanswered, sampled.most_drained, sampled.vm_answers
    );
    assert!(log.contains("master_failover_command"), "{log}");
    for node in rapi.nodes().await.unwrap() {
        assert!(
            !node
                .tags
                .iter()
                .any(|t| t.starts_with("ganeti-operator:upgrading:")
                    || t.starts_with("ganeti-operator:rebooted:")),
            "{}: no upgrade tag left: {:?}",
            node.name,
            node.tags
        );
    }
    assert!(sampled.rounds > 50, "{} rounds", sampled.rounds);
    assert!(
        sampled.most_drained <= 1,
        "{} drained at once",
        sampled.most_drained
    );
    assert!(
        outages.is_empty(),
        "every instance runs at every sample but a switchover: {outages:?}"
    );
    // The VMs answered at every sample, on their image, and none rebooted: live
    // migration moved them with their nodes' other instances.
    assert!(
        sampled.vm_misses.is_empty(),
        "a VM's health did not answer: {:?}",
        sampled.vm_misses
    );
    for ((vm, _), booted) in vms.iter().zip(boots) {
        let answers = sampled.vm_answers.get(*vm).cloned().unwrap_or_default();
        assert_eq!(
            answers.keys().collect::<Vec<_>>(),
            [&guest],
            "{vm} answered on its image only: {answers:?}"
        );
        assert!(answers[&guest] > 50, "{vm}: {answers:?}");
        assert_eq!(
            nb.boots(vm),
            booted,
            "{vm} was not rebooted:\n{}",
            nb.console(vm)
        );
    }
    assert!(
        sampled.unfrozen.is_empty(),
        "a node was out without the freeze: {:?}",
        sampled.unfrozen
    );
    assert!(
        common::cluster::freeze_filters(&rapi).await.is_empty(),
        "the freeze is lifted"
    );
    assert_eq!(
        sampled.instances.len(),
        instances.len() + vms.len(),
        "every instance sampled"
    );
    for node in NODES {
        assert!(runs(node, &up.b), "{node} serves {:?}", health(node));
    }
    let nodes = rapi.nodes().await.unwrap();
    for node in &nodes {
        assert!(
            node.tags
                .contains(&format!("ganeti-operator:image:{}", up.b)),
            "{} tags: {:?}",
            node.name,
            node.tags
        );
        assert_eq!(node.drained, Some(false), "{}", node.name);
    }
    let master = nodes
        .iter()
        .find(|n| n.role.as_deref() == Some("M"))
        .unwrap();
    assert_eq!(master.name, "node1.gnt.test", "the master failed back");
    let seen = rapi.instances().await.unwrap();
    let everyone: Vec<(&str, &str)> = instances
        .iter()
        .map(|(name, node, _)| (*name, *node))
        .chain(vms)
        .collect();
    for (name, node) in everyone.iter().copied() {
        let instance = seen.iter().find(|i| i.name == name).unwrap();
        assert_eq!(instance.pnode.as_deref(), Some(node), "{name} back home");
        assert_eq!(instance.oper_state, Some(true), "{name} runs");
    }
    // Each node's reboot command ran once across the four runs, state directories lost
    // included.
    let reboots: usize = logs
        .iter()
        .map(|l| l.matches("node_reboot_command running").count())
        .sum();
    assert_eq!(reboots, NODES.len(), "{}", logs.join("\n---\n"));
    // Away and back: two live migrations each, none submitted twice, across the four runs.
    let submitted: usize = logs
        .iter()
        .map(|l| l.matches("instance_migrate submitted as job").count())
        .sum();
    assert_eq!(submitted, 2 * everyone.len(), "{}", logs.join("\n---\n"));
    // Ganeti's own list agrees, as far as it reaches: a node drained while jobs ran is no
    // master candidate, so once it is the master again its queue lacks those jobs.
    let jobs = operator_jobs(&rapi, before).await;
    for (name, _) in everyone.iter() {
        let migrations = jobs
            .get(&("OP_INSTANCE_MIGRATE".to_owned(), (*name).to_owned()))
            .map_or(0, Vec::len);
        assert!((1..=2).contains(&migrations), "{name}: {jobs:?}");
    }
    up.assert_converged();
    remove_all_instances(&rapi).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn threenode_an_upgrade_that_would_not_fit_is_refused_with_the_figures() {
    let test = "threenode_an_upgrade_that_would_not_fit_is_refused_with_the_figures";
    let Some((_sandbox, rapi)) = common::sandbox::three_nodes(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    clean_slate(&rapi).await;
    let up = Upgrade::new();
    up.write(&up.a, &[], None);
    up.apply(0);
    boot_all_on_pointers(&rapi, &up.path("store"), &up.a).await;
    // The fake hypervisor counts its instances' memory against the node's: with 12G on
    // each node, no node has room for another's.
    let free = rapi.nodes().await.unwrap()[0].mfree.unwrap();
    // Whole GiB: Ganeti rounds some MiB figures up (13627M came back as 13628).
    let big = format!("{}G", (free * 6 / 10 / 1024).max(1));
    let instances = [
        ("big1.gnt.test", "node1.gnt.test", big.as_str()),
        ("big2.gnt.test", "node2.gnt.test", big.as_str()),
        ("big3.gnt.test", "node3.gnt.test", big.as_str()),
    ];
    up.write(&up.a, &instances, None);
    up.apply(0);
    let before = common::cluster::last_job_id(&rapi).await;
    up.write(&up.b, &instances, None);
    let out = up.reconcile(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("N+1 does not hold for node2.gnt.test")
            && text.contains("big2.gnt.test needs")
            && text.contains("nothing was drained"),
        "{text}"
    );
    assert!(
        operator_jobs(&rapi, before).await.is_empty(),
        "nothing was submitted"
    );
    assert!(
        rapi.nodes()
            .await
            .unwrap()
            .iter()
            .all(|n| n.drained == Some(false)),
        "no node drained"
    );
    remove_all_instances(&rapi).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn threenode_a_failing_reboot_command_points_back_stalls_and_touches_no_other_node() {
    let test = "threenode_a_failing_reboot_command_points_back_stalls_and_touches_no_other_node";
    let Some((_sandbox, rapi)) = common::sandbox::three_nodes(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    clean_slate(&rapi).await;
    let up = Upgrade::new();
    let instances = [("fail2.gnt.test", "node2.gnt.test", "128M")];
    let failing: &[&str] = &["/bin/false", "{node}"];
    up.write(&up.a, &[], Some(failing));
    up.apply(0);
    boot_all_on_pointers(&rapi, &up.path("store"), &up.a).await;
    up.write(&up.a, &instances, Some(failing));
    up.apply(0);
    up.write(&up.b, &instances, Some(failing));
    let out = up.reconcile(&[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    let status = up.reconcile(&["--dry-run"]);
    let plan = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        plan.contains("node upgrade to")
            && plan.contains("failed on node2.gnt.test")
            && plan.contains("/bin/false exited with status 1"),
        "the status says why:\n{plan}"
    );
    assert!(
        common::cluster::freeze_filters(&rapi).await.is_empty(),
        "a stalled upgrade lifts the freeze: node2 stays drained, nothing else moves"
    );
    let store = up.path("store");
    let pointer = std::fs::read_to_string(store.join("boot/by-name/node2.gnt.test.ipxe")).unwrap();
    assert!(pointer.contains(&up.a), "pointed back at A:\n{pointer}");
    let nodes = rapi.nodes().await.unwrap();
    let by_name = |n: &str| nodes.iter().find(|x| x.name == n).unwrap();
    assert_eq!(
        by_name("node2.gnt.test").drained,
        Some(true),
        "node2 left drained"
    );
    assert_eq!(
        by_name("node3.gnt.test").drained,
        Some(false),
        "node3 untouched"
    );
    assert!(
        !by_name("node3.gnt.test")
            .tags
            .iter()
            .any(|t| t.contains(&up.b)),
        "node3 untouched"
    );
    clean_slate(&rapi).await;
}

impl Upgrade {
    fn assert_converged(&self) {
        let out = self.reconcile(&["--dry-run"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "not converged:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
