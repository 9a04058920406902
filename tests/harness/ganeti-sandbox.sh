#!/usr/bin/env bash
# A real Ganeti 3.0.2 cluster (fake hypervisor) on one Debian 12 machine, for the tests.
# Each node lives in its own network, mount and UTS namespace; the RAPI answers over HTTPS
# on the master IP from the host.
#
#   tests/harness/ganeti-sandbox.sh up        install packages if needed, (re)build the cluster
#                                             GNT_NODES=2 for two nodes; GNT_CERT=stock keeps
#                                             Ganeti's own self-signed v1 certificate
#   tests/harness/ganeti-sandbox.sh down      stop what it started, remove namespaces and state
#   tests/harness/ganeti-sandbox.sh env       shell exports: GANETI_RAPI_* for the operator (URL, user,
#                                             password file, CA or pin), GANETI_SANDBOX_* for the tests
#   tests/harness/ganeti-sandbox.sh cert ca|stock   switch ganeti-rapi's certificate
#   tests/harness/ganeti-sandbox.sh exec [nN] CMD   run CMD inside node N (default: the master)
#   tests/harness/ganeti-sandbox.sh kill-daemon nN NAME   SIGKILL Ganeti's daemon NAME (e.g. ganeti-noded)
#                                             on node N: every process of it in gnt-nN, by PID
#   tests/harness/ganeti-sandbox.sh start-daemon nN NAME  start it again, as Ganeti does (daemon-util)
#   tests/harness/ganeti-sandbox.sh restart-rapi [SECONDS]  kill ganeti-rapi on the master, wait
#                                             SECONDS (default 0), start it, wait until it answers
#   tests/harness/ganeti-sandbox.sh reboot NODE [--delay S] [--no-return] [--store DIR]
#                                             stop the node's daemons and sshd (by PID, in its
#                                             namespaces); return once it is down; after S s (0)
#                                             record the image its boot pointer in the store names
#                                             (--store, else GANETI_OPERATOR_STORE) and start them
#                                             again. NODE: nN, nodeN or nodeN.gnt.test, so that
#                                             ["…/ganeti-sandbox.sh", "reboot", "{node}"] works as
#                                             the operator's nodeReboot.command. --no-return: stays
#                                             down. Log: $SB/nN/node.log
#   tests/harness/ganeti-sandbox.sh start NODE [--store DIR]   boot a node that is down; returns
#                                             once its noded answers
#   tests/harness/ganeti-sandbox.sh master-failover NODE   `gnt-cluster master-failover` on NODE,
#                                             then the RAPI answers on the master IP again
#
# Each node has a fixed MAC on eth0 (52:54:00:67:6e:0N; its boot pointer is
# boot/52-54-00-67-6e-0N.ipxe) and answers GET http://10.221.0.1N:8099/health with
# "IMAGE=<id>" (the image recorded at its last boot; empty without a pointer), down while
# it is. sandbox-nodes.sh (beside this file) has the details of what a reboot stops.
#
# `up` starts from any leftover state: it runs `down` first whenever it finds one.
# Traffic stays on the bridge gntbr0 (10.221.0.0/24) and inside the namespaces, which have
# no default route. Processes are stopped by PID (ip netns pids), never by name.
set -euo pipefail
SELF=$(readlink -f "$0")

SB=${GNT_SANDBOX_DIR:-/srv/gnt-sandbox}
NSDIR=/run/gnt-sandbox
NODES=${GNT_NODES:-1}
CERT=${GNT_CERT:-ca}
NET=10.221.0
BR=gntbr0
HOST_IP=$NET.1
MASTER_IP=$NET.10
DOMAIN=gnt.test
CLUSTER=cluster.$DOMAIN
RAPI_USER=gnt-admin
RAPI_READONLY_USER=gnt-reader

