#!/usr/bin/env bash
# What compiling forge needs on Debian 12, as root (idempotent; no apt run when all is there):
#   gcc + libc6-dev   the linker rustc calls, and C code of dependencies (aws-lc-sys, ring)
#   pkg-config make   build scripts of dependencies
#   ca-certificates   cargo's downloads from crates.io (TLS)
#   libguestfs-dev    `forge pack` links libguestfs (the default `guestfs` feature)
#   curl jq git       the scripts' own tools (demo.sh prints the manifest with jq)
# The Rust toolchain itself (rustup, cargo on PATH) is taken as given, as on CI machines.
set -euo pipefail
PKGS=(gcc libc6-dev pkg-config make ca-certificates libguestfs-dev curl jq git)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} = 0 ] && exit 0
# libguestfs-dev pulls bookworm's qemu-system-common, which qemu-utils from bookworm-backports
# breaks: machines that carry the backport take qemu-utils back to bookworm's version.
extra=()
if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q bpo; then
  extra=(--allow-downgrades qemu-utils/bookworm)
fi
[ "$(id -u)" = 0 ] || { echo "scripts/build-deps.sh: missing ${missing[*]}; run as root to install them" >&2; exit 2; }
command -v cargo >/dev/null || echo "scripts/build-deps.sh: note: no cargo on PATH (install rustup first)" >&2
echo "build-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=900)
"${APT[@]}" update -qq
"${APT[@]}" install -y -qq --no-install-recommends "${extra[@]}" "${missing[@]}" >/dev/null
