#!/bin/bash
# A configuration step: a file and a user. Works under forge/Sahara (test_only set) and under
# virt-customize --run (no variables).
set -eu
if [ "${test_only:-0}" = 1 ]; then
    test -f /etc/forge-bench && id forgebench >/dev/null
else
    echo "built by the pack benchmark" > /etc/forge-bench
    id forgebench >/dev/null 2>&1 || useradd -m forgebench
fi
