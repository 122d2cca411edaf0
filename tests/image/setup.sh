#!/bin/bash
# tests/image/setup.sh -- prepare what the `forge pack` tests need, once per machine (idempotent):
#   - libguestfs (tools + C library), qemu-utils, a kernel for the supermin appliance, debootstrap;
#   - the libguestfs appliance, built into a cache directory;
#   - a Debian bookworm minbase root (debootstrap) whose only apt source is a local repository of a
#     few small real packages (hello, tree, jq and its libraries), so package installs work offline;
#   - from that root, a small qcow2 base image (MBR, ext4 labelled "root").
# Tests give each case its own `qemu-img create -b` overlay of the base; they never write the base.
#
# usage: tests/image/setup.sh [packages]   (as root on Debian 12; state in $FORGE_IMAGE_DIR,
#                                           default /tmp/forge-image)
#   packages   only install the packages (libguestfs-dev must be there before forge links)
# After it: export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg \
#                  LIBGUESTFS_CACHEDIR=/tmp/forge-image/gcache   (the tests set these themselves)
set -euo pipefail
W=${FORGE_IMAGE_DIR:-/tmp/forge-image}
mkdir -p "$W/logs"
cd "$W"
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=900)
say() { echo "[setup $(date +%T)] $*" >&2; }

# 0. Packages. Machines that carry qemu-utils from bookworm-backports must take it back to
#    bookworm's version, or libguestfs-tools (-> bookworm's qemu-system) cannot install.
#    linux-image-amd64: supermin builds the appliance from the host's kernel.
PKGS=(qemu-utils libguestfs-tools libguestfs-dev linux-image-amd64 debootstrap dpkg-dev)
if ! dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -qv '^install ok installed$' \
    && [ "$(dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | wc -l)" = "${#PKGS[@]}" ] \
    && ! dpkg-query -W -f='${Version}' qemu-utils | grep -q bpo; then
    say "packages already installed"
else
    say "installing packages (apt)"
    "${APT[@]}" update -qq
    install() {
        "${APT[@]}" install -y -qq --no-install-recommends --allow-downgrades qemu-utils/bookworm \
            libguestfs-tools libguestfs-dev linux-image-amd64 debootstrap dpkg-dev >>"$W/logs/apt.log" 2>&1
    }
    # One retry: a concurrent apt user on the machine can break a run half-way.
    install || { say "apt failed, retrying once"; dpkg --configure -a >>"$W/logs/apt.log" 2>&1 || true; install; } \
        || { tail -30 "$W/logs/apt.log" >&2; exit 1; }
fi
[ "${1:-}" = packages ] && exit 0

# /dev/kvm may exist yet be unusable (nested KVM: the appliance never prints a byte). TCG always works.
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
export LIBGUESTFS_CACHEDIR=$W/gcache
mkdir -p "$LIBGUESTFS_CACHEDIR"

# 1. The appliance (supermin, cached in LIBGUESTFS_CACHEDIR). libguestfs-test-tool builds and boots it.
if [ ! -e "$W/.appliance-ok" ]; then
    say "building the libguestfs appliance (libguestfs-test-tool, a few minutes under TCG)"
    libguestfs-test-tool >"$W/logs/test-tool.log" 2>&1 || { tail -30 "$W/logs/test-tool.log" >&2; exit 1; }
    touch "$W/.appliance-ok"
fi

# 2. The root file system: debootstrap into a temp dir, renamed when complete.
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
if [ ! -d rootfs ]; then
    say "debootstrap bookworm (minbase) from $MIRROR"
    rm -rf rootfs.tmp
    debootstrap --variant=minbase bookworm rootfs.tmp "$MIRROR" >"$W/logs/debootstrap.log" 2>&1 \
        || { tail -30 "$W/logs/debootstrap.log" >&2; exit 1; }
    mv rootfs.tmp rootfs
fi

# 3. The local apt repository: a few small real packages, indexed with dpkg-scanpackages.
if [ ! -s repo/Packages ]; then
    say "building the local apt repository"
    rm -rf repo.tmp && mkdir repo.tmp
    (cd repo.tmp && "${APT[@]}" -o APT::Sandbox::User=root download -qq hello/bookworm tree/bookworm jq/bookworm libjq1/bookworm \
        libonig5/bookworm)
    (cd repo.tmp && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
    rm -rf repo && mv repo.tmp repo
fi

# 4. Configure the root: the local repository is its only apt source; fstab, hostname.
if [ ! -e rootfs/etc/apt/.forge-local-repo ]; then
    say "configuring the image root"
    rm -rf rootfs/srv/forge-repo && cp -a repo rootfs/srv/forge-repo
    rm -f rootfs/etc/apt/sources.list.d/*
    echo 'deb [trusted=yes] file:/srv/forge-repo ./' >rootfs/etc/apt/sources.list
    chroot rootfs apt-get -qq update >"$W/logs/chroot-apt.log" 2>&1
    chroot rootfs apt-get clean
    echo 'LABEL=root / ext4 defaults 0 1' >rootfs/etc/fstab
    echo forge-test-image >rootfs/etc/hostname
    touch rootfs/etc/apt/.forge-local-repo
fi

# 5. The base qcow2 (one appliance launch). Written to a temp name, renamed when complete.
if [ ! -s base.qcow2 ]; then
    say "making base.qcow2 (virt-make-fs)"
    rm -f base.qcow2.tmp
    virt-make-fs --format=qcow2 --type=ext4 --label=root --partition=mbr --size=+300M rootfs base.qcow2.tmp \
        >"$W/logs/virt-make-fs.log" 2>&1 || { tail -30 "$W/logs/virt-make-fs.log" >&2; exit 1; }
    mv base.qcow2.tmp base.qcow2
fi
say "ready: $W/base.qcow2 ($(qemu-img info --output=json base.qcow2 | grep -m1 '"virtual-size"' | tr -dc 0-9) bytes virtual)"
