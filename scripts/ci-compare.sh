#!/usr/bin/env bash
# CI-sized run of the comparison harness (issue 13): every row, interleaved, a few rounds.
# Timings never fail CI: this checks that the harness runs, that every row took the path it
# names (no ring filled, no breaker opened on a written row), and prints the table.
# Runtime: the release build (incremental) plus about 1-2 s of measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
json="target/compare-quick.json"
cargo build --release -q -p ringlat-benches --bin compare
./target/release/compare --quick --json "$json"
python3 - "$json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rows = {r["row"]: r for r in report["rows"]}
expected = 30
if len(rows) != expected:
    sys.exit(f"ci-compare: {len(rows)} rows, expected {expected}")
for name, row in rows.items():
    if not row["median_ns"] > 0:
        sys.exit(f"ci-compare: row {name!r} has no measurement")
    # Sampled-out rows keep about 1e-6 of their calls: a few written calls are their path.
    allowed = 50 if "sampled out" in name else 0
    if row["off_path_calls"] > allowed:
        sys.exit(f"ci-compare: row {name!r}: {row['off_path_calls']} calls off its path")
print(f"ci-compare: {len(rows)} rows measured, every row on its path")
PY
