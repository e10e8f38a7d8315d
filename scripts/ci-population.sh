#!/usr/bin/env bash
# Population histograms (issue 10 parts 1-3): the statistical acceptance test with a known
# truth, the bucket scheme, the archive snapshots across restarts, and the two documents'
# decoders (FORMAT.md's histogram area, ARCHIVE.md's snapshot entries). About 1-2 minutes
# with a warm target/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p ringlat-format population
cargo test -p ringlat --lib population
cargo test -p ringlat-read population
cargo test -p ringlat-tests --test format_doc
cargo test -p ringcat --test population --test archive_doc -- --nocapture 2>&1 \
    | grep -E '^(kind|market|test result)|error|panicked'
echo "ci-population: ok"
