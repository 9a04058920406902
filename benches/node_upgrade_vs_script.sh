#!/usr/bin/env bash
# Benchmark (issue 12): a rolling upgrade of the 3-node sandbox by the operator against the
# floor, the same migrations, reboots and rejoins done back to back by a plain script
# (benches/support/node_upgrade_script.sh), in one run. Goal: at most 1.2x the floor.
#
#   GNT_NODES=3 GNT_CERT=ca tests/harness/ganeti-sandbox.sh up
#   eval "$(tests/harness/ganeti-sandbox.sh env)"; benches/node_upgrade_vs_script.sh
#
# It takes about 15 minutes: the nodes boot image A, the operator upgrades them to B with
# four running instances on them, then the script takes them back to A. Both end with the
# master on node1 and every instance on its own node. Not run by tests/run.sh (too long for
# CI's budget); its figures are in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
: "${GANETI_RAPI_URL:?eval the sandbox env first}"
cargo build --release --quiet
OP=$PWD/target/release/ganeti-operator
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/desired" "$W/state" "$W/store" "$W/files"
export GANETI_OPERATOR_STATE_DIR=$W/state GANETI_OPERATOR_STORE=$W/store NO_COLOR=1
import() {
  printf 'kernel %s' "$1" >"$W/files/k$1"; printf 'initrd %s' "$1" >"$W/files/i$1"
  "$OP" image import --class ganeti-node --kernel "$W/files/k$1" --initrd "$W/files/i$1" |
    grep -o 'sha256-[0-9a-f]*' | head -1
}
A=$(import A) B=$(import B)
HARNESS=$PWD/tests/harness/ganeti-sandbox.sh
desired() {  # desired IMAGE [instances yes|no]
  cat >"$W/desired/desired-state.yaml" <<YAML
cluster:
  name: cluster.gnt.test
  rapiUrl: https://10.221.0.10:5080
  hypervisor: fake
  defaultDiskTemplate: diskless
  nic: {link: br-inst, mode: bridged}
  store: {baseUrl: "http://10.221.0.1:8480"}
  nodeReboot: {command: ["$HARNESS", reboot, "{node}", --store, "$W/store"], timeout: 1m}
  masterFailover: {command: ["$HARNESS", master-failover, "{node}"], timeout: 3m}
policy: {prune: true, maxDeletions: 5}
classes:
  ganeti-node:
    image: $1
    rotation:
      timeout: 3m
      healthCheck: {url: "http://{ip}:8099/health", expectBody: "IMAGE={image}", timeout: 3s}
  web: {image: $A, os: noop+default, resources: {memory: 128M, vcpus: 1}}
nodes:
  node1.gnt.test: {class: ganeti-node, role: master, mac: "52:54:00:67:6e:01"}
  node2.gnt.test: {class: ganeti-node, role: master-candidate, mac: "52:54:00:67:6e:02"}
  node3.gnt.test: {class: ganeti-node, role: master-candidate, mac: "52:54:00:67:6e:03"}
instances:
  bench1.gnt.test: {class: web, primaryNode: node1.gnt.test}
  bench2.gnt.test: {class: web, primaryNode: node2.gnt.test}
  bench3.gnt.test: {class: web, primaryNode: node3.gnt.test}
  bench4.gnt.test: {class: web, primaryNode: node3.gnt.test}
YAML
}
rapi() {  # rapi METHOD PATH: credentials through a curl config on stdin
  local q; q=$(<"$GANETI_RAPI_PASSWORD_FILE"); q=${q//\\/\\\\}; q=${q//\"/\\\"}
  printf 'user = "%s:%s"\n' "$GANETI_RAPI_USER" "$q" |
    curl -sS --fail-with-body -K - --cacert "$GANETI_RAPI_CA_FILE" -X "$1" "$GANETI_RAPI_URL$2"
}
# A fresh start: no image tags on the nodes from an earlier run or test.
for n in 1 2 3; do
  for tag in $(rapi GET "/2/nodes/node$n.gnt.test/tags" | jq -r '.[] | select(startswith("ganeti-operator:image:"))'); do
    rapi DELETE "/2/nodes/node$n.gnt.test/tags?tag=$tag" >/dev/null
  done
  until ! rapi GET "/2/nodes/node$n.gnt.test/tags" | grep -q ganeti-operator:image:; do sleep 0.5; done
done
desired "$A"
"$OP" reconcile "$W/desired" >"$W/setup.log" 2>&1 || { tail -40 "$W/setup.log" >&2; exit 1; }
for n in 1 2 3; do   # every node on A first, as its pointer says
  curl -s -m 2 "http://10.221.0.1$n:8099/health" | grep -qx "IMAGE=$A" && continue
  "$HARNESS" reboot "node$n" --store "$W/store" >&2
  until curl -s -m 2 "http://10.221.0.1$n:8099/health" | grep -qx "IMAGE=$A"; do sleep 0.5; done
done
sleep 5
log "operator: $A -> $B"
desired "$B"; t0=$EPOCHREALTIME
# Each progress line stamped with the seconds since the start, to see where the time goes.
set +e
"$OP" reconcile "$W/desired" 2>&1 | while IFS= read -r line; do
  printf '%6.1f %s\n' "$(echo "$EPOCHREALTIME - $t0" | bc)" "$line"
done >"$W/operator.log"
rc=${PIPESTATUS[0]}; set -e
operator=$(echo "scale=1; ($EPOCHREALTIME - $t0)/1" | bc)
[[ -n ${BENCH_LOG:-} ]] && cp "$W/operator.log" "$BENCH_LOG"
((rc == 0)) || { tail -50 "$W/operator.log" >&2; exit 1; }
log "operator took $operator s"
log "script: $B -> $A"
floor=$(FROM=$B TO=$A benches/support/node_upgrade_script.sh "$W/store" "$B" "$A" 2>"$W/script.log") ||
  { cat "$W/script.log" >&2; exit 1; }
cat "$W/script.log" >&2
log "script took $floor s"
ratio=$(echo "scale=2; $operator / $floor" | bc)
printf 'node upgrade of 3 nodes, 4 instances: operator %s s, plain script %s s, ratio %sx (goal <= 1.2x)\n' \
  "$operator" "$floor" "$ratio"
# The jobs the issue's own steps add and the floor leaves out: each node's drain and
# undrain (OP_NODE_SET_PARAMS, which demotes and promotes a master candidate) and its tag.
steps=$(awk '
  / (node_role|tags_add|tags_remove) submitted as job / { for (i = 1; i < NF; i++) if ($i == "job") mine[$(i + 1)] = 1 }
  / succeeded after / { for (i = 1; i < NF; i++) if ($i == "job" && ($(i + 1) in mine)) { d = $NF; sub(/s$/, "", d); sum += d } }
  END { printf "%.1f", sum }' "$W/operator.log")
printf 'of which drain, undrain and tag jobs: %s s; operator against the floor plus them: %sx\n' \
  "$steps" "$(echo "scale=2; $operator / ($floor + $steps)" | bc)"
# Both sides run the same two `gnt-cluster master-failover`s, about half of either time;
# they vary by several seconds from one to the next, which moves the ratio.
printf 'of which master failovers: operator %s s, plain script %s s\n' \
  "$(awk '/master_failover_command done after/ { d = $NF; sub(/s$/, "", d); sum += d } END { printf "%.1f", sum }' "$W/operator.log")" \
  "$(awk '/gnt-cluster master-failover returned after/ { sum += $(NF - 1) } END { printf "%.1f", sum }' "$W/script.log")"
# No bench instances left behind (the node tags stay; the e2e tests clear them).
desired "$B"; sed -i '/^instances:/,$d' "$W/desired/desired-state.yaml"; echo 'instances: {}' >>"$W/desired/desired-state.yaml"
"$OP" reconcile "$W/desired" >/dev/null 2>&1 || true
