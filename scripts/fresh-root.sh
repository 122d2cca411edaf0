#!/usr/bin/env bash
# scripts/fresh-root.sh -- how the README's setup claim is proven: run `scripts/demo.sh` and then
# `scripts/test.sh` from a clean `git clone` inside a fresh Debian 12 root (debootstrap minbase: no
# compiler, no libguestfs, no OpenStack), as root, with its own network, pid, mount, uts and ipc
# namespaces, so that nothing it installs or starts touches this machine's packages or services
# (the test cloud inside listens on the fresh root's own 127.0.0.1; its test hosts use its own
# /run/netns). Run as root on a Debian 12 machine; leaves this machine's network configuration alone.
#
#   network   slirp4netns (user-mode NAT, `--disable-host-loopback`): the root reaches the registries
#             this machine reaches, but not this machine's 127.0.0.1; no ip_forward, no iptables.
#   toolchain this machine's rustup default toolchain, bind-mounted read-only at /root/.rustup
#             (CI machines have one too); /root/.cargo starts empty except rustup's proxies, so
#             every crate is downloaded afresh.
#   devices   this machine's /dev (loop devices, /dev/net/tun); libguestfs runs under TCG.
#   site CAs  certificates this machine trusts beyond Debian's (a TLS proxy before crates.io).
#
# usage: scripts/fresh-root.sh [COMMAND]   (COMMAND runs in the clone, default: demo.sh then test.sh)
#   FRESH_DIR (/var/tmp/fresh)  holds base/ (the pristine debootstrap, made once) and run-*/ (one
#                               copy of base per run)
#   FRESH_REF (HEAD)            what to clone from this checkout (committed work only)
#   FRESH_KEEP=1                keep the run's root afterwards (default: removed after success;
#                               the logs are copied to run-*/logs either way)
#   MIRROR (deb.debian.org)     Debian mirror for debootstrap and the root's apt sources
# Prints each phase's exit code and wall time; exits non-zero if any phase failed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
D=${FRESH_DIR:-/var/tmp/fresh}
REF=${FRESH_REF:-HEAD}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CMD=${1:-}
[ "$(id -u)" = 0 ] || { echo "scripts/fresh-root.sh: run as root" >&2; exit 2; }
say() { echo "==> [$(date -u +%T)] $*"; }
mkdir -p "$D"

# 1. tools on this machine
need=()
for t in debootstrap:debootstrap slirp4netns:slirp4netns git:git unshare:util-linux; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} on this machine"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
TOOLCHAIN=$(rustup default 2>/dev/null | awk '{print $1}')
[ -n "$TOOLCHAIN" ] && [ -d "$HOME/.rustup/toolchains/$TOOLCHAIN" ] \
  || { echo "scripts/fresh-root.sh: no rustup default toolchain on this machine" >&2; exit 1; }

# 2. the pristine root, once (built under a temporary name, renamed when complete)
if [ ! -d "$D/base" ]; then
  say "debootstrap --variant=minbase bookworm into $D/base (a few minutes)"
  rm -rf "$D/base.tmp"
  debootstrap --variant=minbase bookworm "$D/base.tmp" "$MIRROR" > "$D/debootstrap.log" 2>&1 \
    || { tail -n 20 "$D/debootstrap.log" >&2; exit 1; }
  chroot "$D/base.tmp" apt-get clean
  mv "$D/base.tmp" "$D/base"
fi

# 3. this run's root: a copy of the pristine one, a clean clone, the toolchain mount point
RUN=$D/run-$(date -u +%Y%m%d-%H%M%S); R=$RUN/root
say "preparing $R"
mkdir -p "$RUN"; cp -a "$D/base" "$R"
rm -f "$R/etc/apt/sources.list"
cat > "$R/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# This machine's apt settings for its registry (e.g. a frozen mirror's Valid-Until), as a CI
# machine of the same site would have them. Nothing else of this machine's configuration is copied.
for f in /etc/apt/apt.conf.d/99artifact-registry; do [ -f "$f" ] && cp "$f" "$R/etc/apt/apt.conf.d/"; done
# This machine's resolvers (reached through the NAT), unless they are on its loopback: then
# slirp4netns' own DNS forwarder.
if grep -q '^nameserver' /etc/resolv.conf && ! grep -qE '^nameserver +(127\.|::1)' /etc/resolv.conf; then
  grep -E '^(nameserver|search|options)' /etc/resolv.conf > "$R/etc/resolv.conf"
else
  echo "nameserver 10.0.2.3" > "$R/etc/resolv.conf"
fi
# The site's own CA certificates (a TLS-intercepting proxy in front of the registries, say): the
# ones in this machine's bundle that no Debian package ships. They go where update-ca-certificates
# (run when the project's scripts install ca-certificates) adds them to the root's bundle.
mkdir -p "$R/usr/local/share/ca-certificates"
python3 - "$R/usr/local/share/ca-certificates" <<'PY'
import glob, re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
shipped = set()
for f in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True):
    shipped.update(pem.findall(open(f, errors="replace").read()))