log() { printf '[sandbox %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root (namespaces, mounts, apt)"

node_ip() { echo "$NET.$((10 + ${1#n}))"; }
node_name() { echo "node${1#n}.$DOMAIN"; }
in_node() { local n=$1; shift; nsenter --mount=$NSDIR/$n.mnt --uts=$NSDIR/$n.uts --net=/run/netns/gnt-$n -- "$@"; }
# shellcheck source=tests/harness/sandbox-nodes.sh
. "$(dirname "$SELF")/sandbox-nodes.sh"

install_packages() {
  dpkg -s ganeti ganeti-haskell-3.0 curl openssl socat iproute2 >/dev/null 2>&1 && return 0
  log "installing ganeti 3.0.2 from Debian (about 80 s) ..."
  # No package may start daemons on the host: we start Ganeti inside the namespaces.
  local prc=/usr/sbin/policy-rc.d ours=0
  if [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' >$prc; chmod 755 $prc; ours=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q ganeti curl openssl socat iproute2 >/dev/null
  [[ $ours == 1 ]] && rm -f $prc
  return 0
}

random_password() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }

prepare_host() {
  mkdir -p "$SB" "$NSDIR"
  # Namespace handle files must sit on a private mount, or `unshare --mount=FILE` refuses.
  if ! mountpoint -q "$NSDIR"; then mount --bind "$NSDIR" "$NSDIR"; mount --make-private "$NSDIR"; fi
  { echo "127.0.0.1 localhost"; echo "$MASTER_IP $CLUSTER cluster"
    for i in $(seq 1 9); do echo "$NET.$((10 + i)) node$i.$DOMAIN node$i"; done; } >"$SB/hosts"
  echo "nameserver 127.0.0.1" >"$SB/resolv.conf"
  # Debian's ganeti-rapi listens on 127.0.0.1 only; the host reaches it over the bridge.
  sed 's/^RAPI_ARGS=.*/RAPI_ARGS="-b 0.0.0.0 --require-authentication"/' /etc/default/ganeti >"$SB/default-ganeti"
  # `gnt-node add` rewrites the joining node's ssh host keys: give the nodes a private copy.
  rm -rf "$SB/etc-ssh"; cp -a /etc/ssh "$SB/etc-ssh"
  for t in rsa ed25519; do
    [[ -f $SB/etc-ssh/ssh_host_${t}_key ]] || ssh-keygen -q -t $t -N '' -f "$SB/etc-ssh/ssh_host_${t}_key"
  done
  # OS providers whose scripts succeed without touching a disk. `noop` declares the secret
  # parameter the operator passes a generated host key in; its create script records what
  # it receives (as a real provider would write /etc/ssh/ssh_host_ed25519_key), so the
  # tests can check the key arrived. `bare` declares no parameter, so Ganeti refuses one.
  rm -rf "$SB/os" "$SB/os-received"; mkdir -p "$SB/os-received"; chmod 700 "$SB/os-received"
  for os in noop bare; do
    mkdir -p "$SB/os/$os"
    echo 20 >"$SB/os/$os/ganeti_api_version"; echo default >"$SB/os/$os/variants.list"
    : >"$SB/os/$os/parameters.list"
    for s in create import export rename verify; do
      printf '#!/bin/sh\nexit 0\n' >"$SB/os/$os/$s"; chmod 755 "$SB/os/$os/$s"
    done
  done
  echo "ssh_host_ed25519_key the instance's SSH host private key (a secret parameter)" >"$SB/os/noop/parameters.list"
  cat >"$SB/os/noop/create" <<CREATE
#!/bin/sh
if [ -n "\$OSP_SSH_HOST_ED25519_KEY" ]; then
  umask 077
  printf '%s\\n' "\$OSP_SSH_HOST_ED25519_KEY" >"$SB/os-received/\$INSTANCE_NAME.ssh_host_ed25519_key"
fi
exit 0
CREATE
  mkdir -p /srv/ganeti/os /srv/ganeti/file-storage /srv/ganeti/shared-file-storage "$SB/shared-file-storage" /root/.ssh /etc/ganeti
  printf '/srv/ganeti/file-storage\n/srv/ganeti/shared-file-storage\n' >/etc/ganeti/file-storage-paths
  make_certificates
  ip link show $BR >/dev/null 2>&1 || ip link add $BR type bridge
  ip addr replace $HOST_IP/24 dev $BR
  ip link set $BR up
}

make_certificates() {
  # Our own CA and a v3 server certificate with SANs, which rustls verifies normally.
  mkdir -p "$SB/tls"; (cd "$SB/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ganeti-operator test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$CLUSTER" -keyout rapi.key -out rapi.csr 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:%s,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$CLUSTER" "$MASTER_IP" >ext.cnf
  openssl x509 -req -in rapi.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile ext.cnf -out rapi.crt 2>/dev/null
  cat rapi.key rapi.crt >ca-signed-bundle.pem)
}

gone_host_end() {  # gone_host_end nN: no host end gnt-nNh of an earlier node's veth is left
  # A deleted namespace goes once its last process and reference have, and the kernel then
  # removes its veths in the background: right after a `down`, the host end of the old
  # pair may still be there (CI once saw `RTNETLINK answers: File exists` here). Deleting
  # one end deletes the pair; then wait until the name is free.
  local n=$1
  ip link del "gnt-${n}h" 2>/dev/null || true
  for _ in $(seq 1 120); do
    ip link show "gnt-${n}h" >/dev/null 2>&1 || return 0
    sleep 0.25
  done
  return 1
}

make_node() {
  local n=$1 ip; ip=$(node_ip "$n")
  log "node $n: namespace gnt-$n, $(node_name "$n") = $ip"
  mkdir -p "$SB/$n"/{lib,log,ssh,filestorage}; chmod 700 "$SB/$n/ssh"
  ip netns add gnt-$n
  gone_host_end "$n" || die "gnt-${n}h, the host end of an earlier node $n's link, is still there after 30 s"
  ip link add gnt-${n}h type veth peer name eth0 netns gnt-$n
  ip link set gnt-${n}h master $BR up
  # eth0 is the master netdev (this kernel loads no modules, so no dummy devices);
  # br-inst is the bridge instance NICs attach to.
  ip netns exec gnt-$n sh -c "ip link set lo up; ip link set eth0 address $(node_mac "$n")
                              ip addr add $ip/24 dev eth0; ip link set eth0 up
                              ip link add br-inst type bridge; ip link set br-inst up"
  touch $NSDIR/$n.mnt $NSDIR/$n.uts
  # Mount and UTS namespaces created from inside the netns, so the fresh sysfs shows its devices.
  nsenter --net=/run/netns/gnt-$n -- unshare --mount=$NSDIR/$n.mnt --uts=$NSDIR/$n.uts --propagation private sh -ec "
    hostname $(node_name "$n")
    mount -t tmpfs -o mode=755 tmpfs /run
    mkdir -p /run/ganeti /run/lock /run/sshd
    mount --bind $SB/hosts /etc/hosts
    mount --bind $SB/resolv.conf /etc/resolv.conf
    mount --bind $SB/default-ganeti /etc/default/ganeti
    mount --bind $SB/etc-ssh /etc/ssh
    mount --bind $SB/$n/lib /var/lib/ganeti
    mount --bind $SB/$n/log /var/log/ganeti
    mount --bind $SB/$n/ssh /root/.ssh
    mount --bind $SB/os /srv/ganeti/os
    mount --bind $SB/$n/filestorage /srv/ganeti/file-storage
    mount --bind $SB/shared-file-storage /srv/ganeti/shared-file-storage
    umount -l /sys; mount -t sysfs sysfs /sys
  "
  in_node "$n" /usr/sbin/sshd
}

init_cluster() {
  log "gnt-cluster init $CLUSTER ..."
  in_node n1 gnt-cluster init \
    --enabled-hypervisors=fake --enabled-disk-templates=diskless,file,sharedfile \
    --no-etc-hosts --master-netdev=eth0 --master-netmask=24 \
    --nic-parameters=mode=bridged,link=br-inst \
    --ipolicy-bounds-specs=min:disk-size=1,memory-size=32,cpu-count=1,disk-count=0,nic-count=0,spindle-use=0/max:disk-size=1048576,memory-size=65536,cpu-count=64,disk-count=16,nic-count=8,spindle-use=12 \
    --ipolicy-std-specs=disk-size=64,memory-size=128,cpu-count=1,disk-count=1,nic-count=1,spindle-use=1 \
    --ipolicy-vcpu-ratio=64 \
    "$CLUSTER" >&2
  # A write user and a read-only one, with fresh random passwords kept in files (never argv).
  random_password >"$SB/rapi-password"; random_password >"$SB/rapi-readonly-password"
  chmod 600 "$SB/rapi-password" "$SB/rapi-readonly-password"
  { ha1 $RAPI_USER "$(cat "$SB/rapi-password")" write; ha1 $RAPI_READONLY_USER "$(cat "$SB/rapi-readonly-password")"; } \
    >"$SB/n1/lib/rapi/users"
  in_node n1 sh -c 'chown gnt-rapi:gnt-masterd /var/lib/ganeti/rapi/users; chmod 640 /var/lib/ganeti/rapi/users'
  # Keep Ganeti's own certificate: an X.509 v1, self-signed, CN ganeti.example.com, no SAN.
  cp "$SB/n1/lib/rapi.pem" "$SB/tls/stock-bundle.pem"
  openssl x509 -in "$SB/tls/stock-bundle.pem" -out "$SB/tls/stock.pem"
}

ha1() {  # ha1 USER PASSWORD [write]: a users-file line with the password hashed
  local h; h=$(printf '%s:Ganeti Remote API:%s' "$1" "$2" | md5sum | cut -d' ' -f1)
  echo "$1 {HA1}$h ${3:-}"
}

use_certificate() {  # use_certificate ca|stock: install it on every node, restart ganeti-rapi on the master
  local bundle m
  case $1 in ca) bundle=$SB/tls/ca-signed-bundle.pem ;; stock) bundle=$SB/tls/stock-bundle.pem ;; *) die "cert: ca or stock" ;; esac
  for d in "$SB"/n[0-9]; do install -o gnt-rapi -g gnt-masterd -m 0440 "$bundle" "$d/lib/rapi.pem"; done
  # ganeti-rapi never reloads its certificate by itself.
  m=$(current_master)
  in_node "$m" sh -c '/usr/lib/ganeti/daemon-util stop ganeti-rapi; /usr/lib/ganeti/daemon-util start ganeti-rapi'
  echo "$1" >"$SB/cert-mode"
  wait_for_rapi
}

