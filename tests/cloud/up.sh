#!/bin/bash
# up.sh - a real, minimal OpenStack Zed (Keystone, Glance, Placement, Nova with the fake
# virt driver, Neutron with ML2/linuxbridge, Cinder with the NFS driver) from Debian 12
# (bookworm) packages, all on 127.0.0.1, state (sqlite, or
# MariaDB with DB_BACKEND=mariadb) under $TESTCLOUD_DIR. Idempotent: installs what is missing,
# writes configs, initialises DBs once, starts what is not running. Run as root.
# Stop with down.sh (down.sh --purge wipes state). Check with smoke.sh.
# forge's integration tests (tests/openstack_*.rs) read $TESTCLOUD_DIR/clouds.yaml, which this
# script writes (clouds forge-admin and forge-demo). Loopback only: every service binds 127.0.0.1.
#
# Neutron: neutron-server (ML2: flat + vlan types, linuxbridge mechanism) and the linuxbridge
# agent (host testcloud-compute, like nova-compute, so Nova's port binding succeeds); its
# physical network 'physnet1' is mapped to an empty bridge 'forge-ext' (this kernel has no dummy
# or vlan interfaces; with the fake virt driver no tap device is ever plugged, so nothing is
# bridged). No DHCP/L3 agents: ports get addresses from Neutron's IPAM, routers and floating
# IPs are API objects only. Seeded (bin/seed_cloud.py): external network 'public' (flat,
# 203.0.113.0/24), router 'forge-router' with its gateway there, networks 'private' (admin) and
# 'demo-net' (demo), each with a subnet on the router.
# Cinder: api, scheduler, volume with the stock NFS driver (volume type 'nfs'). The kernel has
# no device-mapper (so no LVM) and no NFS client, so the driver's one share is a local
# directory bind-mounted where the driver would mount it (it sees it mounted and uses it as it
# would an NFS export): volumes are raw files, attach hands Nova an 'nfs' connection (Nova's
# fake driver records it), create-from-image and upload-to-image run qemu-img on the file.
#
# One part is not stock OpenStack, a small stand-in, named as such:
#  - STAND-IN snapshot upload (bin/nova-compute-fake): the fake virt driver uploads a 1 MiB blob
#    on createImage so snapshot images become 'active' (stock FakeDriver leaves them 'queued').
#
#   env: TESTCLOUD_DIR (/tmp/forge-testcloud)  ADMIN_PASSWORD (admin-secret)
#        SERVICE_PASSWORD (service-secret) DEMO_PASSWORD (demo-secret)
#        WITH_NOVA (1: with Neutron too)  WITH_CINDER (=WITH_NOVA)  NOVA_FAKE_SNAPSHOT_UPLOAD (1)  GLANCE_WEBDL_PORTS (80,443,8000,8080,8123)
#        DB_BACKEND (mariadb | sqlite)  DB_PASSWORD (db-secret)   [switching backend: down.sh --purge first]
#        MariaDB is the default: under test load SQLite's "database is locked" made Nova fail
#        deletes, stops and snapshots at random.
#
# Endpoints: keystone :5000/v3  glance :9292  placement :8778  nova :8774/v2.1
#            neutron :9696  cinder :8776/v3 (catalog types volumev3 and block-storage)
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin          # system python3 (avoid pyenv/venv shims)
B=${TESTCLOUD_DIR:-/tmp/forge-testcloud}
ADMIN_PW=${ADMIN_PASSWORD:-admin-secret}
SVC_PW=${SERVICE_PASSWORD:-service-secret}
DEMO_PW=${DEMO_PASSWORD:-demo-secret}
WITH_NOVA=${WITH_NOVA:-1}
WITH_CINDER=${WITH_CINDER:-$WITH_NOVA}
[ "$WITH_NOVA" = 1 ] || WITH_CINDER=0
NOVA_FAKE_SNAPSHOT_UPLOAD=${NOVA_FAKE_SNAPSHOT_UPLOAD:-1}
GLANCE_WEBDL_PORTS=${GLANCE_WEBDL_PORTS:-80,443,8000,8080,8123}
DB_BACKEND=${DB_BACKEND:-mariadb}
DB_PW=${DB_PASSWORD:-db-secret}
APT="apt-get -o DPkg::Lock::Timeout=900"
T0=$(date +%s%N)
log() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[%4d.%01ds] %s\n' $((ms/1000)) $(((ms%1000)/100)) "$*"; }
die() { echo "ERROR: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
mkdir -p "$B"/{etc/keystone,etc/glance,etc/placement,etc/nova,etc/neutron,etc/cinder,bin,log,run,images} \
         "$B"/state/{keystone,glance/staging,glance/tasks,glance/cache,glance/lock,nova/instances,nova/lock,rabbitmq} \
         "$B"/state/{neutron/lock,cinder/lock,cinder/share,cinder/mnt,cinder/conversion}

# ---------------------------------------------------------------- 1. packages
PKGS="keystone glance-api placement-api uwsgi-plugin-python3 sqlite3 curl jq"
[ "$WITH_NOVA" = 1 ] && PKGS="$PKGS rabbitmq-server nova-api nova-conductor nova-scheduler nova-compute nova-compute-ironic"
[ "$WITH_NOVA" = 1 ] && PKGS="$PKGS neutron-server neutron-linuxbridge-agent"
[ "$WITH_CINDER" = 1 ] && PKGS="$PKGS cinder-api cinder-scheduler cinder-volume nfs-common qemu-utils"
[ "$DB_BACKEND" = mariadb ] && PKGS="$PKGS mariadb-server"
MISSING=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"; done | xargs)
if [ -n "$MISSING" ]; then
  log "installing: $MISSING"
  CREATED_POLICY=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then      # keep maintainer scripts from starting daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; CREATED_POLICY=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # every openstack-pkg-tools question answered "no": no dbconfig-common, no endpoint/user registration
  debconf-set-selections <<'EOF'
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
glance-common glance/configure_db boolean false
glance-common glance/configure_rabbit boolean false
glance-common glance/configure_ksat boolean false
glance-api glance/configure_api-endpoint boolean false
placement-common placement/configure_db boolean false
placement-common placement/configure_ksat boolean false
placement-api placement/configure_api-endpoint boolean false
nova-common nova/configure_db boolean false
nova-common nova/configure_rabbit boolean false
nova-common nova/configure_ksat boolean false
nova-common nova/configure_placement boolean false
nova-common nova/configure_neutron boolean false
nova-api novaapi/configure_db boolean false
nova-api nova/configure_api-endpoint boolean false
neutron-common neutron/configure_db boolean false
neutron-common neutron/configure_rabbit boolean false
neutron-common neutron/configure_ksat boolean false
neutron-server neutron/configure_api-endpoint boolean false
cinder-common cinder/configure_db boolean false
cinder-common cinder/configure_rabbit boolean false
cinder-common cinder/configure_ksat boolean false
cinder-api cinder/configure_api-endpoint boolean false
EOF
  $APT update -qq
  DEBIAN_FRONTEND=noninteractive $APT install -y -q --no-install-recommends $MISSING > "$B/log/apt-install.log" 2>&1 \
    || { tail -30 "$B/log/apt-install.log"; die "apt-get install failed"; }
  if [ "$CREATED_POLICY" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  log "packages installed"
else
  log "packages already installed"
fi

# ---------------------------------------------------------------- 2. config files
dburl() { # database name -> oslo.db connection URL
  if [ "$DB_BACKEND" = mariadb ]; then echo "mysql+pymysql://openstack:$DB_PW@127.0.0.1:3306/$1?charset=utf8"
  else echo "sqlite:///$B/state/$1.sqlite"; fi
}
KS_AUTH="www_authenticate_uri = http://127.0.0.1:5000
auth_url = http://127.0.0.1:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
password = $SVC_PW
region_name = RegionOne"

cat > "$B/etc/keystone/keystone.conf" <<EOF
[DEFAULT]
log_dir = $B/log
log_file = keystone.log
[database]
connection = $(dburl keystone)
[fernet_tokens]
key_repository = $B/state/keystone/fernet-keys
[fernet_receipts]
key_repository = $B/state/keystone/fernet-keys
[credential]
key_repository = $B/state/keystone/credential-keys
[oslo_policy]
policy_dirs = /etc/keystone/policy.d
EOF

# uwsgi http-socket: 'Connection: close' is required (keep-alive clients get resets otherwise);
# threads = 1: oslo.db+sqlite connections must not cross threads (else leaked read locks).
uwsgi_ini() { # name port wsgi-script env processes
  cat > "$B/etc/$1/uwsgi.ini" <<EOF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:$2
wsgi-file = $3
env = $4
master = true
processes = $5
threads = 1
lazy-apps = true
buffer-size = 65535
die-on-term = true
no-orphans = true
need-app = true
add-header = Connection: close
logto = $B/log/$1-uwsgi.log
pidfile = $B/run/$1.pid
EOF
}
uwsgi_ini keystone 5000 /usr/bin/keystone-wsgi-public "OS_KEYSTONE_CONFIG_FILES=$B/etc/keystone/keystone.conf" 2
uwsgi_ini placement 8778 /usr/bin/placement-api "OS_PLACEMENT_CONFIG_DIR=$B/etc/placement" 1

cat > "$B/etc/glance/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 0
log_dir = $B/log
log_file = glance-api.log
enabled_backends = file:file
enabled_import_methods = [glance-direct,web-download,copy-image]
image_cache_dir = $B/state/glance/cache
[database]
connection = $(dburl glance)
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = $B/images/
[os_glance_staging_store]
filesystem_store_datadir = $B/state/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $B/state/glance/tasks/
[import_filtering_opts]
# web-download from a local http server (loopback is refused unless listed here)
allowed_hosts = [127.0.0.1,localhost]
allowed_ports = [$GLANCE_WEBDL_PORTS]
[keystone_authtoken]
$KS_AUTH
username = glance
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $B/state/glance/lock
[oslo_policy]
policy_dirs = /etc/glance/policy.d
EOF

cat > "$B/etc/placement/placement.conf" <<EOF
[DEFAULT]
log_dir = $B/log
log_file = placement.log
[api]
auth_strategy = keystone
[placement_database]
connection = $(dburl placement)
[keystone_authtoken]
$KS_AUTH
username = placement
[oslo_policy]
policy_dirs = /etc/placement/policy.d
EOF

cat > "$B/etc/nova/nova.conf" <<EOF
[DEFAULT]
host = testcloud-compute
my_ip = 127.0.0.1
state_path = $B/state/nova
instances_path = $B/state/nova/instances
log_dir = $B/log
transport_url = rabbit://guest:guest@127.0.0.1:5672/
compute_driver = fake.FakeDriver
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = 8774
osapi_compute_workers = 1
heal_instance_info_cache_interval = -1
# the fake driver plugs no VIF, so no network-vif-plugged event ever comes: do not wait for one
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
rootwrap_config = /etc/nova/rootwrap.conf
[api]
auth_strategy = keystone
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 10
[keystone_authtoken]
$KS_AUTH
username = nova
[service_user]
# Cinder deletes an in-use volume's attachment only for a request carrying Nova's service token
send_service_user_token = true
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $SVC_PW
[placement]
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = placement
password = $SVC_PW
region_name = RegionOne
valid_interfaces = public
[neutron]
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $SVC_PW
region_name = RegionOne
valid_interfaces = public
[glance]
region_name = RegionOne
valid_interfaces = public
[cinder]
os_region_name = RegionOne
catalog_info = volumev3::publicURL
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $SVC_PW
[oslo_concurrency]
lock_path = $B/state/nova/lock
[oslo_messaging_notifications]
driver = noop
[oslo_policy]
policy_dirs = /etc/nova/policy.d
[vnc]
enabled = false
[spice]
enabled = false
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
EOF
# DB sections only for api/conductor/scheduler/nova-manage (nova-compute must not have them)
cat > "$B/etc/nova/nova-db.conf" <<EOF
[api_database]
connection = $(dburl nova_api)
[database]
connection = $(dburl nova_cell1)
EOF

# Neutron: ML2 with flat (external) and vlan (tenant) networks on physnet1, linuxbridge agent
cat > "$B/etc/neutron/neutron.conf" <<EOF
[DEFAULT]
host = testcloud-compute
bind_host = 127.0.0.1
bind_port = 9696
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
allow_overlapping_ips = true
transport_url = rabbit://guest:guest@127.0.0.1:5672/
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
state_path = $B/state/neutron
log_dir = $B/log
api_paste_config = /etc/neutron/api-paste.ini
# no DHCP agent: do not cast port events to one
dhcp_agent_notification = false
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
[agent]
root_helper = sudo /usr/bin/neutron-rootwrap /etc/neutron/rootwrap.conf
report_interval = 10
[experimental]
# Zed marks the linuxbridge driver experimental; it is the lightest agent that binds ports here
linuxbridge = true
[database]
connection = $(dburl neutron)
[keystone_authtoken]
$KS_AUTH
username = neutron
[nova]
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $SVC_PW
region_name = RegionOne
[oslo_concurrency]
lock_path = $B/state/neutron/lock
[oslo_messaging_notifications]
driver = noop
[oslo_policy]
policy_dirs = /etc/neutron/policy.d
EOF
cat > "$B/etc/neutron/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vlan
tenant_network_types = vlan
mechanism_drivers = linuxbridge
extension_drivers = port_security
[ml2_type_flat]
flat_networks = physnet1
[ml2_type_vlan]
network_vlan_ranges = physnet1:100:199
EOF
cat > "$B/etc/neutron/linuxbridge_agent.ini" <<EOF
[linux_bridge]
bridge_mappings = physnet1:forge-ext
[vxlan]
enable_vxlan = false
[securitygroup]
# security groups are API objects here (no tap device is ever plugged to filter)
enable_security_group = true
firewall_driver = noop
[agent]
polling_interval = 2
EOF

# Cinder: one NFS backend whose share is a bind-mounted local directory (see the header)
CINDER_SHARE="127.0.0.1:$B/state/cinder/share"
CINDER_MNT="$B/state/cinder/mnt/$(printf '%s' "$CINDER_SHARE" | md5sum | cut -d' ' -f1)"
echo "$CINDER_SHARE" > "$B/etc/cinder/nfs_shares"
cat > "$B/etc/cinder/cinder.conf" <<EOF
[DEFAULT]
host = testcloud-volume
my_ip = 127.0.0.1
state_path = $B/state/cinder
log_dir = $B/log
transport_url = rabbit://guest:guest@127.0.0.1:5672/
auth_strategy = keystone
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = 8776
osapi_volume_workers = 1
api_paste_config = /etc/cinder/api-paste.ini
rootwrap_config = /etc/cinder/rootwrap.conf
enabled_backends = nfs
storage_availability_zone = nova
default_availability_zone = nova
image_conversion_dir = $B/state/cinder/conversion
glance_api_servers = http://127.0.0.1:9292
[nfs]
volume_driver = cinder.volume.drivers.nfs.NfsDriver
volume_backend_name = nfs
nfs_shares_config = $B/etc/cinder/nfs_shares
nfs_mount_point_base = $B/state/cinder/mnt
nfs_sparsed_volumes = true
nfs_snapshot_support = true
nas_secure_file_operations = false
nas_secure_file_permissions = false
[database]
connection = $(dburl cinder)
[keystone_authtoken]
$KS_AUTH
username = cinder
[nova]
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $SVC_PW
region_name = RegionOne
[oslo_concurrency]
lock_path = $B/state/cinder/lock
[oslo_messaging_notifications]
driver = noop
[oslo_policy]
policy_dirs = /etc/cinder/policy.d
EOF

cat > "$B/etc/rabbitmq-env.sh" <<EOF
export HOME=$B/state/rabbitmq
export RABBITMQ_NODENAME=rabbit@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=5672
export RABBITMQ_DIST_PORT=25672
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_MNESIA_BASE=$B/state/rabbitmq/mnesia
export RABBITMQ_LOG_BASE=$B/log/rabbitmq
export RABBITMQ_ENABLED_PLUGINS_FILE=$B/etc/rabbitmq-enabled-plugins
export RABBITMQ_CONFIG_FILE=$B/etc/rabbitmq
export RABBITMQ_PID_FILE=$B/run/rabbitmq.pid
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
echo '[].' > "$B/etc/rabbitmq-enabled-plugins"
printf 'listeners.tcp.default = 127.0.0.1:5672\n' > "$B/etc/rabbitmq.conf"

# clouds.yaml for forge's tests (OS_CLIENT_CONFIG_FILE=$B/clouds.yaml, cloud forge-admin / forge-demo)
cat > "$B/clouds.yaml" <<EOF
clouds:
  forge-admin:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: admin
      password: $ADMIN_PW
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  forge-demo:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: demo
      password: $DEMO_PW
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
chmod 600 "$B/clouds.yaml"

cat > "$B/openrc" <<EOF
export OS_AUTH_URL=http://127.0.0.1:5000/v3
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=RegionOne
export OS_USERNAME=admin
export OS_PASSWORD=$ADMIN_PW
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
EOF

# ---------------------------------------------------------------- 3. helper programs
cat > "$B/bin/ks_register.py" <<'EOF'
#!/usr/bin/python3
"""Idempotently create service project/users, demo project/user, services and endpoints."""
import sys
from keystoneauth1.identity import v3
from keystoneauth1 import session
from keystoneclient.v3 import client
admin_pw, svc_pw, demo_pw, with_nova, with_cinder = sys.argv[1:6]
URL = "http://127.0.0.1:5000/v3"
ks = client.Client(session=session.Session(auth=v3.Password(
    auth_url=URL, username="admin", password=admin_pw, project_name="admin",
    user_domain_id="default", project_domain_id="default")), interface="public")
def one(mgr, **kw):
    found = mgr.list(**kw)
    return found[0] if found else None
def project(name):
    return one(ks.projects, name=name, domain="default") or ks.projects.create(name, "default")
def user(name, pw, proj, roles):
    u = one(ks.users, name=name, domain="default") or ks.users.create(name, domain="default", password=pw, default_project=proj)
    for r in roles:
        ks.roles.grant(r, user=u, project=proj)
admin_role = one(ks.roles, name="admin")
member_role = one(ks.roles, name="member")
service_role = one(ks.roles, name="service") or ks.roles.create("service")
svc = project("service")
names = ["glance"]
if with_nova == "1":
    names += ["nova", "placement", "neutron"]
if with_cinder == "1":
    names += ["cinder"]
for name in names:
    user(name, svc_pw, svc, (admin_role, service_role))
user("demo", demo_pw, project("demo"), (member_role,))
services = [("glance", "image", "http://127.0.0.1:9292")]
if with_nova == "1":
    services += [("placement", "placement", "http://127.0.0.1:8778"),
                 ("nova", "compute", "http://127.0.0.1:8774/v2.1"),
                 ("neutron", "network", "http://127.0.0.1:9696")]
if with_cinder == "1":   # Nova looks for volumev3; the service-types authority name is block-storage
    services += [("cinderv3", "volumev3", "http://127.0.0.1:8776/v3/%(project_id)s"),
                 ("cinder", "block-storage", "http://127.0.0.1:8776/v3/%(project_id)s")]
for name, typ, url in services:
    s = one(ks.services, name=name, type=typ) or ks.services.create(name, type=typ, enabled=True)
    for iface in ("public", "internal", "admin"):
        if one(ks.endpoints, service=s, interface=iface, region_id="RegionOne") is None:
            ks.endpoints.create(s, url, interface=iface, region="RegionOne", enabled=True)
print("keystone: service/demo users, services and endpoints registered")
EOF

cat > "$B/bin/seed_cloud.py" <<'EOF'
#!/usr/bin/python3
"""Idempotently create the test cloud's networks (external 'public' with a subnet, router
'forge-router' with its gateway there, 'private' for admin and 'demo-net' for demo, each with a
subnet on the router) and Cinder's volume type 'nfs'. Objects are found by name."""
import sys
from keystoneauth1.identity import v3
from keystoneauth1 import session
admin_pw, demo_pw, with_cinder = sys.argv[1:4]
URL = "http://127.0.0.1:5000/v3"
def sess(user, pw, project):
    return session.Session(auth=v3.Password(auth_url=URL, username=user, password=pw, project_name=project,
                                            user_domain_id="default", project_domain_id="default"))
admin, demo = sess("admin", admin_pw, "admin"), sess("demo", demo_pw, "demo")
NET = {"service_type": "network", "interface": "public"}
def one(s, coll, **query):
    q = "&".join("%s=%s" % kv for kv in query.items())
    found = s.get("/v2.0/%s?%s" % (coll, q), endpoint_filter=NET).json()[coll]
    return found[0] if found else None
def ensure(s, coll, body, **query):
    kind = coll[:-1]
    return one(s, coll, **query) or s.post("/v2.0/" + coll, json={kind: body}, endpoint_filter=NET).json()[kind]
pub = ensure(admin, "networks", {"name": "public", "router:external": True, "shared": False,
                                 "provider:network_type": "flat", "provider:physical_network": "physnet1"},
             name="public")
ensure(admin, "subnets", {"name": "public-subnet", "network_id": pub["id"], "ip_version": 4,
                          "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1", "enable_dhcp": False,
                          "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.250"}]},
       name="public-subnet")
