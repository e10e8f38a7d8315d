#!/usr/bin/env bash
# Packaging and documentation as crates.io and docs.rs will see them:
#   1. `cargo package` of every publishable crate, verified: each .crate is unpacked and
#      built on its own, its path dependencies resolved from the other packages of this run
#      (cargo's local overlay registry), so a missing file or a dependency that only works
#      by path fails here. ringlat-tests and ringlat-benches are `publish = false`.
#   2. `cargo doc --no-deps` of the workspace with warnings denied (broken intra-doc links,
#      unclosed HTML, missing docs warnings promoted).
# --allow-dirty: CI runs on a checkout that may carry generated or uncommitted files (and a
# developer runs it before committing); packaging still takes only what `git ls-files` and
# the manifests include. Runs in about 3-5 minutes on a warm target/.
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(ringlat-format ringlat-ring ringlat ringlat-read ringcat)

# Cargo unpacks each .crate of its overlay registry into $CARGO_HOME/registry/src/<registry>/
# <name>-<version>/ and reuses such a directory whenever it exists, without comparing it with
# the new .crate. The overlay registry's directory name comes from the workspace path, so on a
# machine that keeps $CARGO_HOME between runs (a CI machine), a later run at the same path
# would verify ringcat against an earlier run's ringlat-read 0.1.0 (it did: CI failed with
# "no method named `entry_range`"). Remove our crates' unpacked copies and cached .crate
# files first; nothing else in the cache is touched.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for crate in "${crates[@]}"; do
    rm -rf "$cargo_home"/registry/src/*/"$crate"-[0-9]* "$cargo_home"/registry/cache/*/"$crate"-[0-9]*.crate
done
echo "ci-package: cargo package --workspace (${crates[*]})"
cargo package --workspace --exclude ringlat-tests --exclude ringlat-benches --allow-dirty
packaged=0
for crate in "${crates[@]}"; do
    version=$(cargo pkgid -p "$crate" | sed 's/.*[#@]//')
    file="target/package/${crate}-${version}.crate"
    if [[ ! -s "$file" ]]; then
        echo "ci-package: $file is missing" >&2
        exit 1
    fi
    # Every publishable crate carries the metadata crates.io shows.
    listing=$(tar -xOzf "$file" "${crate}-${version}/Cargo.toml")
    for field in description repository documentation readme keywords categories license rust-version; do
        if ! grep -q "^${field} = " <<<"$listing"; then
            echo "ci-package: $crate: no '$field' in its packaged Cargo.toml" >&2
            exit 1
        fi
    done
    # The license texts travel with each crate (symlinks to the workspace's files).
    files=$(tar -tzf "$file")
    for license in LICENSE-MIT LICENSE-APACHE; do
        if ! grep -qx "${crate}-${version}/${license}" <<<"$files"; then
            echo "ci-package: $crate: $license is not in the package" >&2
            exit 1
        fi
    done
    packaged=$((packaged + 1))
done
echo "ci-package: $packaged crates packaged and verified"

echo "ci-package: cargo doc --no-deps --workspace with -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
echo "ci-package: docs clean"
