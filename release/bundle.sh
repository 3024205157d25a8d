#!/usr/bin/env bash
# The offline release bundle: dist/lc2-gateway-<version>-bundle.tar.gz, for a server with no
# internet.  It holds the gateway's wheel, the wheel of every dependency for Linux x86_64
# CPython 3.11 (base and the odbc and oracle extras) at exactly the versions of
# requirements/lock*.txt, those locks, the systemd unit, the example configs and install.sh.
#
#   release/bundle.sh [WHEEL]     (default: build the wheel from this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
version="$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
name="lc2-gateway-$version"
wheel="${1:-}"
if [ -z "$wheel" ]; then
  "$python" -m build --wheel --outdir dist . >/dev/null
  wheel="dist/lc2_gateway-$version-py3-none-any.whl"
fi
[ -f "$wheel" ] || { echo "bundle.sh: no wheel at $wheel" >&2; exit 1; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/wheels" "$root/requirements" "$root/systemd"

# Binary wheels only, for the target and not for this machine; --require-hashes checks
# each file against the lock as it arrives.  PyPI only: no local pip config or mirror.
env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT \
  PIP_CONFIG_FILE=/dev/null "$python" -m pip download --quiet --no-deps --require-hashes \
  --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform linux_x86_64 \
  -d "$root/wheels" \
  -r requirements/lock.txt -r requirements/lock-odbc.txt -r requirements/lock-oracle.txt

cp "$wheel" "$root/wheels/"
(cd "$root" && sha256sum "wheels/$(basename "$wheel")" > SHA256SUMS)
cp requirements/lock.txt requirements/lock-odbc.txt requirements/lock-oracle.txt "$root/requirements/"
cp systemd/lc2-gateway.service "$root/systemd/"
# the example configs, never a local audit trail, key or database copy
tar -C . --exclude='__pycache__' --exclude='*.key' --exclude='*.sqlite*' -cf - config \
  | tar -C "$root" -xf -
install -m 0755 release/install.sh "$root/install.sh"

mkdir -p dist
tar -C "$stage" -czf "dist/$name-bundle.tar.gz" "$name"
echo "dist/$name-bundle.tar.gz"
