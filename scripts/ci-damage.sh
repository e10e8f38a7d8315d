#!/usr/bin/env bash
# CI-sized damaged-file harness (issue 9): a ring and an archive damaged every way below, each
# damaged file read by `ringcat stat` and one other reading subcommand in turn (cat, pct,
# slice, plot, drain on a copy), each run under a 10 s timeout. Exit 0 with sound output or
# exit 2 with one stderr line; never a signal, a panic or a hang. About 3 minutes here.
#   ring: truncated every 64 bytes of the 40 KiB header, every bit of every fixed header field;
#   archive: truncated every 64 bytes of its header, every bit of its fixed fields;
#   2000 files with 1-8 random byte flips in the ring's tables, its metadata and records, the
#   archive's tables and its entries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p ringcat --bin ringcat
cargo build -q -p ringlat-tests --bin ringlat-damage
DAMAGE_DIR="${TMPDIR:-/tmp}" ./target/debug/ringlat-damage \
    --ringcat target/debug/ringcat \
    --truncate-step 64 --flips 2000 --seed "${DAMAGE_SEED:-1}" --timeout-secs 10 --jobs 2
