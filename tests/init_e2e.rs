//! `init --from-cluster` end to end against the real 1-node sandbox: instances of two
//! kinds made by hand with `gnt-instance add`, outside the operator; the generated
//! directory validates, its dry run shows only the adoptions, a reconcile adopts them,
//! and a one-line edit of an instance's memory then changes exactly that instance, as
//! Ganeti's own job list shows.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use crate::common;

use common::cluster::{instance, last_job_id};
use common::reconcile::{operator_jobs, remove_all_instances};
use common::sandbox::sandbox;
use common::{operator_with_env, project_root};

/// `gnt-instance add` on the sandbox's master, as a person would run it.
fn gnt_instance_add(node: &str, name: &str, template: &str, memory: u32, disk: Option<&str>) {
    let beparams = format!("maxmem={memory},minmem={memory},vcpus=1");
    let mut args = vec![
        "exec",
        "gnt-instance",
        "add",
        "-t",
        template,
        "-o",
        "noop+default",
        "-B",
        &beparams,
        "--net",
        "0:link=br-inst,mode=bridged",
        "-n",
        node,
        "--no-name-check",
        "--no-ip-check",
    ];
    let disk = disk.map(|size| format!("0:size={size}"));
    if let Some(disk) = &disk {
        args.extend(["--disk", disk]);
    }
    args.push(name);
    let output = Command::new(project_root().join("tests/harness/ganeti-sandbox.sh"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "gnt-instance add {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run(args: &[&str], state: &Path, code: i32) -> String {
    let output: Output = operator_with_env(args, &[("GANETI_OPERATOR_STATE_DIR", state)]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn init_from_a_hand_made_cluster_adopts_then_one_edit_changes_one_instance() {
    let Some(sb) = sandbox("init_from_cluster") else {
        return;
    };
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let master = sb.master().to_owned();
    // Two kinds: diskless at 128M (one at 192M), and file-backed with a disk.
    gnt_instance_add(&master, "web1.gnt.test", "diskless", 128, None);
    gnt_instance_add(&master, "web2.gnt.test", "diskless", 128, None);
    gnt_instance_add(&master, "web3.gnt.test", "diskless", 192, None);
    gnt_instance_add(&master, "store1.gnt.test", "file", 256, Some("64M"));

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("desired-state");
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let wrote = run(&["init", "--from-cluster", dir_arg], &state, 0);
    assert!(wrote.contains("4 instances to adopt"), "{wrote}");
    for file in [
        "cluster.yaml",
        "nodes.yaml",
        "classes.yaml",
        "instances.yaml",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    // A second init refuses to overwrite.
    run(&["init", "--from-cluster", dir_arg], &state, 1);
    run(&["validate", dir_arg], &state, 0);

    // The dry run shows the four adoptions, tags only, and exits 2 for them.
    let plan = run(&["reconcile", dir_arg, "--dry-run"], &state, 2);
    assert_eq!(plan.matches("reason: adopt: true").count(), 4, "{plan}");
    assert_eq!(plan.matches("      jobs: tags_add\n").count(), 4, "{plan}");
    assert!(
        plan.contains("0 to create, 4 to change, 0 to move, 0 to delete; 0 blocked"),
        "{plan}"
    );
    for line in plan.lines().filter(|l| l.starts_with("      ")) {
        let field = line.trim_start();
        assert!(
            ["reason: adopt", "tags added:", "jobs: tags_add"]
                .iter()
                .any(|ok| field.starts_with(ok)),
            "more than the adoption tags: {line}\n{plan}"
        );
    }

    let before_adopt = last_job_id(&rapi).await;
    run(&["reconcile", dir_arg], &state, 0);
    let jobs = operator_jobs(&rapi, before_adopt).await;
    let opcodes: BTreeSet<&str> = jobs.keys().map(|(op, _)| op.as_str()).collect();
    assert_eq!(opcodes, BTreeSet::from(["OP_TAGS_SET"]), "{jobs:?}");
    run(&["reconcile", dir_arg, "--dry-run"], &state, 0);

    // One line: web3's memory.
    let instances = dir.join("instances.yaml");
    let yaml = std::fs::read_to_string(&instances).unwrap();
    let web3_at = yaml
        .find("  web3.gnt.test:\n")
        .expect("web3 in instances.yaml");
    let (head, tail) = yaml.split_at(web3_at);
    assert_eq!(tail.matches("      memory: 192M\n").count(), 1, "{yaml}");
    let edited = format!(
        "{head}{}",
        tail.replacen("      memory: 192M\n", "      memory: 256M\n", 1)
    );
    std::fs::write(&instances, edited).unwrap();

    let before_edit = last_job_id(&rapi).await;
    run(&["reconcile", dir_arg], &state, 0);
    let jobs = operator_jobs(&rapi, before_edit).await;
    let touched: BTreeSet<&str> = jobs.keys().map(|(_, name)| name.as_str()).collect();
    assert_eq!(touched, BTreeSet::from(["web3.gnt.test"]), "{jobs:?}");
    assert!(
        jobs.contains_key(&(
            "OP_INSTANCE_SET_PARAMS".to_owned(),
            "web3.gnt.test".to_owned()
        )),
        "{jobs:?}"
    );
    let web3 = instance(&rapi, "web3.gnt.test").await.unwrap();
    assert_eq!(web3.beparams.maxmem, Some(256));
    for name in ["web1.gnt.test", "web2.gnt.test"] {
        let other = instance(&rapi, name).await.unwrap();
        assert_eq!(other.beparams.maxmem, Some(128), "{name}");
    }
    run(&["reconcile", dir_arg, "--dry-run"], &state, 0);
    remove_all_instances(&rapi).await;
}
