#!/usr/bin/env bash
# Real QEMU VMs that netboot over iPXE inside the Ganeti sandbox (ganeti-sandbox.sh), started by
# Ganeti 3.0.2's own kvm hypervisor. QEMU runs under TCG: this machine kind has no usable KVM.
#
#   tests/harness/netboot.sh images [OUT]   build guest images A, B, C laid out like `nix build`
#                                           results: OUT/result-X -> store/<hash>-kexec-tree-X
#                                           (default OUT: $GNT_NETBOOT_CACHE/images)
#   tests/harness/netboot.sh up             after `ganeti-sandbox.sh up`: enable the kvm hypervisor,
#                                           and in every node: DHCP on br-inst, a forwarder to the
#                                           artifact store, serial-console capture
#   tests/harness/netboot.sh ip MAC         the IPv4 address a node's DHCP server leased to MAC
#   tests/harness/netboot.sh health MAC [PATH]  GET http://<ip>/health (or PATH) from whichever node
#                                           reaches the VM; prints NODE=nN, then the body; exit 1
#                                           unless the answer is 2xx
#   tests/harness/netboot.sh console INST   the captured serial console of instance INST
#   tests/harness/netboot.sh hosts          the host-side name map: INSTANCE ALIAS NODE MAC IP per line
#   tests/harness/netboot.sh env            shell exports GANETI_NETBOOT_* for the tests
#
# Env: GNT_NETBOOT_CACHE (/var/cache/gnt-netboot: kernel, images), GNT_STORE_PORT (8480: the
# store server on the host at 10.221.0.1), GNT_SANDBOX_DIR (as ganeti-sandbox.sh).
# Guests: A and B answer GET /health with "IMAGE=<id>\nLABEL=A|B"; C is the broken image: its
# /health is 404 while / answers 200. The id comes from the kernel command line
# (ganeti-operator.image=<id>), as the operator computes it only at `image import`.
# Every long-running process lives inside a node namespace, so `ganeti-sandbox.sh down` stops it,
# except the hosts sync below, a host process whose PID is in $SB/hosts-sync.hostpid (`down` stops
# it too, then removes the /etc/hosts block). `up` and `down` stop any other hosts-sync loop of
# this sandbox as well, found by its command line, so a loop left from an earlier run cannot
# fight the new one.
#
# Hosts sync: VMs by name from the host namespace (curl http://vm1.gnt.test/health). The guests
# have no route off their node's br-inst, so `up` starts one host-side loop (`_hosts_sync`) that
# every GNT_HOSTS_TICK (0.5) s:
#   - lists the running kvm instances of every node: <node /run>/ganeti/kvm-hypervisor/conf/<inst>.runtime
#     (JSON: [kvm_cmd, [nic dicts with "mac"], hvparams, disks]) whose pid/<inst> is alive, read
#     through /proc/<udhcpd pid>/root (the node's own /run, no fork); the first NIC's MAC;
#     an instance on two nodes (live migration) stays where it was until the source QEMU exits;
#   - its IP: the newest lease for that MAC in any node's udhcpd.leases (`busybox dumpleases`),
#     re-read each tick while some instance has no IP or started in the last 60 s, else every 5 s;
#   - gives it an alias 10.221.0.A, A in 100..254: 100 + (djb2(name) mod 155), probing upward past
#     taken ones, kept for the instance's life; the alias goes on the node's eth0 (gntbr0 side) as
#     /32, and `socat TCP-LISTEN:80,bind=<alias>,fork,reuseaddr TCP:<ip>:80` runs in the node's
#     netns (pidfile $NB/hosts-sync/fwd-<alias>.pid), restarted when the IP or node changes;
#   - keeps "<alias> <instance>" lines between "# gnt-sandbox begin" and "# gnt-sandbox end" in the
#     host's /etc/hosts (GNT_HOSTS_FILE), rewritten in place (it may be a bind mount) on change only;
#   - writes the map to $NB/hosts-sync/map (`netboot.sh hosts` prints it).
# An instance gone for GNT_HOSTS_GRACE (6) ticks in a row (a hard reboot is shorter) loses its
# entry, alias and forwarder. Nothing changing costs no fork per tick (a dumpleases every 5 s).
# The loop starts by removing what an earlier one left (forwarders by pidfile, /32 aliases in
# 10.221.0.100-254, the block) and does the same on SIGTERM.
set -euo pipefail

