# lib.sh -- shell helpers for scripts that talk to the test cloud (source it; needs curl and jq).
. "${TESTCLOUD_DIR:-/tmp/forge-testcloud}/openrc"
G=http://127.0.0.1:9292
N=http://127.0.0.1:8774/v2.1

# A project-scoped admin token.
admin_token() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' \
    -d "$(jq -n --arg pw "$OS_PASSWORD" '{auth:{identity:{methods:["password"],password:{user:{name:"admin",domain:{id:"default"},password:$pw}}},scope:{project:{name:"admin",domain:{id:"default"}}}}}')" \
    "$OS_AUTH_URL/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'
}