add_node() {
  local n=$1
  cat "$SB/n1/ssh/id_rsa.pub" >>"$SB/$n/ssh/authorized_keys"; chmod 600 "$SB/$n/ssh/authorized_keys"
  # Without --no-ssh-key-check, ssh asks about the host key and fails without a terminal.
  in_node n1 gnt-node add --no-ssh-key-check "$(node_name "$n")" >&2
}

wait_for_rapi() {
  for _ in $(seq 1 60); do
    curl -sS -o /dev/null --insecure --connect-timeout 2 "https://$MASTER_IP:5080/version" 2>/dev/null && return 0
    sleep 0.5
  done
  die "the RAPI did not answer at https://$MASTER_IP:5080"
}

fingerprint() {  # SHA-256 of the certificate ganeti-rapi serves now, as the operator pins it
  local bundle=$SB/tls/ca-signed-bundle.pem
  [[ $(cat "$SB/cert-mode" 2>/dev/null) == stock ]] && bundle=$SB/tls/stock-bundle.pem
  openssl x509 -in "$bundle" -outform der | sha256sum | cut -d' ' -f1
}

print_env() {
  [[ -f $SB/nodes ]] || die "no sandbox is up"
  cat <<ENV
export GANETI_RAPI_URL=https://$MASTER_IP:5080
export GANETI_RAPI_USER=$RAPI_USER
export GANETI_RAPI_PASSWORD_FILE=$SB/rapi-password
export GANETI_RAPI_READONLY_USER=$RAPI_READONLY_USER
export GANETI_RAPI_READONLY_PASSWORD_FILE=$SB/rapi-readonly-password
export GANETI_SANDBOX_CA_FILE=$SB/tls/ca.pem
export GANETI_SANDBOX_FINGERPRINT=$(fingerprint)
export GANETI_SANDBOX_STOCK_FINGERPRINT=$(openssl x509 -in "$SB/tls/stock-bundle.pem" -outform der | sha256sum | cut -d' ' -f1)
export GANETI_SANDBOX_NODES="$(cat "$SB/nodes")"
export GANETI_SANDBOX_CERT=$(cat "$SB/cert-mode")
export GANETI_SANDBOX_DIR=$SB
ENV
  print_node_env
  # The operator takes exactly one trust setting: the CA for our certificate, the pin
  # for Ganeti's stock one.
  if [[ $(cat "$SB/cert-mode") == stock ]]; then
    echo "unset GANETI_RAPI_CA_FILE"; echo "export GANETI_RAPI_FINGERPRINT=$(fingerprint)"
  else
    echo "unset GANETI_RAPI_FINGERPRINT"; echo "export GANETI_RAPI_CA_FILE=$SB/tls/ca.pem"
  fi
}

