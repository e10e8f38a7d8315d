#!/usr/bin/env bash
# The declared MSRV is true: the workspace (every crate, every target) checks with exactly
# the toolchain named by `rust-version` in the workspace Cargo.toml.
#
# Why 1.88: the code uses let chains (`if let .. && let ..`, stable in 1.88 with edition
# 2024: crates/read archive.rs, drain.rs, percentile.rs; ringcat slice.rs, select.rs). The
# dependencies need less (the highest `rust-version` in Cargo.lock is 1.85: resvg, usvg,
# jiff, clap_complete, clap_mangen, proptest). Checked once by hand: 1.87 fails on the let
# chains, 1.88 passes.
#
# Needs network access to static.rust-lang.org (rustup) the first time; about 5 minutes
# cold on 2 shared cores (its own target dir, so the stable build is not invalidated).
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
if [[ -z "$msrv" ]]; then
    echo "ci-msrv: no rust-version in the workspace Cargo.toml" >&2
    exit 1
fi
echo "ci-msrv: rust-version = $msrv"
rustup toolchain install "$msrv" --profile minimal --no-self-update
# Every publishable crate inherits the workspace's rust-version (none may claim less).
for manifest in crates/*/Cargo.toml tools/*/Cargo.toml; do
    if ! grep -q '^rust-version.workspace = true' "$manifest"; then
        echo "ci-msrv: $manifest does not inherit the workspace rust-version" >&2
        exit 1
    fi
done
CARGO_TARGET_DIR=target-msrv cargo "+$msrv" check --workspace --all-targets --locked
echo "ci-msrv: the workspace checks with Rust $msrv"
