#!/usr/bin/env bash
# The example adapter package (examples/lc2-adapter-vendorrest) installed as a department
# would install it: the gateway's wheel and the example package go into a fresh venv, the
# example's own tests (the adapter contract) run there, then the installed gateway serves one
# LC2 call end to end through the example adapter from a paged REST server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
# built from a copy of the checkout (tracked and new files, not ignored ones): setuptools
# builds in place, and a stale build/ of the checkout must neither end in the wheel nor be left
root="$work/src"
mkdir "$root"
git ls-files -z --cached --others --exclude-standard | tar -c --null --ignore-failed-read -T - | tar -x -C "$root"
example="$root/examples/lc2-adapter-vendorrest"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '[example-adapter] %s\n' "$*"; }

log "building the gateway wheel"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip >/dev/null
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$root"
log "installing the wheel and the example package into a fresh venv"
"$py" -m pip install -q "$work"/dist/lc2_gateway-*.whl "$example[test]"
"$py" - <<'PY'
from gateway.registry import get_factory
assert get_factory("vendorrest").type_name == "vendorrest", "entry point not found"
assert get_factory("sqlite").type_name == "sqlite", "built-in adapters not found"
PY

log "running the example's tests (the adapter contract) against the installed gateway"
(cd "$example" && "$py" -m pytest -q)

log "serving one call end to end"
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
"$py" "$example/tests/vendor_server.py" > "$work/vendor.url" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/vendor.url" ] && break; sleep 0.1; done
vendor_url="$(head -n1 "$work/vendor.url")"
port="$(free_port)"
admin_port="$(free_port)"
hash="$(printf 'example-password\n' | "$work/venv/bin/lc2-gateway" passwd --stdin)"
cat > "$work/gateway.yaml" <<YAML
listen: {host: 127.0.0.1, port: $port}
admin: {host: 127.0.0.1, port: $admin_port}
lc2: {base_path: /api/v1}
consumers:
  lc2:
    username: Linkage Service
    password_hash: $hash
    services: ["*"]
audit:
  path: $work/audit.sqlite
  key_file: $work/audit.key
limits:
  store: $work/quota.sqlite
backends:
  vendor:
    type: vendorrest
    base_url: $vendor_url
    page_size: 2
    query_timeout: 5
services:
  vesselLicence:
    path: vessel-licence
    description: Vessel licences of an owner, from the vendor's paged API
    backend: vendor
    params:
      personalId: {type: citizen_id, description: citizen ID of the owner}
    operation:
      resource: licences
      query: {owner: "{personalId}"}
    output:
      licenceNo: licenceNo
      issueDate: {column: issued, transform: [be_date]}
YAML
"$work/venv/bin/lc2-gateway" check -c "$work/gateway.yaml"
"$work/venv/bin/lc2-gateway" serve -c "$work/gateway.yaml" > "$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
  curl -sf "http://127.0.0.1:$admin_port/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
answer="$(curl -s -u 'Linkage Service:example-password' \
  -H 'X-Office-Request: 00023' -H 'X-User-Request: 1101700203450' \
  "http://127.0.0.1:$port/api/v1/vessel-licence?personalId=3100600123450")"
echo "$answer"
count="$(printf '%s' "$answer" | "$py" -c 'import json, sys
doc = json.load(sys.stdin)
assert doc["responseCode"] == "000", doc
print(len(doc["data"]))')"
[ "$count" = 5 ] || { log "expected 5 licences over 3 pages, got $count"; cat "$work/gateway.log"; exit 1; }
records="$("$work/venv/bin/lc2-gateway" audit search -c "$work/gateway.yaml" \
  --service vesselLicence --format jsonl | grep -c .)"
[ "$records" = 1 ] || { log "expected the call in the audit trail, found $records records"; exit 1; }
log "ok: one call, 5 rows from 3 vendor pages, audited, through the installed gateway"