cmd_up() {
  local t0=$SECONDS
  install_packages
  if [[ -e /run/netns/gnt-n1 || -d $SB || -e $NSDIR ]] || ip link show $BR >/dev/null 2>&1; then
    log "leftovers of an earlier sandbox found: removing them first"; cmd_down
  fi
  prepare_host
  for i in $(seq 1 "$NODES"); do make_node n$i; done
  ip route get "$MASTER_IP" | grep -q "dev $BR" || die "$MASTER_IP is not routed via $BR; refusing"
  init_cluster
  for i in $(seq 2 "$NODES"); do add_node n$i; done
  echo n1 >"$SB/master"
  use_certificate "$CERT"
  # The nodes' first boot: the image their pointer names, if a store is given; health endpoints.
  for i in $(seq 1 "$NODES"); do record_image n$i "${GANETI_OPERATOR_STORE:-}"; start_health n$i; set_state n$i up; done
  for i in $(seq 1 "$NODES"); do printf '%s ' "$(node_name n$i)"; done | sed 's/ $//' >"$SB/nodes"
  log "cluster of $NODES node(s) up in $((SECONDS - t0)) s, certificate: $CERT"
}

daemon_pids() {  # daemon_pids nN NAME: PIDs in gnt-nN whose program is Ganeti's daemon NAME
  local n=$1 name=$2 pid argv
  for pid in $(ip netns pids "gnt-$n" 2>/dev/null || true); do
    # argv[0], or argv[1] for a Python daemon (python3 /usr/sbin/ganeti-noded ...), is the
    # daemon's path; daemon-util or start-stop-daemon naming it further on does not count.
    mapfile -d '' -t argv <"/proc/$pid/cmdline" 2>/dev/null || continue
    [[ ${argv[0]:-} == */$name || ${argv[0]:-} == "$name" || ${argv[1]:-} == */$name ]] && echo "$pid"
  done
  return 0
}

