#!/usr/bin/env bash
# The plain-script baseline of an image rotation: what an operator's shell loop does by hand.
#
#   benches/support/rotate_script.sh STORE FROM TO N HOST...
#
# In batches of N hosts (the max unavailable), each host of a batch in parallel:
#   1. rewrites its boot pointers STORE/boot/<mac>.ipxe and STORE/boot/by-name/<host>.ipxe,
#      FROM's id replaced by TO's (temp file + mv: the store server never serves half a file);
#   2. hard-reboots it through the RAPI (POST /2/instances/<host>/reboot?type=hard) and polls
#      /2/jobs/<id> every 250 ms until the job succeeded;
#   3. polls http://<host>/health every 250 ms until it answers IMAGE=<TO> (from the host
#      namespace: netboot.sh up's hosts sync maps instance names to forwarders);
#   4. with TAG_PREFIX set, records it as proven the way the operator does: adds the tag
#      <TAG_PREFIX><TO>, then removes <TAG_PREFIX><FROM>, each job waited for (PUT and
#      DELETE /2/instances/<host>/tags?tag=...).
# The next batch starts when the whole batch is healthy. Prints the total seconds on stdout
# (progress on stderr); exit 1 when a host fails or ROTATE_TIMEOUT (600) s pass for one step.
#
# Env, as `tests/harness/ganeti-sandbox.sh env` exports it: GANETI_RAPI_URL, GANETI_RAPI_USER,
# GANETI_RAPI_PASSWORD_FILE, GANETI_RAPI_CA_FILE (the CA curl verifies the RAPI with; the
# stock-certificate mode, which only pins, is not supported). The password goes to curl as a
# config on stdin (-K -), never on argv.
set -euo pipefail

log() { printf '[rotate %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
(($# >= 5)) || { sed -n '3,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
STORE=$1 FROM=$2 TO=$3 N=$4; shift 4
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer: $N"
[[ $FROM =~ ^[A-Za-z0-9._-]+$ && $TO =~ ^[A-Za-z0-9._-]+$ ]] || die "image ids: letters, digits, . _ -"
[[ -d $STORE/boot ]] || die "no boot/ in the store $STORE"
: "${GANETI_RAPI_URL:?}" "${GANETI_RAPI_USER:?}" "${GANETI_RAPI_PASSWORD_FILE:?}"
[[ -n ${GANETI_RAPI_CA_FILE:-} ]] || die "GANETI_RAPI_CA_FILE is not set (GNT_CERT=ca sandbox; never -k)"
TIMEOUT=${ROTATE_TIMEOUT:-600}
PASSWORD=$(<"$GANETI_RAPI_PASSWORD_FILE")

rapi() {  # rapi METHOD PATH: the body; credentials through a curl config on stdin
  local q=${PASSWORD//\\/\\\\}; q=${q//\"/\\\"}
  printf 'user = "%s:%s"\n' "$GANETI_RAPI_USER" "$q" |
    curl -sS --fail-with-body -K - --cacert "$GANETI_RAPI_CA_FILE" --connect-timeout 5 -m 30 \
      -X "$1" -H 'Content-Type: application/json' "$GANETI_RAPI_URL$2"
}

repoint() {  # repoint FILE: FROM -> TO in the text, atomically
  local f=$1 t
  [[ -f $f ]] || die "$f: no such pointer"
  grep -qF -- "$FROM" "$f" || { grep -qF -- "$TO" "$f" && return 0; die "$f names neither $FROM nor $TO"; }
  t=$(mktemp "$(dirname "$f")/.rotate.XXXXXX")
  sed "s/$FROM/$TO/g" "$f" >"$t"; chmod --reference="$f" "$t"; mv -f "$t" "$f"
}

wait_job() {  # wait_job HOST JOB WHAT: polls /2/jobs/<id> every 250 ms until it succeeded
  local host=$1 job=$2 what=$3 status
  [[ $job =~ ^\"?([0-9]+)\"?$ ]] || die "$host: $what answered $job"; job=${BASH_REMATCH[1]}
  while :; do
    status=$(rapi GET "/2/jobs/$job" | jq -r .status)
    case $status in
      success) return 0 ;;
      error | canceled) die "$host: $what job $job: $status" ;;
    esac
    ((SECONDS < deadline)) || die "$host: $what job $job still $status after $TIMEOUT s"
    sleep 0.25
  done
}

rotate_host() {
  local host=$1 mac deadline body t0=$EPOCHREALTIME
  mac=$(rapi GET "/2/instances/$host" | jq -r '."nic.macs"[0] // empty')
  [[ -n $mac ]] || die "$host: no NIC MAC from the RAPI"
  mac=${mac,,}; mac=${mac//:/-}
  repoint "$STORE/boot/$mac.ipxe"; repoint "$STORE/boot/by-name/$host.ipxe"
  deadline=$((SECONDS + TIMEOUT))
  wait_job "$host" "$(rapi POST "/2/instances/$host/reboot?type=hard")" reboot
  log "$host: rebooted, waiting for IMAGE=$TO"
  while :; do
    body=$(curl -s --connect-timeout 1 -m 1 "http://$host/health" || true)
    [[ $body == *"IMAGE=$TO"* ]] && break
    ((SECONDS < deadline)) || die "$host: no IMAGE=$TO within $TIMEOUT s (last: ${body:-no answer})"
    sleep 0.25
  done
  if [[ -n ${TAG_PREFIX:-} ]]; then
    wait_job "$host" "$(rapi PUT "/2/instances/$host/tags?tag=$TAG_PREFIX$TO")" "tag add"
    wait_job "$host" "$(rapi DELETE "/2/instances/$host/tags?tag=$TAG_PREFIX$FROM")" "tag remove"
  fi
  log "$host: healthy on $TO after $(bc <<<"$EPOCHREALTIME - $t0") s"
}

t0=$EPOCHREALTIME hosts=("$@") failed=0
for ((i = 0; i < ${#hosts[@]}; i += N)); do
  batch=("${hosts[@]:i:N}") pids=()
  log "batch $((i / N + 1)): ${batch[*]}"
  for h in "${batch[@]}"; do rotate_host "$h" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || die "batch $((i / N + 1)) failed; later batches not started"
done
total=$(bc <<<"$EPOCHREALTIME - $t0")
log "rotated ${#hosts[@]} host(s) from $FROM to $TO, $N at a time"
printf '%.2f\n' "$total"
