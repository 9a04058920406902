#!/usr/bin/env bash
# Times `ganeti-operator validate` on a generated desired state of 10,000 instances over
# 200 nodes in several files, in the same run as check-jsonschema (PyPI) validating the
# same files against the same committed schema. Prints both times and the ratio.
#
#   benches/validate-vs-check-jsonschema.sh [ROUNDS]     (default 5 rounds; best time kept)
#
# check-jsonschema only checks the schema; ganeti-operator also runs the semantic checks,
# so the comparison is conservative.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
command -v check-jsonschema >/dev/null || pip install --quiet check-jsonschema
cargo build --release --quiet
bin=target/release/ganeti-operator
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import os, sys
out = sys.argv[1]
nodes, instances, files = 200, 10_000, 10
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA5q2ObI2+r1NjmPd8DqZ+vF3vCw8Qb9L1K60h1UMO3+"
with open(f"{out}/cluster.yaml", "w") as f:
    f.write("cluster:\n  name: cluster.example.org\n  hypervisor: kvm\n  defaultDiskTemplate: plain\n"
            "  nic: {link: br0, mode: bridged}\npolicy:\n  prune: true\n  maxDeletions: 5\n")
    f.write("classes:\n")
    for c in range(10):
        f.write(f"  class{c}:\n    image: sha256-{c:064x}\n    os: pxe+default\n"
                f"    resources:\n      memory: 1G\n      vcpus: 1\n      disks:\n        - size: 10G\n")
with open(f"{out}/nodes.yaml", "w") as f:
    f.write("nodes:\n")
    for n in range(nodes):
        role = "master" if n == 0 else ("master-candidate" if n < 10 else "regular")
        f.write(f"  node{n}.example.org:\n    class: class0\n    role: {role}\n    hostKey: {key}\n"
                f"    capacity: {{memory: 256G, disk: 8T}}\n")
per_file = instances // files
for i in range(files):
    with open(f"{out}/instances-{i:02}.yaml", "w") as f:
        f.write("instances:\n")
        for j in range(per_file):
            k = i * per_file + j
            f.write(f"  vm{k:05}.example.org:\n    class: class{k % 10}\n    primaryNode: node{k % nodes}.example.org\n"
                    f"    resources:\n      memory: {512 + (k % 4) * 256}M\n      vcpus: {1 + k % 4}\n"
                    f"    tags: [bench, shard:{k % 16}]\n")
PY
files=$(ls "$work"/*.yaml | wc -l)
echo "generated: 10000 instances, 200 nodes, 10 classes in $files files ($(cat "$work"/*.yaml | wc -l) lines)"

"$bin" validate "$work" >/dev/null   # must be valid, or the timing means nothing
check-jsonschema --schemafile schemas/desired-state.schema.json "$work"/*.yaml >/dev/null

best() {  # best wall time in seconds over $rounds runs of "$@"
  local best=999999 t0 t1 dt
  for _ in $(seq 1 "$rounds"); do
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    dt=$(echo "$t1 - $t0" | bc -l); if (( $(echo "$dt < $best" | bc -l) )); then best=$dt; fi
  done
  printf '%.3f' "$best"
}
ours=$(best "$bin" validate "$work")
theirs=$(best check-jsonschema --schemafile schemas/desired-state.schema.json "$work"/*.yaml)
printf 'ganeti-operator validate : %ss (schema + semantic checks)\n' "$ours"
printf 'check-jsonschema         : %ss (schema only)\n' "$theirs"
printf 'speed-up                 : %.1fx  (goal: >= 10x, and ganeti-operator < 0.5 s)\n' "$(echo "$theirs / $ours" | bc -l)"