try:
    bundle = pem.findall(open("/etc/ssl/certs/ca-certificates.crt").read())
except OSError:
    bundle = []
site = [c for c in bundle if c not in shipped]
for i, c in enumerate(site):
    open(f"{sys.argv[1]}/site-{i:02d}.crt", "w").write(c + "\n")
print(f"==> {len(site)} site CA certificate(s) for the root")
PY
echo forge-fresh > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 forge-fresh\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
git clone -q --no-local "$HERE" "$R/src/forge"
git -C "$R/src/forge" checkout -q --detach "$(git -C "$HERE" rev-parse "$REF")"
say "clone at $(git -C "$R/src/forge" log -1 --format='%h %s')"
mkdir -p "$R/root/.cargo/bin" "$R/root/.rustup/toolchains/$TOOLCHAIN" "$R/var/log/fresh"
cp -a "$HOME/.cargo/bin/." "$R/root/.cargo/bin/"
printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "default"\nauto_self_update = "disable"\n' \
  "$TOOLCHAIN" > "$R/root/.rustup/settings.toml"

# 4. the phases, run inside the root; each one's output in /var/log/fresh/<phase>.log
if [ -z "$CMD" ]; then CMD='phase demo scripts/demo.sh; phase test scripts/test.sh'; fi
cat > "$R/var/log/fresh/run.sh" <<EOF
#!/bin/bash
cd /src/forge
export HOME=/root PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 TERM=dumb
status=0
phase() { # name command...
  local name=\$1 t=\$(date +%s) rc=0; shift
  echo "\$name start \$(date -u +%T)" >> /var/log/fresh/times
  "\$@" > /var/log/fresh/\$name.log 2>&1 || rc=\$?
  echo "\$name rc=\$rc seconds=\$(( \$(date +%s) - t )) end \$(date -u +%T)" >> /var/log/fresh/times
  [ \$rc = 0 ] || status=1
}
$CMD
exit \$status
EOF
chmod +x "$R/var/log/fresh/run.sh"

# 5. namespaces. unshare itself enters the new network namespace (pid namespaces apply to its
#    child only), so slirp4netns attaches to unshare's pid; the child waits until the network is up.
say "running in the fresh root (logs: $R/var/log/fresh/*.log)"
rm -f "$RUN/net-ready"
unshare --net --mount --pid --uts --ipc --fork --kill-child --propagation private -- bash -c '
  R=$1 RUN=$2 TC=$3 HOMEDIR=$4
  for _ in $(seq 300); do [ -e "$RUN/net-ready" ] && break; sleep 0.1; done
  [ -e "$RUN/net-ready" ] || { echo "network did not come up" >&2; exit 1; }
  hostname forge-fresh
  mount -t proc proc "$R/proc"
  mount -t sysfs sysfs "$R/sys"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
  mount -t tmpfs -o mode=755 tmpfs "$R/run"; mkdir -p "$R/run/lock"
  mount --bind "$HOMEDIR/.rustup/toolchains/$TC" "$R/root/.rustup/toolchains/$TC"
  mount -o remount,bind,ro "$R/root/.rustup/toolchains/$TC"
  ip link set lo up 2>/dev/null || true
  exec chroot "$R" env -i /var/log/fresh/run.sh' _ "$R" "$RUN" "$TOOLCHAIN" "$HOME" &
NS=$!
# slirp4netns configures the namespace of the pid it is given: never this machine's own.
sleep 0.2
if [ "$(readlink "/proc/$NS/ns/net")" = "$(readlink /proc/self/ns/net)" ]; then
  echo "scripts/fresh-root.sh: pid $NS is not in a new network namespace" >&2; kill -KILL "$NS"; exit 1
fi
slirp4netns --configure --mtu=65520 --disable-host-loopback "$NS" tap0 > "$RUN/slirp4netns.log" 2>&1 &
SLIRP=$!
trap 'kill "$SLIRP" 2>/dev/null || true; kill -KILL "$NS" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  nsenter --net="/proc/$NS/ns/net" ip -4 addr show tap0 2>/dev/null | grep -q inet && break; sleep 0.1
done
touch "$RUN/net-ready"
rc=0; wait "$NS" || rc=$?
say "finished (exit $rc); phases:"
mkdir -p "$RUN/logs"
cp -a "$R/var/log/fresh/." "$R/tmp/forge-test-logs" "$RUN/logs/" 2>/dev/null || true
cat "$RUN/logs/times" 2>/dev/null || true
echo "logs in $RUN/logs"
if [ "$rc" = 0 ] && [ -z "${FRESH_KEEP:-}" ]; then rm -rf "$R"; else echo "kept $R"; fi
exit "$rc"
