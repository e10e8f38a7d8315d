#!/usr/bin/env bash
# The long damaged-file harness (issue 9): every truncation offset of the ring's 40 KiB header
# and of the archive's 16 KiB header, every bit of every fixed header field of both, and
# FLIPS (default 10000) files with random byte flips in tables, metadata and records, each
# through every reading subcommand (stat, cat, pct, slice, plot, drain on a copy) under a
# timeout. About 25 runs per second per job here, so the default takes well over an hour.
#   FLIPS=... SEED=... JOBS=... scripts/damage.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p ringcat --bin ringcat
cargo build -q --release -p ringlat-tests --bin ringlat-damage
DAMAGE_DIR="${TMPDIR:-/tmp}" ./target/release/ringlat-damage \
    --ringcat target/release/ringcat \
    --truncate-step 1 --all-commands --flips "${FLIPS:-10000}" --seed "${SEED:-$RANDOM}" \
    --timeout-secs 20 --jobs "${JOBS:-2}"
