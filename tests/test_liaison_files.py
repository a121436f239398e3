"""The liaison loop end to end on a simulated night, through the command line, and the files it writes.

A night of the simulator runs (``run_night``); ``wastetrack deliver`` mails it through a real SMTP
server; a liaison fills the reply sheet it received and ``wastetrack replies import`` takes it in
(once; rows that may not count are quarantined with file and row); ``wastetrack escalate``,
``credit`` and ``report`` follow. Every XLSX written (the liaison's workbook, the credit list, the
monthly report) is opened by LibreOffice headless (``scripts/libreoffice.sh`` installs it; missing
under CI is a failure, elsewhere a skip) and carries Chinese headers; the report page is offline.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from liaison_fixtures import (
    SmtpServer,
    attachments,
    by_recipient,
    smtp_fixture,  # noqa: F401  (the fixture `smtp`)
)
from wastetrack.cli import main
from wastetrack.network import Network
from wastetrack.pipeline import run_night
from wastetrack.store import open_store

NIGHT = "2026-11-30"  # the month's last night: the monthly report of November follows it
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from wastetrack.simulate import simulate

    base = tmp_path_factory.mktemp("loop")
    simulate(base / "landing", base / "truth.json", seed=5, days=1, trucks=8, start_date=NIGHT)
    run_night(base / "landing", NIGHT, base / "out")
    return {"landing": base / "landing", "out": base / "out", "store": str(base / "out" / "wastetrack.db")}


def soffice_csv(files: list[Path], outdir: Path) -> dict[str, str]:
    """Every sheet of every file as CSV text, converted by LibreOffice headless: {file-sheet: text}."""
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        msg = "LibreOffice (soffice) is missing: run scripts/libreoffice.sh"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    profile = outdir / "lo-profile"
    res = subprocess.run([exe, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                          "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
                          "--outdir", str(outdir), *map(str, files)], capture_output=True, text=True, timeout=180,
                         check=False)
    assert res.returncode == 0, res.stderr
    return {p.stem: p.read_text(encoding="utf-8") for p in outdir.glob("*.csv")}


def test_the_loop_on_a_simulated_night(simulated: dict, smtp: SmtpServer, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WASTETRACK_SMTP", smtp.url)
    monkeypatch.setenv("WASTETRACK_STORE", simulated["store"])
    monkeypatch.delenv("WASTETRACK_LANDING", raising=False)
    landing, out = str(simulated["landing"]), str(simulated["out"])
    with open_store(simulated["store"], create=False) as st:
        leads = st.read("leads", NIGHT)
    assert len(leads) >= 2

    assert main(["deliver", "--out", out, "--date", NIGHT, "--landing", landing]) == 0
    net = Network.from_landing(landing)
    inbox = by_recipient(smtp.inbox.messages)
    routed = {lid for r in leads.itertuples() for lid in (r.primary_liaison_id, *r.cc_liaison_ids) if lid}
    assert set(inbox) == {net.email(lid) for lid in routed} and all(len(m) == 1 for m in inbox.values())

    # the primary of the first lead answers in the sheet it got
    lead = leads.iloc[0]
    msg = inbox[net.email(lead["primary_liaison_id"])][0]
    _name, data = next((n, d) for n, d in attachments(msg).items() if n.endswith(".xlsx"))
    wb = load_workbook(io.BytesIO(data))
    ws = wb["回复表"]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == lead["lead_id"])
    ws.cell(row, 3, "已签收")
    ws.cell(row, 4, "2026-12-01 09:00")
    reply = tmp_path / "reply.xlsx"
    wb.save(reply)
    assert main(["replies", "import", str(reply), "--landing", landing]) == 0
    assert "1 accepted, 0 quarantined" in capsys.readouterr().out
    assert main(["replies", "import", str(reply), "--landing", landing]) == 0
    assert "already imported" in capsys.readouterr().out
    # re-sent with one more row: the old row is not stored twice, the new one is quarantined with its row
    ws.cell(ws.max_row + 1, 1, lead["lead_id"])
    bad_row = ws.max_row
    for col, value in ((2, "LN-NOBODY"), (3, "已立案"), (4, "2026-12-01 10:00")):
        ws.cell(bad_row, col, value)
    wb.save(reply)
    assert main(["replies", "import", str(reply), "--landing", landing]) == 0
    printed = capsys.readouterr().out
    assert "0 accepted, 1 quarantined, 1 already stored" in printed and f"row {bad_row}:" in printed
    not_xlsx = tmp_path / "note.xlsx"
    not_xlsx.write_text("not a workbook", encoding="utf-8")
    assert main(["replies", "import", str(not_xlsx), "--landing", landing]) == 2
    assert "not an XLSX workbook" in capsys.readouterr().err

    assert main(["escalate", "--out", out, "--date", "2026-12-09", "--landing", landing, "--at",
                 "2026-12-10T07:00:00"]) == 0
    assert "reminders" in capsys.readouterr().out
    with open_store(simulated["store"], create=False) as st:
        state = st.read("lead_state").set_index("lead_id")
    assert state.loc[lead["lead_id"], "phase"] == "received"
    assert (state.drop(index=lead["lead_id"])["phase"] == "delivered").all()

    reports = tmp_path / "monthly"
    assert main(["credit", "--month", "2026-11", "--out", str(reports), "--landing", landing]) == 0
    assert main(["report", "--month", "2026-11", "--out", str(reports), "--landing", landing]) == 0
    html = (reports / "report-2026-11.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "src=\"http" not in html and "<script" not in html
    assert main(["report", "--month", "2026-13"]) == 2

    sheets = soffice_csv([reply, reports / "credit-2026-11.xlsx", reports / "report-2026-11.xlsx"], tmp_path / "csv")
    assert "线索编号,线索类型,本单位角色" in sheets["reply-线索清单"]
    assert sheets["reply-回复表"].startswith("线索编号,联络员编号,状态,回复时间")
    assert "统一社会信用代码,企业名称" in sheets["credit-2026-11-信用评价"]
    assert "县区,区划代码" in sheets["report-2026-11-线索按县区和类型"]
    assert "省,市,线索编号,类别" in sheets["report-2026-11-备案清单"]
