#!/usr/bin/env bash
# The long version: the CI checks, then the comparison harness (full rounds) for the hot-path
# cost with histograms on and off. Timings are noisy on a shared machine: read the medians and
# the ratios of rows measured in the same round.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ci-population.sh
cargo run --release -p ringlat-benches --bin compare -- "$@" \
    | grep -E 'ringlat single producer|multi producer, 1 thread|sampled out|hdrhistogram|ratio'