SELF=$(readlink -f "$0")
SANDBOX=$(dirname "$SELF")/ganeti-sandbox.sh
SB=${GNT_SANDBOX_DIR:-/srv/gnt-sandbox}
CACHE=${GNT_NETBOOT_CACHE:-/var/cache/gnt-netboot}
STORE_PORT=${GNT_STORE_PORT:-8480}
NB=$SB/netboot          # per-node runtime files; inside $SB, so `ganeti-sandbox.sh down` removes them
CONSOLE=$SB/console
HOST_IP=10.221.0.1      # the host on gntbr0, where the store server listens
INST_IP=10.222.0.1      # every node's own, isolated br-inst (same address: health checks survive migration)
SERIAL_DIR=/var/run/ganeti/kvm-hypervisor/ctrl   # Ganeti's serial sockets, in each node's /run tmpfs
KERNEL_ARGS='|| ifconf -c dhcp net0 && chain http://10.222.0.1:8080/boot/chain.ipxe ||'
HS=$NB/hosts-sync       # the hosts sync's map, forwarder pidfiles and log
HOSTS_FILE=${GNT_HOSTS_FILE:-/etc/hosts}
HOSTS_TICK=${GNT_HOSTS_TICK:-0.5}
HOSTS_GRACE=${GNT_HOSTS_GRACE:-6}
ALIAS_NET=10.221.0 ALIAS_FIRST=100 ALIAS_COUNT=155   # aliases 10.221.0.100-254 (nodes: .10-.19)
KVM_RUN=run/ganeti/kvm-hypervisor   # under a node's root: conf/<inst>.runtime, pid/<inst>

