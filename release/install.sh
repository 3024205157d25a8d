#!/usr/bin/env bash
# Install lc2-gateway from this bundle, with no network: a venv under PREFIX holding exactly
# the locked versions, each wheel checked against the lock's sha256.
#
#   sudo ./install.sh [--prefix /opt/lc2-gateway] [--with odbc,oracle] [--python python3.11]
#
# The wheels are for Linux x86_64, CPython 3.11, glibc 2.28 or newer.  Run it again with a
# newer bundle to upgrade in place; the config, the audit trail and its key are not touched.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix=/opt/lc2-gateway
extras=""
python=python3
usage() { echo "usage: $0 [--prefix DIR] [--with odbc,oracle] [--python PYTHON]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?}"; shift 2 ;;
    --with) extras="${2:?}"; shift 2 ;;
    --python) python="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done

"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || {
  echo "install.sh: $python is not CPython 3.11 (the bundled wheels are cp311); give one with --python" >&2
  exit 2
}
locks=(-r "$here/requirements/lock.txt")
for extra in ${extras//,/ }; do
  case "$extra" in
    odbc | oracle) locks+=(-r "$here/requirements/lock-$extra.txt") ;;
    *) echo "install.sh: unknown extra '$extra' (odbc, oracle)" >&2; exit 2 ;;
  esac
done
(cd "$here" && sha256sum --quiet -c SHA256SUMS)

# Only this bundle: no pip config, index, mirror or cache of the machine takes part.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_REQUIREMENT
"$python" -m venv "$prefix/venv"
pip=("$prefix/venv/bin/python" -m pip --quiet)
"${pip[@]}" install --no-index --find-links "$here/wheels" --require-hashes "${locks[@]}"
"${pip[@]}" install --no-index --no-deps --force-reinstall "$here"/wheels/lc2_gateway-*.whl
"${pip[@]}" check
"$prefix/venv/bin/lc2-gateway" --version
echo "installed in $prefix/venv; the systemd unit runs $prefix/venv/bin/lc2-gateway"
