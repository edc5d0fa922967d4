#!/usr/bin/env bash
# The gateway measured from outside (server/benches/proxy.rs): installs nginx and
# wrk from Debian when missing, builds the release binary, and runs the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --release
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
  apt-get update -qq
  # RUNLEVEL=1: install nginx without starting it as a service.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 ||
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no

cargo leptos build --release
cargo bench -p server --bench proxy