router = ensure(admin, "routers", {"name": "forge-router", "external_gateway_info": {"network_id": pub["id"]}},
                name="forge-router")
for s, net, cidr in ((admin, "private", "10.10.0.0/24"), (demo, "demo-net", "10.20.0.0/24")):
    n = ensure(s, "networks", {"name": net}, name=net)
    sub = ensure(s, "subnets", {"name": net + "-subnet", "network_id": n["id"], "ip_version": 4, "cidr": cidr},
                 name=net + "-subnet")
    if one(admin, "ports", device_id=router["id"], network_id=n["id"]) is None:
        admin.put("/v2.0/routers/%s/add_router_interface" % router["id"], json={"subnet_id": sub["id"]},
                  endpoint_filter=NET)
print("neutron: public (external), forge-router, private, demo-net")
if with_cinder == "1":
    VOL = {"service_type": "volumev3", "interface": "public"}
    types = admin.get("/types", endpoint_filter=VOL).json()["volume_types"]
    if not any(t["name"] == "nfs" for t in types):
        t = admin.post("/types", json={"volume_type": {"name": "nfs", "os-volume-type-access:is_public": True}},
                       endpoint_filter=VOL).json()["volume_type"]
        admin.post("/types/%s/extra_specs" % t["id"], json={"extra_specs": {"volume_backend_name": "nfs"}},
                   endpoint_filter=VOL)
    print("cinder: volume type nfs")
