#!/usr/bin/env bash
# A bounded mutation sample (tools/mutate.py, docs/testing.md): 12 seeded mutants of each core
# module changed since MUTATION_BASE (default: the parent commit), or, when none changed, the
# first 2 of every core module's sample.  Fails when a mutant survives that tools/mutation.yaml
# does not list as equivalent: a change left a branch no test notices.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${MUTATION_BASE:-HEAD~1}"
# .ci/run calls this before its last line (the README's test command) makes the venv
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'; }
echo "[ci] mutation sample of the core modules changed since $base"
exec .venv/bin/python tools/mutate.py --changed-since "$base" --sample 12 --fallback 2 --strict
