//! `reconcile` on the real 2-node sandbox (`GNT_NODES=2`): moving an instance to another
//! node by live migration, and draining a node, each with its golden plan.

use crate::common;

use common::cluster::{primary_of, role_of};
use common::reconcile::{Workspace, edit, remove_all_instances, two_node_yaml};
use common::sandbox::sandbox;

const WEB1: &str = "  web1.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n";

#[tokio::test]
async fn multinode_reconcile_moves_an_instance_and_drains_a_node() {
    let Some(sb) = sandbox("multinode_reconcile") else {
        return;
    };
    assert!(sb.nodes.len() >= 2, "needs GNT_NODES=2: {:?}", sb.nodes);
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let two_nodes = two_node_yaml();
    ws.write(&two_nodes);
    ws.apply(0);
    ws.assert_converged();

    // Move web1 to node2: a live migration of the running instance.
    let moved = edit(
        &two_nodes,
        &[(
            WEB1,
            "  web1.gnt.test:\n    class: web\n    primaryNode: node2.gnt.test\n",
        )],
    );
    ws.write(&moved);
    ws.dry_run_golden("13-move-live-migrate.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    assert_eq!(
        primary_of(&rapi, "web1.gnt.test").await.as_deref(),
        Some("node2.gnt.test")
    );

    // Drain node2 and bring web1 back: the role changes first, then the migration.
    let drained = edit(
        &two_nodes,
        &[("    role: master-candidate\n", "    role: drained\n")],
    );
    ws.write(&drained);
    ws.dry_run_golden("14-drain-and-move-back.txt", 2);
    ws.apply(0);
    ws.assert_converged();
    assert_eq!(role_of(&rapi, "node2.gnt.test").await.as_deref(), Some("D"));
    assert_eq!(
        primary_of(&rapi, "web1.gnt.test").await.as_deref(),
        Some("node1.gnt.test")
    );

    // Undrain, leaving the cluster as it was.
    ws.write(&two_nodes);
    ws.apply(0);
    assert_eq!(role_of(&rapi, "node2.gnt.test").await.as_deref(), Some("C"));
}
