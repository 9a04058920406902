//! Real VMs under Ganeti's kvm hypervisor (QEMU/TCG) netbooting over iPXE from the store:
//! the sandbox example creates them, their first boot fetches their own pointer, their
//! health endpoint names the pinned image; a re-pin rotates them onto the new image one
//! at a time (flip, reboot, health, tag), and a reboot through Ganeti fetches the pointer
//! from real nginx. Then a crash between a pointer write and its create job.

use crate::common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::netboot::{StoreServer, Workdir, netboot};
use common::reconcile::{operator_jobs, remove_all_instances};
use common::sandbox::sandbox;
use common::{assert_golden, project_root};
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::operation::RebootKind;
use ganeti_operator::rapi::{HttpRapi, Operation, Rapi as _, WriteOptions};
use ganeti_operator::store::pointer::Mac;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const BOOT: Duration = Duration::from_secs(240);
const VMS: [&str; 2] = ["vm1.gnt.test", "vm2.gnt.test"];

/// The test's directories (see [`Workdir`]), with the sandbox example written into them.
struct Run(Workdir);

impl std::ops::Deref for Run {
    type Target = Workdir;
    fn deref(&self) -> &Workdir {
        &self.0
    }
}

impl Run {
    fn new() -> Run {
        Run(Workdir::new())
    }
    /// The sandbox example with every pin replaced by `image`, and the netboot class's by
    /// `netboot_image`: the committed ids are those of the kernel Debian shipped when
    /// they were written.
    fn write_example(&self, image: &str, netboot_image: &str) {
        let text = std::fs::read_to_string(
            project_root().join("desired-state/sandbox/desired-state.yaml"),
        )
        .unwrap();
        let mut out = String::new();
        let mut in_netboot_class = false;
        for line in text.lines() {
            if line.starts_with("  ") && !line.starts_with("   ") {
                in_netboot_class = line.trim() == "netboot:";
            }
            match line.split_once("image: sha256-") {
                Some((head, _)) => {
                    let id = if in_netboot_class {
                        netboot_image
                    } else {
                        image
                    };
                    out.push_str(&format!("{head}image: {id}\n"));
                }
                None => out.push_str(&format!("{line}\n")),
            }
        }
        std::fs::write(self.path("desired").join("desired-state.yaml"), out).unwrap();
    }
    fn reconcile(&self, extra: &[&str]) -> Output {
        let desired = self.path("desired");
        let mut args = vec!["reconcile", desired.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.operator(&args)
    }
}

async fn mac_of(rapi: &HttpRapi, name: &str) -> String {
    let instance = common::cluster::instance(rapi, name).await.unwrap();
    instance.nic_macs[0].clone().unwrap()
}

async fn hard_reboot(rapi: &HttpRapi, name: &str) {
    let op = Operation::RebootInstance {
        instance: name.into(),
        kind: RebootKind::Hard,
    };
    let id = rapi
        .submit(&op, &WriteOptions::new("test:reboot-into-new-pointer"))
        .await
        .unwrap();
    wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
}

fn hexhyp(mac: &str) -> String {
    Mac::parse(mac).unwrap().hexhyp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netboot_vms_boot_their_pinned_image_and_a_pointer_steers_their_next_boot() {
    let Some(sb) = sandbox("netboot_e2e") else {
        return;
    };
    let Some(nb) = netboot("netboot_e2e") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let run = Run::new();
    let (a, b) = (run.import(&nb, "A"), run.import(&nb, "B"));
    run.write_example(&a, &a);

    let started = Instant::now();
    let server = StoreServer::builtin(&run.path("store"), &nb.store_addr, &run.path("logs"));
    let applied = run.reconcile(&[]);
    assert_eq!(applied.status.code(), Some(0), "{applied:?}");
    let mut macs = Vec::new();
    for vm in VMS {
        let mac = mac_of(&rapi, vm).await;
        let took = nb.wait_healthy(vm, &mac, &a, BOOT);
        eprintln!(
            "{vm}: healthy on {a} {took:?} after its create ({:?} after reconcile start)",
            started.elapsed()
        );
        let log = server.log();
        assert!(
            log.contains(&format!("GET /boot/{}.ipxe 200", hexhyp(&mac))),
            "{vm}'s first boot fetched its pointer:\n{log}"
        );
        macs.push(mac);
    }
    let settled = run.reconcile(&["--dry-run"]);
    assert_eq!(
        settled.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&settled.stdout)
    );

    // Re-pin the netboot class: its rotation starts with vm1, and nothing else changes.
    run.write_example(&a, &b);
    let plan = run.reconcile(&["--dry-run"]);
    assert_eq!(plan.status.code(), Some(2));
    let mut text = String::from_utf8_lossy(&plan.stdout)
        .replace(&a, "<A>")
        .replace(&b, "<B>");
    for (i, mac) in macs.iter().enumerate() {
        text = text.replace(&hexhyp(mac), &format!("<MAC{}>", i + 1));
    }
    assert_golden(
        &project_root().join("tests/golden/netboot/repin.txt"),
        &text,
    );
    // The rotation moves them one at a time: each flipped, rebooted, proven, tagged.
    let first_job = common::cluster::last_job_id(&rapi).await;
    let rotated = run.reconcile(&[]);
    assert_eq!(rotated.status.code(), Some(0), "{rotated:?}");
    for (vm, mac) in VMS.iter().zip(&macs) {
        nb.wait_healthy(vm, mac, &b, BOOT);
    }
    let jobs = operator_jobs(&rapi, first_job).await;
    for vm in VMS {
        let reboots = &jobs[&("OP_INSTANCE_REBOOT".to_owned(), vm.to_owned())];
        assert_eq!(reboots.len(), 1, "{vm} rebooted once: {jobs:?}");
    }
    drop(server);

    // The same tree through real nginx.
    let nginx = StoreServer::nginx(&run.path("store"), &nb.store_addr, &run.path("logs"));
    hard_reboot(&rapi, VMS[1]).await;
    nb.wait_healthy(VMS[1], &macs[1], &b, BOOT);
    let log = nginx.log();
    assert!(
        log.contains(&format!("GET /boot/{}.ipxe", hexhyp(&macs[1]))),
        "nginx served vm2's pointer:\n{log}"
    );
    assert!(log.contains(&format!("GET /images/{b}/bzImage")), "{log}");
    drop(nginx);
    remove_all_instances(&rapi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_pointer_and_the_create_job_creates_once_and_boots_the_pin() {
    let Some(sb) = sandbox("netboot_crash") else {
        return;
    };
    let Some(nb) = netboot("netboot_crash") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let run = Run::new();
    let a = run.import(&nb, "A");
    run.write_example(&a, &a);
    let _server = StoreServer::builtin(&run.path("store"), &nb.store_addr, &run.path("logs"));
    let first_job = common::cluster::last_job_id(&rapi).await;

    // Kill the moment vm1's pointer exists: before its create job, or just after.
    let pointer = run.path("store").join("boot/by-name/vm1.gnt.test.ipxe");
    let desired = run.path("desired");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .args(["reconcile", desired.to_str().unwrap()])
        .env("GANETI_OPERATOR_STORE", run.path("store"))
        .env("GANETI_OPERATOR_STATE_DIR", run.path("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pointer.exists() {
        assert!(Instant::now() < deadline, "the pointer was never written");
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before_rerun = operator_jobs(&rapi, first_job).await;
    let created_before = before_rerun
        .keys()
        .filter(|(op, i)| op == "OP_INSTANCE_CREATE" && i == "vm1.gnt.test")
        .count();
    eprintln!(
        "killed after the pointer write; vm1's create job had {}been submitted",
        if created_before == 0 { "not " } else { "" }
    );

    let rerun = run.reconcile(&[]);
    assert_eq!(rerun.status.code(), Some(0), "{rerun:?}");
    let jobs = operator_jobs(&rapi, first_job).await;
    let creates = &jobs[&("OP_INSTANCE_CREATE".to_owned(), "vm1.gnt.test".to_owned())];
    assert_eq!(creates.len(), 1, "vm1 created once: {jobs:?}");
    let mac = mac_of(&rapi, "vm1.gnt.test").await;
    nb.wait_healthy("vm1.gnt.test", &mac, &a, BOOT);
    remove_all_instances(&rapi).await;
}

/// Issue 24, must-show 2: `--exclude` leaves the netbooted VMs out; then, with web1 and
/// web2 changed by hand, `--target instance/vm1…` creates vm1 and writes its pointer
/// only. Ganeti's job list shows nothing for the drifted instances, nor for vm2, and
/// the warning is printed.
#[tokio::test]
async fn a_targeted_run_changes_its_target_and_its_pointer_only() {
    let Some(sb) = sandbox("netboot_targets") else {
        return;
    };
    let Some(nb) = netboot("netboot_targets") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let run = Run::new();
    let a = run.import(&nb, "A");
    run.write_example(&a, &a);
    let _server = StoreServer::builtin(&run.path("store"), &nb.store_addr, &run.path("logs"));
    let pointer = |vm: &str| run.path("store").join(format!("boot/by-name/{vm}.ipxe"));

    let without_vms = run.reconcile(&[
        "--exclude",
        "instance/vm1.gnt.test",
        "--exclude",
        "instance/vm2.gnt.test",
    ]);
    let stdout = String::from_utf8_lossy(&without_vms.stdout);
    assert_eq!(without_vms.status.code(), Some(0), "{without_vms:?}");
    assert!(
        stdout.contains(
            "Warning: a targeted run. instance/vm1.gnt.test, instance/vm2.gnt.test were left out"
        ),
        "{stdout}"
    );
    assert!(
        common::cluster::instance(&rapi, "web1.gnt.test")
            .await
            .is_some()
    );
    assert!(
        common::cluster::instance(&rapi, "vm1.gnt.test")
            .await
            .is_none()
    );
    assert!(!pointer("vm1.gnt.test").exists());

    // An admin changes web1 and web2 by hand during an incident.
    for web in ["web1.gnt.test", "web2.gnt.test"] {
        common::cluster::gnt(&["gnt-instance", "modify", "-B", "memory=160M", web]);
    }
    let before = common::cluster::last_job_id(&rapi).await;
    let targeted = run.reconcile(&["--target", "instance/vm1.gnt.test"]);
    let stdout = String::from_utf8_lossy(&targeted.stdout);
    assert_eq!(targeted.status.code(), Some(0), "{targeted:?}");
    assert!(
        stdout.contains("Warning: a targeted run. Only instance/vm1.gnt.test (with their boot pointers and secrets) were looked at"),
        "{stdout}"
    );
    let jobs = operator_jobs(&rapi, before).await;
    assert!(
        jobs.keys().all(|(_, instance)| instance == "vm1.gnt.test"),
        "jobs for others than vm1: {jobs:?}"
    );
    assert!(
        jobs.contains_key(&("OP_INSTANCE_CREATE".to_owned(), "vm1.gnt.test".to_owned())),
        "{jobs:?}"
    );
    assert!(pointer("vm1.gnt.test").exists());
    assert!(!pointer("vm2.gnt.test").exists());
    for web in ["web1.gnt.test", "web2.gnt.test"] {
        let left = common::cluster::instance(&rapi, web).await.unwrap();
        assert_eq!(
            left.beparams.maxmem,
            Some(160),
            "{web}: the hand-made change stays"
        );
    }
    remove_all_instances(&rapi).await;
}
