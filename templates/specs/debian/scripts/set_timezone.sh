#!/bin/bash
# Sets the image timezone. test_only=1: succeed only if it is already set.
set -eu
zone_file="/usr/share/zoneinfo/$timezone"
if [ ! -f "$zone_file" ]; then
    echo "unknown timezone: $timezone" >&2
    exit 1
fi
current=$(cat /etc/timezone 2>/dev/null || true)
if [ "$current" = "$timezone" ] && [ "$(readlink -f /etc/localtime)" = "$(readlink -f "$zone_file")" ]; then
    exit 0
fi
if [ "$test_only" -eq 1 ]; then
    echo "timezone is '$current', want '$timezone'" >&2
    exit 1
fi
ln -sf "$zone_file" /etc/localtime
printf '%s\n' "$timezone" > /etc/timezone
