//! The rolling-upgrade e2e's sampler (tests/node_upgrade_e2e.rs): every 200 ms, the
//! RAPI's nodes, instances and job filters, and each netbooted VM's own health.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ganeti_operator::rapi::{FreezeRule, HttpRapi, Rapi};

/// The sandbox's three nodes; nodeN lives in the namespaces gnt-nN.
pub const NODES: [&str; 3] = ["node1.gnt.test", "node2.gnt.test", "node3.gnt.test"];

/// What the sampler saw: the most nodes drained at once, each instance's (primary node,
/// running) per answered round, and rounds the RAPI did not answer (a master failover).
#[derive(Debug, Default)]
pub struct Sampled {
    pub rounds: u32,
    pub unanswered: u32,
    pub most_drained: usize,
    pub instances: BTreeMap<String, Vec<(String, String)>>,
    /// Rounds with a node drained while the freeze's filters were not both in place.
    pub unfrozen: Vec<String>,
    /// Each VM's health answers, by the image it named.
    pub vm_answers: BTreeMap<String, BTreeMap<String, usize>>,
    /// Rounds in which a VM's health check did not answer within 2 s.
    pub vm_misses: Vec<String>,
}

impl Sampled {
    /// Samples of an instance not running, split into the switchover of a live migration
    /// (one sample, its primary node different before and after: Ganeti finalizes the
    /// source, which stops it there, before it records the new primary node, so for that
    /// instant it reports `ERROR_down`, kvm VMs and fake instances alike) and everything
    /// else, which is an outage. A kvm VM's own health answers throughout.
    pub fn not_running(&self) -> (Vec<String>, Vec<String>) {
        let (mut switchovers, mut outages) = (Vec::new(), Vec::new());
        for (name, seen) in &self.instances {
            for (k, (node, status)) in seen.iter().enumerate() {
                if status == "running" {
                    continue;
                }
                // The nearest samples around it in which it ran: a migration's switchover
                // is not running on the old node until it runs on the new one, for as many
                // samples as that window takes on this machine (one or more).
                let before = seen[..k].iter().rev().find(|(_, s)| s == "running");
                let after = seen[k + 1..].iter().find(|(_, s)| s == "running");
                let text = format!(
                    "{name} on {node}: {status} (sample {k}; ran before on {:?}, after on {:?})",
                    before.map(|(n, _)| n),
                    after.map(|(n, _)| n)
                );
                let down_only_between = seen[k..]
                    .iter()
                    .take_while(|(_, s)| s != "running")
                    .all(|(n, _)| n == node || Some(n) == after.map(|(a, _)| a));
                match (before, after) {
                    (Some((b, _)), Some((a, _))) if b != a && down_only_between => {
                        switchovers.push(text)
                    }
                    _ => outages.push(text),
                }
            }
        }
        (switchovers, outages)
    }
}

/// `vms`: each VM's name and address, whose health is asked every round.
pub fn sample_every_200ms(
    rapi: HttpRapi,
    stop: Arc<AtomicBool>,
    vms: Vec<(String, String)>,
) -> std::thread::JoinHandle<Sampled> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut sampled = Sampled::default();
        // Where Ganeti last said each instance runs: the RAPI does not answer for a while
        // at a master failover, the VMs are asked all the same.
        let mut primaries: BTreeMap<String, String> = BTreeMap::new();
        while !stop.load(Ordering::SeqCst) {
            let round = Instant::now();
            sampled.rounds += 1;
            let seen = rt.block_on(async {
                // The filters first: they go in before a drain is submitted and come out
                // after the undrain, so a round that reads them first cannot see a drained
                // node with the freeze legitimately gone.
                let filters = rapi.filters().await?.unwrap_or_default();
                let nodes = rapi.nodes().await?;
                let instances = rapi.instances().await?;
                Ok::<_, ganeti_operator::rapi::RapiError>((filters, nodes, instances))
            });
            match seen {
                Ok((filters, nodes, instances)) => {
                    let drained = nodes.iter().filter(|n| n.drained == Some(true)).count();
                    sampled.most_drained = sampled.most_drained.max(drained);
                    let frozen = FreezeRule::BOTH
                        .iter()
                        .all(|r| filters.iter().any(|f| f.is(*r) && f.is_freeze()));
                    if drained > 0 && !frozen {
                        sampled
                            .unfrozen
                            .push(format!("round {}: {drained} drained", sampled.rounds));
                    }
                    for i in &instances {
                        if let Some(node) = &i.pnode {
                            primaries.insert(i.name.clone(), node.clone());
                        }
                    }
                    for i in instances {
                        let status = if i.oper_state == Some(true) {
                            "running".to_owned()
                        } else {
                            i.status.unwrap_or_else(|| "?".into())
                        };
                        let node = i.pnode.unwrap_or_default();
                        sampled
                            .instances
                            .entry(i.name)
                            .or_default()
                            .push((node, status));
                    }
                }
                Err(_) => sampled.unanswered += 1,
            }
            ask_the_vms(&vms, &primaries, &mut sampled);
            std::thread::sleep(Duration::from_millis(200).saturating_sub(round.elapsed()));
        }
        sampled
    })
}

/// One health question per VM, all at once, each asked in the namespace of the node it
/// was last seen on first (nodeN is nN), within 2 s: a live migration's switchover pauses
/// it for a moment.
fn ask_the_vms(
    vms: &[(String, String)],
    primaries: &BTreeMap<String, String>,
    sampled: &mut Sampled,
) {
    let answers: Vec<(String, super::netboot::Answer)> = std::thread::scope(|s| {
        let asks: Vec<_> = vms
            .iter()
            .map(|(vm, ip)| {
                let here = primaries
                    .get(vm)
                    .and_then(|on| NODES.iter().position(|n| n == on))
                    .map(|k| format!("n{}", k + 1));
                let mut order: Vec<String> = (1..=NODES.len()).map(|k| format!("n{k}")).collect();
                order.sort_by_key(|n| Some(n) != here.as_ref());
                s.spawn(move || {
                    let order: Vec<&str> = order.iter().map(String::as_str).collect();
                    let answer =
                        super::netboot::ask_vm_health(vm, ip, &order, Duration::from_secs(2));
                    (vm.clone(), answer)
                })
            })
            .collect();
        asks.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let round = sampled.rounds;
    for (vm, answer) in answers {
        match answer {
            Ok(image) => {
                *sampled
                    .vm_answers
                    .entry(vm)
                    .or_default()
                    .entry(image)
                    .or_default() += 1
            }
            Err(why) => sampled
                .vm_misses
                .push(format!("round {round}: {vm}: {why}")),
        }
    }
}
