#!/usr/bin/env bash
# Command 2 of the README (and what CI runs): install with dev extras, lint, run the tests.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check src tests dags benchmarks
.venv/bin/python -m pytest -q "$@"
