#!/usr/bin/env bash
# The README's usage example and the tokio example (guards across .await points, timeouts
# recorded as abandoned) run as users run them; async_guards checks its own ring and exits
# non-zero when it does not hold one record per request. (The tracing layer's tokio service
# test runs in `cargo test -p ringlat-tracing`.) Seconds once built.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work" /dev/shm/gw-latency.ring' EXIT
cargo run --quiet -p ringlat --example usage
cargo run --quiet -p ringlat --example async_guards -- "$work/async.ring"
echo "2 passed, 0 failed"
