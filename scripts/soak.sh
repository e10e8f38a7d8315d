#!/usr/bin/env bash
# The long soak (see tests/bin/soak.rs), with exact reconciliation (per-producer order, count
# and sum of trace ids against the calls that reported success; drained + abandoned =
# positions; the final tail against that count modulo 2^32):
#   1. the lock-free core: more than 2^33 positions (two laps of the 32-bit position space and
#      more) through two producer threads and a consumer, starting 2^20 before the wrap;
#   2. the whole stack (ringlat handle over a ring file on tmpfs, ringlat_read::Drainer, the
#      header counters): 2^30 positions across the wrap.
# In both, producer 0 parks between reserve and commit now and then, for longer than the
# drainer's unblock timeout: the drainer unblocks it, and its late commit must lose.
#
# usage: scripts/soak.sh [CORE_POSITIONS [STACK_POSITIONS]]
set -euo pipefail
cd "$(dirname "$0")/.."
core="${1:-$(( (1 << 33) + (1 << 24) ))}"
stack="${2:-$(( 1 << 30 ))}"
start=$(( (1 << 32) - (1 << 20) ))
dir="${SOAK_DIR:-/dev/shm}"
[ -d "$dir" ] && [ -w "$dir" ] || dir="${TMPDIR:-/tmp}"
cargo build --release --quiet -p ringlat-tests --bin ringlat-soak
ring="$dir/ringlat-soak-$$.ring"
trap 'rm -f "$ring"' EXIT
echo "soak 1/2, the core: $core positions from $start"
time target/release/ringlat-soak --core "$core" "$start" $(( 1 << 28 ))
echo "soak 2/2, the whole stack: $stack positions from $start, ring $ring"
time target/release/ringlat-soak "$ring" "$stack" "$start" $(( 1 << 24 ))
