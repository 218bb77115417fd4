#!/usr/bin/env bash
# A walkthrough of the seed's etcd setup, on one machine: make certificates, start etcd exactly as the
# seed does (mutual TLS, compaction on), check it, and move an agave tower
# file into etcd and back.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo build --release --workspace --bins --examples
bin=target/release

work=$(mktemp -d -t towerlock-main-XXXXXX)
etcd_pid=""
cleanup() {
  if [ -n "$etcd_pid" ]; then kill "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client_port=$(free_port); peer_port=$(free_port)

echo "== certificates"
"$bin/towerlock" certs init --dir "$work/certs"

echo "== etcd with the seed's flags (client port $client_port)"
etcd --data-dir "$work/etcd" --auto-compaction-retention 2 --auto-compaction-mode revision \
  --cert-file="$work/certs/etcd.pem" --key-file="$work/certs/etcd-key.pem" \
  --client-cert-auth --trusted-ca-file="$work/certs/etcd-ca.pem" \
  --listen-client-urls="https://127.0.0.1:$client_port" \
  --advertise-client-urls="https://127.0.0.1:$client_port" \
  --listen-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-cluster="default=http://127.0.0.1:$peer_port" \
  >"$work/etcd.log" 2>&1 &
etcd_pid=$!

etcd_flags=(--etcd-endpoint "127.0.0.1:$client_port"
  --etcd-cacert-file "$work/certs/etcd-ca.pem"
  --etcd-cert-file "$work/certs/validator.pem"
  --etcd-key-file "$work/certs/validator-key.pem")

for _ in $(seq 1 100); do
  if curl -sf --cacert "$work/certs/etcd-ca.pem" --cert "$work/certs/validator.pem" \
       --key "$work/certs/validator-key.pem" "https://127.0.0.1:$client_port/health" >/dev/null; then
    break
  fi
  sleep 0.1
done

echo "== the seed's curl check (expects 404)"
curl -s -o /dev/null -w "HTTP %{http_code}\n" --cacert "$work/certs/etcd-ca.pem" \
  "https://127.0.0.1:$client_port/" --cert "$work/certs/validator.pem" --key "$work/certs/validator-key.pem"

echo "== towerlock etcd check"
"$bin/towerlock" etcd check "${etcd_flags[@]}"

echo "== an agave tower file (a sample identity voting 40 slots)"
tower_file=$("$bin/examples/sample_tower" "$work/ledger" 40)
"$bin/towerlock" tower show "$tower_file"

echo "== import it into etcd, show it from there, export it back"
identity=$(basename "$tower_file" .bin); identity=${identity#tower-1_9-}
"$bin/towerlock" tower import "$tower_file" "${etcd_flags[@]}"
"$bin/towerlock" tower show --identity "$identity" "${etcd_flags[@]}" --json
"$bin/towerlock" tower export --identity "$identity" --tower "$work/exported" "${etcd_flags[@]}"
cmp "$tower_file" "$work/exported/tower-1_9-$identity.bin" && echo "exported file is byte-identical"
