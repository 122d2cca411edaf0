#!/usr/bin/env bash
# The full test suite on a fresh Debian 12 machine, as root: installs and starts what the tests need
# (the OpenStack test cloud, SSH test hosts, libguestfs and a test disk image) while the tests
# compile, checks formatting and lints, runs every test, then stops what it started. About 30 min
# on a fresh 2-core machine, most of it compiling and the libguestfs appliance launches.
#
#   FORGE_KEEP_ENV=1   leave the test cloud running afterwards (faster reruns)
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS=${FORGE_TEST_LOGS:-/tmp/forge-test-logs}
mkdir -p "$LOGS"
t0=$(date +%s)
step() { echo "==> [$(( $(date +%s) - t0 ))s] $*"; }

[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (it installs packages and starts services)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive

# Each environment part is set up in the background, its output in $LOGS/<name>.log.
pids=(); names=()
setup() { # name script...
  local name=$1; shift
  step "setting up $name (log: $LOGS/$name.log)"
  ( "$@" > "$LOGS/$name.log" 2>&1 ) &
  pids+=($!); names+=("$name")
}
apt-get -o DPkg::Lock::Timeout=900 update -qq
step "installing build dependencies (log: $LOGS/build-deps.log)"
scripts/build-deps.sh > "$LOGS/build-deps.log" 2>&1 || { tail -n 40 "$LOGS/build-deps.log" >&2; exit 1; }
# forge links libguestfs (the `guestfs` feature): its packages must be there before compiling.
step "installing libguestfs packages (log: $LOGS/image-packages.log)"
tests/image/setup.sh packages > "$LOGS/image-packages.log" 2>&1 \
  || { tail -n 40 "$LOGS/image-packages.log" >&2; exit 1; }
setup cloud tests/cloud/up.sh
setup hosts tests/hosts/setup.sh
setup image tests/image/setup.sh

cleanup() {
  [ -x tests/hosts/teardown.sh ] && tests/hosts/teardown.sh > "$LOGS/hosts-teardown.log" 2>&1
  if [ -z "${FORGE_KEEP_ENV:-}" ] && [ -x tests/cloud/down.sh ]; then
    tests/cloud/down.sh > "$LOGS/cloud-down.log" 2>&1
  fi
  true
}
trap cleanup EXIT

step "format and lint"
cargo fmt --check
cargo clippy --all-targets -- -D warnings

step "compiling tests"
cargo test --all-targets --no-run

failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    step "${names[$i]} ready"
  else
    echo "setup of ${names[$i]} failed; last lines of $LOGS/${names[$i]}.log:" >&2
    tail -n 40 "$LOGS/${names[$i]}.log" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

step "tests"
# Tests that need the cloud, the hosts or the image are #[ignore]d (a plain `cargo test` reports
# them as not run); CI runs them all, and a missing part fails them.
export FORGE_REQUIRE_INTEGRATION=1
cargo test --all-targets -- --include-ignored 2>&1 | tee "$LOGS/cargo-test.log"
# None may be left out: with --include-ignored every binary must report "0 ignored".
if grep -E '^test result: .* [1-9][0-9]* ignored' "$LOGS/cargo-test.log"; then
  echo "scripts/test.sh: some tests were not run (see above)" >&2
  exit 1
fi
step "done in $(( $(date +%s) - t0 ))s"
