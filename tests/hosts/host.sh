#!/bin/bash
# host.sh -- one real SSH test host: OpenSSH sshd serving an overlay of the Debian root built by
# setup.sh, in its own network namespace, reachable only from this machine.
#   network: netns NAME + veth pair (this machine 10.232.N.1/24, the host 10.232.N.2/24, no route
#            out). 10.232 rather than 10.231 so these hosts never collide with hosts made by other
#            tools with the shared make-host.sh (override with FORGE_TESTHOST_NET=A.B).
#   rootfs : overlayfs (lower = forge-hostbase, read-only and shared; upper = per-host dir), so
#            every change the host's processes make shows up in hosts/NAME/upper.
#   sshd   : the rootfs's own sshd, chrooted, in private mount/pid/uts namespaces; key-only login,
#            the keys of setup.sh authorized for root; its own ed25519 host key, recorded in
#            hosts/NAME/known_hosts.
# usage:  host.sh up NAME N            # N in 1..254; exit 4 if netns NAME exists (the atomic claim)
#         host.sh down NAME
#         host.sh add-user NAME USER [nosudo]   # login user with the setup keys, passwordless sudo
#         host.sh use-repo NAME        # the local apt repo becomes the host's only apt source
set -euo pipefail
TESTHOSTS_DIR=${TESTHOSTS_DIR:-/tmp/forge-testhosts}
NET=${FORGE_TESTHOST_NET:-10.232}
BASE=$TESTHOSTS_DIR/forge-hostbase
KEYS=$TESTHOSTS_DIR/keys

up() {
  local NAME=$1 N=$2
  local H=$TESTHOSTS_DIR/hosts/$NAME ADDR=$NET.$N.2 GW=$NET.$N.1
  [ -f "$BASE/.forge-ready" ] || { echo "no host base: run tests/hosts/setup.sh first" >&2; exit 3; }
  # 1. network namespace + veth. `ip netns add` fails if the name is taken: that is the claim.
  ip netns add "$NAME" 2>/dev/null || { echo "netns $NAME exists" >&2; exit 4; }
  trap 'down "$NAME"' ERR
  rm -rf "$H"; mkdir -p "$H"/{upper,work,root}
  ip link add "v-$NAME" type veth peer name eth0 netns "$NAME"
  ip addr add "$GW/24" dev "v-$NAME"; ip link set "v-$NAME" up
  ip -n "$NAME" link set lo up
  ip -n "$NAME" addr add "$ADDR/24" dev eth0; ip -n "$NAME" link set eth0 up
  # 2. copy-on-write rootfs
  mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$H/upper,workdir=$H/work" "$H/root"
  local R=$H/root
  echo "$NAME" > "$R/etc/hostname"
  printf '127.0.0.1 localhost %s\n' "$NAME" > "$R/etc/hosts"
  install -d -m700 "$R/root/.ssh"; install -m600 "$KEYS/authorized_keys" "$R/root/.ssh/authorized_keys"
  install -d -m755 "$R/run/sshd"
  ssh-keygen -q -t ed25519 -N '' -C "$NAME" -f "$R/etc/ssh/ssh_host_ed25519_key"
  cat > "$R/etc/ssh/sshd_config.d/test-host.conf" <<CONF
ListenAddress $ADDR
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
CONF
  echo "$ADDR $(cut -d' ' -f1,2 "$R/etc/ssh/ssh_host_ed25519_key.pub")" > "$H/known_hosts"
  # 3. sshd: netns + private mount/pid/uts namespaces, chroot into the overlay
  ip netns exec "$NAME" unshare --mount --pid --uts --fork --kill-child --propagation private -- \
    sh -c "hostname $NAME && mount -t proc proc $R/proc && mount -t sysfs sysfs $R/sys &&
           mount --rbind /dev $R/dev && exec chroot $R /usr/sbin/sshd -D -e" \
    > "$H/sshd.log" 2>&1 &
  echo $! > "$H/pid"
  trap - ERR
  for _ in $(seq 200); do
    timeout 0.2 bash -c "</dev/tcp/$ADDR/22" 2>/dev/null && { echo "$ADDR"; return 0; }
    sleep 0.05
  done
  echo "sshd did not come up:" >&2; cat "$H/sshd.log" >&2; down "$NAME"; return 1
}

down() {
  local NAME=$1 H=$TESTHOSTS_DIR/hosts/$1
  # util-linux `unshare --fork` ignores SIGTERM; SIGKILL it and --kill-child kills sshd, PID 1 of
  # the host's pid namespace, so every process of the host dies with it.
  if [ -f "$H/pid" ]; then kill -KILL "$(cat "$H/pid")" 2>/dev/null || true
    for _ in $(seq 100); do [ -z "$(ip netns pids "$NAME" 2>/dev/null)" ] && break; sleep 0.02; done; fi
  ip netns del "$NAME" 2>/dev/null || true          # also deletes the veth pair
  ip link del "v-$NAME" 2>/dev/null || true
  if mountpoint -q "$H/root" 2>/dev/null; then umount "$H/root" || umount -l "$H/root"; fi
  rm -rf "$H"
}

add_user() {
  local NAME=$1 U=$2 R=$TESTHOSTS_DIR/hosts/$1/root
  chroot "$R" useradd -m -s /bin/bash "$U"
  # useradd leaves the password field "!", which sshd without PAM treats as a locked account.
  chroot "$R" usermod -p '*' "$U"
  install -d -m700 "$R/home/$U/.ssh"; install -m600 "$KEYS/authorized_keys" "$R/home/$U/.ssh/authorized_keys"
  chroot "$R" chown -R "$U:$U" "/home/$U/.ssh"
  if [ "${3:-}" != nosudo ]; then
    echo "$U ALL=(ALL) NOPASSWD:ALL" > "$R/etc/sudoers.d/$U"; chmod 440 "$R/etc/sudoers.d/$U"
  fi
}

use_repo() {
  local R=$TESTHOSTS_DIR/hosts/$1/root
  rm -rf "$R/srv/repo"; mkdir -p "$R/srv"; cp -a "$TESTHOSTS_DIR/forge-repo" "$R/srv/repo"
  echo 'deb [trusted=yes] file:/srv/repo ./' > "$R/etc/apt/sources.list"
  rm -f "$R"/etc/apt/sources.list.d/*
  chroot "$R" apt-get update -qq >/dev/null
}

case ${1:-} in
  up)   up "$2" "$3" ;;
  down) down "$2" ;;
  add-user) add_user "$2" "$3" "${4:-}" ;;
  use-repo) use_repo "$2" ;;
  *) echo "usage: $0 up NAME N | down NAME | add-user NAME USER [nosudo] | use-repo NAME" >&2; exit 2 ;;
esac
