#!/usr/bin/env bash
# Create .venv (if needed) and install wastetrack with the given extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
