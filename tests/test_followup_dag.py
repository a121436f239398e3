"""The follow-up DAG with real Airflow 3: ``dag.test()`` in a subprocess with its own AIRFLOW_HOME.

A simulated night (the month's last) is run; a liaison's reply sheet waits in ``OUT/replies/``; the
DAG is run twice for that night against a real SMTP server on 127.0.0.1: the first run mails every
liaison its leads, imports the reply, follows up and — the month being over — writes the monthly
report and the credit list; the second run sends nothing new and imports nothing twice.
Also: the follow-up functions without Airflow (``orchestration.followup_*``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from liaison_fixtures import (
    SmtpServer,
    by_recipient,
    smtp_fixture,  # noqa: F401  (the fixture `smtp`)
)
from test_airflow import DAGS, _result
from wastetrack import orchestration
from wastetrack.liaison_xlsx import WorkbookLead, write_liaison_workbook
from wastetrack.network import Network
from wastetrack.pipeline import run_night
from wastetrack.store import open_store

NIGHT = "2026-11-30"

RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
dag = bag.get_dag("wastetrack_followup")
out = []
for date in sys.argv[2:]:
    dr = dag.test(run_conf={"date": date})
    out.append({"state": str(dr.state),
                "tasks": {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}})
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Airflow configured by environment, as tests/test_airflow.py does: its own home, SQLite metadata."""
    home = tmp_path_factory.mktemp("airflow_home_followup")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
    for key in ("WASTETRACK_STORE", "WASTETRACK_WORK", "WASTETRACK_LANDING", "WASTETRACK_OUT", "WASTETRACK_SMTP",
                "WASTETRACK_REPLIES"):
        env.pop(key, None)
    res = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, f"airflow db migrate failed (is the airflow extra installed?):\n{res.stderr[-2000:]}"
    return env


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from wastetrack.simulate import simulate

    base = tmp_path_factory.mktemp("followup")
    simulate(base / "landing", base / "truth.json", seed=5, days=1, trucks=8, start_date=NIGHT)
    run_night(base / "landing", NIGHT, base / "out")
    shutil.copytree(base / "out", base / "pristine")
    return {"landing": base / "landing", "out": base / "out", "pristine": base / "pristine"}


def reply_sheet(night: dict) -> tuple[Path, str]:
    """The first lead's primary liaison answers 已签收 in a sheet dropped in OUT/replies/."""
    with open_store(night["out"] / "wastetrack.db", create=False) as st:
        lead = st.read("leads", NIGHT).iloc[0]
    net = Network.from_landing(night["landing"])
    who = lead["primary_liaison_id"]
    path = write_liaison_workbook(night["out"] / "replies" / "reply-1.xlsx", who, net.label(who), NIGHT, [
        WorkbookLead(lead["lead_id"], lead["kind"], "primary", lead["start"], "", "", False, "", "", None, "", "",
                     "")])
    wb = load_workbook(path)
    wb["回复表"].cell(2, 3, "已签收")
    wb["回复表"].cell(2, 4, "2026-11-30 23:00")  # within the night the follow-up looks at
    wb.save(path)
    return path, lead["lead_id"]


@pytest.mark.slow
def test_followup_dag_test_delivers_imports_and_reports_once(airflow_env: dict[str, str], night: dict,
                                                              smtp: SmtpServer) -> None:
    _, lead_id = reply_sheet(night)
    env = {**airflow_env, "WASTETRACK_LANDING": str(night["landing"]), "WASTETRACK_OUT": str(night["out"]),
           "WASTETRACK_SMTP": smtp.url}
    runs = _result([sys.executable, "-c", RUN, str(DAGS), NIGHT, NIGHT], env)
    assert [r["state"] for r in runs] == ["success", "success"], runs
    assert set(runs[0]["tasks"]) == {"night", "deliver", "replies", "escalate", "monthly"}
    with open_store(night["out"] / "wastetrack.db", create=False) as st:
        leads = st.read("leads", NIGHT)
        mails = st.read("mails")
        state = st.read("lead_state").set_index("lead_id")
        files = st.read("reply_files")
    routed = {lid for r in leads.itertuples() for lid in (r.primary_liaison_id, *r.cc_liaison_ids) if lid}
    net = Network.from_landing(night["landing"])
    inbox = by_recipient(smtp.inbox.messages)
    assert set(inbox) == {net.email(lid) for lid in routed}
    assert all(len(m) == 1 for m in inbox.values())          # the second run sent nothing
    assert set(mails["status"]) == {"sent"} and len(files) == 1
    assert state.loc[lead_id, "phase"] == "received"
    monthly = night["out"] / "monthly"
    assert {p.name for p in monthly.iterdir()} == {"report-2026-11.xlsx", "report-2026-11.html",
                                                  "credit-2026-11.xlsx", "credit-2026-11.csv"}


def test_followup_functions_without_airflow(night: dict, smtp: SmtpServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    landing, out = night["landing"], tmp_path / "out"
    shutil.copytree(night["pristine"], out)  # the night as run, before any follow-up
    monkeypatch.setenv("WASTETRACK_LANDING", str(landing))
    monkeypatch.setenv("WASTETRACK_OUT", str(out))
    monkeypatch.delenv("WASTETRACK_STORE", raising=False)
    monkeypatch.delenv("WASTETRACK_SMTP", raising=False)
    assert orchestration.followup_replies()["files"] == 0                  # no folder yet: nothing, no error
    skipped = orchestration.followup_monthly("2026-11-29")
    assert "skipped" in skipped and "2026-11-30" in skipped["skipped"]
    with pytest.raises(Exception, match="WASTETRACK_SMTP"):
        orchestration.followup_deliver(NIGHT)
    res = orchestration.followup_deliver(NIGHT, smtp=smtp.url)
    assert res["sent"] == res["queued"] > 0
    assert orchestration.followup_deliver(NIGHT, smtp=smtp.url)["sent"] == 0
    (out / "replies").mkdir(exist_ok=True)
    (out / "replies" / "junk.xlsx").write_bytes(b"PK not really")
    got = orchestration.followup_replies()
    assert got["files"] == 1 and got["imported"] == 0 and "not an XLSX" in got["problems"][0]
    esc = orchestration.followup_escalate("2026-12-09", smtp=smtp.url)
    assert esc["reminded"] > 0 and esc["sent"] == esc["mails_queued"]
    json.dumps(esc)  # what the DAG pushes to XCom must be JSON
