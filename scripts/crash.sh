#!/usr/bin/env bash
# The long crash harness (issue 8): 500 writer kill -9 rounds, 500 drainer kill -9 +
# restarts without and 500 with --sync, and the full-disk round. Same checks as
# scripts/ci-crash.sh; set CRASH_ROUNDS to change the counts, CRASH_SEED to replay.
set -euo pipefail
cd "$(dirname "$0")/.."
CRASH_ROUNDS="${CRASH_ROUNDS:-500}" exec scripts/ci-crash.sh
