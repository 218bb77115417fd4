#!/usr/bin/env bash
# The agave integration (integrations/agave, docs/agave.md), checked against
# agave's published crates (crates.io); not part of scripts/test.sh: about
# half an hour from cold on two cores, most of it compiling agave.
#
#  1. installs what is missing: towerlock's (scripts/ensure-deps.sh: etcd,
#     protoc, a C toolchain) plus clang and libclang-dev (RocksDB's bindings);
#  2. builds the `towerlock` binary (the tests check interoperability with it);
#  3. formats, lints and tests integrations/agave against real etcd with
#     mutual TLS (its own workspace, with its own lock file: solana-core 3.1.5);
#  4. checks that the patch applies to agave-validator 3.1.5 as published
#     (the validator directory of tag v3.1.5, whose Cargo.toml is the
#     crate's Cargo.toml.orig), then compiles the patched validator
#     crate's library (all of the patch's code: args.rs, execute.rs)
#     against the published agave crates and this crate.
#
# Step 4's compile adds agave-validator's own dependencies as well;
# `--skip-validator` stops after the patch applies.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
agave_version=3.1.5
patch="$root/integrations/agave/patches/agave-v$agave_version.patch"
skip_validator=false
for arg in "$@"; do
  case "$arg" in
    --skip-validator) skip_validator=true ;;
    *) echo "usage: $0 [--skip-validator]" >&2; exit 2 ;;
  esac
done

scripts/ensure-deps.sh
missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ls /usr/lib/*/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "missing Debian packages (${missing[*]}) and not root: run 'apt-get update && apt-get install -y ${missing[*]}' as root" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

started=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - started )) s)" >&2; }

step "building the towerlock binary"
cargo build -p towerlock-ops --bin towerlock
export TOWERLOCK_BIN="$root/target/debug/towerlock"

cd "$root/integrations/agave"
export CARGO_TARGET_DIR="$root/integrations/agave/target"
step "integrations/agave: fmt, clippy"
cargo fmt -- --check
cargo clippy --locked --all-targets -- -D warnings
step "integrations/agave: tests (real etcd, mutual TLS)"
cargo test --locked

step "the patch applies to agave-validator $agave_version"
cargo info "agave-validator@$agave_version" >/dev/null
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"agave-validator-$agave_version" | head -n 1)
[ -d "$src" ] || { echo "agave-validator $agave_version was not unpacked by cargo info" >&2; exit 1; }
work="$CARGO_TARGET_DIR/agave-validator-patched"
rm -rf "$work"
mkdir -p "$work/validator"
cp -R "$src/." "$work/validator/"
# The tag's validator/Cargo.toml is the crate's Cargo.toml.orig.
cp "$work/validator/Cargo.toml" "$work/published-Cargo.toml"
mv "$work/validator/Cargo.toml.orig" "$work/validator/Cargo.toml"
git -C "$work" init -q
git -C "$work" apply --check "$patch"
git -C "$work" apply "$patch"
echo "the patch applies to agave-validator $agave_version (tag v$agave_version's validator/)" >&2

if [ "$skip_validator" = true ]; then
  step "done (patched validator not type-checked: --skip-validator)"
  exit 0
fi

step "compiling the patched agave-validator $agave_version (library)"
# Built alone, from the published manifest plus the patch's dependency (its
# path, relative to an agave checkout, does not apply here), with this
# crate's lock file as the start so that agave's crates are the tested ones.
cd "$work/validator"
cp "$work/published-Cargo.toml" Cargo.toml
cat >> Cargo.toml <<TOML

[dependencies.towerlock-agave]
path = "$root/integrations/agave"

[workspace]

# integrations/agave's profile, so that its compiled dependencies are reused.
[profile.dev]
debug = 0
TOML
cp "$root/integrations/agave/Cargo.lock" Cargo.lock
# `build --lib` rather than `check`: the tests above compiled agave's crates
# in build mode, which a check could not reuse.
cargo build --lib
step "done: agave $agave_version with towerlock's fence checks"
