# Node lifecycle for ganeti-sandbox.sh (sourced by it, never run alone): fixed node MACs, the
# node health endpoint, `reboot`/`start` of one node, and `master-failover`.
#
# A node "reboot" stops everything of the node's own OS inside its namespaces and starts it
# again the way `up` did (sshd, `daemon-util start-all`), after recording the image that the
# node's boot pointer in the store names, as a netbooted box would run it. What it stops, by
# PID: every process in the node's netns *and* its mount namespace (Ganeti's daemons and their
# children, job processes, sshd and its sessions, the health endpoint, anything run with
# `exec nN`), except
#   - QEMU processes of instances (their pidfiles under /run/ganeti/kvm-hypervisor/pid): a real
#     reboot would kill them, but a rolling upgrade migrates every instance off first; each one
#     still there is logged ("still running"), and it keeps running;
#   - netboot.sh's daemons (pidfiles in $SB/netboot/nN: DHCP on br-inst, the store forwarder,
#     console capture) and their children: they stand for the network, not the node's OS;
#   - the hosts sync's forwarders, which live in the host's mount namespace.
# ganeti-metad (on demand, for kvm instances) is stopped too; Ganeti starts it again with
# the next instance start. The master IP, if the node holds it, goes with the reboot. At boot
# Ganeti's master daemons do not bring it back (ganeti-watcher would, from cron, which this
# sandbox has not), so boot runs `gnt-cluster activate-master-ip` when the node is the master.
#
# Ganeti 3.0.2 as seen here: while a node is down the RAPI still lists it, `offline: false`
# and its role unchanged, but its live fields (mfree, mtotal, mnode, dfree, dtotal, ctotal)
# are null from the first query after the stop; they are back within ~1 s of noded starting.
# `gnt-cluster master-failover` (3 nodes, voting) moves the master IP and starts wconfd,
# ganeti-rapi and luxid on the new master by itself, in 22-28 s: ~5 s to stop the old
# master's daemons, 3-10 s probing that the master IP is unreachable, ~9 s to start the new
# master's daemons. `master-failover` below checks all of that and fixes up what is missing.

HEALTH_PORT=${GNT_HEALTH_PORT:-8099}

node_mac() { printf '52:54:00:67:6e:%02x' "${1#n}"; }   # 67 6e: "gn"
node_hexhyp() { local m; m=$(node_mac "$1"); echo "${m//:/-}"; }

resolve_node() {  # nN, N, nodeN, nodeN.gnt.test or 10.221.0.1N -> nN (a node of this sandbox)
  local a=$1 n=
  case $a in
    n[0-9]) n=$a ;;
    [0-9]) n=n$a ;;
    node[0-9] | node[0-9].$DOMAIN) n=n${a:4:1} ;;
    "$NET".1[0-9]) n=n${a##*.1} ;;
  esac
  [[ -n $n && -e /run/netns/gnt-$n ]] || die "no node $a in this sandbox"
  echo "$n"
}

current_master() { cat "$SB/master" 2>/dev/null || echo n1; }

detach() {  # detach CMD...: CMD in its own session, with no fd above 2 of ours (as netboot.sh)
  # A caller under `flock /work/sandbox.lock` must not leave the lock held by what we start.
  ( for f in /proc/$BASHPID/fd/*; do f=${f##*/}; ((f > 2)) && eval "exec $f>&-"; done
    exec setsid -f "$@" </dev/null >/dev/null 2>&1 )
}

alive_pidfile() {  # alive_pidfile FILE MARK: the PID in FILE, if that process runs and its argv has MARK
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n $pid ]] && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# ---------------------------------------------------------------- boot: image, health endpoint
pointer_image() {  # pointer_image nN STORE: the image id the node's boot pointer names, or nothing
  local n=$1 store=$2 f w
  for f in "$store/boot/$(node_hexhyp "$n").ipxe" "$store/boot/by-name/$(node_name "$n").ipxe"; do
    [[ -f $f ]] || continue
    # What the booted kernel sees: `ganeti-operator.image=<id>` on the pointer's kernel line.
    for w in $(sed -n 's/^kernel //p' "$f"); do
      [[ $w == ganeti-operator.image=* ]] && { echo "${w#*=}"; return 0; }
    done
    log "$n: $f names no ganeti-operator.image=: no image"; return 0
  done
  log "$n: no boot pointer (boot/$(node_hexhyp "$n").ipxe or boot/by-name/$(node_name "$n").ipxe in $store): no image"
}

record_image() {  # record_image nN STORE: what the node booted, kept for its health endpoint
  local n=$1 store=$2 image=
  if [[ -z $store ]]; then log "$n: no store (--store or GANETI_OPERATOR_STORE): no image"
  else image=$(pointer_image "$n" "$store"); fi
  echo "$image" >"$SB/$n/image"
  log "$n: booted image: ${image:-(none)}"
}

