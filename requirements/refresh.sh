#!/usr/bin/env bash
# Refresh the hash-pinned locks from pyproject.toml: the newest versions that fit its
# specifiers, each with the sha256 of every file PyPI has for it.
#
#   lock.txt          the base install (what the bundle, the image and the tested wheel carry)
#   lock-odbc.txt     base + the odbc extra, the base versions held to lock.txt
#   lock-oracle.txt   base + the oracle extra, likewise
#
# Run it with Python 3.11 (the markers are resolved for the interpreter that runs it), from
# the test venv (pip-tools is in the test extra), then `bash .ci/wheel.sh && bash .ci/bundle.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
compile="${PIP_COMPILE:-.venv/bin/pip-compile}"
python="$(dirname "$compile")/python"
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "refresh.sh: run it with Python 3.11" >&2; exit 2; }

# PyPI only: no machine's own pip config, find-links or mirror ends up in the lock
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT
common=(--quiet --upgrade --generate-hashes --allow-unsafe --strip-extras
        --no-emit-index-url --no-emit-find-links --no-emit-trusted-host)
export CUSTOM_COMPILE_COMMAND="requirements/refresh.sh"

"$compile" "${common[@]}" -o requirements/lock.txt pyproject.toml
for extra in odbc oracle; do
  "$compile" "${common[@]}" --extra "$extra" -c requirements/lock.txt \
    -o "requirements/lock-$extra.txt" pyproject.toml
done
