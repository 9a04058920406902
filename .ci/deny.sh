#!/usr/bin/env bash
# cargo deny (advisories, licences, bans, sources) against the offline RustSec snapshot.
# The snapshot is shared/rustsec/advisory-db-snapshot.tgz beside the clone (read-only):
# it is unpacked into a temporary directory and cargo-deny never fetches.
# SHARED_DIR overrides where shared/ is; CARGO_DENY_INSTALL=0 skips the install.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${SHARED_DIR:-../shared}"
snapshot="$shared/rustsec/advisory-db-snapshot.tgz"
if [[ ! -f "$snapshot" ]]; then
    echo "deny.sh: no advisory snapshot at $snapshot" >&2
    exit 1
fi
if ! command -v cargo-deny >/dev/null; then
    if [[ "${CARGO_DENY_INSTALL:-1}" == 0 ]]; then
        echo "deny.sh: cargo-deny is not installed" >&2
        exit 1
    fi
    # A debug build: it compiles in about half the time of a release one, and the check
    # itself takes seconds either way.
    nice -n 19 cargo install cargo-deny --locked --version 0.20.2 --debug
fi
db="$(mktemp -d)"
trap 'rm -rf "$db"' EXIT
tar -xzf "$snapshot" -C "$db"
# deny.toml reads the directory from this variable.
export GANETI_ADVISORY_DB_PATH="$db"
# --offline also keeps `cargo metadata` off the network, so fetch the crates first.
cargo fetch --locked --quiet
cargo deny --version
cargo deny --offline check