HEALTH_PY='
import http.server, sys
ip, port, host, image = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = ("IMAGE=%s\nHOST=%s\n" % (image, host)).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/health":
            self.send_error(404); return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer((ip, port), H).serve_forever()
'

start_health() {  # the node's GET /health on its IP, serving the image recorded at this boot
  local n=$1 ip; ip=$(node_ip "$n")
  detach "$SELF" exec "$n" "$SELF" _daemon "$SB/$n/health.pid" "$SB/$n/health.log" \
    /usr/bin/python3 -c "$HEALTH_PY" "$ip" "$HEALTH_PORT" "$(node_name "$n")" "$(cat "$SB/$n/image" 2>/dev/null)"
  for _ in $(seq 1 50); do
    curl -s -o /dev/null --connect-timeout 1 "http://$ip:$HEALTH_PORT/health" && return 0; sleep 0.1
  done
  die "$n: the health endpoint did not answer at http://$ip:$HEALTH_PORT/health (see $SB/$n/health.log)"
}

noded_answers() {  # a real RPC, as the master makes it: POST /version with the master's client certificate
  local n=$1 c=$SB/$(current_master)/lib/client.pem
  curl -sS -k --connect-timeout 1 -m 3 --cert "$c" --key "$c" -X POST -d '[]' \
    "https://$(node_ip "$n"):1811/version" 2>/dev/null | grep -q '^\[true'
}

boot_node() {  # start what `up` started, then wait for noded
  local n=$1 store=$2 t0=$SECONDS
  record_image "$n" "$store"
  in_node "$n" /usr/sbin/sshd
  in_node "$n" /usr/lib/ganeti/daemon-util start-all
  start_health "$n"
  if [[ $(current_master) == "$n" ]] && ! ip -n "gnt-$n" -o addr show dev eth0 | grep -q " $MASTER_IP/"; then
    log "$n: the master is back: gnt-cluster activate-master-ip"
    in_node "$n" gnt-cluster activate-master-ip || log "$n: activate-master-ip failed"
    ip neigh flush to "$MASTER_IP" 2>/dev/null || true
  fi
  for _ in $(seq 1 120); do noded_answers "$n" && { log "$n: noded answers ($((SECONDS - t0)) s after boot)"; return 0; }; sleep 0.5; done
  log "$n: noded does not answer 60 s after boot"; return 1
}

