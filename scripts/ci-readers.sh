#!/usr/bin/env bash
# CI-sized check of the reading subcommands (issue 11): on a deterministic 1M-record archive
# written by the synth_archive example (and a second, smaller one for the merge), the output
# of each cat / pct / slice / plot command below must be byte-identical to the golden
# output recorded in scripts/golden/readers.sha256 (made with the readers as they were before
# the speed work). Never timings.
#
#   scripts/ci-readers.sh            # check
#   scripts/ci-readers.sh --update   # re-record the goldens (say why in the commit)
set -euo pipefail

cd "$(dirname "$0")/.."
golden=scripts/golden/readers.sha256
update=${1:-}
target=${CARGO_TARGET_DIR:-target}
if [[ -n ${RINGCAT:-} ]]; then # a given ringcat binary (e.g. an older one, to record goldens)
    cargo build --release --quiet -p ringcat --example synth_archive
else
    cargo build --release --quiet -p ringcat --bin ringcat --example synth_archive
fi
ringcat=${RINGCAT:-$PWD/$target/release/ringcat}
synth=$PWD/$target/release/examples/synth_archive

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
big=$work/one.archive
small=$work/two.archive
"$synth" "$big" 1000000 >/dev/null
"$synth" "$small" 100000 >/dev/null
# The synthetic records are 10 us apart from this instant (see synth_archive.rs): 10 s span.
since=2026-11-21T16:00:07Z
until=2026-11-21T16:00:08Z

export TZ=UTC NO_COLOR=1
commands=(
    "cat one.archive --format csv"
    "cat one.archive --format json"
    "cat one.archive"
    "cat one.archive --last 10"
    "cat one.archive --last 1000 --kind limit --status 2"
    "cat one.archive --since $since --until $until --format csv"
    "cat one.archive two.archive --format csv"
    "cat one.archive two.archive --last 25"
    "cat one.archive --reverse --last 7"
    "pct one.archive"
    "pct one.archive --by kind"
    "pct one.archive --by kind,status --window 1s --format csv"
    "pct one.archive two.archive --by kind --format json"
    "pct one.archive --by kind --raw --percentiles 0,1,50,99.99,100"
    "pct one.archive --by kind --format hgrm"
    "pct one.archive --kind cancel --since $since --format csv"
    "slice one.archive --above p99.9"
    "slice one.archive --above p99 --by kind,status --format json"
    "slice one.archive --above 900us --order recent --format csv"
    "plot one.archive -o -"
)

actual=$work/actual.sha256
for command in "${commands[@]}"; do
    # shellcheck disable=SC2086 # the command is a list of words
    sum=$(cd "$work" && "$ringcat" $command 2>&1 | sha256sum | cut -d' ' -f1)
    printf '%s  %s\n' "$sum" "$command" >>"$actual"
done

if [[ $update == --update ]]; then
    mkdir -p "$(dirname "$golden")"
    cp "$actual" "$golden"
    echo "ci-readers: recorded ${#commands[@]} goldens in $golden"
    exit 0
fi
if ! diff -u "$golden" "$actual"; then
    echo "ci-readers: FAILED: outputs differ from the goldens (lines above)" >&2
    exit 1
fi
echo "ci-readers: ${#commands[@]}/${#commands[@]} outputs identical to the goldens"