EOF

cat > "$B/bin/nova-compute-fake" <<'EOF'
#!/usr/bin/python3
"""STAND-IN snapshot upload: nova-compute with nova's fake.FakeDriver, except that snapshot() uploads a small blob
through nova's Glance client (as the libvirt driver does), so createImage images become
'active' (stock FakeDriver leaves them 'queued' forever)."""
import io
import sys
import nova.cmd  # noqa: F401  (eventlet monkey-patching must happen first)
from nova.compute import task_states
from nova import exception
from nova.image import glance
from nova.virt import fake

def _snapshot(self, context, instance, image_id, update_task_state):
    if instance.uuid not in self.instances:
        raise exception.InstanceNotRunning(instance_id=instance.uuid)
    update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
    update_task_state(task_state=task_states.IMAGE_UPLOADING,
                      expected_state=task_states.IMAGE_PENDING_UPLOAD)
    head = ("fake snapshot of instance %s\n" % instance.uuid).encode()
    data = io.BytesIO(head + b"\0" * (1024 * 1024 - len(head)))
    fmt = getattr(instance.image_meta, "disk_format", None) or "raw"
    meta = {"disk_format": "raw" if fmt in ("ami", "iso") else fmt,
            "container_format": "bare",
            "properties": {"image_location": "snapshot", "image_state": "available",
                           "owner_id": instance.project_id}}
    glance.API().update(context, image_id, meta, data, purge_props=False)

