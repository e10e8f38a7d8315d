#!/usr/bin/env bash
# Fuzzes ring and archive decoding (fuzz/fuzz_targets/decode.rs) for SECONDS (default 1800),
# seeded with a real ring and a real archive. Needs nightly (installed here) and cargo-fuzz
# (installed from crates.io if missing). A crash is saved under fuzz/artifacts/decode/;
# turn it into a regression test (tests/validation.rs) before fixing it.
#   SECONDS_TO_RUN=... JOBS=... scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
corpus=fuzz/corpus/decode
mkdir -p "$corpus"
cargo build -q -p ringcat --bin ringcat
cargo build -q -p ringlat-tests --bin ringlat-damage
./target/debug/ringlat-damage --ringcat target/debug/ringcat --seeds "$corpus"
seconds="${SECONDS_TO_RUN:-1800}"
jobs=()
if [ "${JOBS:-1}" -gt 1 ]; then
    jobs=(-jobs="$JOBS" -workers="$JOBS")
fi
set +e
cargo +nightly fuzz run decode "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    "${jobs[@]}" -print_final_stats=1 >fuzz/last-run.log 2>&1
status=$?
set -e
grep -E "^(stat::|==[0-9]+==|SUMMARY|Done )|panicked at" fuzz/last-run.log || true
if [ "$status" -ne 0 ]; then
    echo "fuzz: failed (exit $status); the input is in fuzz/artifacts/decode/, log in fuzz/last-run.log"
fi
exit "$status"
