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

say "starting the local test cloud (first run installs packages: a few minutes; log $LOGS/cloud.log)"
tests/cloud/up.sh > "$LOGS/cloud.log" 2>&1 || { tail -n 30 "$LOGS/cloud.log"; exit 1; }
say "preparing SSH test hosts (first run debootstraps Debian; log $LOGS/hosts.log)"
tests/hosts/setup.sh > "$LOGS/hosts.log" 2>&1 || { tail -n 30 "$LOGS/hosts.log"; exit 1; }
say "building forge"
cargo build --quiet

HOST=forge-demo
tests/hosts/host.sh down "$HOST" > /dev/null 2>&1 || true
ADDR=$(tests/hosts/host.sh up "$HOST" 200)
[ -n "${FORGE_DEMO_KEEP:-}" ] || trap 'tests/hosts/host.sh down "$HOST" > /dev/null 2>&1' EXIT
tests/hosts/host.sh use-repo "$HOST"
say "SSH test host $HOST at $ADDR"

# A small base image and the test key as a Nova keypair, through the APIs (curl + jq come with
# the test cloud).
. "${TESTCLOUD_DIR:-/tmp/forge-testcloud}/openrc"
TOKEN=$(curl -sf -D - -o /dev/null -H 'Content-Type: application/json' \
  -d "$(jq -n --arg pw "$OS_PASSWORD" '{auth:{identity:{methods:["password"],password:{user:{name:"admin",domain:{id:"default"},password:$pw}}},scope:{project:{name:"admin",domain:{id:"default"}}}}}')" \
  "$OS_AUTH_URL/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')
H=(-H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json')
G=http://127.0.0.1:9292; N=http://127.0.0.1:8774/v2.1
if [ "$(curl -sf "${H[@]}" "$G/v2/images?name=forge-demo-base&tag=forge-demo&status=active" | jq '.images|length')" = 0 ]; then
  BASE=$(curl -sf "${H[@]}" -d '{"name":"forge-demo-base","disk_format":"raw","container_format":"bare","visibility":"private","tags":["forge-demo"]}' "$G/v2/images" | jq -r .id)
  head -c 1048576 /dev/zero | curl -sf -X PUT -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' --data-binary @- "$G/v2/images/$BASE/file"
  say "uploaded base image forge-demo-base ($BASE)"
fi
KEY=${TESTHOSTS_DIR:-/tmp/forge-testhosts}/keys/id_ed25519
curl -s -o /dev/null "${H[@]}" -X DELETE "$N/os-keypairs/forge-demo"
curl -sf -o /dev/null "${H[@]}" -d "$(jq -n --arg k "$(cat "$KEY.pub")" '{keypair:{name:"forge-demo",public_key:$k}}')" "$N/os-keypairs"

say "forge build templates/demo.pkr.hcl"
export OS_CLIENT_CONFIG_FILE=${TESTCLOUD_DIR:-/tmp/forge-testcloud}/clouds.yaml
IMAGE=$("${CARGO_TARGET_DIR:-target}/debug/forge" build templates/demo.pkr.hcl -var "ssh_host=$ADDR" \
  -var ssh_keypair_name=forge-demo -var "ssh_private_key_file=$KEY")
say "published image: $IMAGE"
curl -sf "${H[@]}" "$G/v2/images/$IMAGE" | jq '{id, name, status, tags, visibility, os_distro, built_by, forge_run_id, forge_source_image}'
say "manifest: templates/demo-manifest.json"
