#!/bin/bash
# setup.sh -- one-time (idempotent) preparation of the real SSH test hosts used by tests/ssh_*.rs
# and benches/ssh_check.rs. Run as root on Debian 12. Reaches only the machine's Debian mirror.
#
# Builds, under $TESTHOSTS_DIR (default /tmp/forge-testhosts):
#   rootfs/               debootstrap --variant=minbase bookworm (shared with other users of the dir)
#   forge-hostbase/       rootfs + openssh-server + sudo: the read-only lower layer of every host
#   forge-repo/           a local apt repository (dpkg-scanpackages): a few small real packages
#                         (hello, tree, sl and their missing dependencies) plus dummy packages named
#                         like the Spark corpus spec's packages (for the benchmark)
#   keys/                 client keys: id_ed25519, id_rsa, id_ed25519_pass (passphrase "forge pass")
# Each step builds into a temporary name and renames when complete, so an interrupted run is simply
# run again. Concurrent runs serialise on a lock file.
set -euo pipefail
TESTHOSTS_DIR=${TESTHOSTS_DIR:-/tmp/forge-testhosts}
mkdir -p "$TESTHOSTS_DIR"
exec 9>"$TESTHOSTS_DIR/.setup.lock"
flock 9
cd "$TESTHOSTS_DIR"
export DEBIAN_FRONTEND=noninteractive
log() { echo "setup: $*" >&2; }

# 0. tools on this machine
need=()
for t in debootstrap:debootstrap ssh-keygen:openssh-client dpkg-scanpackages:dpkg-dev ip:iproute2 \
         unshare:util-linux flock:util-linux chroot:coreutils; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 1. rootfs (same layout as the libguestfs image's rootfs; never modified after creation)
if [ ! -d rootfs ]; then
  MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
  [ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  log "debootstrap bookworm from $MIRROR (a few minutes)"
  rm -rf rootfs.tmp; mkdir -p logs
  debootstrap --variant=minbase bookworm rootfs.tmp "$MIRROR" >logs/debootstrap.log 2>&1 \
    || { tail -20 logs/debootstrap.log >&2; exit 1; }
  chroot rootfs.tmp apt-get clean
  [ -d rootfs ] || mv rootfs.tmp rootfs      # someone else may have made one meanwhile
  rm -rf rootfs.tmp
fi

# 2. host base: sshd + sudo, no host keys (every host gets its own)
if [ ! -f forge-hostbase/.forge-ready ]; then
  log "building forge-hostbase (openssh-server, sudo)"
  rm -rf forge-hostbase.tmp forge-hostbase; mkdir -p logs
  cp -a rootfs forge-hostbase.tmp
  B=forge-hostbase.tmp
  printf '#!/bin/sh\nexit 101\n' > "$B/usr/sbin/policy-rc.d"; chmod +x "$B/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$B/etc/resolv.conf"
  chroot "$B" sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends openssh-server sudo' >logs/hostbase.log 2>&1 \
    || { tail -20 logs/hostbase.log >&2; exit 1; }
  # download (not install) the test packages with the dependencies this base lacks, for the repo
  rm -rf "$B/var/cache/apt/archives/"*.deb
  chroot "$B" apt-get install -y -qq --download-only --no-install-recommends hello tree sl >>logs/hostbase.log 2>&1
  rm -rf debs.tmp; mkdir debs.tmp; mv "$B"/var/cache/apt/archives/*.deb debs.tmp/
  chroot "$B" apt-get clean
  rm -f "$B"/etc/ssh/ssh_host_*
  touch "$B/.forge-ready"
  mv "$B" forge-hostbase
  rm -rf debs; mv debs.tmp debs
fi

# 3. local apt repository: the real debs + dummy packages, indexed by dpkg-scanpackages
if [ ! -f forge-repo/Packages.gz ]; then
  log "building forge-repo"
  rm -rf forge-repo.tmp; mkdir forge-repo.tmp
  cp debs/*.deb forge-repo.tmp/
  # Dummies: empty packages named like the Spark spec's packages (ubuntu branch), so a host can
  # satisfy that corpus spec offline. dpkg-deb by hand rather than equivs: 5 lines, no extra tools.
  for p in openjdk-8-jdk ntp hadoop-hdfs-namenode hadoop-hdfs-datanode; do
    d=dummy.tmp/$p; mkdir -p "$d/DEBIAN" "$d/usr/share/doc/$p"
    printf 'Package: %s\nVersion: 0.forge1\nArchitecture: all\nMaintainer: forge tests <forge@localhost>\nDescription: forge test dummy for %s\n' \
      "$p" "$p" > "$d/DEBIAN/control"
    echo "forge test dummy" > "$d/usr/share/doc/$p/README"
    dpkg-deb --root-owner-group -Zgzip --build "$d" "forge-repo.tmp/${p}_0.forge1_all.deb" >/dev/null
  done
  rm -rf dummy.tmp
  (cd forge-repo.tmp && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null && gzip -9kf Packages)
  rm -rf forge-repo; mv forge-repo.tmp forge-repo
fi

# 4. client keys
mkdir -p keys; chmod 700 keys
[ -f keys/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -C forge-test-ed25519 -f keys/id_ed25519
[ -f keys/id_rsa ] || ssh-keygen -q -t rsa -b 3072 -N '' -C forge-test-rsa -f keys/id_rsa
[ -f keys/id_ed25519_pass ] || ssh-keygen -q -t ed25519 -N 'forge pass' -C forge-test-pass -f keys/id_ed25519_pass
cat keys/id_ed25519.pub keys/id_rsa.pub keys/id_ed25519_pass.pub > keys/authorized_keys
log "ready: $TESTHOSTS_DIR"
