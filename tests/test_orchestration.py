"""What the Airflow DAGs call, tested without Airflow (CI does not install it).

Covers the batch date of a run (time zones, month and year ends, runs without a
logical date, the ``date`` param), the sensor's readiness check, settings, the
store URL taken from an Airflow connection, one real night through ``nightly``,
and a static check of every DAG file: cheap to parse (only airflow/pendulum at
module level), one run at a time, no catch-up, and calling only functions that
exist in ``wastetrack.orchestration``.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from wastetrack import orchestration
from wastetrack.orchestration import (
    LANDING_ENV,
    OUT_ENV,
    STORE_ENV,
    TZ,
    batch_date_for,
    batch_date_of_run,
    batch_ready,
    nightly,
    run_time_of,
    settings,
    store_url_of,
    valid_date,
)

DAGS = Path(__file__).resolve().parents[1] / "dags"
DAG_FILES = sorted(DAGS.glob("*.py"))
ALLOWED_TOP_LEVEL = {"airflow", "pendulum", "__future__"}


# --- batch date of a run ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_time", "expected"),
    [
        # what Airflow passes: UTC; 22:30 UTC on the 20th is 06:30 on the 21st in Shanghai
        (datetime(2026, 11, 20, 22, 30, tzinfo=UTC), "2026-11-20"),
        (datetime(2026, 11, 21, 6, 30, tzinfo=TZ), "2026-11-20"),
        # naive = local time, not UTC (as UTC it would be 14:30 local, still the 21st; 23:30 shows the difference)
        (datetime(2026, 11, 21, 6, 30), "2026-11-20"),
        (datetime(2026, 11, 21, 23, 30), "2026-11-20"),
        (datetime(2026, 11, 21, 23, 30, tzinfo=UTC), "2026-11-21"),  # 07:30 on the 22nd local
        # month, year and leap-day boundaries
        (datetime(2026, 12, 1, 6, 30, tzinfo=TZ), "2026-11-30"),
        (datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "2026-11-30"),  # 00:30 on 1 Dec local
        (datetime(2026, 11, 30, 15, 59, tzinfo=UTC), "2026-11-29"),  # 23:59 on 30 Nov local
        (datetime(2027, 1, 1, 6, 30, tzinfo=TZ), "2026-12-31"),
        (datetime(2028, 3, 1, 6, 30, tzinfo=TZ), "2028-02-29"),
        (datetime(2027, 3, 1, 6, 30, tzinfo=TZ), "2027-02-28"),
    ],
)
def test_batch_date_for_is_the_local_day_before(run_time: datetime, expected: str) -> None:
    assert batch_date_for(run_time) == expected


def test_run_time_prefers_logical_date() -> None:
    logical = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)
    ctx = {
        "logical_date": logical,
        "data_interval_end": datetime(2026, 11, 25, tzinfo=UTC),
        "dag_run": SimpleNamespace(run_after=datetime(2026, 11, 28, tzinfo=UTC)),
    }
    assert run_time_of(ctx) == logical
    assert batch_date_of_run(ctx) == "2026-11-20"


def test_run_without_logical_date_uses_run_after() -> None:
    # Airflow 3 manual run triggered without a logical date: the context has no logical_date key at all
    ctx = {"dag_run": SimpleNamespace(run_after=datetime(2026, 12, 1, 1, 15, tzinfo=UTC)), "params": {}}
    assert run_time_of(ctx) == datetime(2026, 12, 1, 1, 15, tzinfo=UTC)
    assert batch_date_of_run(ctx) == "2026-11-30"
    ctx_none = {"logical_date": None, "data_interval_end": None, **ctx}
    assert batch_date_of_run(ctx_none) == "2026-11-30"


def test_run_falls_back_to_data_interval_end() -> None:
    ctx = {"logical_date": None, "data_interval_end": datetime(2027, 1, 1, 6, 30, tzinfo=TZ)}
    assert batch_date_of_run(ctx) == "2026-12-31"


def test_run_with_no_time_at_all_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="run_after"):
        run_time_of({"dag_run": SimpleNamespace(run_after=None)})


def test_date_param_overrides_the_run_time() -> None:
    ctx = {"logical_date": datetime(2026, 11, 20, 22, 30, tzinfo=UTC), "params": {"date": " 2026-11-18 "}}
    assert batch_date_of_run(ctx) == "2026-11-18"
    assert batch_date_of_run({**ctx, "params": {"date": None}}) == "2026-11-20"
    with pytest.raises(ValueError, match="not a date"):
        batch_date_of_run({**ctx, "params": {"date": "2026-02-30"}})


@pytest.mark.parametrize("bad", ["2026-11-1", "20261120", "2026/11/20", "2026-11-20T00:00", "../etc", ""])
def test_valid_date_refuses_anything_but_yyyy_mm_dd(bad: str) -> None:
    with pytest.raises(ValueError):
        valid_date(bad)


# --- readiness of a batch --------------------------------------------------------------------------------------


def _write_batch(landing: Path, date: str, text: str, encoding: str = "utf-8") -> Path:
    d = landing / date
    d.mkdir(parents=True, exist_ok=True)
    (d / "batch.json").write_text(text, encoding=encoding)
    return d / "batch.json"


def test_batch_ready_waits_for_a_missing_batch(tmp_path: Path) -> None:
    assert batch_ready(tmp_path, "2026-11-20") is False
    (tmp_path / "2026-11-20").mkdir()  # directory there, batch.json not yet
    assert batch_ready(tmp_path, "2026-11-20") is False


def test_batch_ready_raises_when_the_landing_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=LANDING_ENV):
        batch_ready(tmp_path / "not-mounted", "2026-11-20")


@pytest.mark.parametrize("complete", ["false", '"true"', "1", "null"])
def test_batch_ready_waits_for_an_incomplete_batch(tmp_path: Path, complete: str) -> None:
    _write_batch(tmp_path, "2026-11-20", f'{{"date": "2026-11-20", "files": [], "complete": {complete}}}')
    assert batch_ready(tmp_path, "2026-11-20") is False
    no_flag = _write_batch(tmp_path, "2026-11-21", '{"date": "2026-11-21", "files": []}')
    assert no_flag.exists() and batch_ready(tmp_path, "2026-11-21") is False


def test_batch_ready_when_complete(tmp_path: Path) -> None:
    _write_batch(tmp_path, "2026-11-20", '{"date": "2026-11-20", "files": [], "complete": true}')
    assert batch_ready(tmp_path, "2026-11-20") is True
    assert batch_ready(str(tmp_path), "2026-11-20") is True
    # a UTF-8 BOM is allowed by the contract
    _write_batch(tmp_path, "2026-11-21", '{"date": "2026-11-21", "complete": true}', encoding="utf-8-sig")
    assert batch_ready(tmp_path, "2026-11-21") is True


@pytest.mark.parametrize(
    "text",
    ['{"date": "2026-11-20", "complete": tr', "", "\x00\x01", "[1, 2]", '"complete"', "null"],
)
def test_batch_ready_waits_on_malformed_json(tmp_path: Path, text: str) -> None:
    # a producer still writing batch.json, or a broken one: never ready, never a crash
    _write_batch(tmp_path, "2026-11-20", text)
    assert batch_ready(tmp_path, "2026-11-20") is False


def test_batch_ready_refuses_a_date_mismatch(tmp_path: Path) -> None:
    _write_batch(tmp_path, "2026-11-20", '{"date": "2026-11-19", "complete": true}')
    assert batch_ready(tmp_path, "2026-11-20") is False
    _write_batch(tmp_path, "2026-11-21", '{"complete": true}')
    assert batch_ready(tmp_path, "2026-11-21") is False


def test_batch_ready_on_the_shared_example() -> None:
    example = Path(__file__).resolve().parents[1].parent / "shared/contract/example"
    if not example.is_dir():
        pytest.skip("shared example landing not present")
    assert batch_ready(example, "2026-11-20") is True
    assert batch_ready(example, "2026-11-21") is False


# --- settings and store ----------------------------------------------------------------------------------------


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LANDING_ENV, "/data/landing")
    monkeypatch.setenv(OUT_ENV, "/data/out")
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert settings() == {"landing": "/data/landing", "out": "/data/out", "store": ""}
    monkeypatch.setenv(STORE_ENV, "sqlite:////data/wt.db")
    assert settings()["store"] == "sqlite:////data/wt.db"
    # arguments win over the environment
    assert settings(landing="/l", out="/o", store="/s.db") == {"landing": "/l", "out": "/o", "store": "/s.db"}


def test_settings_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in (LANDING_ENV, OUT_ENV, STORE_ENV):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(RuntimeError) as err:
        settings()
    assert LANDING_ENV in str(err.value) and OUT_ENV in str(err.value)
    monkeypatch.setenv(LANDING_ENV, "/data/landing")
    with pytest.raises(RuntimeError) as err:
        settings()
    assert OUT_ENV in str(err.value) and LANDING_ENV not in str(err.value)


def _conn(conn_type: str, host: str = "", schema: str = "", uri: str = "") -> SimpleNamespace:
    return SimpleNamespace(
        conn_id="wastetrack_store", conn_type=conn_type, host=host, schema=schema, get_uri=lambda: uri
    )


def test_store_url_of_a_connection() -> None:
    # the SQLite form of the Airflow UI: the file is the host
    assert store_url_of(_conn("sqlite", host="/data/wt.db")) == "/data/wt.db"
    # AIRFLOW_CONN_WASTETRACK_STORE=sqlite:////data/wt.db parses to schema="/data/wt.db"; get_uri() would
    # give sqlite:///%2Fdata%2Fwt.db, a relative file named "%2Fdata%2Fwt.db"
    assert store_url_of(_conn("sqlite", schema="/data/wt.db", uri="sqlite:///%2Fdata%2Fwt.db")) == "/data/wt.db"
    assert store_url_of(_conn("sqlite", host="%2Fdata%2Fwt.db")) == "/data/wt.db"
    pg = "postgres://wt:secret@db.internal:5432/wastetrack"
    assert store_url_of(_conn("postgres", host="db.internal", uri=pg)) == pg
    with pytest.raises(ValueError, match="no file path"):
        store_url_of(_conn("sqlite"))


# --- one real night --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wastetrack.simulate import simulate

    base = tmp_path_factory.mktemp("orchestration")
    return simulate(base / "landing", base / "truth.json", seed=5, days=1, trucks=6, start_date="2026-11-19")


def _lead_ids(path: Path) -> list[str]:
    return sorted(f["properties"]["lead_id"] for f in json.loads(path.read_text("utf-8"))["features"])


def test_nightly_runs_a_simulated_night(landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wastetrack.store import read_table

    date = "2026-11-19"
    assert batch_ready(landing, date) is True
    out = tmp_path / "out"
    res = nightly(date, landing=str(landing), out=str(out))
    assert res["date"] == date and Path(res["out_dir"]) == out / date
    assert res["leads_total"] == sum(res["leads"].values()) > 0
    json.dumps(res)  # the XCom must be JSON-serialisable
    ids = _lead_ids(out / date / "leads.geojson")
    assert len(ids) == res["leads_total"]
    run = json.loads((out / date / "run.json").read_text("utf-8"))
    # a one-day landing: the night ran without the previous day and says so
    assert run["status"] == "degraded" and run["context"]["source"] == "none"
    assert run["leads_total"] == res["leads_total"]
    assert (out / "wastetrack.db").is_file()  # no store configured: OUT/wastetrack.db

    # a cleared DAG run re-runs the same date from the environment: same leads, replaced, not added
    monkeypatch.setenv(LANDING_ENV, str(landing))
    monkeypatch.setenv(OUT_ENV, str(out))
    monkeypatch.delenv(STORE_ENV, raising=False)
    again = nightly(date)
    assert again == res
    assert _lead_ids(out / date / "leads.geojson") == ids
    assert len(read_table(out / "wastetrack.db", "leads", date)) == res["leads_total"]


def test_nightly_refuses_a_bad_date_before_doing_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a date"):
        nightly("2026-11-31", landing=str(tmp_path), out=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_orchestration_imports_nothing_heavy() -> None:
    code = "import sys, wastetrack.orchestration; print(sorted({'pandas', 'geopandas', 'airflow'} & set(sys.modules)))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


# --- static check of the DAG files -----------------------------------------------------------------------------


def _module_level_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """Imports that run when the file is parsed: module level, including inside if/try blocks, not in functions."""
    found: list[tuple[str, int]] = []

    def visit(stmts: list[ast.stmt]) -> None:
        for node in stmts:
            if isinstance(node, ast.Import):
                found.extend((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.append(("." * node.level + (node.module or ""), node.lineno))
            elif isinstance(node, ast.If | ast.With):
                visit(node.body)
                visit(getattr(node, "orelse", []))
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return found


def _dag_calls(tree: ast.Module) -> list[ast.Call]:
    """``@dag(...)`` decorators and ``DAG(...)`` / ``with DAG(...)`` calls."""
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in ("dag", "DAG"):
                calls.append(node)
    return calls


def test_there_are_dag_files() -> None:
    assert any(p.name == "wastetrack_nightly.py" for p in DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_only_airflow_and_pendulum_at_parse_time(path: Path) -> None:
    imports = _module_level_imports(ast.parse(path.read_text("utf-8"), filename=str(path)))
    assert imports, "a DAG file imports airflow"
    bad = [
        (name, line)
        for name, line in imports
        if name.split(".")[0] not in ALLOWED_TOP_LEVEL and name.split(".")[0] not in sys.stdlib_module_names
    ]
    assert not bad, f"{path.name}: heavy or project imports at module level (move them into the tasks): {bad}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_runs_one_night_at_a_time_without_catchup(path: Path) -> None:
    calls = _dag_calls(ast.parse(path.read_text("utf-8"), filename=str(path)))
    assert calls, f"{path.name} defines no DAG"
    for call in calls:
        kw = {k.arg: k.value for k in call.keywords}
        assert isinstance(kw.get("dag_id"), ast.Constant) and kw["dag_id"].value, f"{path.name}: dag_id"
        assert isinstance(kw.get("catchup"), ast.Constant) and kw["catchup"].value is False, f"{path.name}: catchup"
        assert isinstance(kw.get("max_active_runs"), ast.Constant) and kw["max_active_runs"].value == 1, (
            f"{path.name}: max_active_runs"
        )


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_calls_functions_that_exist(path: Path) -> None:
    # a rename in wastetrack.orchestration would otherwise only show when Airflow runs the task
    used = [
        (node.module, alias.name, node.lineno)
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "wastetrack"
        for alias in node.names
    ]
    assert any(
        module == orchestration.__name__ or (module == "wastetrack" and name == "orchestration")
        for module, name, _ in used
    ), f"{path.name} bypasses orchestration"
    missing = [
        (f"{module}.{name}", line) for module, name, line in used if not hasattr(importlib.import_module(module), name)
    ]
    assert not missing, f"{path.name}: imports names that do not exist: {missing}"
