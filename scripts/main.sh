#!/usr/bin/env bash
# The main job: `towerlock drill` — etcd with mutual TLS, a local cluster,
# a primary and a secondary validator started with the seed's command lines,
# a manual failover, the restart cycle, a failover away from a hung primary,
# and the audit of every vote — on TowerBFT, then on Alpenglow (Votor, the
# vote history behind the fence). Extra arguments go to `towerlock drill`;
# with `--consensus` only that drill runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo build --release --workspace --bins
if [[ " $* " == *" --consensus"* ]]; then
  exec target/release/towerlock drill "$@"
fi
target/release/towerlock drill "$@"
exec target/release/towerlock drill --consensus alpenglow "$@"
