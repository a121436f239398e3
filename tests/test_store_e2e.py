"""End to end through the public CLI: the same simulated landing on SQLite and on PostGIS.

Why: the store tests prove each method on hand-made frames; this proves that what the
real pipeline hands over — whatever its internals become — lands identically in both
backends, so a county switching from the embedded file to the shared server gets the
same leads, ids and routing. Only the public interface is used (``simulate`` and
``wastetrack run``), never pipeline internals.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from wastetrack.cli import main
from wastetrack.simulate import simulate
from wastetrack.store import migrations, open_store, read_table

pytestmark = [pytest.mark.postgis, pytest.mark.slow]

#: what must be identical between the backends: who, what, where, and who is told
LEAD_KEYS = ["date", "lead_id", "kind", "vehicle_id", "carrier_id", "county_adcode", "province_adcode",
             "cross_border", "primary_liaison_id", "cc_liaison_ids", "manifest_id", "report_ids"]
#: run-specific columns (a new run id, clock times), everything else must match
RUN_SPECIFIC = {"lead_registry": ["updated_at"], "night_state": ["uri", "created_at", "state"]}


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp("e2e")
    simulate(base / "landing", base / "truth.json", seed=11, days=2, trucks=8)
    return base / "landing", json.loads((base / "truth.json").read_text(encoding="utf-8"))["dates"]


def run_nights(landing: Path, dates: list[str], out: Path, store: str) -> None:
    for date in dates:  # one invocation per night, as the nightly DAG does
        rc = main(["run", "--landing", str(landing), "--date", date, "--out", str(out), "--store", store, "-q"])
        assert rc == 0, f"wastetrack run {date} on {store}: exit {rc}"


def test_the_same_landing_gives_the_same_store_on_sqlite_and_postgis(
        landing: tuple[Path, list[str]], tmp_path: Path, pg_url: str) -> None:
    path, dates = landing
    sqlite_url = str(tmp_path / "wastetrack.db")
    run_nights(path, dates, tmp_path / "out-sqlite", sqlite_url)
    run_nights(path, dates, tmp_path / "out-postgis", pg_url)

    lite, pg = read_table(sqlite_url, "leads"), read_table(pg_url, "leads")
    assert len(lite) >= 2 and set(lite["date"]) == set(dates), "the scenario must produce leads every night"
    assert_frame_equal(pd.DataFrame(lite[LEAD_KEYS]), pd.DataFrame(pg[LEAD_KEYS]))
    for table in ("stays", "hauls", "leads", "lead_tracks", "night_state", "lead_registry", "feedback"):
        drop = RUN_SPECIFIC.get(table, [])
        assert_frame_equal(read_table(sqlite_url, table).drop(columns=drop),
                           read_table(pg_url, table).drop(columns=drop), obj=table)
    for url in (sqlite_url, pg_url):
        with open_store(url) as store:
            assert store.dates() == dates
            for date in dates:
                pub = store.published(date)
                assert pub is not None and pub["status"] in ("ok", "degraded") and pub["out_version"]
    assert migrations.status(pg_url)["pending"] == []