fake.FakeDriver.snapshot = _snapshot
from nova.cmd import compute  # noqa: E402
if __name__ == "__main__":
    sys.exit(compute.main())
EOF
chmod +x "$B"/bin/*

# ---------------------------------------------------------------- 4. helpers
running() { local f="$B/run/$1.pid"; [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
start_bg() { # name command...   (setsid without fork: $! is the service itself)
  local name=$1; shift
  running "$name" && return 0
  setsid nohup "$@" > "$B/log/$name.out" 2>&1 < /dev/null &
  echo $! > "$B/run/$name.pid"
}
wait_http() { # name url "codes" [timeout]
  local deadline=$(( $(date +%s) + ${4:-180} )) code
  while :; do
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$2" || true)
    [[ " $3 " == *" $code "* ]] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && { tail -n 30 "$B"/log/"$1"* >&2 || true; die "$1 did not answer on $2 (last: $code)"; }
    sleep 0.3
  done
}
wal() { # sqlite only: WAL journal, so that readers never block writers (else 'database is locked')
  [ "$DB_BACKEND" = sqlite ] && sqlite3 "$B/state/$1.sqlite" 'PRAGMA journal_mode=WAL;' > /dev/null; return 0
}
dbq() { # db sql -> single value
  if [ "$DB_BACKEND" = mariadb ]; then mariadb --socket="$B/run/mysqld.sock" -uroot -N -B "$1" -e "$2"
  else sqlite3 "$B/state/$1.sqlite" "$2"; fi
}
token() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$ADMIN_PW\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
    http://127.0.0.1:5000/v3/auth/tokens | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'
}
NOVA_DB="--config-file $B/etc/nova/nova.conf --config-file $B/etc/nova/nova-db.conf"

# ---------------------------------------------------------------- 5. mariadb (optional), keystone (+ rabbit in parallel)
if [ "$DB_BACKEND" = mariadb ]; then
  if [ ! -d "$B/state/mysql/mysql" ]; then
    log "mariadb: initialising datadir"
    mariadb-install-db --no-defaults --user=root --datadir="$B/state/mysql" --skip-test-db > "$B/log/mariadb-install.out" 2>&1
  fi
  start_bg mariadb mariadbd --no-defaults --user=root --datadir="$B/state/mysql" --socket="$B/run/mysqld.sock" \
    --pid-file="$B/run/mariadbd.pid" --bind-address=127.0.0.1 --port=3306 --skip-name-resolve --skip-log-bin \
    --log-error="$B/log/mariadb.err" --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 --max-connections=1000
  for i in $(seq 1 120); do mariadb-admin --socket="$B/run/mysqld.sock" -uroot ping > /dev/null 2>&1 && break; sleep 0.25; done
  mariadb-admin --socket="$B/run/mysqld.sock" -uroot ping > /dev/null 2>&1 || die "mariadb did not start (see $B/log/mariadb.err)"
  mariadb --socket="$B/run/mysqld.sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'openstack'@'127.0.0.1' IDENTIFIED BY '$DB_PW';
$(for d in keystone glance placement nova_api nova_cell0 nova_cell1 neutron cinder; do echo "CREATE DATABASE IF NOT EXISTS $d CHARACTER SET utf8; GRANT ALL ON $d.* TO 'openstack'@'127.0.0.1';"; done)
SQL
  log "mariadb up on 127.0.0.1:3306"
fi
if [ ! -e "$B/state/.keystone-init" ]; then
  log "keystone: db_sync, fernet/credential keys, bootstrap"
  KC="--config-file $B/etc/keystone/keystone.conf"
  keystone-manage $KC db_sync 2> "$B/log/keystone-manage.err"
  wal keystone
  keystone-manage $KC fernet_setup --keystone-user root --keystone-group root 2>> "$B/log/keystone-manage.err"
  keystone-manage $KC credential_setup --keystone-user root --keystone-group root 2>> "$B/log/keystone-manage.err"
  keystone-manage $KC bootstrap --bootstrap-password "$ADMIN_PW" --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id RegionOne --bootstrap-admin-url http://127.0.0.1:5000/v3 \
    --bootstrap-internal-url http://127.0.0.1:5000/v3 --bootstrap-public-url http://127.0.0.1:5000/v3 \
    2>> "$B/log/keystone-manage.err"
  touch "$B/state/.keystone-init"
fi
running keystone || uwsgi --ini "$B/etc/keystone/uwsgi.ini" --daemonize2 "$B/log/keystone-uwsgi.log"

if [ "$WITH_NOVA" = 1 ] && ! running rabbitmq; then
  log "rabbitmq: starting"
  EPMD_BEFORE=$(pgrep -x epmd || true); STARTED_RABBIT=1
  ( . "$B/etc/rabbitmq-env.sh"; setsid nohup /usr/lib/rabbitmq/bin/rabbitmq-server > "$B/log/rabbitmq.out" 2>&1 < /dev/null & )
fi

# ---------------------------------------------------------------- 6. DB schemas (while keystone boots)
if [ ! -e "$B/state/.glance-init" ]; then
  log "glance: db_sync"
  glance-manage --config-file "$B/etc/glance/glance-api.conf" db_sync > "$B/log/glance-manage.out" 2>&1
  wal glance; touch "$B/state/.glance-init"
fi
if [ "$WITH_NOVA" = 1 ] && [ ! -e "$B/state/.placement-init" ]; then
  log "placement: db sync"
  placement-manage --config-file "$B/etc/placement/placement.conf" db sync > "$B/log/placement-manage.out" 2>&1
  wal placement; touch "$B/state/.placement-init"
fi
if [ "$WITH_NOVA" = 1 ] && [ ! -e "$B/state/.nova-init" ]; then
  log "nova: api_db sync, map_cell0, create_cell cell1, db sync"
  { nova-manage $NOVA_DB api_db sync
    nova-manage $NOVA_DB cell_v2 map_cell0 --database_connection "$(dburl nova_cell0)"
    nova-manage $NOVA_DB cell_v2 list_cells | grep -q ' cell1 ' || nova-manage $NOVA_DB cell_v2 create_cell --name cell1
    nova-manage $NOVA_DB db sync
  } > "$B/log/nova-manage.out" 2>&1 || { tail -30 "$B/log/nova-manage.out"; die "nova-manage failed"; }
  for d in nova_api nova_cell0 nova_cell1; do wal $d; done
  touch "$B/state/.nova-init"
fi
# neutron's and cinder's schema migrations are the slowest: run them side by side
SYNC_PIDS=""
NEUTRON_CONF="--config-file $B/etc/neutron/neutron.conf --config-file $B/etc/neutron/ml2_conf.ini"
if [ "$WITH_NOVA" = 1 ] && [ ! -e "$B/state/.neutron-init" ]; then
  log "neutron: db upgrade heads (background)"
  ( neutron-db-manage $NEUTRON_CONF upgrade heads > "$B/log/neutron-db-manage.out" 2>&1 && wal neutron \
      && touch "$B/state/.neutron-init" ) &
  SYNC_PIDS="$SYNC_PIDS $!"
fi
if [ "$WITH_CINDER" = 1 ] && [ ! -e "$B/state/.cinder-init" ]; then
  log "cinder: db sync (background)"
  ( cinder-manage --config-file "$B/etc/cinder/cinder.conf" db sync > "$B/log/cinder-manage.out" 2>&1 && wal cinder \
      && touch "$B/state/.cinder-init" ) &
  SYNC_PIDS="$SYNC_PIDS $!"
fi

wait_http keystone http://127.0.0.1:5000/v3 200
log "keystone up on 127.0.0.1:5000"
REGISTERED="glance"; [ "$WITH_NOVA" = 1 ] && REGISTERED="$REGISTERED nova neutron"; [ "$WITH_CINDER" = 1 ] && REGISTERED="$REGISTERED cinder"
if [ "$(cat "$B/state/.keystone-registered" 2>/dev/null)" != "$REGISTERED" ]; then
  /usr/bin/python3 "$B/bin/ks_register.py" "$ADMIN_PW" "$SVC_PW" "$DEMO_PW" "$WITH_NOVA" "$WITH_CINDER"
  echo "$REGISTERED" > "$B/state/.keystone-registered"
fi

# ---------------------------------------------------------------- 7. glance, placement, neutron, cinder
start_bg glance-api glance-api --config-file "$B/etc/glance/glance-api.conf"
for p in $SYNC_PIDS; do wait "$p" || true; done
if [ "$WITH_NOVA" = 1 ]; then
  running placement || uwsgi --ini "$B/etc/placement/uwsgi.ini" --daemonize2 "$B/log/placement-uwsgi.log"
  [ -e "$B/state/.neutron-init" ] || { tail -30 "$B/log/neutron-db-manage.out"; die "neutron-db-manage failed"; }
  # physnet1's bridge (empty: nothing is ever plugged into it, see the header)
  ip link show forge-ext > /dev/null 2>&1 || ip link add forge-ext type bridge
  # a cloud started by an older up.sh runs the Neutron stand-in on 9696: the real one replaces it
  if running neutron-stub; then kill "$(cat "$B/run/neutron-stub.pid")"; rm -f "$B/run/neutron-stub.pid"; sleep 0.5; fi
  start_bg neutron-server /usr/bin/neutron-server $NEUTRON_CONF --log-file "$B/log/neutron-server.log"
  start_bg neutron-linuxbridge-agent /usr/bin/neutron-linuxbridge-agent --config-file "$B/etc/neutron/neutron.conf" \
    --config-file "$B/etc/neutron/linuxbridge_agent.ini" --log-file "$B/log/neutron-linuxbridge-agent.log"
fi
if [ "$WITH_CINDER" = 1 ]; then
  [ -e "$B/state/.cinder-init" ] || { tail -30 "$B/log/cinder-manage.out"; die "cinder-manage db sync failed"; }
  mkdir -p "$CINDER_MNT"
  grep -q " $CINDER_MNT " /proc/mounts || mount --bind "$B/state/cinder/share" "$CINDER_MNT"
  CINDER="--config-file $B/etc/cinder/cinder.conf"
  start_bg cinder-api /usr/bin/cinder-api $CINDER --log-file "$B/log/cinder-api.log"
  start_bg cinder-scheduler /usr/bin/cinder-scheduler $CINDER --log-file "$B/log/cinder-scheduler.log"
  start_bg cinder-volume /usr/bin/cinder-volume $CINDER --log-file "$B/log/cinder-volume.log"
fi

# ---------------------------------------------------------------- 8. nova
if [ "$WITH_NOVA" = 1 ]; then
  ( . "$B/etc/rabbitmq-env.sh"; /usr/lib/rabbitmq/bin/rabbitmqctl wait --timeout 120 "$B/run/rabbitmq.pid" > "$B/log/rabbitmq-wait.out" 2>&1 ) \
    || { tail -20 "$B/log/rabbitmq.out"; die "rabbitmq did not start"; }
  # epmd is daemonised by erlang; remember it for down.sh only if we caused it to start
  if [ "${STARTED_RABBIT:-0}" = 1 ] && [ -z "$EPMD_BEFORE" ]; then pgrep -x epmd > "$B/run/epmd.pid" || true; fi
  log "rabbitmq up on 127.0.0.1:5672"
  wait_http placement http://127.0.0.1:8778/ 200
  NOVA_T0=$(date -u '+%Y-%m-%d %H:%M:%S'); NOVA_STARTED=0
  for s in nova-api nova-conductor nova-scheduler nova-compute; do running $s || NOVA_STARTED=1; done
  for s in nova-api nova-conductor nova-scheduler; do start_bg $s /usr/bin/$s $NOVA_DB --log-file "$B/log/$s.log"; done
  if [ "$NOVA_FAKE_SNAPSHOT_UPLOAD" = 1 ]; then COMPUTE="$B/bin/nova-compute-fake"; else COMPUTE=/usr/bin/nova-compute; fi
  start_bg nova-compute "$COMPUTE" --config-file "$B/etc/nova/nova.conf" --log-file "$B/log/nova-compute.log"
fi
wait_http glance-api http://127.0.0.1:9292/ 300
log "glance up on 127.0.0.1:9292"

if [ "$WITH_NOVA" = 1 ]; then
  wait_http nova-api http://127.0.0.1:8774/ 200
  log "nova-api up on 127.0.0.1:8774"
  # wait for the compute node record, then map it (scheduler would also do it every 10 s)
  for i in $(seq 1 180); do
    n=$(dbq nova_cell1 'select count(*) from compute_nodes where deleted=0;' 2>/dev/null || echo 0)
    [ "$n" -ge 1 ] && break; sleep 0.5
  done
  [ "$n" -ge 1 ] || die "nova-compute never registered (see $B/log/nova-compute.log)"
  if [ "$(dbq nova_api 'select count(*) from host_mappings;')" = 0 ]; then
    nova-manage $NOVA_DB cell_v2 discover_hosts > "$B/log/nova-discover.out" 2>&1
  fi
  TOK=$(token)
  for f in '1 m1.tiny 512 1 1' '2 m1.small 2048 1 20'; do
    set -- $f
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $TOK" http://127.0.0.1:8774/v2.1/flavors/$1)
    [ "$code" = 200 ] || curl -sf -o /dev/null -H "X-Auth-Token: $TOK" -H 'Content-Type: application/json' \
      -d "{\"flavor\":{\"id\":\"$1\",\"name\":\"$2\",\"ram\":$3,\"vcpus\":$4,\"disk\":$5}}" http://127.0.0.1:8774/v2.1/flavors
  done
  # RPC services are ready only once they (re)report after our start: a stale 'up' from before a
  # restart is not enough (a build cast to a not-yet-consuming nova-compute ends in ERROR).
  if [ "$NOVA_STARTED" = 1 ]; then
    for i in $(seq 1 240); do
      n=$(dbq nova_cell1 "select count(*) from services where deleted=0 and \`binary\` in ('nova-compute','nova-conductor','nova-scheduler') and updated_at >= '$NOVA_T0';" 2>/dev/null || echo 0)
      [ "$n" -ge 3 ] && break; sleep 0.5
    done
    [ "$n" -ge 3 ] || die "nova conductor/scheduler/compute did not report in (see $B/log/nova-*.log)"
  fi
  log "nova-compute (fake driver) up and mapped; flavors m1.tiny(1) m1.small(2)"
fi
if [ "$WITH_NOVA" = 1 ]; then
  wait_http neutron-server http://127.0.0.1:9696/ 200
  log "neutron-server up on 127.0.0.1:9696"
fi
if [ "$WITH_CINDER" = 1 ]; then
  wait_http cinder-api http://127.0.0.1:8776/ "200 300"
  log "cinder-api up on 127.0.0.1:8776"
fi
if [ "$WITH_NOVA" = 1 ]; then
  if [ ! -e "$B/state/.seeded-cinder$WITH_CINDER" ]; then
    /usr/bin/python3 "$B/bin/seed_cloud.py" "$ADMIN_PW" "$DEMO_PW" "$WITH_CINDER" > "$B/log/seed_cloud.out" 2>&1 \
      || { tail -30 "$B/log/seed_cloud.out"; die "seeding networks/volume types failed"; }
    touch "$B/state/.seeded-cinder$WITH_CINDER"
  fi
  # the agent must have reported for Nova's port binding to succeed; cinder-volume for volumes
  TOK=$(token)
  for i in $(seq 1 240); do
    n=$(curl -s -H "X-Auth-Token: $TOK" 'http://127.0.0.1:9696/v2.0/agents?agent_type=Linux%20bridge%20agent&host=testcloud-compute' | jq '[.agents[]|select(.alive)]|length' 2>/dev/null || echo 0)
    [ "$n" -ge 1 ] && break; sleep 0.5
  done
  [ "$n" -ge 1 ] || die "neutron linuxbridge agent never reported alive (see $B/log/neutron-linuxbridge-agent.log)"
  log "neutron: linuxbridge agent alive; networks public, private, demo-net; router forge-router"
fi
if [ "$WITH_CINDER" = 1 ]; then
  ADMIN_PROJECT_ID=$(dbq keystone "select id from project where name='admin' and domain_id='default';")
  for i in $(seq 1 240); do
    n=$(curl -s -H "X-Auth-Token: $TOK" "http://127.0.0.1:8776/v3/$ADMIN_PROJECT_ID/os-services?binary=cinder-volume" | jq '[.services[]|select(.state=="up" and .status=="enabled")]|length' 2>/dev/null || echo 0)
    [ "$n" -ge 1 ] && break; sleep 0.5
  done
  [ "$n" -ge 1 ] || die "cinder-volume never reported up (see $B/log/cinder-volume.log)"
  log "cinder: volume service up (NFS driver on $B/state/cinder/share), volume type nfs"
fi
log "all up. credentials: . $B/openrc   (admin/$ADMIN_PW, demo/$DEMO_PW in project demo)"
