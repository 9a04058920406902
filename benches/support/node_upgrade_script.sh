#!/usr/bin/env bash
# The plain-script floor of a rolling node upgrade on the 3-node sandbox: the parts no
# operator can skip, done back to back by a shell loop.
#
#   benches/support/node_upgrade_script.sh STORE FROM TO
#
# For node2, node3, then node1 (the master goes last):
#   0. node1 only: `ganeti-sandbox.sh master-failover node2`;
#   1. live-migrates each of its primaries to another node (PUT /2/instances/<i>/migrate,
#      polling /2/jobs/<id> every 250 ms), the next node in line as the target;
#   2. rewrites its boot pointers FROM -> TO and runs `ganeti-sandbox.sh reboot <node>`;
#   3. polls its health endpoint until IMAGE=<TO> and the RAPI until its live fields are back;
#   4. migrates the instances back.
# Then `master-failover node1`. No drain, tags, history or N+1 check: those are the
# operator's cost, which the benchmark measures against this. Prints the total seconds.
#
# Env: GANETI_RAPI_URL, GANETI_RAPI_USER, GANETI_RAPI_PASSWORD_FILE, GANETI_RAPI_CA_FILE,
# as `tests/harness/ganeti-sandbox.sh env` exports them; the password goes to curl on stdin.
set -euo pipefail

log() { printf '[node-script %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
(($# == 3)) || { sed -n '3,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
STORE=$1 FROM=$2 TO=$3
HARNESS=$(dirname "$0")/../../tests/harness/ganeti-sandbox.sh
: "${GANETI_RAPI_URL:?}" "${GANETI_RAPI_USER:?}" "${GANETI_RAPI_PASSWORD_FILE:?}" "${GANETI_RAPI_CA_FILE:?}"
PASSWORD=$(<"$GANETI_RAPI_PASSWORD_FILE")

rapi() {  # rapi METHOD PATH [BODY]
  local q=${PASSWORD//\\/\\\\} body=()
  q=${q//\"/\\\"}
  [[ -n ${3:-} ]] && body=(-d "$3")
  printf 'user = "%s:%s"\n' "$GANETI_RAPI_USER" "$q" |
    curl -sS --fail-with-body -K - --cacert "$GANETI_RAPI_CA_FILE" --connect-timeout 5 -m 30 \
      -X "$1" -H 'Content-Type: application/json' "${body[@]}" "$GANETI_RAPI_URL$2"
}

await() {  # await JOB: until it succeeded
  local status
  for _ in $(seq 1 2400); do
    status=$(rapi GET "/2/jobs/$1" | jq -r .status) || status=unknown
    case $status in success) return 0 ;; error | canceled) die "job $1 $status" ;; esac
    sleep 0.25
  done
  die "job $1 did not finish"
}

migrate() {  # migrate INSTANCE TARGET
  local job; job=$(rapi PUT "/2/instances/$1/migrate" "{\"mode\": \"live\", \"target_node\": \"$2\"}")
  await "${job//\"/}"
}

repoint() {
  local f=$1 t; t=$(mktemp "$(dirname "$f")/.np.XXXXXX")
  sed "s/$FROM/$TO/g" "$f" >"$t"; mv -f "$t" "$f"
}

t0=$EPOCHREALTIME
for pair in node2:node3 node3:node1 node1:node2; do
  node=${pair%%:*}.gnt.test other=${pair##*:}.gnt.test n=${pair:4:1}
  [[ $node == node1.gnt.test ]] && "$HARNESS" master-failover node2 >&2
  mapfile -t moved < <(rapi GET "/2/nodes/$node" | jq -r '.pinst_list[]')
  for i in "${moved[@]}"; do migrate "$i" "$other"; done
  mac=$(printf '52-54-00-67-6e-%02x' "$n")
  repoint "$STORE/boot/$mac.ipxe"; repoint "$STORE/boot/by-name/$node.ipxe"
  "$HARNESS" reboot "$node" --store "$STORE" >&2
  until curl -s -m 2 "http://10.221.0.1$n:8099/health" | grep -qx "IMAGE=$TO" &&
        [[ $(rapi GET "/2/nodes/$node" | jq -r '.mfree // empty') != "" ]]; do sleep 0.25; done
  for i in "${moved[@]}"; do migrate "$i" "$node"; done
  log "$node on $TO after $(( ${EPOCHREALTIME%.*} - ${t0%.*} )) s"
done
"$HARNESS" master-failover node1 >&2
t1=$EPOCHREALTIME
echo "scale=1; ($t1 - $t0)/1" | bc
