#!/usr/bin/env bash
# Soak (issue 14): `ganeti-operator run` for SOAK_MINUTES (default 30) with a 5 s resync
# against the real sandbox, reading a git repository, with pushes and signed webhook calls
# mixed in. Every SOAK_SAMPLE_SECONDS (10) it records the daemon's resident memory
# (VmRSS), open file descriptors and tasks (threads) to a CSV, and at the end prints
# first/last/max of each and a flatness verdict: the floor (minimum) and the peak over the
# last window (10 minutes, or a third of a shorter run) against those over the first. Exits 1 when
# something grew, the daemon died, or a push was never applied. Not a CI test.
#
#   flock /work/sandbox.lock bash -c 'tests/harness/ganeti-sandbox.sh up &&
#     eval "$(tests/harness/ganeti-sandbox.sh env)" && benches/soak.sh'
#
# Mixed in: every SOAK_PUSH_SECONDS (60) a push through the installed hooks (pre-receive
# validates, post-receive calls the signed webhook), alternately a tag change on web1 and
# a memory change on web2 (modify + reboot); every SOAK_WEBHOOK_SECONDS (20) a signed
# webhook call, and every third of them also one with a wrong signature (401 expected).
# The CSV goes to SOAK_CSV (default target/soak/soak-<time>.csv).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${SOAK_MINUTES:-30}
sample=${SOAK_SAMPLE_SECONDS:-10}
push_every=${SOAK_PUSH_SECONDS:-60}
hook_every=${SOAK_WEBHOOK_SECONDS:-20}
bin=${SOAK_BIN:-target/release/ganeti-operator}
csv=${SOAK_CSV:-target/soak/soak-$(date +%Y%m%d-%H%M%S).csv}

log() { printf '[soak %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $minutes =~ ^[0-9]+$ && $minutes -ge 3 ]] || die "SOAK_MINUTES must be a whole number, at least 3"
[[ -n ${GANETI_RAPI_URL:-} ]] || die 'no sandbox: eval "$(tests/harness/ganeti-sandbox.sh env)" first'
for tool in git curl openssl jq; do command -v $tool >/dev/null || die "$tool is not installed"; done
if [[ ! -x $bin ]]; then
  log "building $bin"
  cargo build --release --quiet --bin ganeti-operator
fi

work=$(mktemp -d /tmp/ganeti-soak.XXXXXX)
daemon_pid=
cleanup() {
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export GIT_AUTHOR_NAME=soak GIT_AUTHOR_EMAIL=soak@example.org
export GIT_COMMITTER_NAME=soak GIT_COMMITTER_EMAIL=soak@example.org

# A clean slate: the example prunes managed instances it does not name (2 at most), so
# leftovers of tests would keep it from converging.
harness=tests/harness/ganeti-sandbox.sh
for name in $($harness exec gnt-instance list --no-headers -o name,tags |
              awk '$2 ~ /ganeti-operator:managed/ {print $1}'); do
  log "removing leftover managed instance $name"
  $harness exec gnt-instance remove -f "$name" >/dev/null
done

base=$(cat tests/fixtures/sandbox-ganeti/desired-state.yaml)
web1=$'  web1.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n'
web2=$'      memory: 192M\n'
[[ $base == *"$web1"* && $base == *"$web2"* ]] || die "the fixture changed: web1 or web2's memory not found"
git init -q --bare -b main "$work/state.git"
git clone -q "$work/state.git" "$work/clone" 2>/dev/null
mkdir "$work/clone/desired-state" "$work/state"
printf '%s\n' "$base" >"$work/clone/desired-state/desired-state.yaml"
git -C "$work/clone" add -A
git -C "$work/clone" commit -q -m "the sandbox example"
git -C "$work/clone" push -q origin HEAD:main
secret=$work/webhook-secret
head -c 24 /dev/urandom | base64 >"$secret"; chmod 600 "$secret"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
GANETI_OPERATOR_STATE_DIR=$work/state GANETI_OPERATOR_LOG=info NO_COLOR=1 \
  "$bin" run --git-repo "$work/state.git" --git-branch main --git-path desired-state \
  --listen "$addr" --resync-interval 5s --webhook-secret-file "$secret" \
  >"$work/daemon.out" 2>"$work/daemon.log" &
daemon_pid=$!
"$bin" hook install "$work/state.git" --branch main --path desired-state \
  --notify-url "http://$addr" --webhook-secret-file "$secret" >/dev/null

status() { curl -s --max-time 5 "http://$addr/status" || echo '{}'; }
alive() { kill -0 "$daemon_pid" 2>/dev/null; }
for _ in $(seq 1 600); do
  [[ $(status | jq -r '.lastReconcile.result // empty') == converged ]] && break
  alive || die "the daemon exited: $(tail -5 "$work/daemon.log")"
  sleep 0.5
done
[[ $(status | jq -r '.lastReconcile.result // empty') == converged ]] || die "the daemon did not converge in 5 minutes"
log "daemon PID $daemon_pid on $addr converged; soaking for $minutes minutes, a sample every ${sample}s"

pushes=0 applied=0 hooks_ok=0 hooks_refused=0 hooks_bad=0 round=0
push() {
  local yaml
  round=$((round + 1))
  if ((round % 2)); then
    yaml=${base/"$web1"/"$web1    tags: [soak.r$round]"$'\n'}
  else
    # web2's memory between 192M and 256M: a modify and a reboot each time.
    ((round % 4)) && yaml=${base/"$web2"/$'      memory: 256M\n'} || yaml=$base
  fi
  printf '%s\n' "$yaml" >"$work/clone/desired-state/desired-state.yaml"
  git -C "$work/clone" commit -q -am "soak round $round" --allow-empty
  git -C "$work/clone" push -q origin HEAD:main 2>>"$work/push.log" || die "push $round refused: $(tail -3 "$work/push.log")"
  pushes=$((pushes + 1))
  last_head=$(git -C "$work/clone" rev-parse HEAD)
}
webhook() {
  local body code sig
  body="{\"ref\":\"refs/heads/main\",\"soak\":$hooks_ok}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$(cat "$secret")" | sed 's/^.* //')
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H 'Content-Type: application/json' \
    -H "X-Hub-Signature-256: sha256=$sig" --data "$body" "http://$addr/hooks/git" || true)
  [[ $code == 2* ]] && hooks_ok=$((hooks_ok + 1)) || hooks_bad=$((hooks_bad + 1))
  if (((hooks_ok + hooks_bad) % 3 == 0)); then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H "X-Hub-Signature-256: sha256=00" \
      --data "$body" "http://$addr/hooks/git" || true)
    [[ $code == 401 ]] && hooks_refused=$((hooks_refused + 1)) || hooks_bad=$((hooks_bad + 1))
  fi
}