kill_daemon() {  # kill_daemon nN NAME: SIGKILL, as a crash would, and wait until they are gone
  local n=$1 name=$2 pids pid
  [[ $n =~ ^n[0-9]$ && $name =~ ^ganeti-[a-z]+$ ]] || die "kill-daemon nN ganeti-NAME"
  [[ -e /run/netns/gnt-$n ]] || die "no node $n"
  pids=$(daemon_pids "$n" "$name")
  [[ -n $pids ]] || die "$name is not running on $n"
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    [[ -z $(daemon_pids "$n" "$name") ]] && { log "$name on $n killed (PIDs $(echo $pids))"; return 0; }
    sleep 0.05
  done
  die "$name on $n survived SIGKILL: $(daemon_pids "$n" "$name")"
}

start_daemon() {  # start_daemon nN NAME: the way gnt-cluster init / gnt-node add start it
  local n=$1 name=$2
  [[ $n =~ ^n[0-9]$ && $name =~ ^ganeti-[a-z]+$ ]] || die "start-daemon nN ganeti-NAME"
  # A SIGKILLed daemon leaves its pidfile, owned by the daemon's user, and start-stop-daemon
  # refuses to trust it ("matching only on non-root pidfile ... is insecure"): remove it
  # when no process of the daemon is left, as a boot would.
  [[ -z $(daemon_pids "$n" "$name") ]] && in_node "$n" rm -f "/run/ganeti/$name.pid"
  in_node "$n" /usr/lib/ganeti/daemon-util start "$name"
  [[ -n $(daemon_pids "$n" "$name") ]] || die "$name did not start on $n"
  log "$name on $n started (PID $(daemon_pids "$n" "$name" | head -1))"
}

