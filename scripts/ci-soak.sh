#!/usr/bin/env bash
# CI-sized soak (well under 3 minutes), both starting 8M positions before the 2^32 wrap, with
# producer 0 parked between reserve and commit every 4M calls (the drainer unblocks it after
# 50 ms; its late commit must lose), exact reconciliation (see tests/bin/soak.rs):
#   the lock-free core, 64M positions; the whole stack over a ring file on tmpfs, 24M positions.
# The long run is scripts/soak.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${SOAK_DIR:-/dev/shm}"
[ -d "$dir" ] && [ -w "$dir" ] || dir="${TMPDIR:-/tmp}"
cargo build --release --quiet -p ringlat-tests --bin ringlat-soak
ring="$dir/ringlat-ci-soak-$$.ring"
trap 'rm -f "$ring"' EXIT
start=$(( (1 << 32) - 8000000 ))
time target/release/ringlat-soak --core 64000000 "$start" 4000000
time target/release/ringlat-soak "$ring" 24000000 "$start" 4000000