log() { printf '[netboot %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root"

install_packages() {
  local pkgs=(qemu-system-x86 ipxe-qemu ipxe busybox-static cpio socat curl kmod)
  dpkg -s "${pkgs[@]}" >/dev/null 2>&1 && return 0
  log "installing ${pkgs[*]} ..."
  # No package may start a service on the host (same trick as ganeti-sandbox.sh).
  local prc=/usr/sbin/policy-rc.d ours=0
  if [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' >$prc; chmod 755 $prc; ours=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
  [[ $ours == 1 ]] && rm -f $prc
  return 0
}

# ---------------------------------------------------------------- images
kernel_pkg() {  # the linux-image-6.1.0-*-amd64 that linux-image-amd64 depends on, per apt's lists
  apt-cache show --no-all-versions linux-image-amd64 2>/dev/null | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' || true
}

kernel() {  # unpack that kernel into the cache (once); prints its dir
  local pkg ver dir try
  for try in 1 2; do   # stale or missing apt lists: update once and ask again
    pkg=$(kernel_pkg); ver=${pkg#linux-image-}; dir=$CACHE/kernel-$ver
    [[ -n $pkg && -e $dir/.done ]] && break
    if [[ -n $pkg ]]; then
      log "fetching $pkg (extracted into the cache, never installed) ..."
      rm -rf "$dir" "$CACHE/deb"; mkdir -p "$CACHE/deb"; chown _apt "$CACHE/deb" 2>/dev/null || true
      if (cd "$CACHE/deb" && apt-get download -q "$pkg" >/dev/null); then
        dpkg-deb -x "$CACHE"/deb/"${pkg}"_*.deb "$dir"
        depmod -b "$dir" "$ver"   # modules.dep, from which build_initrd picks the virtio modules
        rm -rf "$CACHE/deb"; echo "$ver" >"$dir/.done"; break
      fi
    fi
    [[ $try == 1 ]] && apt-get update -qq
  done
  [[ -e $dir/.done ]] || die "could not fetch the kernel linux-image-amd64 depends on (${pkg:-none})"
  echo "$dir"
}

store_add() {  # store_add OUT NAME DIR: move DIR to OUT/store/<hash>-NAME, hash over names and contents
  local out=$1 name=$2 dir=$3 h
  h=$(cd "$dir" && { echo "$name"; find . -printf '%p %y %m %l\n' | LC_ALL=C sort
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum; } | sha256sum | cut -c1-32)
  if [[ -e $out/store/$h-$name ]]; then rm -rf "$dir"; else mv "$dir" "$out/store/$h-$name"; fi
  echo "$h-$name"
}

write_init() {  # the guest's PID 1; LABEL is baked in, the image id is read from the command line
  cat <<'EOF' | sed "s/@LABEL@/$1/"
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
LABEL=@LABEL@ ID=none HOST=
for a in $(cat /proc/cmdline); do
  case $a in ganeti-operator.image=*) ID=${a#*=} ;; ganeti-operator.host=*) HOST=${a#*=} ;; esac
done
echo "IMAGE-LABEL=$LABEL"; echo "IMAGE-ID=$ID HOST=$HOST"
[ -n "$HOST" ] && hostname "$HOST"
while read -r m; do insmod /lib/modules/$m || echo "insmod $m failed"; done </lib/modules/order
ip link set lo up
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done
ip link set eth0 up
udhcpc -i eth0 -q -T 1 -A 1 -s /etc/udhcpc.script   # retries until it gets a lease
mkdir -p /www
printf 'HOST=%s\nLABEL=%s\nIMAGE=%s\n' "$HOST" "$LABEL" "$ID" >/www/index.html
# C is the broken image: no /health file, so busybox httpd answers 404 there, 200 on /.
[ "$LABEL" != C ] && printf 'IMAGE=%s\nLABEL=%s\n' "$ID" "$LABEL" >/www/health
httpd -p 80 -h /www
echo "READY LABEL=$LABEL IMAGE=$ID uptime=$(cut -d' ' -f1 /proc/uptime)"
while :; do sleep 3600; done
EOF
}

build_initrd() {  # build_initrd KDIR LABEL FILE: a reproducible gzip'd newc cpio
  local k=$1 ver r m
  ver=$(cat "$k/.done"); r=$(mktemp -d); chmod 755 "$r"
  mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,lib/modules}
  install -m 755 /bin/busybox "$r/bin/busybox"
  # The module list and its order come from the kernel's own modules.dep (depmod -b above).
  for m in $(for m in virtio_pci virtio_net; do modprobe -d "$k" -S "$ver" --show-depends $m; done |
             awk '$1 == "insmod" && !seen[$2]++ {print $2}'); do
    install -m 644 "$m" "$r/lib/modules/"; basename "$m" >>"$r/lib/modules/order"
  done
  printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add $ip/${mask:-24} dev $interface && echo "DHCP $interface $ip"\nexit 0\n' >"$r/etc/udhcpc.script"
  write_init "$2" >"$r/init"; chmod 755 "$r/init" "$r/etc/udhcpc.script"
  # Fixed mtimes, owners, order and no gzip timestamp: the same inputs give the same bytes.
  find "$r" -exec touch -h -d @1 {} +
  (cd "$r" && find . -print0 | LC_ALL=C sort -z | cpio -o -0 -H newc -R 0:0 --reproducible --quiet) | gzip -9n >"$3"
  rm -rf "$r"
}

tmpdir() { local t; t=$(mktemp -d "$1/store/.tmp.XXXX"); chmod 755 "$t"; echo "$t"; }

cmd_images() {
  local out=${1:-$CACHE/images} k short lin t x init kt
  install_packages; k=$(kernel); short=$(cut -d. -f1,2 "$k/.done")
  mkdir -p "$out/store"; out=$(readlink -f "$out"); rm -rf "$out"/store/.tmp.*   # an interrupted run's leftovers
  t=$(tmpdir "$out"); install -m 644 "$k/boot/vmlinuz-$(cat "$k/.done")" "$t/bzImage"
  lin=$(store_add "$out" "linux-$short" "$t")
  for x in A B C; do
    t=$(tmpdir "$out"); build_initrd "$k" $x "$t/initrd"; chmod 644 "$t/initrd"
    init=$(store_add "$out" "initrd-$x" "$t")
    # Like NixOS's kexecTree: symlinks to kernel and initrd, a kexec-boot script and an ipxe script.
    t=$(tmpdir "$out")
    ln -s "../$lin/bzImage" "$t/bzImage"; ln -s "../$init/initrd" "$t/initrd"
    printf '#!ipxe\nkernel bzImage init=/init console=ttyS0 panic=-1\ninitrd initrd\nboot\n' >"$t/ipxe"
    printf '#!/usr/bin/env bash\nset -e\nd=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)\nkexec --load "$d/bzImage" --initrd="$d/initrd" --command-line "init=/init console=ttyS0 panic=-1"\nkexec -e\n' >"$t/kexec-boot"
    chmod 755 "$t/kexec-boot"; chmod 644 "$t/ipxe"
    kt=$(store_add "$out" "kexec-tree-$x" "$t")
    ln -sfn "store/$kt" "$out/result-$x"
    log "result-$x -> store/$kt"
  done
}

# ---------------------------------------------------------------- up
nodes() { ls /run/netns 2>/dev/null | sed -n 's/^gnt-\(n[0-9]\)$/\1/p'; }

stop_pidfile() {  # stop the process a pidfile names, if it is still the one we started
  local f=$1 pid; pid=$(cat "$f" 2>/dev/null) || return 0
  if grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null && kill "$pid" 2>/dev/null; then
    # Wait: an exiting udhcpd removes its pidfile, which must not be its successor's.
    for _ in $(seq 1 40); do [[ -e /proc/$pid ]] || break; sleep 0.05; done
  fi
  rm -f "$f"
}

detach() {  # detach CMD...: CMD in its own session, with no fd above 2 of ours
  # `flock /work/sandbox.lock netboot.sh up` must not leave the lock held by our daemons
  # until `down`: they would inherit its fd, as would anything they start.
  ( for f in /proc/$BASHPID/fd/*; do f=${f##*/}; ((f > 2)) && eval "exec $f>&-"; done
    exec setsid -f "$@" </dev/null >/dev/null 2>&1 )
}

start_in_node() {  # start_in_node nN NAME CMD...: detached, inside the node's namespaces
  local n=$1 name=$2; shift 2
  stop_pidfile "$NB/$n/$name.pid" "$1"
  detach "$SANDBOX" exec "$n" "$SELF" _daemon "$NB/$n/$name.pid" "$NB/$n/$name.log" "$@"
  for _ in $(seq 1 50); do [[ -s $NB/$n/$name.pid ]] && return 0; sleep 0.1; done
  die "$name did not start in $n"
}

cmd_up() {
  local n count i size lo
  install_packages
  [[ -f $SB/nodes ]] || die "no sandbox is up: run ganeti-sandbox.sh up first"
  mkdir -p "$NB" "$CONSOLE"
  printf '\xf8\x03' >"$NB/sercon-port.bin"   # fw_cfg etc/sercon-port = 0x3f8: SeaBIOS/iPXE text on COM1
  # The node namespaces must see $SB as the host does (it is not bind-mounted over there).
  "$SANDBOX" exec n1 test -f "$NB/sercon-port.bin" || die "$NB is not visible inside the nodes"
  log "enabling the kvm hypervisor (QEMU/TCG, kernel ipxe.lkrn)"
  # kernel_path must be valid in the same modify that enables kvm; root_path=x because Ganeti
  # wants a root with a kernel (iPXE ignores "root=x"); '\,' escapes commas inside -H values.
  # reboot-timeout: when the chain fails (no pointer yet, store down) SeaBIOS would halt for
  # good after "No bootable device"; this way the guest resets and retries every few seconds.
  # romfile=: no iPXE option ROM on the NIC (ipxe.lkrn is the loader): saves ~1 s per boot and,
  # after a failed chain, a ~20 s detour through the ROM's own DHCP autoboot before the retry.
  # migration_bandwidth=1024 (MiB/s; Ganeti's default is 32): at 32, QEMU 7.2's TCG live
  # migration corrupted the guest's memory in 2 of 17 migrations between nodes here (a kernel
  # panic on arrival: a bad function pointer in a timer, list corruption), and the guest
  # rebooted from its pointer. At 1024 its 96M go in one pass; 0 of 36 failed.
  "$SANDBOX" exec gnt-cluster modify --enabled-hypervisors=fake,kvm \
    -H "kvm:kvm_path=/usr/bin/qemu-system-x86_64,kvm_flag=disabled,kernel_path=/usr/lib/ipxe/ipxe.lkrn,initrd_path=,root_path=x,vhost_net=false,serial_console=true,acpi=false,nic_type=paravirtual,disk_type=paravirtual,kvm_extra=-accel tcg\,tb-size=16 -fw_cfg name=etc/sercon-port\,file=$NB/sercon-port.bin -boot reboot-timeout=3000 -global virtio-net-pci.romfile=,migration_bandwidth=1024" >&2
  # ganeti-metad (started with kvm instances) listens on *:80 in the nodes, where the hosts
  # sync's forwarders listen on their aliases: it keeps 127.0.0.1 (no guest here uses it).
  grep -q '^METAD_ARGS=' "$SB/default-ganeti" || echo 'METAD_ARGS="-b 127.0.0.1"' >>"$SB/default-ganeti"
  count=$(nodes | wc -l); [[ $count -gt 0 ]] || die "no node namespaces"; size=$((100 / count)); i=0
  for n in $(nodes); do
    mkdir -p "$NB/$n"; lo=$((100 + i * size)); i=$((i + 1))
    ip netns exec "gnt-$n" ip addr replace $INST_IP/24 dev br-inst
    # Disjoint pools per node: a VM migrated in keeps its address, which no local lease may reuse.
    # 0xaf b00101 = iPXE's no-pxedhcp (skips a ~3 s wait for ProxyDHCP offers); auto_time 1
    # writes the lease file every second (there are no static leases: Ganeti makes the MACs).
    cat >"$NB/$n/udhcpd.conf" <<EOF
interface br-inst
start 10.222.0.$lo
end 10.222.0.$((lo + size - 1))
lease_file $NB/$n/udhcpd.leases
pidfile $NB/$n/udhcpd.pid
auto_time 1
max_leases $size
option subnet 255.255.255.0
option lease 86400
option 0xaf b00101
EOF
    touch "$NB/$n/udhcpd.leases"
    "$SANDBOX" exec "$n" sh -c 'd=/usr/lib/ganeti/daemon-util; if $d check ganeti-metad; then $d stop ganeti-metad; $d start ganeti-metad; fi' >&2
    # -a 200: wait 200 ms, not 2 s, for an ARP reply before offering an address.
    start_in_node "$n" udhcpd busybox udhcpd -f -a 200 "$NB/$n/udhcpd.conf"
    start_in_node "$n" forward socat TCP-LISTEN:8080,bind=$INST_IP,fork,reuseaddr TCP:$HOST_IP:"$STORE_PORT"
    start_in_node "$n" conwatch "$SELF" _conwatch "$n"
    log "$n: br-inst $INST_IP, DHCP 10.222.0.$lo-$((lo + size - 1)), $INST_IP:8080 -> $HOST_IP:$STORE_PORT, console -> $CONSOLE"
  done
  start_hosts_sync
  log "hosts sync: kvm instances by name in $HOSTS_FILE (aliases $ALIAS_NET.$ALIAS_FIRST+, port 80); netboot.sh hosts"
}

conwatch() {  # inside node nN: attach socat to every serial socket, re-attach when QEMU restarts
  local n=$1 s inst t l; declare -A att=()
  trap 'kill "${att[@]}" 2>/dev/null; exit 0' TERM INT
  out() { t=$EPOCHREALTIME; printf '%(%F %T)T.%s %s %s\n' "${t%.*}" "${t#*.}" "$n" "${l%$'\r'}"; }
  stamp() {  # one timestamped line per line; a partial line (iPXE progress dots) after 1 s of quiet
    while :; do IFS= read -r -t 1 l && { out; continue; }; rc=$?; [[ -n $l ]] && out; ((rc > 128)) || break; done; }
  while :; do
    for s in "$SERIAL_DIR"/*.serial; do
      [[ -S $s ]] || continue; inst=$(basename "$s" .serial)
      [[ -n ${att[$inst]:-} ]] && kill -0 "${att[$inst]}" 2>/dev/null && continue
      # A new QEMU (start, hard reboot, migration target) makes a new socket; the old socat has
      # ended with the old QEMU. Ganeti passes server,nowait: output is lost while none is attached.
      socat -u "UNIX-CONNECT:$s" - 2>/dev/null > >(stamp >>"$CONSOLE/$inst.log") & att[$inst]=$!
    done
    sleep 0.1
  done
}

# ---------------------------------------------------------------- hosts sync
hosts_block_write() {  # hosts_block_write LINES: replace (or, if empty, drop) our block, in place
  local l inb=0 had=0 out=() lines=()
  [[ -f $HOSTS_FILE ]] && mapfile -t lines <"$HOSTS_FILE"
  for l in "${lines[@]}"; do
    [[ $l == '# gnt-sandbox begin' ]] && { inb=1; had=1; continue; }
    [[ $l == '# gnt-sandbox end' ]] && { inb=0; continue; }
    ((inb)) || out+=("$l")
  done
  [[ -n $1 ]] && out+=('# gnt-sandbox begin' "${1%$'\n'}" '# gnt-sandbox end')
  [[ -z $1 && $had == 0 ]] && return 0   # nothing to drop: leave the file alone
  # One write through the same inode: /etc/hosts may be a bind mount, which a rename would break.
  printf '%s\n' "${out[@]}" >"$HOSTS_FILE"
}

fwd_stop() {  # fwd_stop PIDFILE: a forwarder this loop (or an earlier one) started
  local pid; read -r pid 2>/dev/null <"$1" || { rm -f "$1"; return 0; }
  grep -qa 'TCP-LISTEN:80,bind=' "/proc/$pid/cmdline" 2>/dev/null && kill "$pid" 2>/dev/null
  rm -f "$1"
}

hosts_cleanup() {  # everything a hosts sync may have left: forwarders, aliases, the block, the map
  local f n a
  for f in "$HS"/fwd-*.pid; do [[ -e $f ]] && fwd_stop "$f"; done
  for f in /run/netns/gnt-n[0-9]; do
    [[ -e $f ]] || continue; n=${f##*/gnt-}
    for a in $(ip -n "gnt-$n" -o -4 addr show dev eth0 2>/dev/null | awk '{print $4}'); do
      [[ $a =~ ^${ALIAS_NET//./\\.}\.([0-9]+)/32$ ]] && ((BASH_REMATCH[1] >= ALIAS_FIRST)) &&
        ip -n "gnt-$n" addr del "$a" dev eth0 2>/dev/null
    done
  done
  hosts_block_write ''
  rm -f "$HS/map"
}

alias_for() {  # sets ALIAS for instance $1: its djb2 slot, or the next free one
  local s=$1 h=5381 i c k
  for ((i = 0; i < ${#s}; i++)); do printf -v c '%d' "'${s:i:1}"; h=$(((h * 33 + c) & 0xffffffff)); done
  for ((i = 0; i < ALIAS_COUNT; i++)); do
    k=$((ALIAS_FIRST + (h + i) % ALIAS_COUNT))
    [[ -z ${taken[$k]:-} ]] && { taken[$k]=$s; ALIAS=$ALIAS_NET.$k; return 0; }
  done
  return 1
}

hosts_sync() {
  set +e
  local n f inst root anchor qpid mac rt tick=0 leases_at=-1000 refresh changed line block= written=-
  local -A node=() mac_of=() qpid_of=() started=() ip=() alias=() missing=() fwd=() fwdkey=() taken=()
  local -A here=() here_mac=() here_qpid=() lease_ip=() lease_exp=()
  mkdir -p "$HS"; echo $$ >"$SB/hosts-sync.hostpid"
  log "hosts sync: pid $$, every $HOSTS_TICK s, block in $HOSTS_FILE"
  hosts_cleanup
  trap 'hosts_cleanup; log "hosts sync: stopped, cleaned up"; exit 0' TERM INT
  [[ -p $HS/tick ]] || mkfifo "$HS/tick"
  exec {tickfd}<>"$HS/tick"   # read -t on a fifo nobody writes: a sleep without a fork
  while :; do
    tick=$((tick + 1)); changed=0
    # 1. Running kvm instances, per node, through the node's own /run (no fork).
    here=(); here_mac=(); here_qpid=()
    for f in /run/netns/gnt-n[0-9]; do
      [[ -e $f ]] || continue; n=${f##*/gnt-}
      read -r anchor 2>/dev/null <"$NB/$n/udhcpd.pid" || continue   # a process in the node's mount ns
      root=/proc/$anchor/root/$KVM_RUN
      for rt in "$root"/conf/*.runtime; do
        [[ -f $rt ]] || continue; inst=${rt##*/}; inst=${inst%.runtime}
        read -r qpid 2>/dev/null <"$root/pid/$inst" && [[ -e /proc/$qpid ]] || continue
        if [[ -n ${here[$inst]:-} && ${node[$inst]:-} != "$n" ]]; then continue; fi  # sticky during migration
        here[$inst]=$n; here_qpid[$inst]=$qpid
        if [[ ${qpid_of[$inst]:-} == "$qpid" && ${node[$inst]:-} == "$n" ]]; then here_mac[$inst]=${mac_of[$inst]}; continue; fi
        IFS= read -r -d '' line <"$rt"
        [[ $line =~ \"mac\":\ *\"([0-9a-fA-F:]{17})\" ]] && here_mac[$inst]=${BASH_REMATCH[1],,}
      done
    done
    # 2. Leases, when an address may be new; else every 10 ticks.
    refresh=$(((tick - leases_at) >= 10))
    for inst in "${!here[@]}"; do
      [[ -z ${ip[$inst]:-} || ${qpid_of[$inst]:-} != "${here_qpid[$inst]}" ]] && refresh=1
      ((SECONDS - ${started[$inst]:-0} < 60)) && refresh=1
    done
    if ((refresh && ${#here[@]})); then
      leases_at=$tick; lease_ip=(); lease_exp=()
      while read -r mac line rt; do   # MAC IP [HOSTNAME] EXPIRY, after a header line
        [[ $mac == *:*:*:*:*:* ]] || continue
        [[ -n ${lease_exp[$mac]:-} && ${lease_exp[$mac]} -ge ${rt##* } ]] && continue
        lease_ip[$mac]=$line; lease_exp[$mac]=${rt##* }
      done < <(for f in "$NB"/n[0-9]/udhcpd.leases; do [[ -s $f ]] && busybox dumpleases -a -d -f "$f"; done)
    fi
    # 3. Apply: new, moved, re-addressed and gone instances.
    for inst in "${!here[@]}"; do
      n=${here[$inst]}; mac=${here_mac[$inst]:-}; missing[$inst]=0
      if [[ ${qpid_of[$inst]:-} != "${here_qpid[$inst]}" ]]; then started[$inst]=$SECONDS; qpid_of[$inst]=${here_qpid[$inst]}; fi
      mac_of[$inst]=$mac
      [[ -n $mac && -n ${lease_ip[$mac]:-} ]] && ip[$inst]=${lease_ip[$mac]}
      if [[ -z ${alias[$inst]:-} ]]; then
        alias_for "$inst" || { log "hosts sync: no alias left for $inst"; continue; }
        alias[$inst]=$ALIAS; changed=1
      fi
      if [[ ${node[$inst]:-} != "$n" ]]; then
        [[ -n ${node[$inst]:-} ]] && ip -n "gnt-${node[$inst]}" addr del "${alias[$inst]}/32" dev eth0 2>/dev/null
        ip -n "gnt-$n" addr replace "${alias[$inst]}/32" dev eth0
        ip neigh flush to "${alias[$inst]}" 2>/dev/null   # the host's ARP entry names the old node
        log "hosts sync: $inst on $n as ${alias[$inst]}"; node[$inst]=$n; changed=1
      fi
      if [[ -n ${ip[$inst]:-} && ( ${fwdkey[$inst]:-} != "$n ${ip[$inst]}" || ! -e /proc/${fwd[$inst]:-0} ) ]]; then
        [[ -n ${fwd[$inst]:-} ]] && fwd_stop "$HS/fwd-${alias[$inst]}.pid"
        nsenter --net="/run/netns/gnt-$n" socat TCP-LISTEN:80,bind="${alias[$inst]}",fork,reuseaddr \
          TCP:"${ip[$inst]}":80,connect-timeout=1 </dev/null >>"$HS/fwd.log" 2>&1 &
        fwd[$inst]=$!; fwdkey[$inst]="$n ${ip[$inst]}"; echo "$!" >"$HS/fwd-${alias[$inst]}.pid"
        log "hosts sync: ${alias[$inst]}:80 -> ${ip[$inst]}:80 in $n ($inst, $mac)"; changed=1
      fi
    done
    for inst in "${!node[@]}"; do
      [[ -n ${here[$inst]:-} ]] && continue
      missing[$inst]=$((${missing[$inst]:-0} + 1)); ((missing[$inst] >= HOSTS_GRACE)) || continue
      [[ -n ${fwd[$inst]:-} ]] && fwd_stop "$HS/fwd-${alias[$inst]}.pid"
      ip -n "gnt-${node[$inst]}" addr del "${alias[$inst]}/32" dev eth0 2>/dev/null
      log "hosts sync: $inst gone, ${alias[$inst]} released"
      unset "taken[${alias[$inst]##*.}]" "node[$inst]" "alias[$inst]" "ip[$inst]" "fwd[$inst]" "fwdkey[$inst]" \
        "mac_of[$inst]" "qpid_of[$inst]" "started[$inst]" "missing[$inst]"
      changed=1
    done
    if ((changed)) || [[ $written == - ]]; then
      block=; line=
      for inst in "${!alias[@]}"; do
        block+="${alias[$inst]} $inst"$'\n'
        line+="$inst ${alias[$inst]} ${node[$inst]} ${mac_of[$inst]:--} ${ip[$inst]:--}"$'\n'
      done
      if [[ $block != "$written" ]]; then
        # sorted by address: a stable file whatever the hash order
        block=$(printf '%s' "$block" | sort -t. -k4,4n); hosts_block_write "$block"; written=$block
      fi
      printf '%s' "$line" | sort >"$HS/map.tmp" && mv "$HS/map.tmp" "$HS/map"
    fi
    read -r -t "$HOSTS_TICK" -u "$tickfd" line
  done
}

hosts_sync_pids() {  # every hosts-sync loop of this sandbox, found by its command line
  local p
  for p in /proc/[0-9]*; do
    [[ $( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) == *" _hosts_sync $HS/log"* ]] && echo "${p#/proc/}"
  done
  return 0
}

stop_hosts_syncs() {  # all of them, not only the pidfile's: a loop whose pidfile went with an
  # earlier sandbox (or was replaced) would fight the new one over /etc/hosts and the aliases.
  # Each cleans up on SIGTERM; its forwarders are its children, stopped with it even when
  # their pidfiles are gone.
  local pid kids
  for pid in $(hosts_sync_pids); do
    kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 40); do [[ -e /proc/$pid ]] || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    for kid in $kids; do kill "$kid" 2>/dev/null || true; done
    log "hosts sync: stopped pid $pid"
  done
  rm -f "$SB/hosts-sync.hostpid"
}

start_hosts_sync() {  # (re)start the loop, with no other left running
  local f=$SB/hosts-sync.hostpid
  stop_hosts_syncs
  mkdir -p "$HS"
  detach "$SELF" _hosts_sync "$HS/log"
  for _ in $(seq 1 50); do [[ -s $f ]] && return 0; sleep 0.1; done
  die "the hosts sync did not start (see $HS/log)"
}

cmd_hosts() {
  local pid; pid=$(cat "$SB/hosts-sync.hostpid" 2>/dev/null) && [[ -e /proc/$pid ]] ||
    die "no hosts sync running (netboot.sh up starts it)"
  printf '%-24s %-14s %-4s %-17s %s\n' INSTANCE ALIAS NODE MAC IP
  [[ -f $HS/map ]] && while read -r a b c d e; do printf '%-24s %-14s %-4s %-17s %s\n' "$a" "$b" "$c" "$d" "$e"; done <"$HS/map"
  return 0
}

# ---------------------------------------------------------------- queries
norm_mac() { local m=${1,,}; m=${m//-/:}; [[ $m =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || die "bad MAC: $1"; echo "$m"; }

cmd_ip() {  # the newest lease for MAC on any node (a VM that rebooted on another node has two)
  local mac n best=
  mac=$(norm_mac "$1")
  for n in $(nodes); do kill -USR1 "$(cat "$NB/$n/udhcpd.pid" 2>/dev/null)" 2>/dev/null || true; done
  sleep 0.2
  for n in $(nodes); do
    [[ -s $NB/$n/udhcpd.leases ]] || continue
    busybox dumpleases -a -d -f "$NB/$n/udhcpd.leases" | awk -v m="$mac" '$1 == m {print $NF, $2}'
  done | sort -n | tail -1 | awk '{print $2}' | grep . || exit 1
}

cmd_health() {  # try every node: after a migration the VM is on another node's br-inst
  local ip n code path=${2:-/health}
  ip=$(cmd_ip "$1") || die "no DHCP lease for $1 yet"
  BODY=$(mktemp); trap 'rm -f "$BODY"' EXIT
  for n in $(nodes); do
    code=$(ip netns exec "gnt-$n" curl -s -o "$BODY" -w '%{http_code}' --connect-timeout 1 -m 3 "http://$ip$path" || true)
    [[ $code == 000 ]] && continue
    echo "NODE=$n"; cat "$BODY"
    [[ $code == 2* ]] && return 0
    log "$n: http://$ip$path answered HTTP $code"; return 1
  done
  log "no node reaches $ip"; return 1
}

cmd_env() {
  cat <<ENV
export GANETI_NETBOOT_IMAGES=$CACHE/images
export GANETI_NETBOOT_STORE_ADDR=$HOST_IP:$STORE_PORT
export GANETI_NETBOOT_BASE_URL=http://$INST_IP:8080
export GANETI_NETBOOT_CONSOLE_DIR=$CONSOLE
export GANETI_NETBOOT_KERNEL_ARGS='$KERNEL_ARGS'
ENV
}

case "${1:-}" in
  images) cmd_images "${2:-}" ;;
  up) cmd_up ;;
  ip) cmd_ip "${2:?MAC}" ;;
  health) cmd_health "${2:?MAC}" "${3:-}" ;;
  console) cat "$CONSOLE/${2:?INSTANCE}.log" ;;
  hosts) cmd_hosts ;;
  env) cmd_env ;;
  # internal, run inside a node: record our PID, then become CMD (so the pidfile names CMD)
  _daemon) shift; echo $$ >"$1"; exec >>"$2" 2>&1 </dev/null; shift 2; exec "$@" ;;
  _conwatch) conwatch "$2" ;;
  _hosts_sync) exec >>"$2" 2>&1; hosts_sync ;;
  _stop_hosts_syncs) stop_hosts_syncs ;;   # for ganeti-sandbox.sh down
  *) sed -n '2,/^set -e/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
