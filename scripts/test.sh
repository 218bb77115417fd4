#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and all tests (which start
# their own etcd processes with TLS on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
