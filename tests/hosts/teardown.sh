#!/bin/bash
# teardown.sh -- stop every test host left behind (e.g. by a killed test run). Keeps the base,
# repo and keys made by setup.sh; `rm -rf /tmp/forge-testhosts` after this removes those too.
TESTHOSTS_DIR=${TESTHOSTS_DIR:-/tmp/forge-testhosts}
HERE=$(dirname "$(readlink -f "$0")")
for h in "$TESTHOSTS_DIR"/hosts/*/; do
  [ -d "$h" ] && "$HERE/host.sh" down "$(basename "$h")"
done
true
