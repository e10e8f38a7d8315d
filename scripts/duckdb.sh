#!/usr/bin/env bash
# The long version of ci-duckdb.sh: a synthetic archive of N records (default 20M), exported
# with its speed and peak memory measured (/usr/bin/time -v), then the README's DuckDB query
# over it checked against `ringcat pct --by kind`, exactly. Needs ~2 GB of disk in $TMPDIR.
# Usage: scripts/duckdb.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-20000000}

if ! python3 -c 'import duckdb' 2>/dev/null; then
    python3 -m pip install --quiet duckdb
fi
cargo build --quiet --release -p ringcat --bins --example synth_archive
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ringcat="$target_dir/release/ringcat"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/archives"
"$target_dir/release/examples/synth_archive" "$work/big.archive" "$records"
ls -l "$work/big.archive"
/usr/bin/time -v "$ringcat" export "$work/big.archive" -o "$work/archives/big.parquet" \
    2> "$work/time.txt"
grep -E "exported|Elapsed|Maximum resident" "$work/time.txt"
python3 - "$work/time.txt" "$records" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
hours = float(wall.group(1) or 0); seconds = hours * 3600 + float(wall.group(2)) * 60 + float(wall.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
print(f"export: {int(sys.argv[2]) / seconds / 1e6:.2f} M records/s, peak RSS {rss / 1024:.1f} MiB")
PY
ls -l "$work/archives/big.parquet"
"$ringcat" pct "$work/big.archive" --by kind --format json --percentiles 50,90,99,99.9,99.99 \
    > "$work/pct.json"
python3 - "$work" README.md <<'PY'
import json, re, sys, os, time
import duckdb
work, readme = sys.argv[1], sys.argv[2]
text = open(readme).read()
query = re.search(r"```sql\n(.*?)```", text[text.index("### DuckDB"):], re.S).group(1)
os.chdir(work)
started = time.time()
rows = duckdb.sql(query).fetchall()
print(f"duckdb query: {time.time() - started:.1f} s")
ours = {(k, q): v for k, q, v in rows}
expected = {(r["group"]["kind"], q): v for r in json.load(open("pct.json"))
            for q, v in r["percentiles"].items()}
wrong = {k: (ours.get(k), v) for k, v in expected.items() if ours.get(k) != v}
for key, (got, want) in sorted(wrong.items()):
    print(f"  {key}: duckdb {got}, ringcat pct {want}")
print(f"{len(expected) - len(wrong)} passed, {len(wrong)} failed")
sys.exit(1 if wrong or not expected else 0)
PY
