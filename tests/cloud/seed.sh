#!/usr/bin/env bash
# seed.sh NAME TAG KEYPAIR PUBKEY_FILE -- make sure the test cloud has an active 1 MiB base image
# NAME tagged TAG (admin project, private) and a Nova keypair KEYPAIR holding PUBKEY_FILE (replaced
# if it exists). Used by scripts/demo.sh and benches/packer.sh. curl and jq come with up.sh.
set -euo pipefail
[ $# = 4 ] || { echo "usage: $0 NAME TAG KEYPAIR PUBKEY_FILE" >&2; exit 2; }
NAME=$1 TAG=$2 KEYPAIR=$3 PUB=$4
. "$(dirname "$0")/lib.sh"
TOKEN=$(admin_token)
H=(-H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json')
if [ "$(curl -sf "${H[@]}" -G "$G/v2/images" --data-urlencode "name=$NAME" --data-urlencode "tag=$TAG" -d status=active | jq '.images|length')" = 0 ]; then
  BASE=$(curl -sf "${H[@]}" -d "$(jq -n --arg n "$NAME" --arg t "$TAG" '{name:$n,disk_format:"raw",container_format:"bare",visibility:"private",tags:[$t]}')" "$G/v2/images" | jq -r .id)
  head -c 1048576 /dev/zero | curl -sf -X PUT -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' --data-binary @- "$G/v2/images/$BASE/file"
  echo "uploaded base image $NAME ($BASE)"
fi
curl -s -o /dev/null "${H[@]}" -X DELETE "$N/os-keypairs/$KEYPAIR"
curl -sf -o /dev/null "${H[@]}" -d "$(jq -n --arg n "$KEYPAIR" --arg k "$(cat "$PUB")" '{keypair:{name:$n,public_key:$k}}')" "$N/os-keypairs"
