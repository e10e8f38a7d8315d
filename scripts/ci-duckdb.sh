#!/usr/bin/env bash
# The README's DuckDB query, run verbatim over Parquet exported from two hosts' data sampled at
# different rates (one ring, one drained archive), must give exactly `ringcat pct --by kind`.
# Needs python3; installs PyPI `duckdb` if it is missing. About a minute on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import duckdb' 2>/dev/null; then
    python3 -m pip install --quiet duckdb
fi

cargo build --quiet -p ringcat
cargo build --quiet -p ringlat --example fleet_host
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ringcat="$target_dir/debug/ringcat"
fleet_host="$target_dir/debug/examples/fleet_host"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/archives"
# host 1: limit 10%, cancel 50%; host 2: limit 30%, cancel 5% (then drained to an archive).
"$fleet_host" "$work/gw-1.ring" 200000 0.1 0.5 1
"$fleet_host" "$work/gw-2.ring" 150000 0.3 0.05 2
"$ringcat" drain "$work/gw-2.ring" -o "$work/gw-2.archive"
"$ringcat" export "$work/gw-1.ring" -o "$work/archives/gw-1.parquet"
"$ringcat" export "$work/gw-2.archive" -o "$work/archives/gw-2.parquet"
"$ringcat" pct "$work/gw-1.ring" "$work/gw-2.archive" --by kind --format json \
    --percentiles 50,90,99,99.9,99.99 > "$work/pct.json"

python3 - "$work" README.md <<'PY'
import json, re, sys, os
import duckdb

work, readme = sys.argv[1], sys.argv[2]
text = open(readme).read()
section = text[text.index("### DuckDB"):]
query = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
os.chdir(work)  # the query reads archives/*.parquet, as written
rows = duckdb.sql(query).fetchall()
ours = {(kind, q): latency for kind, q, latency in rows}

expected = {}
for row in json.load(open("pct.json")):
    for q, latency in row["percentiles"].items():
        expected[(row["group"]["kind"], q)] = latency

records = duckdb.sql("SELECT count(*) FROM read_parquet('archives/*.parquet')").fetchall()[0][0]
hosts = duckdb.sql("SELECT count(DISTINCT host) FROM read_parquet('archives/*.parquet')").fetchall()[0][0]
wrong = {k: (ours.get(k), v) for k, v in expected.items() if ours.get(k) != v}
extra = set(ours) - set(expected)
print(f"duckdb: {records} records from {hosts} hosts, {len(expected)} percentiles "
      f"(kinds x 5) compared with ringcat pct")
if not expected or wrong or extra:
    for key, (got, want) in sorted(wrong.items()):
        print(f"  {key}: duckdb {got}, ringcat pct {want}")
    if extra:
        print(f"  only in duckdb: {sorted(extra)}")
    print(f"0 passed, {len(wrong) + len(extra) + (0 if expected else 1)} failed")
    sys.exit(1)
print(f"{len(expected)} passed, 0 failed")
PY

# The README's ClickHouse query, through chDB (embedded ClickHouse) when it is installed
# (a 180 MB wheel: not installed here on purpose).
if python3 -c 'import chdb' 2>/dev/null; then
    python3 - "$work" README.md <<'PY'
import json, re, sys, os
import chdb

work, readme = sys.argv[1], sys.argv[2]
text = open(readme).read()
query = re.search(r"```sql\n(.*?)```", text[text.index("### ClickHouse"):], re.S).group(1)
os.chdir(work)
result = str(chdb.query(query, "CSV")).strip().splitlines()
ours = {}
for line in result:
    kind, q, latency = line.split(",")
    ours[(kind.strip('"'), q.strip('"'))] = int(latency)
expected = {(row["group"]["kind"], q): latency for row in json.load(open("pct.json"))
            for q, latency in row["percentiles"].items()}
wrong = {k: (ours.get(k), v) for k, v in expected.items() if ours.get(k) != v}
for key, (got, want) in sorted(wrong.items()):
    print(f"  {key}: clickhouse {got}, ringcat pct {want}")
print(f"clickhouse: {len(expected) - len(wrong)} passed, {len(wrong)} failed")
sys.exit(1 if wrong or not expected or set(ours) - set(expected) else 0)
PY
else
    echo "clickhouse check skipped: python module chdb not installed"
fi
