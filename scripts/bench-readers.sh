#!/usr/bin/env bash
# Times the reading subcommands of issue 11 against `cat FILE > /dev/null` (the memory-speed
# anchor), interleaved run by run, and prints per row the median wall time, the median ratio
# to cat and the peak RSS (GNU time's maximum resident set size).
#
#   scripts/bench-readers.sh            # 20M records (640 MB), 3 runs per row
#   scripts/bench-readers.sh 100000000  # the issue's 100M records (3.2 GB)
#   RUNS=5 BENCH_DIR=/var/tmp/rb scripts/bench-readers.sh
#   BEFORE=/tmp/ringcat-old scripts/bench-readers.sh   # also time an older ringcat, same run
#   ONLY='pct|slice' scripts/bench-readers.sh          # only the rows whose name matches
#   RING_SLOTS=1048576 scripts/bench-readers.sh         # a smaller ring for the ring row
#
# The ring row reads a closed ring of RING_SLOTS slots (default 2^24), filled to the brim by the
# synth_ring example (3 kinds, the same latency shape as the archive), made in BENCH_DIR. The
# live ring rows run the issue's commands over the same ring made again with its writer kept
# alive while they run (read in place too: no consumer, not overwriting); the drained rows run
# them over the ring's records drained (from a copy) into an archive: the rows to hold the
# live ring's against, record for record. Their notes give the wall time per record.
#
# Warm page cache: the archive is read once before timing. Timings on a shared machine are
# noisy: quote the ratios (each pair runs back to back) and medians. This script never judges.
set -euo pipefail

records=${1:-20000000}
runs=${RUNS:-3}
dir=${BENCH_DIR:-/tmp/ringlat-bench}
# A row that takes longer than this is stopped and printed as a timeout.
limit=${ROW_TIMEOUT:-300}
many=8
many_records=1000000

cd "$(dirname "$0")/.."
cargo build --release --quiet -p ringcat --bin ringcat --example synth_archive --example synth_ring
target=${CARGO_TARGET_DIR:-target}
ringcat=$PWD/$target/release/ringcat
synth=$PWD/$target/release/examples/synth_archive
synth_ring=$PWD/$target/release/examples/synth_ring
ring_slots=${RING_SLOTS:-16777216}
ring_row="pct --by kind (ring of $ring_slots slots)"
[[ -x /usr/bin/time ]] || { echo "bench-readers: needs GNU time at /usr/bin/time" >&2; exit 1; }

mkdir -p "$dir"
big=$dir/synth-$records.archive
if [[ ! -s $big ]]; then
    "$synth" "$big.tmp" "$records" >/dev/null
    mv "$big.tmp" "$big"
fi
files=()
for i in $(seq 1 $many); do
    f=$dir/many-$i-$many_records.archive
    if [[ ! -s $f ]]; then
        "$synth" "$f.tmp" "$many_records" >/dev/null
        mv "$f.tmp" "$f"
    fi
    files+=("$f")
done
ring=$dir/synth-$ring_slots.ring
# Made again on every run (about a second for 2^24 slots): a ring's page cache as its writer
# leaves it is in large folios, cheap to map; a ring made hours before was found in small
# pages (7,500 faults instead of 1,100, up to 0.09 s of system time), which a user's fresh
# ring never is.
drained_label="the ring's records drained"
live_label="live ring of $ring_slots slots"
# The commands run over the ring's records drained and over the live ring (see ring_rows).
ring_commands=("pct --by kind" "pct --by kind,status --window 1s" "slice --above p99.9" "plot"
    "cat --last 10" "cat | head -1" "cat --format json | (pipe)")
# wanted LABEL: whether ONLY selects any ring row of that label.
wanted() {
    local command
    for command in "${ring_commands[@]}"; do
        [[ -z ${ONLY:-} || "$command ($1)" =~ $ONLY ]] && return 0
    done
    return 1
}
if [[ -z ${ONLY:-} || $ring_row =~ $ONLY ]] || wanted "$drained_label" || wanted "$live_label"; then
    rm -f "$ring"
    "$synth_ring" "$ring.tmp" "$ring_slots" >/dev/null
    mv "$ring.tmp" "$ring"
