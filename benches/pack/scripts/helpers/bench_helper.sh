#!/bin/sh
# Copied to /tmp/bench_helper.sh by copy_script.
echo "bench helper"
