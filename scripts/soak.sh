#!/usr/bin/env bash
# The long soak: more than 2^33 positions (two full laps of the 32-bit position space and
# more) through two producer threads and a drainer over a real ring file on tmpfs, with exact
# reconciliation (see tests/bin/soak.rs). Producer 0 parks between reserve and commit every
# 2^28 calls, so the drainer's unblocking is exercised on every lap.
#
# usage: scripts/soak.sh [POSITIONS]   (default 2^33 + 2^24)
set -euo pipefail
cd "$(dirname "$0")/.."
positions="${1:-$(( (1 << 33) + (1 << 24) ))}"
start=$(( (1 << 32) - (1 << 20) ))   # the first wrap comes after 2^20 positions
dir="${SOAK_DIR:-/dev/shm}"
[ -d "$dir" ] && [ -w "$dir" ] || dir="${TMPDIR:-/tmp}"
cargo build --release --quiet -p ringlat-tests --bin ringlat-soak
ring="$dir/ringlat-soak-$$.ring"
trap 'rm -f "$ring"' EXIT
echo "soak: $positions positions from $start, ring $ring"
time target/release/ringlat-soak "$ring" "$positions" "$start" $(( 1 << 28 ))
