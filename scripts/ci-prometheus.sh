#!/usr/bin/env bash
# Prometheus, for real: promtool checks the exposition of `ringcat stat --format prom` and of
# `ringcat serve` (several rings, one damaged), the alert rules (check + unit test), and a real
# Prometheus server scraping `ringcat serve` every second answers histogram_quantile(0.99, ...)
# within the le bucket boundaries around the population p99 (the #[ignore]d test
# tools/ringcat/tests/prometheus.rs). Installs Debian's `prometheus` package when promtool or
# the server is missing (the Debian service is never started: the test runs the binary itself,
# with a temporary config and TSDB, on a free localhost port). About 30 s once built.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version 2>&1 | head -1

cargo build --quiet -p ringcat
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ringcat="$target_dir/debug/ringcat"

work=$(mktemp -d)
serve_pid=
cleanup() {
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
checks=0

# 1. promtool check metrics: stat --format prom over a demo ring (default and custom buckets).
"$ringcat" demo --seconds 2 --dir "$work/demo" >/dev/null 2>&1
ring="$work/demo/gateway.ring"
"$ringcat" stat --format prom "$ring" > "$work/stat.prom"
promtool check metrics < "$work/stat.prom"
grep -q '^ringlat_latency_seconds_bucket{.*le="+Inf"}' "$work/stat.prom"
checks=$((checks + 1))
"$ringcat" stat --format prom --buckets 100us,1ms,5ms,8ms,10ms "$ring" | promtool check metrics
checks=$((checks + 1))

# 2. promtool check metrics on serve's /metrics: two labelled rings, a damaged and a missing file.
cp "$ring" "$work/second.ring"
head -c 4096 /dev/urandom > "$work/damaged.ring"
"$ringcat" serve --listen 127.0.0.1:0 "$ring" "$work/second.ring" "$work/damaged.ring" "$work/missing.ring" \
    --label gw-1 --label gw-2 --label damaged --label missing 2> "$work/serve.err" &
serve_pid=$!
for _ in $(seq 100); do
    grep -q 'http://' "$work/serve.err" && break
    sleep 0.1
done
url=$(grep -o 'http://[^ ]*' "$work/serve.err" | head -1)
curl -sf "$url" > "$work/serve.prom"
promtool check metrics < "$work/serve.prom"
grep -q '^ringlat_up{file="gw-2"} 1$' "$work/serve.prom"
grep -q '^ringlat_up{file="damaged"} 0$' "$work/serve.prom"
grep -q '^ringlat_up{file="missing"} 0$' "$work/serve.prom"
kill -0 "$serve_pid"  # still serving after the damaged files
checks=$((checks + 1))

# 3. The alert rules of the three-step attribution.
promtool check rules docs/alerts.yml
(cd docs && promtool test rules alerts_test.yml)
checks=$((checks + 1))

# 4. A real Prometheus server scraping ringcat serve.
RINGLAT_REQUIRE_PROMETHEUS=1 cargo test --quiet -p ringcat --test prometheus -- --ignored --nocapture 2>&1 \
    | tee "$work/real.log" | grep -E '^(market|limit|cancel|first|done)|test result'
grep -q 'test result: ok. 1 passed' "$work/real.log"
checks=$((checks + 1))

echo "ci-prometheus: took $((SECONDS - started)) s"
echo "ci-prometheus: $checks passed, 0 failed"
