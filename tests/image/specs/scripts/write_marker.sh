#!/bin/bash
# reconcile: write $marker_text to /root/forge-marker; test-only: check it is there, verbatim.
set -eu
if [ "$test_only" = 1 ]; then
    [ "$(cat /root/forge-marker)" = "$marker_text" ]
else
    printf '%s' "$marker_text" > /root/forge-marker
fi