fi
cat "$big" "${files[@]}" >/dev/null # warm the page cache
[[ -s $ring ]] && cat "$ring" >/dev/null

# The synthetic archive's records are 10 us apart from this instant (see synth_archive.rs).
base_ns=1795276800000000000
last_ns=$((base_ns + (records - 1) * 10000))
since=$(date -u -d "@$(((last_ns - 60000000000) / 1000000000))" +%Y-%m-%dT%H:%M:%SZ)

# One timed run of a shell command: prints "<wall seconds> <peak RSS KiB> <exit code>".
run_once() {
    local rss_file start end code
    rss_file=$(mktemp)
    start=$(date +%s%N)
    code=0
    timeout "$limit" /usr/bin/time -f %M -o "$rss_file" sh -c "$1" || code=$?
    end=$(date +%s%N)
    echo "$(awk -v n=$((end - start)) 'BEGIN { printf "%.3f", n / 1e9 }') $(tail -1 "$rss_file") $code"
    rm -f "$rss_file"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

anchor="cat '$big' > /dev/null"
printf '# %s records (%s MB), %s runs per row, %s, load %s\n' "$records" "$(($(stat -c %s "$big") / 1000000))" "$runs" "$(date -u +%FT%TZ)" "$(cut -d' ' -f1 /proc/loadavg)"
printf '%-66s %9s %9s %9s %9s  %s\n' "command" "wall s" "cat s" "x cat" "RSS MiB" "note"
# bench NAME COMMAND [NOTE]: COMMAND is a shell command where RINGCAT stands for the binary.
bench() {
    local name=$1 template=$2 note=${3:-}
    [[ -n ${ONLY:-} && ! $name =~ $ONLY ]] && return 0
    if [[ -n ${BEFORE:-} ]]; then
        bench_one "$name (before)" "${template//RINGCAT/$BEFORE}" "$note"
        name="$name (after)"
    fi
    bench_one "$name" "${template//RINGCAT/$ringcat}" "$note"
}
bench_one() {
    local name=$1 command=$2 note=${3:-}
    local walls=() anchors=() ratios=() rss=() i a b code=0
    for ((i = 0; i < runs; i++)); do
        read -r a _ _ < <(run_once "$anchor")
        read -r b r c < <(run_once "$command")
        [[ $c != 0 ]] && code=$c
        walls+=("$b") anchors+=("$a") rss+=("$r")
        ratios+=("$(awk -v b="$b" -v a="$a" 'BEGIN { printf "%.2f", b / (a > 0 ? a : 0.001) }')")
        [[ $c == 124 ]] && break # timed out: one run says enough
    done
    local wall ratio cat_s peak
    wall=$(printf '%s\n' "${walls[@]}" | median)
    cat_s=$(printf '%s\n' "${anchors[@]}" | median)
    ratio=$(printf '%s\n' "${ratios[@]}" | median)
    peak=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
    [[ $code == 124 ]] && note="TIMEOUT after ${limit}s $note"
    [[ $code != 0 && $code != 124 ]] && note="exit $code $note"
    if [[ $note == *records/s* ]]; then
        note=$(awk -v n="$records" -v w="$wall" 'BEGIN { printf "%.2fM records/s", n / w / 1e6 }')
    fi
    if [[ $note == per-record:* ]]; then
        note=$(awk -v n="${note#per-record:}" -v w="$wall" 'BEGIN { printf "%.1f ns/record (wall)", w * 1e9 / n }')
    fi
    printf '%-66s %9s %9s %9s %9s  %s\n' "$name" "$wall" "$cat_s" "$ratio" "$((peak / 1024))" "$note"
}

bench "pct --by kind" "exec RINGCAT pct '$big' --by kind > /dev/null" "per-record:$records"
bench "pct --by kind,status --window 1s" "exec RINGCAT pct '$big' --by kind,status --window 1s > /dev/null"
bench "slice --above p99.9" "exec RINGCAT slice '$big' --above p99.9 > /dev/null"
bench "plot" "exec RINGCAT plot '$big' -o - > /dev/null"
bench "cat --last 10" "exec RINGCAT cat '$big' --last 10 > /dev/null"
bench "cat --since <last minute> | head -1" "RINGCAT cat '$big' --since $since | head -1 > /dev/null"
bench "cat ${many}x${many_records} files | head -1" "RINGCAT cat ${files[*]} | head -1 > /dev/null"
bench "cat --format json | (pipe)" "RINGCAT cat '$big' --format json | cat > /dev/null" "records/s"
# ring_rows FILE LABEL RECORDS: ring_commands over a ring (or its records drained), each row
# named "COMMAND (LABEL)", with its wall time per record where it reads every record.
ring_rows() {
    local file=$1 label=$2 n=$3
    bench "pct --by kind ($label)" "exec RINGCAT pct '$file' --by kind > /dev/null" "per-record:$n"
    bench "pct --by kind,status --window 1s ($label)" "exec RINGCAT pct '$file' --by kind,status --window 1s > /dev/null" "per-record:$n"
    bench "slice --above p99.9 ($label)" "exec RINGCAT slice '$file' --above p99.9 > /dev/null" "per-record:$n"
    bench "plot ($label)" "exec RINGCAT plot '$file' -o - > /dev/null" "per-record:$n"
    bench "cat --last 10 ($label)" "exec RINGCAT cat '$file' --last 10 > /dev/null"
    bench "cat | head -1 ($label)" "RINGCAT cat '$file' | head -1 > /dev/null"
    bench "cat --format json | (pipe) ($label)" "RINGCAT cat '$file' --format json | cat > /dev/null" "per-record:$n"
}
if [[ -s $ring ]]; then
    ring_records=$("$ringcat" stat "$ring" | awk '$1 == "fill" { print $2 }')
    bench "$ring_row" "exec RINGCAT pct '$ring' --by kind > /dev/null" "per-record:$ring_records"
    # The same records as an archive (a copy of the ring drained): the row to hold the ring
    # row against record for record (the 100M-record archive has another mix of kinds and
    # six times the records to spread a run's fixed costs over).
    drained=$ring.archive
    if wanted "$drained_label"; then
        # Drained from a copy, made again with the ring.
        rm -f "$drained" "$drained.tmp"
        cp "$ring" "$drained.ring"
        if ! "$ringcat" drain "$drained.ring" -o "$drained.tmp" >/dev/null 2>"$dir/drain.err"; then
            cat "$dir/drain.err" >&2
            rm -f "$drained.ring" "$drained.tmp"
            exit 1
        fi
        rm -f "$drained.ring"
        mv "$drained.tmp" "$drained"
        cat "$drained" >/dev/null
        ring_rows "$drained" "$drained_label" "$ring_records"
    fi
fi
# The issue's live ring: the same ring, its writer alive while the row runs (synth_ring's
# SECONDS): read in place, its in-flight slots passed over (no consumer, not overwriting).
if wanted "$live_label"; then
    live=$dir/synth-$ring_slots-live.ring
    rm -f "$live" "$live.out"
    "$synth_ring" "$live" "$ring_slots" 3600 > "$live.out" &
    holder=$!
    trap 'kill "$holder" 2>/dev/null || true' EXIT
    for _ in $(seq 1 600); do
        grep -q full "$live.out" && break
        kill -0 "$holder" 2>/dev/null || break
        sleep 1
    done
    if grep -q full "$live.out"; then
        live_records=$("$ringcat" stat "$live" | awk '$1 == "fill" { print $2 }')
        ring_rows "$live" "$live_label" "$live_records"
    else
        echo "bench-readers: the live ring was not full in time; its row is left out" >&2
    fi
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    rm -f "$live" "$live.out"
fi
