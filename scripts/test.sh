#!/usr/bin/env bash
# Sets up and runs every test: formatting and lints, unit and integration tests
# (each integration test on SQLite and on PostgreSQL), then the browser journeys
# in headless Chromium against the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CHANCERY_TEST_POSTGRES_URL="${CHANCERY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"

# Each step says when it started, so a slow or stuck run shows where its time went.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
work=$(mktemp -d)
server_pid=
trap '[[ -n $server_pid ]] && kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT

step "Formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --exclude frontend --all-targets -- -D warnings

step "Unit and integration tests (SQLite and PostgreSQL)"
cargo test --workspace --exclude frontend 2>&1 | tee "$work/cargo-test.log"

# After cargo test, whose builds must not be the server the browsers talk to.
step "Release build"
cargo leptos build --release --precompress

step "Browser journeys (headless Chromium)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Each journey sends its own X-Forwarded-For (see end2end/tests/helpers.ts): many people, not one address.
DATABASE_URL="sqlite://$work/e2e.db?mode=rwc" LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT=target/site \
  CHANCERY_TRUSTED_PROXIES=1 RUST_LOG=warn target/release/chancery serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.2
done
# The operator's CLI in the journeys works on the same database as the server.
export CHANCERY_BIN="$PWD/target/release/chancery" DATABASE_URL="sqlite://$work/e2e.db?mode=rwc"
if ! (cd end2end && BASE_URL="http://127.0.0.1:$port" npx playwright test) | tee "$work/e2e.log"; then
  echo "--- server log"; cat "$work/server.log"; exit 1
fi

# One closing line for everything that ran.
sum() { grep -Eo "[0-9]+ $1" "$2" | awk '{ n += $1 } END { print n + 0 }'; }
rust_passed=$(sum passed "$work/cargo-test.log")
rust_failed=$(sum failed "$work/cargo-test.log")
e2e_passed=$(grep -Eo '^ *[0-9]+ passed' "$work/e2e.log" | awk '{ n += $1 } END { print n + 0 }')
printf '\ntests: %d passed, %d failed in %dm%02ds\n' $((rust_passed + e2e_passed)) "$rust_failed" $((SECONDS / 60)) $((SECONDS % 60))
