#!/usr/bin/env bash
# README command 1: the sandbox example on the real local sandbox, netbooted VMs included.
# Brings up the 1-node Ganeti cluster and the netboot harness, builds the operator, imports
# guest images A, B and C into a store under the sandbox directory, serves that store with
# the built-in server, shows the plan (exit 2: changes pending), reconciles, and waits
# until vm1 and vm2 answer their health endpoint with the image their class pins.
# Leaves everything running; `tests/harness/ganeti-sandbox.sh down` removes it all.
set -euo pipefail
cd "$(dirname "$0")/../.."
SB=${GNT_SANDBOX_DIR:-/srv/gnt-sandbox}
log() { printf '[example %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
t0=$SECONDS

tests/harness/ganeti-sandbox.sh up
tests/harness/netboot.sh images
tests/harness/netboot.sh up
eval "$(tests/harness/ganeti-sandbox.sh env)"
eval "$(tests/harness/netboot.sh env)"
cargo build --release
op=target/release/ganeti-operator
export GANETI_OPERATOR_STORE=$SB/store GANETI_OPERATOR_STATE_DIR=$SB/state

for label in A B C; do
  log "importing guest image $label"
  $op image import --class netboot "$GANETI_NETBOOT_IMAGES/result-$label"
done
log "serving the store on $GANETI_NETBOOT_STORE_ADDR (access log: $SB/store-access.log)"
nohup $op store serve --listen "$GANETI_NETBOOT_STORE_ADDR" >/dev/null 2>"$SB/store-access.log" &
echo $! >"$SB/store-server.hostpid"

log "the plan (exit 2: changes pending)"
rc=0; $op reconcile --dry-run desired-state/sandbox || rc=$?
[[ $rc -ne 1 ]] || exit 1
$op reconcile desired-state/sandbox

pinned=$(sed -n '/^  netboot:/,/^  [a-z]/s/^    image: //p' desired-state/sandbox/desired-state.yaml)
for vm in vm1.gnt.test vm2.gnt.test; do
  mac=$(tests/harness/ganeti-sandbox.sh exec gnt-instance list --no-headers -o nic.macs "$vm" | tr -d ' ')
  log "waiting for $vm ($mac) to report IMAGE=$pinned"
  for _ in $(seq 1 240); do
    if tests/harness/netboot.sh health "$mac" 2>/dev/null | grep -q "IMAGE=$pinned"; then break; fi
    sleep 1
  done
  tests/harness/netboot.sh health "$mac" | grep "IMAGE=$pinned" || { tests/harness/netboot.sh console "$vm" | tail -20; exit 1; }
done
$op reconcile --dry-run desired-state/sandbox >/dev/null
log "done in $((SECONDS - t0)) s: the cluster matches desired-state/sandbox and both VMs boot the pinned image"
cat <<HINT >&2
To keep working with it:
  eval "\$(tests/harness/ganeti-sandbox.sh env)"; export GANETI_OPERATOR_STORE=$SB/store GANETI_OPERATOR_STATE_DIR=$SB/state
  $op reconcile --dry-run desired-state/sandbox     # exits 0
HINT
