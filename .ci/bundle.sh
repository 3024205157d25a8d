#!/usr/bin/env bash
# CI stage: build the offline release bundle, install it with --no-index inside a network
# namespace that has only loopback (no route out), serve the demo config from that install
# and call it from inside the namespace.  Needs root (ip netns).
#
#   bash .ci/bundle.sh [WHEEL]    (default: build the wheel from this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { printf '[ci bundle] %s\n' "$*"; }

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'; }

bundle="$(bash release/bundle.sh "$@" 2>/dev/null | tail -n1)"
log "built $bundle ($(du -h "$bundle" | cut -f1))"

ns="lc2-bundle-$$"
work="$(mktemp -d)"
gw=""
cleanup() {
  if [ -n "$gw" ]; then $SUDO kill "$(cat "$work/gateway.pid")" 2>/dev/null || true; wait "$gw" || true; fi
  $SUDO ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
$SUDO ip netns add "$ns"
$SUDO ip -n "$ns" link set lo up
in_ns() { $SUDO ip netns exec "$ns" "$@"; }
# the proof that nothing below can reach a registry: no route but loopback
if in_ns ip route show | grep -q .; then log "namespace $ns has a route out"; exit 1; fi
if in_ns python3 -c 'import socket; socket.create_connection(("1.1.1.1", 443), timeout=3)' 2>/dev/null; then
  log "namespace $ns reaches the internet"; exit 1
fi

tar -C "$work" -xzf "$bundle"
release="$work/$(basename "$bundle" -bundle.tar.gz)"
log "installing with --no-index inside $ns"
in_ns "$release/install.sh" --prefix "$work/opt" --with odbc,oracle

# a wheel that is not the locked one stops the install: a dependency's (pip's hash check)
# and the gateway's own (SHA256SUMS)
for victim in "$(ls "$release"/wheels/pyyaml-*.whl)" "$(ls "$release"/wheels/lc2_gateway-*.whl)"; do
  cp -r "$release" "$work/tampered"
  printf 'x' >>"$work/tampered/wheels/$(basename "$victim")"
  if in_ns "$work/tampered/install.sh" --prefix "$work/tampered-opt" >"$work/tampered.log" 2>&1; then
    log "install.sh accepted an altered $(basename "$victim")"; exit 1
  fi
  grep -qE 'DO NOT MATCH THE HASHES|FAILED' "$work/tampered.log" \
    || { cat "$work/tampered.log"; log "refused for another reason"; exit 1; }
  rm -rf "$work/tampered" "$work/tampered-opt"
done
log "altered wheels refused"

log "serving the demo from that install"
cp -r "$release/config" "$work/config"
cd "$work"  # nothing of the checkout on the way
# `ip netns exec` waits for its command in a process of its own: signal the gateway itself
in_ns env -i PATH=/usr/bin:/bin sh -c 'echo $$ >"$1"; exec "$2" serve -c "$3"' sh \
  "$work/gateway.pid" "$work/opt/venv/bin/lc2-gateway" "$work/config/demo.yaml" \
  >"$work/gateway.log" 2>&1 &
gw=$!
for _ in $(seq 150); do
  in_ns curl -fsS -o /dev/null http://127.0.0.1:9108/ready 2>/dev/null && break
  kill -0 "$gw" 2>/dev/null || { cat "$work/gateway.log"; log "the gateway exited"; exit 1; }
  sleep 0.2
done
body="$(in_ns curl -fsS -u 'Linkage Service:demo-password' \
  -H 'X-Office-Request: 00023' -H 'X-User-Request: 1101700203450' \
  'http://127.0.0.1:8080/api/v1/fisher?personalId=1740100234561')"
printf '%s\n' "$body" | grep -q '"responseCode":"000"' \
  && printf '%s\n' "$body" | grep -q '"firstName":"สมชาย"' \
  || { log "unexpected answer: $body"; cat "$work/gateway.log"; exit 1; }
log "data call answered: ${body:0:120}..."
$SUDO kill -TERM "$(cat "$work/gateway.pid")"
rc=0; wait "$gw" || rc=$?
[ "$rc" -eq 0 ] || { cat "$work/gateway.log"; log "the gateway did not stop cleanly (exit $rc)"; exit 1; }
gw=""
in_ns "$work/opt/venv/bin/lc2-gateway" audit verify -c "$work/config/demo.yaml"
log "installing again over the same prefix, as an upgrade does"
in_ns "$release/install.sh" --prefix "$work/opt" --with odbc,oracle
in_ns "$work/opt/venv/bin/lc2-gateway" audit verify -c "$work/config/demo.yaml"
log "ok"
