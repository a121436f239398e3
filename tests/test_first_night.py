"""A night without the previous day (the first night of a deployment) judges only what it can, and says so.

Without the previous day, a haul after midnight may have its manifest in the missing batch (night
hauls are booked the afternoon before), so an ``unmanifested`` verdict would be a false accusation:
such hauls are held back (run.json ``held_back``), never reported. And the night says plainly that
it ran without the previous day: on stdout, in run.json, on index.html and on every sheet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from wastetrack.config import DEFAULT_PARAMS

DATES = ("2026-11-19", "2026-11-20")
BANNER = "本夜运行缺少前一日"


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from wastetrack.simulate import simulate

    base = tmp_path_factory.mktemp("first_night")
    simulate(base / "full", base / "truth.json", seed=5, days=2, trucks=30, start_date=DATES[0])
    alone = base / "alone"  # the same landing with the first day archived away
    shutil.copytree(base / "full" / "reference", alone / "reference")
    shutil.copytree(base / "full" / DATES[1], alone / DATES[1])
    return {"full": base / "full", "alone": alone, "base": base}


def _run(landing: Path, out: Path, date: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wastetrack.cli", "run", "--landing", str(landing), "--date", date,
                           "--out", str(out), "-q"], capture_output=True, text=True, check=True)


def test_a_night_without_its_previous_day_holds_back_what_it_cannot_judge(nights: dict[str, Path]) -> None:
    out = nights["base"] / "out_alone"
    res = _run(nights["alone"], out, DATES[1])
    run = json.loads((out / DATES[1] / "run.json").read_text(encoding="utf-8"))
    assert run["status"] == "degraded" and run["context"]["source"] == "none"
    assert "WITHOUT the previous day" in run["context"]["note"] and "NOTE (degraded)" in res.stdout
    held = run["held_back"]
    assert held and all(h["kind"] == "unmanifested" for h in held)

    fc = json.loads((out / DATES[1] / "leads.geojson").read_text(encoding="utf-8"))
    horizon = pd.Timestamp(DATES[1], tz="Asia/Shanghai") + pd.Timedelta(seconds=DEFAULT_PARAMS.manifest_issue_lead_s)
    for f in fc["features"]:
        p = f["properties"]
        if p["kind"] == "unmanifested":  # only hauls that left too late for a booking in the missing day
            assert pd.Timestamp(p["evidence"]["depart"]) >= horizon, p["lead_id"]

    # no flood: with the previous day, the same night finds at least as many unmanifested hauls that it
    # can stand behind; without it, it reports no more than that
    full = nights["base"] / "out_full"
    for d in DATES:
        _run(nights["full"], full, d)
    with_context = json.loads((full / DATES[1] / "run.json").read_text(encoding="utf-8"))
    assert run["leads"]["unmanifested"] <= with_context["leads"]["unmanifested"]
    assert with_context["status"] == "ok" and with_context["context"]["source"] == "state"


def test_every_page_of_such_a_night_carries_the_banner(nights: dict[str, Path]) -> None:
    out = nights["base"] / "out_banner"
    _run(nights["alone"], out, DATES[1])
    sheets = out / DATES[1] / "sheets"
    pages = sorted(sheets.glob("*.html"))
    assert len(pages) > 2
    missing = [p.name for p in pages if BANNER not in p.read_text(encoding="utf-8")]
    assert missing == []
    # and a night with its context carries none
    full = nights["base"] / "out_full2"
    for d in DATES:
        _run(nights["full"], full, d)
    assert BANNER not in (full / DATES[1] / "sheets" / "index.html").read_text(encoding="utf-8")
