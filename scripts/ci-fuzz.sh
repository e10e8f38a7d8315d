#!/usr/bin/env bash
# CI-sized fuzz run: about 60 s of fuzz/fuzz_targets/decode.rs (ring and archive decoding)
# after the build. Installs cargo-fuzz from crates.io if missing; needs the nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${SECONDS_TO_RUN:-60}" JOBS=1 scripts/fuzz.sh
