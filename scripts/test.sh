#!/usr/bin/env bash
# Command 2 of the README (and what CI runs): install with dev extras, lint, run the tests.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,airflow,notebooks   # real Airflow 3 (the DAG tests) and Jupyter (the notebooks in a kernel)
bash scripts/chromium.sh   # the browser the notebooks' offline-map test drives
bash scripts/libreoffice.sh   # LibreOffice Calc: the liaison loop's XLSX files must open in it
.venv/bin/ruff check src tests dags benchmarks
# A real PostGIS for the store tests (installed and started if needed); WASTETRACK_TEST_PG may point elsewhere.
WASTETRACK_TEST_PG="${WASTETRACK_TEST_PG:-$(bash scripts/postgis.sh)}"  # a failure here stops the run (set -e)
export WASTETRACK_TEST_PG
.venv/bin/python -m pytest -q "$@"
