#!/usr/bin/env bash
# Installs what towerlock needs to build and test, when it is missing:
# etcd (Debian's etcd-server, and etcd-client for etcdctl: the operator's
# guide is checked against its flags), protoc (to build etcd-client), a C
# toolchain (crates with C parts), curl, python3 (the etcd walkthrough picks
# free ports with it; the Solana client tests make a virtual environment with
# it, hence python3-venv), and the rustfmt and clippy components of the Rust
# toolchain.
set -euo pipefail

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "missing Debian packages (${missing[*]}) and not root: run 'apt-get update && apt-get install -y ${missing[*]}' as root" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install the Rust toolchain (https://rustup.rs) and run again" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      rustup component add "$component"
    else
      echo "cargo ${component/rustfmt/fmt} is missing: install the $component component of the Rust toolchain" >&2
      exit 1
    fi
  fi
done
