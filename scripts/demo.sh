#!/usr/bin/env bash
# Command 1 of the README: install, then simulate and run a demo scenario on the embedded store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wastetrack demo "$@"
