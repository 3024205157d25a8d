#!/usr/bin/env bash
# CI stage: build the sdist and, from it, the wheel (python -m build); install the wheel into
# a fresh venv outside the checkout with no extras and no test packages, and run the smoke
# suite tests/installed against it; then the same with the odbc and oracle extras.
#
# Each install resolves from the wheel's own metadata (what `pip install .` does), held to
# the versions of requirements/lock*.txt, the versions the bundle and the image carry.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { printf '[ci wheel] %s\n' "$*"; }

need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v promtool >/dev/null || need+=(prometheus)
# the drivers the odbc extra is exercised through
for pkg in unixodbc odbc-postgresql odbc-mariadb libsqliteodbc; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'; }

version="$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
rm -f dist/lc2_gateway-*
.venv/bin/python -m build --outdir dist . >/dev/null 2>&1 || .venv/bin/python -m build --outdir dist .
wheel="$root/dist/lc2_gateway-$version-py3-none-any.whl"
[ -f "$wheel" ] && [ -f "dist/lc2_gateway-$version.tar.gz" ]
log "built $(basename "$wheel") and lc2_gateway-$version.tar.gz"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# the locks as constraints (pip takes no hashes there): versions pinned, nothing added
constraints() { sed -e '/--hash=/d' -e 's/ *\\$//' "$@" > "$work/constraints.txt"; }

smoke() {  # smoke NAME EXTRAS LOCK...
  local name="$1" extras="$2"; shift 2
  local venv="$work/$name"
  constraints "$@"
  python3 -m venv "$venv"
  (cd "$work" && env -u PYTHONPATH "$venv/bin/pip" install -q -c "$work/constraints.txt" \
    "$wheel${extras:+[$extras]}")
  "$venv/bin/pip" check
  log "smoke suite against the $name install"
  (cd "$work" && env -u PYTHONPATH LC2_INSTALLED_BIN="$venv/bin/lc2-gateway" \
    LC2_INSTALLED_EXTRAS="$extras" "$root/.venv/bin/pytest" -q -p no:cacheprovider \
    --rootdir "$root" "$root/tests/installed")
}

smoke base "" requirements/lock.txt
smoke extras "odbc,oracle" requirements/lock-odbc.txt requirements/lock-oracle.txt
log "ok"