restart_rapi() {  # restart_rapi [SECONDS]: down for about SECONDS, then answering again
  local delay=${1:-0}
  [[ $delay =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart-rapi [SECONDS]"
  kill_daemon "$(current_master)" ganeti-rapi
  sleep "$delay"
  start_daemon "$(current_master)" ganeti-rapi
  wait_for_rapi
}

remove_hosts_block() {  # the host's /etc/hosts entries netboot.sh's hosts sync maintains, in place
  local f=${GNT_HOSTS_FILE:-/etc/hosts} rest
  grep -qx '# gnt-sandbox begin' "$f" 2>/dev/null || return 0
  rest=$(sed '/^# gnt-sandbox begin$/,/^# gnt-sandbox end$/d' "$f")
  printf '%s\n' "$rest" >"$f"   # not sed -i: a rename would break a bind-mounted /etc/hosts
}

cmd_down() {
  local f n pids pid alive
  # Host-side helpers started for the sandbox (the example's store server) record their
  # PID here: they hold addresses on gntbr0 and must go with it.
  pids=
  stop_workers   # reboot/start workers (sandbox-nodes.sh): their whole sessions
  for f in "$SB"/*.hostpid; do
    [[ -f $f ]] && kill -TERM "$(cat "$f")" 2>/dev/null && pids+=" $(cat "$f")" || true
  done
  # netboot.sh's hosts sync cleans up on SIGTERM (forwarders, aliases, its /etc/hosts block): let it.
  for _ in $(seq 1 30); do
    alive=0; for pid in $pids; do [[ -e /proc/$pid ]] && alive=1; done
    ((alive)) || break; sleep 0.1
  done
  # Any hosts sync the pidfile no longer names (an earlier netboot.sh up's): by command line.
  "$(dirname "$(readlink -f "$0")")/netboot.sh" _stop_hosts_syncs 2>/dev/null || true
  remove_hosts_block
  for f in $(ls /run/netns 2>/dev/null | grep -E '^gnt-n[0-9]$' || true); do
    n=${f#gnt-}
    pids=$(ip netns pids "$f" 2>/dev/null || true)
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 20); do
      pids=$(ip netns pids "$f" 2>/dev/null || true); [[ -z $pids ]] && break; sleep 0.25
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    umount "$NSDIR/$n.mnt" 2>/dev/null || true
    umount "$NSDIR/$n.uts" 2>/dev/null || true
    ip netns del "$f" 2>/dev/null || true
    gone_host_end "$n" || true
  done
  ip link del $BR 2>/dev/null || true
  if mountpoint -q $NSDIR 2>/dev/null; then umount -l $NSDIR || true; fi
  rm -rf $NSDIR "$SB"
  rm -f /etc/ganeti/file-storage-paths
  rmdir /srv/ganeti/os /srv/ganeti/file-storage /srv/ganeti/shared-file-storage /srv/ganeti 2>/dev/null || true
  log "sandbox removed"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) print_env ;;
  cert) use_certificate "${2:-}"; log "ganeti-rapi now serves the $2 certificate" ;;
  kill-daemon) kill_daemon "${2:-}" "${3:-}" ;;
  start-daemon) start_daemon "${2:-}" "${3:-}" ;;
  restart-rapi) restart_rapi "${2:-0}" ;;
  exec) shift; n=$(current_master); [[ ${1:-} =~ ^n[0-9]$ ]] && { n=$1; shift; }; in_node "$n" "$@" ;;
  reboot) shift; cmd_reboot "$@" ;;
  start) shift; cmd_start "$@" ;;
  master-failover) shift; cmd_master_failover "$@" ;;
  # internal: a node's reboot/start, detached (sandbox-nodes.sh)
  _node_worker) exec >>"$2" 2>&1 </dev/null; shift 2; node_worker "$@" ;;
  # internal, run inside a node: record our PID, then become CMD (so the pidfile names CMD)
  _daemon) shift; echo $$ >"$1"; exec >>"$2" 2>&1 </dev/null; shift 2; exec "$@" ;;
  *) echo "usage: $0 up|down|env|cert ca|stock|exec [nN] CMD...|kill-daemon nN NAME|start-daemon nN NAME|restart-rapi [SECONDS]|reboot NODE [--delay S] [--no-return] [--store DIR]|start NODE|master-failover NODE" >&2; exit 2 ;;
esac
