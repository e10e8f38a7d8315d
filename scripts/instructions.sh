#!/usr/bin/env bash
# Instructions per call of `record`, counted by callgrind (valgrind) over N calls (default one
# million) on each path: deterministic, so a regression shows even on a noisy machine.
# Only the measured loop is collected (--toggle-collect on `record_loop`), not ring creation.
# With the TSC clock (the default where the TSC is invariant) the clock read is counted in full;
# with RINGLAT_CLOCK=vdso, valgrind hides the vDSO, clock_gettime becomes a system call whose
# kernel side is not counted, and the written rows then exclude the clock's instructions.
# Needs valgrind (Debian: apt-get install valgrind). Usage: scripts/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 1; }
cargo build --release -q -p ringlat-benches --bin records
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
printf '%-10s %12s %16s %14s\n' path calls instructions "per call"
for mode in mp sp mp-at sampled breaker; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$mode.cg" \
        --toggle-collect='*record_loop*' ./target/release/records "$mode" "$n" \
        >"$out/$mode.stdout" 2>"$out/$mode.log"
    collected="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$mode.log")"
    if [ -z "$collected" ] || [ "$collected" -eq 0 ]; then
        echo "instructions.sh: no instructions collected for $mode" >&2
        cat "$out/$mode.log" >&2
        exit 1
    fi
    awk -v m="$mode" -v n="$n" -v c="$collected" \
        'BEGIN { printf "%-10s %12d %16d %14.1f\n", m, n, c, c / n }'
done
echo "paths: mp = Ring::record written (break mode, never near full), sp = single producer,"
echo "mp-at = record_at, sampled = sampled out (random), breaker = breaker open"
