#!/bin/sh
# Copied verbatim to /tmp/pack_helper.sh by copy_script.
echo "pack helper"
