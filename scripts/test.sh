#!/usr/bin/env bash
# Sets up and runs every test: formatting and lints, unit and integration tests
# (each integration test on SQLite and on PostgreSQL), then the browser journeys
# in headless Chromium against the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CHANCERY_TEST_POSTGRES_URL="${CHANCERY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"

step() { printf '\n==> %s\n' "$*"; }

step "Formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --exclude frontend --all-targets -- -D warnings

step "Unit and integration tests (SQLite and PostgreSQL)"
cargo test --workspace --exclude frontend

# After cargo test: its builds must not be the server the browsers talk to.
step "Release build"
cargo leptos build --release

step "Browser journeys (headless Chromium)"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL="sqlite://$work/e2e.db?mode=rwc" LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT=target/site \
  RUST_LOG=warn target/release/chancery serve >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 $server_pid 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.2
done
(cd end2end && BASE_URL="http://127.0.0.1:$port" npx playwright test) || { echo "--- server log"; cat "$work/server.log"; exit 1; }
