#!/usr/bin/env bash
# The project's test command (README "Set up on a fresh machine", command 2). As root on
# Debian 12: installs what the tests need, brings up a real 1-node Ganeti 3.0.2 cluster
# with tests/harness/ganeti-sandbox.sh, runs every test against it, switches ganeti-rapi
# to Ganeti's stock certificate for the pinning tests, then rebuilds the cluster with 2
# nodes for the multinode tests and with 3 for the threenode ones (node reboots, master
# failover), and tears it down. The tests are one binary (tests/tests.rs). The benchmarks
# that take seconds run here; the long ones run from benches/run.sh. Each phase's time is
# printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/phases.sh
PHASES_TITLE=tests/run.sh
trap phase_times EXIT
harness=tests/harness/ganeti-sandbox.sh

need_apt=()
command -v age >/dev/null || need_apt+=(age)
command -v bc >/dev/null || need_apt+=(bc)
command -v git >/dev/null || need_apt+=(git)
command -v curl >/dev/null || need_apt+=(curl)   # the host secrets module's fetch script
command -v jq >/dev/null || need_apt+=(jq)
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)   # host keys for the secrets tests
command -v prometheus >/dev/null || need_apt+=(prometheus)   # with promtool
command -v nix-instantiate >/dev/null || need_apt+=(nix-bin)
command -v nginx >/dev/null || need_apt+=(nginx-light)   # serves the store to booting VMs once
command -v man >/dev/null || need_apt+=(man-db)   # renders the generated manual page
[[ -f /usr/lib/python3/dist-packages/ganeti/rapi/client.py ]] || need_apt+=(python3-ganeti-rapi)
phase "apt"
if ((${#need_apt[@]})); then
  echo "tests/run.sh: installing ${need_apt[*]}" >&2
  # No package may start a service on the host (prometheus would): tests start their own.
  prc=/usr/sbin/policy-rc.d ours=0
  if [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' >$prc; chmod 755 $prc; ours=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
  [[ $ours == 1 ]] && rm -f $prc
fi

# Before the cluster is up: builds take the CPU Ganeti needs.
phase "build"
cargo build --all-targets --quiet

phase "benchmark: planning 10,000 instances on 200 nodes"
cargo bench --bench plan_10k

# Guest images A, B, C for the netboot VMs (cached; the first build downloads Debian's kernel).
phase "guest images"
tests/harness/netboot.sh images

trap 'status=$?; phase "teardown"; $harness down; (exit $status); phase_times' EXIT
phase "1-node cluster and netboot harness up"
GNT_NODES=1 GNT_CERT=ca $harness up
eval "$($harness env)"
# Ganeti's kvm hypervisor (QEMU under TCG), DHCP, the store forwarder and console capture.
tests/harness/netboot.sh up
eval "$(tests/harness/netboot.sh env)"
# Tests that need the sandbox fail, rather than skip, when it is missing.
export CI=${CI:-true}

# Among them chaos_rapi_restart (ganeti-rapi killed and restarted mid-reconcile); its
# counts (restarts, jobs, duplicates, re-sent) are written past libtest's capture.
phase "all tests, 1-node cluster, CA-signed certificate"
cargo test --lib --bins --tests "$@" -- --skip stock_cert --skip multinode --skip threenode

phase "pinning, Ganeti's stock X.509 v1 certificate"
$harness cert stock
eval "$($harness env)"
cargo test --test integration "$@" -- rapi_stock_cert::

# Among them the 2-node chaos tests, which print their counts: chaos_noded (node2's
# ganeti-noded killed during live migrations) and chaos_operator_kill (20 SIGKILLs across
# creates, modifies, a move and a delete); about 3.5 minutes together.
phase "2-node cluster: migrate, failover, drain, node migrate, chaos"
GNT_NODES=2 GNT_CERT=ca $harness up
eval "$($harness env)"
cargo test --lib --bins --tests "$@" -- multinode

# The rolling node upgrades (tests/node_upgrade_e2e.rs): all three nodes with SIGKILLs on
# the way and two netbooted kvm VMs among the instances, N+1 refused, a failing reboot
# command; about 12 minutes together.
phase "3-node cluster: the harness's node reboot and master failover; rolling node upgrades"
GNT_NODES=3 GNT_CERT=ca $harness up
eval "$($harness env)"
tests/harness/netboot.sh up
eval "$(tests/harness/netboot.sh env)"
cargo test --lib --bins --tests "$@" -- threenode
