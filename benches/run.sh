#!/usr/bin/env bash
# The long benchmarks, from one command (not part of CI: together they take about an hour).
# As root on Debian 12, after tests/run.sh has installed what the tests need:
#
#   benches/run.sh              # every long benchmark, BENCH_ROUNDS=3 rounds each
#   benches/run.sh rotate       # only those whose name contains "rotate"
#   benches/run.sh netboot converge   # those whose name contains either
#
# Brings up the 1-node sandbox with the netboot harness for the benchmarks that need it,
# then the 3-node sandbox for the rolling node upgrade, and tears it down. Each benchmark
# runs at least 3 rounds (BENCH_ROUNDS) and prints every round's figures and the median
# ratio. Everything printed is also kept in target/bench-logs/<time>/, to copy into
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/phases.sh
PHASES_TITLE=benches/run.sh
trap phase_times EXIT
export BENCH_ROUNDS=${BENCH_ROUNDS:-3}
((BENCH_ROUNDS >= 3)) || { echo "benches/run.sh: BENCH_ROUNDS must be at least 3" >&2; exit 2; }
only=("$@")
harness=tests/harness/ganeti-sandbox.sh
logs=target/bench-logs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$logs"
echo "benches/run.sh: logs in $logs" >&2
wanted() {
  ((${#only[@]} == 0)) && return 0
  local w
  for w in "${only[@]}"; do [[ $1 == *"$w"* ]] && return 0; done
  return 1
}
# One benchmark, its output shown and kept.
bench() {
  local name=$1; shift
  wanted "$name" || return 0
  phase "benchmark $name"
  "$@" 2>&1 | tee "$logs/$name.log"
}

phase "build (release)"
cargo bench --no-run --quiet
cargo build --release --quiet

# Without the sandbox.
bench import_1gib cargo bench --bench import_1gib
bench validate_scaling cargo bench --bench validate_scaling

# Torn down at the end only once brought up.
down_at_exit() { trap 'status=$?; phase "teardown"; $harness down; (exit $status); phase_times' EXIT; }
if wanted converge || wanted daemon || wanted netboot || wanted rotate || wanted observe; then
  phase "1-node cluster and netboot harness up"
  down_at_exit
  GNT_NODES=1 GNT_CERT=ca $harness up
  eval "$($harness env)"
  tests/harness/netboot.sh images
  tests/harness/netboot.sh up
  eval "$(tests/harness/netboot.sh env)"
  bench converge_vs_floor cargo bench --bench converge_vs_floor
  bench daemon_push_and_idle cargo bench --bench daemon_push_and_idle
  bench netboot_vs_script cargo bench --bench netboot_vs_script
  bench rotate_vs_script cargo bench --bench rotate_vs_script
  bench observe_vs_python cargo bench --bench observe_vs_python
fi
if wanted node_upgrade; then
  phase "3-node cluster up"
  down_at_exit
  GNT_NODES=3 GNT_CERT=ca $harness up
  eval "$($harness env)"
  # One run of the script is one round (about 15 minutes); the median of their ratios.
  for round in $(seq 1 "$BENCH_ROUNDS"); do
    bench "node_upgrade_vs_script round $round" benches/node_upgrade_vs_script.sh
  done
  {
    rounds=$(cat "$logs"/node_upgrade_vs_script\ round\ *.log)
    median() {  # median TITLE GOAL: of the ratios on stdin, one a line
      sort -n | awk -v title="$1" -v goal="$2" '
        { r[NR] = $1 }
        END { m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
          printf "%s: median ratio %.2fx over %d rounds (min %.2fx, max %.2fx); goal <= %s\n", title, m, NR, r[1], r[NR], goal }'
    }
    {
      echo "$rounds" | grep '^node upgrade of 3 nodes' | awk '{ printf "  round %d: %s\n", NR, $0 }'
      # The one-engine issue's goal: against the floor plus the drain, undrain and tag
      # jobs the issue's steps require. The bare floor's ratio is issue 12's, kept.
      echo "$rounds" | sed -n 's/.*against the floor plus them: \([0-9.]*\)x.*/\1/p' |
        median "node upgrade against the floor plus its drain, undrain and tag jobs" 1.05x
      echo "$rounds" | grep '^node upgrade of 3 nodes' | sed 's/.*ratio \([0-9.]*\)x.*/\1/' |
        median "node upgrade against the bare floor" 1.2x
    } | tee "$logs/node_upgrade_vs_script.log"
  }
fi
