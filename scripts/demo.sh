#!/usr/bin/env bash
# The main job end to end on a fresh Debian 12 machine, as root: start the project's local test
# cloud and one SSH test host, upload a small base image, then `forge build templates/demo.pkr.hcl`
# with progress shown; prints the published image and the manifest path.
#
#   FORGE_DEMO_KEEP=1   leave the test host running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root (it installs packages and starts services)" >&2; exit 2; }
LOGS=${FORGE_TEST_LOGS:-/tmp/forge-test-logs}; mkdir -p "$LOGS"
say() { echo "==> $*"; }

say "installing build dependencies (scripts/build-deps.sh; log $LOGS/build-deps.log)"
scripts/build-deps.sh > "$LOGS/build-deps.log" 2>&1 || { tail -n 30 "$LOGS/build-deps.log"; exit 1; }
# Compile while the cloud and the hosts are set up (those are mostly downloads and installs).
say "building forge in the background (log $LOGS/demo-build.log)"
cargo build > "$LOGS/demo-build.log" 2>&1 &
BUILD=$!
trap 'kill "$BUILD" 2>/dev/null || true' EXIT
say "starting the local test cloud (first run installs packages: a few minutes; log $LOGS/cloud.log)"
tests/cloud/up.sh > "$LOGS/cloud.log" 2>&1 || { tail -n 30 "$LOGS/cloud.log"; exit 1; }
say "preparing SSH test hosts (first run debootstraps Debian; log $LOGS/hosts.log)"
tests/hosts/setup.sh > "$LOGS/hosts.log" 2>&1 || { tail -n 30 "$LOGS/hosts.log"; exit 1; }
say "waiting for the forge build"
wait "$BUILD" || { tail -n 30 "$LOGS/demo-build.log"; exit 1; }

HOST=forge-demo
tests/hosts/host.sh down "$HOST" > /dev/null 2>&1 || true
ADDR=$(tests/hosts/host.sh up "$HOST" 200)
[ -n "${FORGE_DEMO_KEEP:-}" ] || trap 'tests/hosts/host.sh down "$HOST" > /dev/null 2>&1' EXIT
tests/hosts/host.sh use-repo "$HOST"
say "SSH test host $HOST at $ADDR"

KEY=${TESTHOSTS_DIR:-/tmp/forge-testhosts}/keys/id_ed25519
tests/cloud/seed.sh forge-demo-base forge-demo forge-demo "$KEY.pub"

say "forge build templates/demo.pkr.hcl"
export OS_CLIENT_CONFIG_FILE=${TESTCLOUD_DIR:-/tmp/forge-testcloud}/clouds.yaml
IMAGE=$("${CARGO_TARGET_DIR:-target}/debug/forge" build templates/demo.pkr.hcl -var "ssh_host=$ADDR" \
  -var ssh_keypair_name=forge-demo -var "ssh_private_key_file=$KEY")
say "published image: $IMAGE"
jq '.builds[-1] | {artifact_id, run_id, source_image, steps: [.steps[] | "\(.name) \(.seconds*10|round/10)s"], resources}' templates/demo-manifest.json
say "manifest: templates/demo-manifest.json"
