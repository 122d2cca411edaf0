#!/usr/bin/env bash
# The main job end to end. Until the build pipeline lands, this builds forge and validates the
# shipped templates.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
for t in templates/*.hcl; do
  [ -e "$t" ] || continue
  target/release/forge validate "$t"
done