# ---------------------------------------------------------------- shutdown
stop_node() {  # stop the node's OS by PID (see the top of this file for what stays)
  local n=$1 mnt pid f s rest ppid keep k qemu=" " pids=() left=() kill=() t0=$SECONDS
  local -A parent=() kept=()
  mnt=$(stat -L -c %i "$NSDIR/$n.mnt")
  # PIDs to keep: instances' QEMU, netboot.sh's daemons; their children are kept too.
  for pid in $(in_node "$n" sh -c 'cat /run/ganeti/kvm-hypervisor/pid/* 2>/dev/null' || true); do qemu+="$pid "; kept[$pid]=qemu; done
  for f in "$SB/netboot/$n"/*.pid; do pid=$(cat "$f" 2>/dev/null) && [[ -n $pid ]] && kept[$pid]=netboot; done
  for s in /proc/[0-9]*/stat; do
    { read -r rest <"$s"; } 2>/dev/null || continue   # gone since the glob
    pid=${rest%% *}; rest=${rest##*) }; read -r _ ppid _ <<<"$rest"; parent[$pid]=$ppid
  done
  for pid in $(ip netns pids "gnt-$n" 2>/dev/null); do
    k=$pid keep=
    while [[ -n $k && $k -gt 1 ]]; do [[ -n ${kept[$k]:-} ]] && { keep=${kept[$k]}; break; }; k=${parent[$k]:-}; done
    if [[ $(stat -L -c %i "/proc/$pid/ns/mnt" 2>/dev/null) != "$mnt" ]]; then keep=${keep:-host mount namespace}; fi
    if [[ -n $keep ]]; then left+=("$pid:$keep"); else kill+=("$pid"); fi
  done
  for f in "${left[@]}"; do
    pid=${f%%:*}; [[ $qemu == *" $pid "* ]] || continue
    log "$n: still running, left alone (a real reboot would kill it): QEMU $pid $(tr '\0' ' ' </proc/$pid/cmdline | grep -o -- '-name [^ ]*' || true)"
  done
  log "$n: stopping ${#kill[@]} process(es): $(for pid in "${kill[@]}"; do printf '%s/%s ' "$pid" "$(cat /proc/$pid/comm 2>/dev/null)"; done)"
  for pid in "${kill[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    pids=(); for pid in "${kill[@]}"; do [[ -e /proc/$pid ]] && [[ $(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null) != Z ]] && pids+=("$pid"); done
    ((${#pids[@]})) || break; sleep 0.1
  done
  for pid in "${pids[@]}"; do log "$n: $pid ($(cat /proc/$pid/comm 2>/dev/null)) ignored SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; done
  if ip -n "gnt-$n" -o addr show dev eth0 | grep -q " $MASTER_IP/"; then
    log "$n: drops the master IP $MASTER_IP, as a reboot would"
    ip -n "gnt-$n" addr del "$MASTER_IP/24" dev eth0 2>/dev/null || true
  fi
  log "$n: down ($((SECONDS - t0)) s)"
}

# ---------------------------------------------------------------- the verbs
node_state() { cat "$SB/$1/state" 2>/dev/null || echo up; }
set_state() { echo "$2" >"$SB/$1/state.tmp" && mv "$SB/$1/state.tmp" "$SB/$1/state"; }

node_worker() {  # node_worker nN reboot|reboot-noreturn|start DELAY STORE: runs detached, logs to $SB/nN/node.log
  # Globals, not locals: the EXIT trap runs after the function has returned.
  W_N=$1 W_MODE=$2 W_DELAY=$3 W_STORE=$4 W_SLEEPER=
  echo $$ >"$SB/$W_N.worker.hostpid"
  trap '[[ -n $W_SLEEPER ]] && kill "$W_SLEEPER" 2>/dev/null; log "$W_N: worker stopped"; exit 1' TERM INT
  # Whatever ends it early (an error under set -e, a die) leaves the state `failed`, never half-way.
  trap 'rm -f "$SB/$W_N.worker.hostpid"
        case $(node_state "$W_N") in up|down) ;; *) set_state "$W_N" failed; log "$W_N: failed";; esac' EXIT
  log "$W_N: $W_MODE (delay $W_DELAY s, store ${W_STORE:-none}), worker $$"
  if [[ $W_MODE == reboot* ]]; then
    set_state "$W_N" stopping; stop_node "$W_N"
    if [[ $W_MODE == reboot-noreturn ]]; then
      rm -f "$SB/$W_N.worker.hostpid"; set_state "$W_N" down
      log "$W_N: stays down (--no-return); \`start $W_N\` brings it back"; exit 0
    fi
    set_state "$W_N" down
    sleep "$W_DELAY" & W_SLEEPER=$!; wait "$W_SLEEPER"; W_SLEEPER=
  fi
  set_state "$W_N" booting
  boot_node "$W_N" "$W_STORE" || exit 1
  # The pidfile goes first: whoever sees `up` finds no worker busy with the node.
  rm -f "$SB/$W_N.worker.hostpid"; set_state "$W_N" up
}

spawn_worker() {  # spawn_worker nN MODE DELAY STORE, then wait until the node's state is one of $5
  local n=$1 want=$5 pid s
  pid=$(alive_pidfile "$SB/$n.worker.hostpid" _node_worker) && die "$n is busy: its worker $pid is still running (see $SB/$n/node.log)"
  rm -f "$SB/$n/state"
  detach "$SELF" _node_worker "$SB/$n/node.log" "$n" "$2" "$3" "$4"
  for _ in $(seq 1 ${6:-600}); do
    s=$(cat "$SB/$n/state" 2>/dev/null || true)
    [[ " $want " == *" $s "* ]] && return 0
    [[ $s == failed ]] && die "$n: the boot failed (see $SB/$n/node.log)"
    sleep 0.2
  done
  die "$n: not $want in time (state ${s:-none}; see $SB/$n/node.log)"
}

parse_node_args() {  # sets N, DELAY, NO_RETURN, STORE from: NODE [--delay S] [--no-return] [--store DIR]
  N= DELAY=0 NO_RETURN=0 STORE=${GANETI_OPERATOR_STORE:-}
  while (($#)); do
    case $1 in
      --delay) DELAY=${2:?--delay SECONDS}; shift ;;
      --delay=*) DELAY=${1#*=} ;;
      --no-return) NO_RETURN=1 ;;
      --store) STORE=${2:?--store DIR}; shift ;;
      --store=*) STORE=${1#*=} ;;
      -*) die "unknown option $1" ;;
      *) [[ -z $N ]] || die "one node only"; N=$(resolve_node "$1") ;;
    esac
    shift
  done
  [[ -n $N ]] || die "which node?"
  [[ $DELAY =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--delay: seconds, not $DELAY"
  if [[ -n $STORE ]]; then STORE=$(readlink -f "$STORE"); fi
}

cmd_reboot() {  # returns once the node is down; the worker brings it back after the delay
  parse_node_args "$@"
  [[ $(node_state "$N") == up || $(node_state "$N") == down || $(node_state "$N") == failed ]] ||
    die "$N is $(node_state "$N")"
  local mode=reboot; ((NO_RETURN)) && mode=reboot-noreturn
  spawn_worker "$N" $mode "$DELAY" "$STORE" "down booting up" 300
  if ((NO_RETURN)); then log "$(node_name "$N") is down and stays down (start $N)"
  else log "$(node_name "$N") is down; it boots in $DELAY s (log: $SB/$N/node.log)"; fi
}

cmd_start() {  # boots a node that is down; returns once noded answers
  local pid s
  parse_node_args "$@"
  if pid=$(alive_pidfile "$SB/$N.worker.hostpid" _node_worker); then
    # A reboot under way comes back by itself: wait for it, as a start would.
    log "$N: its reboot (worker $pid) is under way: waiting for it to finish"
    for _ in $(seq 1 3000); do [[ -e /proc/$pid ]] || break; sleep 0.2; done
    s=$(node_state "$N"); [[ $s == up ]] || die "$N: its reboot ended $s (see $SB/$N/node.log)"
  fi
  if [[ $(node_state "$N") == up ]] && noded_answers "$N"; then log "$(node_name "$N") is up already"; return 0; fi
  spawn_worker "$N" start 0 "$STORE" up 600
  log "$(node_name "$N") is up, image $(cat "$SB/$N/image")"
}

has_master_ip() { ip -n "gnt-$1" -o addr show dev eth0 2>/dev/null | grep -q " $MASTER_IP/"; }

served_fingerprint() {
  openssl s_client -connect "$MASTER_IP:5080" </dev/null 2>/dev/null | openssl x509 -outform der 2>/dev/null | sha256sum | cut -d' ' -f1
}

cmd_master_failover() {  # master-failover NODE [gnt-cluster master-failover options]
  local n old m t0=$SECONDS
  n=$(resolve_node "${1:?master-failover NODE}"); shift
  old=$(current_master)
  if [[ $old == "$n" ]]; then log "$(node_name "$n") is the master already"
  else
    log "master: $(node_name "$old") -> $(node_name "$n") (gnt-cluster master-failover on $n)"
    in_node "$n" gnt-cluster master-failover "$@" >&2
    echo "$n" >"$SB/master"
    log "gnt-cluster master-failover returned after $((SECONDS - t0)) s"
  fi
  # What Ganeti should have done itself; each fix-up is logged.
  for m in $(ls /run/netns | sed -n 's/^gnt-\(n[0-9]\)$/\1/p'); do
    [[ $m != "$n" ]] && has_master_ip "$m" && { log "fix-up: $m still holds $MASTER_IP: removed"; ip -n "gnt-$m" addr del "$MASTER_IP/24" dev eth0; }
  done
  has_master_ip "$n" || { log "fix-up: $MASTER_IP is not on $n: gnt-cluster activate-master-ip"; in_node "$n" gnt-cluster activate-master-ip >&2; }
  ip neigh flush to "$MASTER_IP" 2>/dev/null || true   # the host's ARP entry may name the old master
  in_node "$n" /usr/lib/ganeti/daemon-util check ganeti-rapi ||
    { log "fix-up: ganeti-rapi is not running on $n: started"; in_node "$n" /usr/lib/ganeti/daemon-util start ganeti-rapi; }
  wait_for_rapi
  if [[ $(served_fingerprint) != "$(fingerprint)" ]]; then
    log "fix-up: ganeti-rapi on $n serves another certificate: restarted with the $(cat "$SB/cert-mode") one"
    use_certificate "$(cat "$SB/cert-mode")"
  fi
  log "$(node_name "$n") is the master; the RAPI answers at https://$MASTER_IP:5080 ($((SECONDS - t0)) s)"
}

stop_workers() {  # for `down`: every node worker's whole session (its sleep, its nsenter children)
  local f pid
  for f in "$SB"/n[0-9].worker.hostpid; do
    [[ -f $f ]] || continue
    pid=$(alive_pidfile "$f" _node_worker) && kill -KILL -- "-$pid" 2>/dev/null
    rm -f "$f"
  done
  return 0
}

print_node_env() {
  local i macs= ips= urls=
  for i in $(seq 1 "$(wc -w <"$SB/nodes")"); do
    macs+="$(node_name n$i)=$(node_mac n$i) "; ips+="$(node_name n$i)=$(node_ip n$i) "
    urls+="$(node_name n$i)=http://$(node_ip n$i):$HEALTH_PORT/health "
  done
  cat <<ENV
export GANETI_SANDBOX_NODE_MACS="${macs% }"
export GANETI_SANDBOX_NODE_IPS="${ips% }"
export GANETI_SANDBOX_NODE_HEALTH_URL='http://{ip}:$HEALTH_PORT/health'
export GANETI_SANDBOX_NODE_HEALTH_URLS="${urls% }"
export GANETI_SANDBOX_MASTER=$(node_name "$(current_master)")
ENV
}
