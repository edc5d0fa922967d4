#!/usr/bin/env bash
# Installs what building Chancery needs. Idempotent: each tool is checked first
# and installed only when missing or at the wrong version.
#
#   scripts/setup.sh            a development build (scripts/run.sh)
#   scripts/setup.sh --release  also cargo-leptos and wasm-opt, for the optimised build
#   scripts/setup.sh --test     also what the tests need (scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10     # 0.3.11 does not build on rustc 1.95
WASM_BINDGEN_VERSION=0.2.130    # must equal the wasm-bindgen crate pinned in Cargo.toml
export PATH="$HOME/.cargo/bin:$PATH"

with_release=false
with_tests=false
case "${1:-}" in
  --release) with_release=true ;;
  --test) with_release=true with_tests=true ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--release | --test]" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "Adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# SAML's XML signatures are checked by libxmlsec1 (the samael crate), whose
# bindings are generated with libclang when Chancery is built.
build_packages=()
command -v pkg-config >/dev/null || build_packages+=(pkg-config)
pkg-config --exists xmlsec1-openssl 2>/dev/null || build_packages+=(libxmlsec1-dev)
pkg-config --exists openssl 2>/dev/null || build_packages+=(libssl-dev)
compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || build_packages+=(libclang-dev)
if ((${#build_packages[@]})); then
  step "Installing ${build_packages[*]} from Debian (to build SAML single sign-on)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${build_packages[@]}"
fi

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != *"$WASM_BINDGEN_VERSION"* ]]; then
  step "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lockfile wants a webpki-roots release the registry does not serve.
  # Unoptimised too: 1 minute to install instead of 4, and 5 s to bind the release bundle.
  cargo install --debug wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi

if $with_release; then
  # cargo-leptos only runs the builds: unoptimised (--debug) it installs in about
  # 7 minutes on 2 cores instead of 23, and builds as fast.
  if [[ "$(cargo leptos --version 2>/dev/null || true)" != *"$CARGO_LEPTOS_VERSION"* ]]; then
    step "Installing cargo-leptos $CARGO_LEPTOS_VERSION (about 7 minutes on 2 cores)"
    cargo install --debug --locked "cargo-leptos@$CARGO_LEPTOS_VERSION" --features no_downloads
  fi
  # wasm-opt, from npm: Debian's binaryen 108 emits wasm that fails to hydrate.
  if [[ ! -x tools/node_modules/.bin/wasm-opt ]]; then
    step "Installing binaryen (wasm-opt) from npm"
    (cd tools && npm ci --no-audit --no-fund)
  fi
fi

if $with_tests; then
  apt_packages=()
  command -v chromium >/dev/null || apt_packages+=(chromium)
  command -v psql >/dev/null || apt_packages+=(postgresql)
  command -v redis-server >/dev/null || apt_packages+=(redis-server)
  # The SAML journey's identity provider makes its certificate with it.
  command -v openssl >/dev/null || apt_packages+=(openssl)
  if ((${#apt_packages[@]})); then
    step "Installing ${apt_packages[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    step "Starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  fi
  # The gateway's shared counters are tested against a real Redis; it keeps nothing on disk.
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    step "Starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  # Journeys run scim2-tester (SCIM), schemathesis (Admin API) and the official openai and mistralai SDKs.
  if ! cmp -s end2end/python-requirements.txt end2end/.venv/installed.txt; then
    step "Installing scim2-tester, schemathesis and the openai and mistralai SDKs from PyPI"
    python3 -m venv end2end/.venv
    end2end/.venv/bin/pip install -q -r end2end/python-requirements.txt
    cp end2end/python-requirements.txt end2end/.venv/installed.txt
  fi
  if ! cmp -s end2end/package-lock.json end2end/node_modules/.installed-lock.json; then
    step "Installing Playwright and axe-core (no browser download: Debian's Chromium is used)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    cp end2end/package-lock.json end2end/node_modules/.installed-lock.json
  fi
fi
