"""The DAGs with real Airflow 3 (the ``airflow`` extra, which the test command installs).

Airflow is configured by environment at import time, so each check runs in a subprocess with its
own ``AIRFLOW_HOME`` (SQLite metadata database, no examples) and ``DAGS_FOLDER`` = ``dags/``:

* both DAG files load with no import errors, and the DAGs have the tasks the docs promise;
* ``dag.test()`` of the nightly DAG — the mapped ingest/detect/sheets tasks included — runs two
  nights of a tiny simulated landing against the SQLite store and against PostGIS, and publishes
  exactly the leads ``wastetrack run`` publishes.

A missing Airflow is a failure, not a skip: CI installs it (scripts/test.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wastetrack.pipeline import run_night

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
DATES = ("2026-11-19", "2026-11-20")
pytestmark = pytest.mark.slow

LOAD = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
out = {"errors": {k: str(v)[-600:] for k, v in bag.import_errors.items()},
       "dags": {d: sorted(t.task_id for t in bag.get_dag(d).tasks) for d in bag.dag_ids}}
print("RESULT " + json.dumps(out))
"""

RUN = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
dag = bag.get_dag("wastetrack_nightly")
states = []
for date in sys.argv[2:]:
    dr = dag.test(logical_date=datetime.fromisoformat(date + "T06:30:00+08:00"), run_conf={"date": date})
    states.append(str(dr.state))
print("RESULT " + json.dumps(states))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    for key in ("WASTETRACK_STORE", "WASTETRACK_WORK", "WASTETRACK_LANDING", "WASTETRACK_OUT"):
        env.pop(key, None)
    res = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, f"airflow db migrate failed (is the airflow extra installed?):\n{res.stderr[-2000:]}"
    return env


def _result(cmd: list[str], env: dict[str, str]) -> object:
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert res.returncode == 0 and line, f"{cmd[:3]} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return json.loads(line[len("RESULT "):])


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wastetrack.simulate import simulate

    base = tmp_path_factory.mktemp("af_landing")
    simulate(base / "landing", base / "truth.json", seed=5, days=2, trucks=8, start_date=DATES[0])
    return base / "landing"


def _leads(out: Path, date: str) -> list[tuple]:
    fc = json.loads((out / date / "leads.geojson").read_text(encoding="utf-8"))
    return sorted((f["properties"]["lead_id"], f["properties"]["kind"], f["properties"]["vehicle_id"],
                   f["properties"]["primary_liaison_id"]) for f in fc["features"])


def test_both_dags_load_without_import_errors(airflow_env: dict[str, str]) -> None:
    found = _result([sys.executable, "-c", LOAD, str(DAGS)], airflow_env)
    assert found["errors"] == {}
    night = found["dags"]["wastetrack_nightly"]
    for task in ("batch_date", "wait_for_batch", "night.prepare", "night.ingest", "night.detect", "night.merge",
                 "night.sheets", "night.publish"):
        assert task in night, night
    assert "wastetrack_followup" in found["dags"]


def test_a_broken_dag_file_is_reported(airflow_env: dict[str, str], tmp_path: Path) -> None:
    # the import check above can fail: a DAG file that does not import shows up as an error
    (tmp_path / "broken.py").write_text("from airflow.sdk import dag\nimport no_such_module\n", encoding="utf-8")
    found = _result([sys.executable, "-c", LOAD, str(tmp_path)], airflow_env)
    assert any("no_such_module" in e for e in found["errors"].values())


def _dag_test_matches_cli(landing: Path, tmp_path: Path, env: dict[str, str], store: str | None) -> None:
    out = tmp_path / "dag_out"
    env = {**env, "WASTETRACK_LANDING": str(landing), "WASTETRACK_OUT": str(out)}
    if store:
        env["WASTETRACK_STORE"] = store
    states = _result([sys.executable, "-c", RUN, str(DAGS), *DATES], env)
    assert states == ["success", "success"], states
    cli = tmp_path / "cli_out"
    for d in DATES:
        run_night(landing, d, cli)
    for d in DATES:
        assert _leads(out, d) == _leads(cli, d)
        run = json.loads((out / d / "run.json").read_text(encoding="utf-8"))
        assert run["context"]["source"] == ("none" if d == DATES[0] else "state")
    from wastetrack.store import open_store

    with open_store(store or out / "wastetrack.db", create=False) as st:
        assert st.dates() == list(DATES)
        assert sorted(st.read("leads", DATES[1])["lead_id"]) == [lead[0] for lead in _leads(out, DATES[1])]


def test_nightly_dag_test_on_the_sqlite_store(airflow_env: dict[str, str], landing: Path, tmp_path: Path) -> None:
    _dag_test_matches_cli(landing, tmp_path, airflow_env, None)


@pytest.mark.postgis
def test_nightly_dag_test_on_postgis(
    airflow_env: dict[str, str], landing: Path, tmp_path: Path, pg_url: str
) -> None:
    _dag_test_matches_cli(landing, tmp_path, airflow_env, pg_url)


FAIL_FAST = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("nightly", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
from airflow.sdk.exceptions import AirflowFailException
from wastetrack.contract import BatchError
def refused(): raise BatchError("batch 2026-11-20 refused: gps/part-000.csv sha256 mismatch")
def flaky(): raise ConnectionError("the store's server restarted")
out = {}
for name, fn in (("refused", refused), ("flaky", flaky)):
    try:
        mod._contract(fn)
    except AirflowFailException as exc:
        out[name] = ["AirflowFailException", str(exc)]
    except Exception as exc:
        out[name] = [type(exc).__name__, str(exc)]
print("RESULT " + json.dumps(out))
"""


def test_contract_refusals_fail_fast_and_transient_errors_are_retried(airflow_env: dict[str, str]) -> None:
    # AirflowFailException ends the task without its retries (the batch must be fixed, waiting is useless);
    # any other error propagates unchanged, so the DAG's retries (2 × 5 min) cover a restarted server
    found = _result([sys.executable, "-c", FAIL_FAST, str(DAGS / "wastetrack_nightly.py")], airflow_env)
    assert found["refused"][0] == "AirflowFailException" and "sha256 mismatch" in found["refused"][1]
    assert found["flaky"][0] == "ConnectionError"
