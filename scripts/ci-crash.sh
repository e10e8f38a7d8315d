#!/usr/bin/env bash
# CI-sized crash harness (issue 8): 100 writer kill -9 rounds, 100 drainer kill -9 + restarts
# without and 100 with --sync, and the full-disk round on a small tmpfs (skipped, with the
# reason printed, where mount is refused). Every round is checked from outside: 0 torn,
# 0 duplicated, 0 lost beyond counted abandoned slots, archive entries == records written.
# Runs in under a minute on 2 cores (debug build); exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${CRASH_ROUNDS:-100}"
cargo build --quiet -p ringcat -p ringlat-tests --bins
BIN=target/debug
DIR="$(mktemp -d "${TMPDIR:-/tmp}/ringlat-crash.XXXXXX")"
trap 'umount "$DIR/disk" 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$BIN/ringlat-crash" "$DIR" writer-kills "$ROUNDS"
"$BIN/ringlat-crash" "$DIR" drainer-kills "$ROUNDS"
"$BIN/ringlat-crash" "$DIR" drainer-kills "$ROUNDS" sync
"$BIN/ringlat-crash" "$DIR" full-disk
echo "ci-crash: all rounds passed"
