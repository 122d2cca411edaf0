#!/usr/bin/env bash
# Side-by-side benchmark: the same build with forge and with Packer 1.6.6 (Debian's `packer`,
# which has the OpenStack builder) against the project's local test cloud and one SSH test host:
# same source filter, flavor, one SSH shell step on the same host, stop, snapshot. Runs them
# alternately RUNS times (default 5) and prints both medians and the ratio. As root.
#
#   benches/packer.sh [RUNS]        FORGE_BENCH_PROFILE=dev skips the (slow, cold) release build
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
[ "$(id -u)" = 0 ] || { echo "benches/packer.sh: run as root" >&2; exit 2; }
LOGS=${FORGE_TEST_LOGS:-/tmp/forge-test-logs}; mkdir -p "$LOGS"
command -v packer > /dev/null || DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends packer > "$LOGS/packer-install.log"
tests/cloud/up.sh > "$LOGS/cloud.log" 2>&1
tests/hosts/setup.sh > "$LOGS/hosts.log" 2>&1
PROFILE=${FORGE_BENCH_PROFILE:-release}
cargo build --quiet --profile "$PROFILE"
[ "$PROFILE" = dev ] && DIR=debug || DIR=$PROFILE
FORGE=${CARGO_TARGET_DIR:-target}/$DIR/forge

HOST=forge-bench
tests/hosts/host.sh down "$HOST" > /dev/null 2>&1 || true
ADDR=$(tests/hosts/host.sh up "$HOST" 201)
W=$(mktemp -d)
trap 'tests/hosts/host.sh down "$HOST" > /dev/null 2>&1; rm -rf "$W"' EXIT

. "${TESTCLOUD_DIR:-/tmp/forge-testcloud}/openrc"
export OS_DOMAIN_NAME=Default OS_TENANT_NAME=$OS_PROJECT_NAME
TOKEN=$(curl -sf -D - -o /dev/null -H 'Content-Type: application/json' \
  -d "$(jq -n --arg pw "$OS_PASSWORD" '{auth:{identity:{methods:["password"],password:{user:{name:"admin",domain:{id:"default"},password:$pw}}},scope:{project:{name:"admin",domain:{id:"default"}}}}}')" \
  "$OS_AUTH_URL/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')
H=(-H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json')
G=http://127.0.0.1:9292; N=http://127.0.0.1:8774/v2.1
if [ "$(curl -sf "${H[@]}" "$G/v2/images?name=forge-bench-base&tag=forge-bench&status=active" | jq '.images|length')" = 0 ]; then
  BASE=$(curl -sf "${H[@]}" -d '{"name":"forge-bench-base","disk_format":"raw","container_format":"bare","visibility":"private","tags":["forge-bench"]}' "$G/v2/images" | jq -r .id)
  head -c 1048576 /dev/zero | curl -sf -X PUT -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' --data-binary @- "$G/v2/images/$BASE/file"
fi
KEY=${TESTHOSTS_DIR:-/tmp/forge-testhosts}/keys/id_ed25519
curl -s -o /dev/null "${H[@]}" -X DELETE "$N/os-keypairs/forge-bench"
curl -sf -o /dev/null "${H[@]}" -d "$(jq -n --arg k "$(cat "$KEY.pub")" '{keypair:{name:"forge-bench",public_key:$k}}')" "$N/os-keypairs"

cat > "$W/packer.json" <<JSON
{
  "builders": [{
    "type": "openstack",
    "source_image_filter": {"filters": {"name": "forge-bench-base", "tags": ["forge-bench"]}, "most_recent": true},
    "flavor": "m1.tiny",
    "networks": [],
    "ssh_username": "root",
    "ssh_host": "$ADDR",
    "ssh_keypair_name": "forge-bench",
    "ssh_private_key_file": "$KEY",
    "image_name": "forge-bench-packer-{{timestamp}}"
  }],
  "provisioners": [{"type": "shell", "inline": ["hello --version || true"]}]
}
JSON
cat > "$W/forge.pkr.hcl" <<HCL
source "openstack" "bench" {
  cloud = "forge-admin"
  source_image_filter {
    filters {
      name = "forge-bench-base"
      tags = ["forge-bench"]
    }
    most_recent = true
  }
  flavor               = "m1.tiny"
  ssh_username         = "root"
  ssh_host             = "$ADDR"
  ssh_keypair_name     = "forge-bench"
  ssh_private_key_file = "$KEY"
  image_name           = "forge-bench-forge-\${uuidv4()}"
}
build {
  sources = ["source.openstack.bench"]
  provisioner "shell" {
    inline = ["hello --version || true"]
  }
}
HCL
export OS_CLIENT_CONFIG_FILE=${TESTCLOUD_DIR:-/tmp/forge-testcloud}/clouds.yaml

now() { date +%s.%N; }
delete_built() { # every image a bench run published
  for id in $(curl -sf "${H[@]}" "$G/v2/images?limit=200" | jq -r '.images[] | select(.name|startswith("forge-bench-packer-") or startswith("forge-bench-forge-")) | .id'); do
    curl -s -o /dev/null -X DELETE "${H[@]}" "$G/v2/images/$id"
  done
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
: > "$W/forge.times"; : > "$W/packer.times"
for i in $(seq 1 "$RUNS"); do
  t=$(now); "$FORGE" -q build "$W/forge.pkr.hcl" > "$LOGS/bench-forge-$i.log" 2>&1 \
    || { echo "forge run $i failed: $LOGS/bench-forge-$i.log" >&2; exit 1; }
  echo "$(now) - $t" | bc >> "$W/forge.times"
  t=$(now); PACKER_NO_COLOR=1 packer build -color=false "$W/packer.json" > "$LOGS/bench-packer-$i.log" 2>&1 \
    || { echo "packer run $i failed: $LOGS/bench-packer-$i.log" >&2; exit 1; }
  echo "$(now) - $t" | bc >> "$W/packer.times"
  delete_built
  printf 'run %d: forge %.2fs  packer %.2fs\n' "$i" "$(tail -n1 "$W/forge.times")" "$(tail -n1 "$W/packer.times")"
done
F=$(median < "$W/forge.times"); P=$(median < "$W/packer.times")
printf 'median of %d: forge %.2fs, packer %.2fs, packer/forge = %.2fx\n' "$RUNS" "$F" "$P" "$(echo "$P / $F" | bc -l)"