mkdir -p "$(dirname "$csv")"
echo "seconds,rss_kib,fds,tasks,reconciles,pushes,pushes_applied,webhooks,last_result" >"$csv"
start=$SECONDS end=$((SECONDS + minutes * 60))
next_sample=$start next_push=$((start + push_every)) next_hook=$((start + hook_every)) last_head=
while ((SECONDS < end)); do
  alive || die "the daemon exited after $((SECONDS - start)) s: $(tail -5 "$work/daemon.log")"
  if ((SECONDS >= next_sample)); then
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status")
    fds=$(ls "/proc/$daemon_pid/fd" | wc -l)
    tasks=$(ls "/proc/$daemon_pid/task" | wc -l)
    st=$(status)
    if [[ -n $last_head && $(jq -r '.appliedRevision // empty' <<<"$st") == "$last_head" ]]; then
      applied=$pushes
    fi
    echo "$((SECONDS - start)),$rss,$fds,$tasks,$(jq -r '.reconciles // 0' <<<"$st"),$pushes,$applied,$hooks_ok,$(jq -r '.lastReconcile.result // "?"' <<<"$st")" >>"$csv"
    next_sample=$((next_sample + sample))
  fi
  if ((SECONDS >= next_push)); then push; next_push=$((next_push + push_every)); fi
  if ((SECONDS >= next_hook)); then webhook; next_hook=$((next_hook + hook_every)); fi
  sleep 0.5
done
# The last push is applied within a few resyncs.
for _ in $(seq 1 120); do
  [[ -z $last_head || $(status | jq -r '.appliedRevision // empty') == "$last_head" ]] && { applied=$pushes; break; }
  sleep 0.5
done
final=$(status)
reconciles=$(jq -r '.reconciles // 0' <<<"$final")
# How the reconciles ended, from the daemon's log: "N converged, N pending, ...".
endings=$(grep 'reconcile finished' "$work/daemon.log" | grep -o 'result="\?[a-z]*' | tr -d '"' |
  sed 's/^result=//' | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}' || true)

# Summary: first, last and max of each column, and the flatness verdict.
window=$(( minutes >= 30 ? 600 : minutes * 20 ))
awk -F, -v window="$window" -v total=$((minutes * 60)) '
  NR == 1 { next }
  { t = $1; n++
    for (c = 2; c <= 4; c++) {
      v = $c + 0
      if (n == 1) first[c] = v
      last[c] = v
      if (v > max[c]) max[c] = v
      if (t < window) { if (v > emax[c]) emax[c] = v; if (!(c in emin) || v < emin[c]) emin[c] = v }
      if (t >= total - window) { if (v > lmax[c]) lmax[c] = v; if (!(c in lmin) || v < lmin[c]) lmin[c] = v }
    } }
  END {
    split("rss_kib fds tasks", name, " ")
    # A leak raises the floor; traffic in flight at a sample only lifts the peak. Floors:
    # RSS may move by allocator noise (10 %), a descriptor or task by 1. Peaks: RSS 10 %,
    # descriptors 10 (the RAPI client holds at most 10 connections), tasks 4.
    fslack[2] = emin[2] * 0.10; fslack[3] = 1; fslack[4] = 1
    pslack[2] = emax[2] * 0.10; pslack[3] = 10; pslack[4] = 4
    flat = 1
    printf "%-8s %8s %8s %8s   %-17s %-17s %s\n", "", "first", "last", "max", "first min..max", "last min..max", "verdict"
    for (c = 2; c <= 4; c++) {
      ok = lmin[c] <= emin[c] + fslack[c] && lmax[c] <= emax[c] + pslack[c]
      if (!ok) flat = 0
      printf "%-8s %8d %8d %8d   %-17s %-17s %s\n", name[c-1], first[c], last[c], max[c], emin[c] ".." emax[c], lmin[c] ".." lmax[c], ok ? "flat" : "GREW"
    }
    printf "samples: %d over %d s; windows: the first and the last %d s\n", n, t, window
    exit flat ? 0 : 3
  }' "$csv" && verdict=flat || verdict=grew
echo "reconciles: $reconciles; pushes: $pushes ($applied applied); signed webhooks: $hooks_ok accepted; wrong signatures refused: $hooks_refused; unexpected webhook answers: $hooks_bad"
echo "reconcile endings (daemon log): ${endings:-none logged}"
echo "csv: $csv"
echo "verdict: $verdict"
[[ $verdict == flat && $applied == "$pushes" && $hooks_bad == 0 ]] || exit 1
