#!/bin/bash
# benches/pack.sh -- the same spec and image through `forge pack`, `virt-customize` (equivalent
# --install/--run/--upload) and Sahara's engine + libguestfs remote (the code behind
# sahara-image-pack, from PyPI `sahara` in a venv over Debian's python3-guestfs). Each run packs
# a fresh copy-on-write overlay of the base image from tests/image/setup.sh. Prints per-run
# times, medians and ratios to forge; every tool launches the appliance once per pack.
#
# usage: benches/pack.sh [RUNS]       (default 3; as root, after tests/image/setup.sh)
#   FORGE=path/to/forge      the binary to measure (default: cargo build, then target/debug/forge)
#   BENCH_SAHARA=0           skip Sahara (otherwise installed on first use into $W/sahara-venv)
set -euo pipefail
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
W=${FORGE_IMAGE_DIR:-/tmp/forge-image}
BASE=$W/base.qcow2
SPEC=$HERE/pack/spec.yaml
[ -s "$BASE" ] || { echo "no $BASE: run tests/image/setup.sh first" >&2; exit 2; }
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg LIBGUESTFS_CACHEDIR=$W/gcache

if [ -z "${FORGE:-}" ]; then
    (cd "$ROOT" && cargo build -q --bin forge)
    FORGE=${CARGO_TARGET_DIR:-$ROOT/target}/debug/forge
fi

SAHARA_PY=""
if [ "${BENCH_SAHARA:-1}" = 1 ]; then
    V=$W/sahara-venv
    if [ ! -x "$V/bin/sahara-image-pack" ]; then
        echo "installing Sahara into $V (python3-guestfs + PyPI sahara; a few minutes)" >&2
        apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends python3-guestfs python3-venv \
            >"$W/logs/bench-apt.log" 2>&1 || true
        # Debian's python3: python3-guestfs lives in its dist-packages (--system-site-packages).
        rm -rf "$V" && /usr/bin/python3 -m venv --system-site-packages "$V" \
            && "$V/bin/pip" install -q sahara==19.0.0 >"$W/logs/bench-pip.log" 2>&1 || rm -rf "$V"
    fi
    if [ -x "$V/bin/sahara-image-pack" ]; then
        SAHARA_PY=$V/bin/python
    else
        echo "Sahara did not install (see $W/logs/bench-pip.log); measuring without it" >&2
    fi
fi

TMP=$(mktemp -d /tmp/forge-bench-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
overlay() { qemu-img create -q -f qcow2 -F qcow2 -b "$BASE" "$TMP/$1.qcow2"; echo "$TMP/$1.qcow2"; }

# time_one NAME CMD...: run CMD on a fresh overlay ({} in CMD is replaced by its path), print seconds.
time_one() {
    local name=$1; shift
    local img; img=$(overlay "$name")
    local args=() a
    for a in "$@"; do args+=("${a//\{\}/$img}"); done
    local s e
    s=$(date +%s.%N)
    if ! "${args[@]}" >"$TMP/$name.log" 2>&1; then
        echo "$name failed:" >&2; tail -20 "$TMP/$name.log" >&2; exit 1
    fi
    e=$(date +%s.%N)
    # Check the result the same way for every tool: packages, the script's file, the copy.
    guestfish --ro -a "$img" -i sh 'dpkg-query -W hello tree jq >/dev/null && test -f /etc/forge-bench && test -f /tmp/bench_helper.sh' \
        || { echo "$name: the image does not hold the expected result" >&2; exit 1; }
    if [ "$name" != "${name#forge}" ]; then
        grep -o 'appliance launched in [0-9.]* s' "$TMP/$name.log" | sed "s/^/    $name: /" >&2 || true
    fi
    rm -f "$img"
    echo "$e - $s" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A TIMES
TOOLS=(forge virt-customize)
[ -n "$SAHARA_PY" ] && TOOLS+=(sahara)
for i in $(seq "$RUNS"); do
    for tool in "${TOOLS[@]}"; do
        case $tool in
        forge) t=$(time_one "forge-$i" "$FORGE" pack --network --image {} --spec "$SPEC") ;;
        virt-customize) t=$(time_one "vc-$i" virt-customize -q --format qcow2 -a {} \
            --install hello,tree,jq --run "$HERE/pack/scripts/configure.sh" \
            --upload "$HERE/pack/scripts/helpers/bench_helper.sh:/tmp/bench_helper.sh") ;;
        sahara) t=$(time_one "sahara-$i" "$SAHARA_PY" "$HERE/pack/sahara_pack.py" {} "$SPEC") ;;
        esac
        printf 'run %d  %-15s %7.1f s\n' "$i" "$tool" "$t"
        TIMES[$tool]="${TIMES[$tool]:-} $t"
    done
done

f=$(echo "${TIMES[forge]}" | tr ' ' '\n' | grep . | median)
echo
printf '%-15s %5s %10s %16s %9s\n' tool runs median_s ratio_to_forge launches
for tool in "${TOOLS[@]}"; do
    m=$(echo "${TIMES[$tool]}" | tr ' ' '\n' | grep . | median)
    printf '%-15s %5d %10.1f %16.2f %9d\n' "$tool" "$RUNS" "$m" "$(echo "$m / $f" | bc -l)" 1
done
