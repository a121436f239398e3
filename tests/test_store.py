"""The storage contract, written once for every backend.

Every test takes the ``store`` fixture (or ``empty_url``, the URL of an empty store),
parametrised by backend: each runs on SQLite and on PostGIS (a fresh schema of a real
server per test, see conftest.py). The assertions never depend on the backend; the few
tests about one backend's own settings say so in their name.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pandas.testing import assert_frame_equal

from wastetrack.cli import main as cli_main
from wastetrack.models import FEEDBACK_COLUMNS, HAUL_COLUMNS, LEAD_COLUMNS, PLACE_COLUMNS, STAY_COLUMNS
from wastetrack.store import (
    SchemaVersionError,
    StoreError,
    StoreNotFound,
    mask_url,
    migrations,
    open_store,
    read_table,
)
from wastetrack.store.base import TABLES, TRACK_COLUMNS, Store
from wastetrack.store.migrations import Migration
from wastetrack.store.urls import mask_secrets, parse

TZ = "Asia/Shanghai"
TS = f"datetime64[us, {TZ}]"
D1, D2 = "2026-11-19", "2026-11-20"

#: backend → (the URL of an EMPTY store for one test, marks)
BACKENDS: dict[str, tuple[Callable[[pytest.FixtureRequest, Path], str], list[pytest.MarkDecorator]]] = {
    "sqlite": (lambda request, tmp: str(tmp / "wastetrack.db"), []),
    "postgis": (lambda request, tmp: request.getfixturevalue("pg_url"), [pytest.mark.postgis]),
}


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in BACKENDS.items()])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return BACKENDS[request.param][0](request, tmp_path)


@pytest.fixture
def store(empty_url: str) -> Iterator[Store]:
    with open_store(empty_url) as s:
        yield s


def backend_of(url: str) -> str:
    return parse(url)[0]


# --- realistic frames, in the dtypes ``read`` returns -----------------------------------------------

def ts(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), format="ISO8601")).dt.tz_localize(TZ).astype(TS)


def make_stays(date: str, n: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(f"{date} 21:00", tz=TZ) + pd.to_timedelta(np.arange(n) * 611.25, unit="s")
    plates = np.array(["沪AD1234", "苏E12345", "浙A5X678", "皖A9Q001"])
    tri = pd.array(np.tile([True, False, None], n // 3 + 1)[:n].tolist(), dtype="boolean")
    return pd.DataFrame({
        "stay_id": pd.Series([f"S-{date}-{i:06d}-{plates[i % 4]}" for i in range(n)], dtype="str"),
        "vehicle_id": pd.Series(plates[np.arange(n) % 4], dtype="str"),
        "start": pd.Series(start).astype(TS),
        "end": pd.Series(start + pd.Timedelta(seconds=480)).astype(TS),
        "duration_s": np.full(n, 480.0),
        "lon": 121.0 + rng.random(n), "lat": 31.0 + rng.random(n),
        "n_fixes": pd.array(rng.integers(5, 200, n), dtype="Int64"),
        "tipping_any": tri, "loaded_before": tri[::-1],
        "loaded_after": pd.array([pd.NA] * n, dtype="boolean"),
        "site_id": pd.Series(np.where(np.arange(n) % 2, "SITE-青浦-001", None), dtype="str"),
        "site_kind": pd.Series(np.where(np.arange(n) % 2, "disposal", ""), dtype="str"),
        "county_adcode": pd.Series(["310118"] * n, dtype="str"),
        "city_adcode": pd.Series(["310100"] * n, dtype="str"),
        "province_adcode": pd.Series(["310000"] * n, dtype="str"),
    })


def make_hauls(date: str) -> pd.DataFrame:
    return pd.DataFrame({
        "haul_id": pd.Series([f"H-{date}-1", f"H-{date}-2"], dtype="str"),
        "vehicle_id": pd.Series(["沪AD1234", "苏E12345"], dtype="str"),
        "origin_site_id": pd.Series(["SITE-工地-7", None], dtype="str"),
        "origin_stay_id": pd.Series(["s1", None], dtype="str"),
        "depart": ts(f"{date}T21:10:00", f"{date}T22:00:00.250"),
        "unload_stay_id": pd.Series(["s2", None], dtype="str"),
        "unload_start": ts(f"{date}T22:31:07", None),
        "unload_end": ts(f"{date}T22:45:00", None),
        "unload_lon": [121.31, np.nan], "unload_lat": [31.12, np.nan],
        "unload_site_id": pd.Series(["", None], dtype="str"),
        "unload_county_adcode": pd.Series(["320583", ""], dtype="str"),
        "unload_province_adcode": pd.Series(["320000", ""], dtype="str"),
        "unload_evidence": pd.Series(["sensor", "gap"], dtype="str"),
        "gap_start": ts(None, f"{date}T22:40:00"),
        "gap_end": ts(None, f"{date}T23:15:30"),
        "gap_lon": [np.nan, 120.95], "gap_lat": [np.nan, 31.38], "gap_max_reach_m": [np.nan, 14_583.3],
        "returned_empty": pd.array([True, None], dtype="boolean"),
        "end": ts(f"{date}T23:20:00", f"{date}T23:59:59.999999"),
    })


def make_leads(date: str, ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame({
        "lead_id": pd.Series(ids, dtype="str"),
        "kind": pd.Series((["illegal_dump", "report_trace", "track_gap"] * n)[:n], dtype="str"),
        "cross_border": pd.array(([True, False] * n)[:n], dtype="boolean"),
        "score": np.linspace(0.55, 0.95, n),
        "vehicle_id": pd.Series((["沪AD1234", "苏E12345"] * n)[:n], dtype="str"),
        "carrier_id": pd.Series(["91310118MA1JL0XX3P"] * n, dtype="str"),
        "start": ts(*[f"{date}T22:31:07"] * n),
        "end": ts(*[f"{date}T22:45:00.5"] * n),
        "county_adcode": pd.Series(["320583"] * n, dtype="str"),
        "province_adcode": pd.Series(["320000"] * n, dtype="str"),
        "origin_site_id": pd.Series(["SITE-工地-7"] * n, dtype="str"),
        "origin_county_adcode": pd.Series(["310118"] * n, dtype="str"),
        "manifest_id": pd.Series([""] * n, dtype="str"),
        "report_ids": pd.Series([["RPT-20261120-0007"] if i % 2 == 0 else [] for i in range(n)],
                                dtype=object),
        "candidates": pd.Series([["沪AD1234", "苏E12345"] if i % 2 else None for i in range(n)],
                                dtype=object),
        "primary_liaison_id": pd.Series(["LN-320583-01"] * n, dtype="str"),
        "cc_liaison_ids": pd.Series([["LN-310118-01", "LN-320000-P"]] * n, dtype=object),
        "lon": np.full(n, 120.98), "lat": np.full(n, 31.38),
        "evidence": pd.Series([{
            "说明": "在无消纳资质地点停留 14 分钟并举升", "dwell_s": 840.0, "tipping": True,
            "stay": {"stay_id": "s2", "site_id": None},
            "nearby_reports": [{"report_id": "RPT-7", "m": 212.5}],
        }] * n, dtype=object),
    })


def make_run(date: str, **extra: object) -> dict:
    return {"date": date, "version": "0.1.0", "status": "ok",
            "started_at": pd.Timestamp(f"{date} 23:59:59", tz=TZ) + pd.Timedelta(hours=2),
            "finished_at": pd.Timestamp(f"{date} 23:59:59", tz=TZ) + pd.Timedelta(hours=2, seconds=41),
            "leads": {"illegal_dump": 1},
            "untraced_reports": [{"report_id": "RPT-9", "reason": "1 km 内无车辆"}],
            **extra}


def write_night(store: Store, date: str, ids: list[str], **run: object) -> None:
    store.replace_night(date, make_stays(date), make_hauls(date), make_leads(date, ids),
                        make_run(date, **run))


def snapshot(store: Store) -> dict[str, pd.DataFrame]:
    return {t: store.read(t) for t in TABLES}


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        assert_frame_equal(a[table], b[table], obj=table)


def night_part(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(frame).drop(columns=["date", "geometry"], errors="ignore").reset_index(drop=True)


# --- round trips -----------------------------------------------------------------------------------

def test_round_trip_every_night_table(store: Store) -> None:
    stays, hauls, leads = make_stays(D2, n=7), make_hauls(D2), make_leads(D2, ["L-1", "L-2", "L-3"])
    run = make_run(D2)
    store.replace_night(D2, stays, hauls, leads, run)

    assert_frame_equal(night_part(store.read("stays", D2)), stays[[*STAY_COLUMNS, *PLACE_COLUMNS]])
    assert_frame_equal(night_part(store.read("hauls", D2)), hauls[list(HAUL_COLUMNS)])
    got = night_part(store.read("leads", D2))
    assert_frame_equal(got, leads[[*LEAD_COLUMNS, "lon", "lat", "evidence"]])
    assert got.at[0, "evidence"]["说明"].startswith("在无消纳资质")
    assert got.at[0, "evidence"]["nearby_reports"][0]["m"] == 212.5
    assert got.at[1, "candidates"] == ["沪AD1234", "苏E12345"] and got.at[0, "candidates"] is None
    assert got.at[1, "report_ids"] == []

    runs = store.read("runs")
    assert runs["date"].tolist() == [D2] and runs.at[0, "status"] == "ok" and runs.at[0, "version"] == "0.1.0"
    assert runs.at[0, "started_at"] == pd.Timestamp("2026-11-21 01:59:59", tz=TZ)
    assert str(runs["finished_at"].dtype) == TS
    assert runs.at[0, "run_json"]["untraced_reports"][0]["reason"] == "1 km 内无车辆"
    assert runs.at[0, "run_json"]["started_at"] == "2026-11-21T01:59:59+08:00"
    assert store.dates() == [D2]


def test_messy_inputs_are_stored_like_canonical_ones(store: Store) -> None:
    """What stages really hand over: object columns with None, ns/UTC/naive times, numpy lists, int64."""
    stays = make_stays(D1, n=5)
    messy = stays.astype({"stay_id": object, "site_id": object, "n_fixes": "int64", "tipping_any": object})
    messy["start"] = messy["start"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")  # same instants
    messy["end"] = messy["end"].dt.tz_localize(None)  # naive = local, per the contract
    leads = make_leads(D1, ["L-1", "L-2"])
    messy_leads = leads.assign(report_ids=[np.array(["RPT-20261120-0007"]), []],
                               score=leads["score"].astype("float32").astype(object),
                               start=leads["start"].dt.strftime("%Y-%m-%dT%H:%M:%S%z"))
    hauls = make_hauls(D1)
    messy_hauls = hauls.astype({"depart": object, "returned_empty": object})
    messy_hauls["depart"] = [f"{D1} 21:10:00", pd.Timestamp(f"{D1}T14:00:00.25Z")]  # naive = local
    messy_hauls["returned_empty"] = [1, None]
    store.replace_night(D1, messy, messy_hauls, messy_leads, make_run(D1))
    assert_frame_equal(night_part(store.read("stays", D1)), stays[[*STAY_COLUMNS, *PLACE_COLUMNS]])
    assert_frame_equal(night_part(store.read("hauls", D1)), hauls[list(HAUL_COLUMNS)])
    got = night_part(store.read("leads", D1))
    assert got.at[0, "report_ids"] == ["RPT-20261120-0007"]
    assert got["start"].tolist() == leads["start"].tolist()
    np.testing.assert_allclose(got["score"], leads["score"], rtol=1e-6)


def test_evidence_with_nan_and_numpy_values_becomes_plain_json(store: Store) -> None:
    leads = make_leads(D2, ["L-1"])
    leads.at[0, "evidence"] = {"dwell_s": np.float64(612.0), "n": np.int64(3), "reach_m": float("nan"),
                               "at": pd.Timestamp("2026-11-20 22:31:07", tz=TZ),
                               "sites": np.array(["A", "B"])}
    store.replace_night(D2, make_stays(D2), make_hauls(D2), leads, make_run(D2))
    assert store.read("leads").at[0, "evidence"] == {
        "dwell_s": 612.0, "n": 3, "reach_m": None, "at": "2026-11-20T22:31:07+08:00", "sites": ["A", "B"]}


def test_empty_night_round_trips_with_dtypes(store: Store) -> None:
    store.replace_night(D1, make_stays(D1, n=0), make_hauls(D1).iloc[:0], make_leads(D1, []), make_run(D1))
    stays = store.read("stays", D1)
    assert len(stays) == 0 and str(stays["start"].dtype) == TS
    assert str(stays["tipping_any"].dtype) == "boolean"
    assert store.dates() == [D1] and store.read("lead_registry").empty


def test_read_stays_and_leads_as_geodataframes(store: Store) -> None:
    stays = make_stays(D2, n=3)
    stays.loc[2, ["lon", "lat"]] = np.nan
    store.replace_night(D2, stays, make_hauls(D2), make_leads(D2, ["L-1"]), make_run(D2))
    for table in ("stays", "leads"):
        g = store.read(table)
        assert isinstance(g, gpd.GeoDataFrame) and g.crs.to_epsg() == 4326
    g = store.read("stays")
    assert g.geometry.x.iloc[:2].tolist() == stays["lon"].iloc[:2].tolist()
    assert g.geometry.y.iloc[:2].tolist() == stays["lat"].iloc[:2].tolist()
    assert g.geometry.iloc[2] is None
    assert not isinstance(store.read("hauls"), gpd.GeoDataFrame)


def test_read_in_boxes_and_ids_of_one_night_are_the_filtered_reads(store: Store) -> None:
    stays1 = make_stays(D1, n=400, seed=1)
    stays2 = make_stays(D2, n=400, seed=2)
    stays2.loc[5, ["lon", "lat"]] = np.nan
    store.replace_night(D1, stays1, make_hauls(D1), make_leads(D1, []), make_run(D1))
    store.replace_night(D2, stays2, make_hauls(D2), make_leads(D2, []), make_run(D2))
    # 300 boxes: more than one query's worth; overlapping ones must not give a row twice
    rng = np.random.default_rng(3)
    lo, la = 121.0 + rng.random(300), 31.0 + rng.random(300)
    boxes = [(x, y, x + 0.03, y + 0.02) for x, y in zip(lo, la, strict=True)] + [(121.2, 31.2, 121.4, 31.5)] * 2
    got = store.read_in_boxes("stays", D2, boxes)
    whole = store.read("stays", D2)
    inside = np.zeros(len(whole), bool)
    for x0, y0, x1, y1 in boxes:
        inside |= whole["lon"].between(x0, x1).to_numpy() & whole["lat"].between(y0, y1).to_numpy()
    assert 50 < inside.sum() < len(whole)
    assert isinstance(got, gpd.GeoDataFrame)
    assert_frame_equal(pd.DataFrame(got), pd.DataFrame(whole.loc[inside].reset_index(drop=True)))
    assert store.read_in_boxes("stays", D1, [(0.0, 0.0, 1.0, 1.0)]).empty
    assert store.read_in_boxes("stays", D1, []).empty
    with pytest.raises(ValueError, match="lon/lat"):
        store.read_in_boxes("hauls", D1, boxes)
    plate = stays2["vehicle_id"].iloc[0]
    by_plate = store.read_ids("stays", "vehicle_id", [plate], date=D1)
    assert len(by_plate) == (stays1["vehicle_id"] == plate).sum() and set(by_plate["date"]) == {D1}


def test_history_reads_only_what_late_reports_need_and_misses_nothing(store: Store) -> None:
    """``trace.StoreHistory`` asks the database for the stays near the reports and the hauls of their
    trucks: the same rows as reading every earlier night whole and filtering in Python."""
    from wastetrack.spacetime import near_pairs
    from wastetrack.trace import StoreHistory

    for i, d in enumerate((D1, D2)):
        store.replace_night(d, make_stays(d, n=600, seed=i), make_hauls(d), make_leads(d, []), make_run(d))
    reports = pd.DataFrame({"lon": [121.3, 121.7, 121.71, 150.0], "lat": [31.2, 31.6, 31.6, 10.0]})
    radius = 5000.0
    history = StoreHistory(store, "2026-11-21", days=3)
    near = history.stays(near=(reports["lon"].to_numpy(), reports["lat"].to_numpy(), radius))
    whole = history.stays()
    pairs, _ = near_pairs(whole["lon"].to_numpy(float), whole["lat"].to_numpy(float), reports, radius)
    want = whole.iloc[np.unique(pairs)]
    assert 5 < len(near) < len(whole) / 10
    assert sorted(near["stay_id"]) == sorted(want["stay_id"])
    plates = ["苏E12345"]
    got = history.hauls(plates)
    every = history.hauls()
    assert sorted(got["haul_id"]) == sorted(every.loc[every["vehicle_id"].isin(plates), "haul_id"])
    assert set(got["date"]) == {D1, D2} and history.hauls([]).empty


def test_leads_given_as_geodataframe_without_lon_lat(store: Store) -> None:
    leads = make_leads(D2, ["L-1"])
    geo = gpd.GeoDataFrame(leads.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy([121.5], [31.25]), crs="EPSG:4326")
    store.replace_night(D2, make_stays(D2), make_hauls(D2), geo, make_run(D2))
    got = store.read("leads")
    assert (got.at[0, "lon"], got.at[0, "lat"]) == (121.5, 31.25)


def test_read_rejects_unknown_table_and_undated_filter(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        store.read("stays; DROP TABLE stays")
    with pytest.raises(ValueError, match="spans nights"):
        store.read("lead_registry", D1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        store.read("stays", "20261120")


# --- replace_night: idempotent and atomic ----------------------------------------------------------

def test_replace_night_twice_leaves_exactly_the_same_content(store: Store) -> None:
    write_night(store, D1, ["L-1", "L-3"])
    write_night(store, D2, ["L-1", "L-2"])
    before = snapshot(store)
    time.sleep(0.01)  # a changed updated_at would show
    write_night(store, D2, ["L-1", "L-2"])
    after = snapshot(store)
    assert_same(before, after)
    assert len(after["stays"]) == 2 * len(make_stays(D2)) and len(after["leads"]) == 4
    assert store.dates() == [D1, D2]


def test_replace_night_replaces_only_its_own_date(store: Store) -> None:
    write_night(store, D1, ["L-1"])
    write_night(store, D2, ["L-2"])
    store.replace_night(D2, make_stays(D2, n=2), make_hauls(D2).iloc[:1], make_leads(D2, []), make_run(D2))
    assert len(store.read("stays", D2)) == 2 and len(store.read("hauls", D2)) == 1
    assert store.read("leads", D2).empty
    assert len(store.read("stays", D1)) == len(make_stays(D1))
    assert store.read("leads", D1)["lead_id"].tolist() == ["L-1"]


def test_failure_mid_way_keeps_the_previous_night(store: Store) -> None:
    write_night(store, D1, ["L-1"])
    write_night(store, D2, ["L-1", "L-2"])
    before = snapshot(store)
    # stays and hauls are new and valid; the leads insert (last) hits a duplicate key mid-transaction
    bad = make_leads(D2, ["L-7", "L-7"])
    with pytest.raises(Exception, match=r"(?i)unique"):
        store.replace_night(D2, make_stays(D2, n=9, seed=5), make_hauls(D2).iloc[:1], bad, make_run(D2))
    assert_same(before, snapshot(store))
    # the store is still usable: no transaction was left open
    write_night(store, D2, ["L-2"])
    assert store.read("leads", D2)["lead_id"].tolist() == ["L-2"]


def test_bad_value_is_rejected_before_anything_changes(store: Store) -> None:
    write_night(store, D2, ["L-1"])
    before = snapshot(store)
    leads = make_leads(D2, ["L-9"]).astype({"score": object})
    leads.at[0, "score"] = "high"
    with pytest.raises(ValueError, match=r"leads\.score"):
        store.replace_night(D2, make_stays(D2, n=9), make_hauls(D2), leads, make_run(D2))
    hauls = make_hauls(D2).astype({"depart": object})
    hauls.at[0, "depart"] = "yesterday evening"
    with pytest.raises(ValueError, match=r"hauls\.depart"):
        store.replace_night(D2, make_stays(D2, n=9), hauls, make_leads(D2, ["L-9"]), make_run(D2))
    with pytest.raises(ValueError, match=r"run\.date"):
        store.replace_night(D2, make_stays(D2), make_hauls(D2), make_leads(D2, []), make_run(D1))
    assert_same(before, snapshot(store))


# --- lead registry -----------------------------------------------------------------------------------

def registry(store: Store) -> pd.DataFrame:
    return store.read("lead_registry").set_index("lead_id")


def test_registry_first_and_last_dates_across_nights(store: Store) -> None:
    write_night(store, D1, ["L-1", "L-3"])
    write_night(store, D2, ["L-1", "L-2"])
    reg = registry(store)
    assert reg.loc["L-1", ["first_date", "last_date"]].tolist() == [D1, D2]
    assert reg.loc["L-2", ["first_date", "last_date"]].tolist() == [D2, D2]
    assert reg.loc["L-3", ["first_date", "last_date"]].tolist() == [D1, D1]
    assert set(reg["status"]) == {"new"} and reg["case_no"].isna().all()
    assert reg.loc["L-2", "kind"] == "report_trace" and reg.loc["L-2", "vehicle_id"] == "苏E12345"

    write_night(store, D1, ["L-1", "L-3"])  # re-running the earlier night does not rewind last_date
    assert registry(store).loc["L-1", ["first_date", "last_date"]].tolist() == [D1, D2]

    write_night(store, D2, ["L-2"])  # a re-run that no longer reports L-1 on D2
    write_night(store, D1, ["L-1"])  # nor L-3 on D1
    reg = registry(store)
    assert reg.loc["L-1", ["first_date", "last_date"]].tolist() == [D1, D1]
    assert "L-3" not in reg.index


def test_leads_reported_before(store: Store) -> None:
    write_night(store, D1, ["L-1", "L-3"])
    write_night(store, D2, ["L-1", "L-2"])
    assert store.leads_reported_before(D2, ["L-1", "L-2", "L-3", "L-unknown"]) == {"L-1", "L-3"}
    assert store.leads_reported_before(D1, ["L-1", "L-3"]) == set()
    assert store.leads_reported_before("2026-11-21", iter(["L-2"])) == {"L-2"}
    assert store.leads_reported_before(D2, []) == set()
    many = [f"L-{i}" for i in range(2000)]  # more ids than one IN list holds
    assert store.leads_reported_before("2026-12-01", many) == {"L-1", "L-2", "L-3"}


# --- feedback ---------------------------------------------------------------------------------------

def feedback(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(FEEDBACK_COLUMNS))
    frame["at"] = pd.to_datetime(frame["at"], format="ISO8601").dt.tz_convert(TZ)
    return frame


FB = feedback(
    ("L-1", "LN-320583-01", "2026-11-21T09:12:00+08:00", "received", None, None, "已收到，安排核查"),
    ("L-1", "LN-320583-01", "2026-11-22T15:40:00+08:00", "case_filed", "昆城管罚字〔2026〕第0123号", 20000.0,
     "已立案"),
    ("L-2", "LN-320583-01", "2026-11-21T10:00:00+08:00", "not_established", "", None, "现场为合法回填"),
)


def test_apply_feedback_updates_the_registry_and_is_idempotent(store: Store) -> None:
    write_night(store, D2, ["L-1", "L-2", "L-3"])
    assert store.apply_feedback(pd.concat([FB, FB.iloc[:1]], ignore_index=True)) == 3  # in-frame duplicate
    reg = registry(store)
    assert reg.loc["L-1", ["status", "case_no", "penalty_cny"]].tolist() == [
        "case_filed", "昆城管罚字〔2026〕第0123号", 20000.0]
    assert reg.loc["L-2", "status"] == "not_established" and pd.isna(reg.loc["L-2", "case_no"])
    assert reg.loc["L-3", "status"] == "new"

    before = snapshot(store)
    time.sleep(0.01)
    assert store.apply_feedback(FB.iloc[::-1]) == 0
    assert_same(before, snapshot(store))

    stored = store.read("feedback")
    assert len(stored) == 3 and stored.at[0, "note"] == "已收到，安排核查"
    assert stored.at[1, "at"] == pd.Timestamp("2026-11-22 15:40", tz=TZ) and str(stored["at"].dtype) == TS


def test_latest_reply_wins_whatever_the_arrival_order(store: Store) -> None:
    write_night(store, D2, ["L-1"])
    closed = feedback(("L-1", "LN-320583-01", "2026-11-25T08:00:00+08:00", "closed", None, None, "结案"))
    assert store.apply_feedback(closed) == 1
    assert store.apply_feedback(FB.iloc[:2]) == 2  # older replies arrive later
    reg = registry(store)
    # status from the latest reply; the case number and fine survive a closing reply without them
    assert reg.loc["L-1", ["status", "case_no", "penalty_cny"]].tolist() == [
        "closed", "昆城管罚字〔2026〕第0123号", 20000.0]
    write_night(store, D2, ["L-1"])  # re-running the night keeps the liaison's status
    assert registry(store).loc["L-1", "status"] == "closed"


def test_feedback_for_unknown_lead_is_kept_and_applied_when_the_lead_appears(store: Store) -> None:
    assert store.apply_feedback(FB.iloc[2:]) == 1
    assert store.read("lead_registry").empty and len(store.read("feedback")) == 1
    write_night(store, D2, ["L-2"])
    assert registry(store).loc["L-2", "status"] == "not_established"


def test_feedback_rejects_missing_keys_and_unknown_status(store: Store) -> None:
    bad = FB.copy()
    bad.loc[0, "liaison_id"] = None
    with pytest.raises(ValueError, match="must all be present"):
        store.apply_feedback(bad)
    with pytest.raises(ValueError, match="unknown status"):
        store.apply_feedback(FB.assign(status="done"))
    assert store.apply_feedback(FB.iloc[:0]) == 0
    assert store.read("feedback").empty


# --- opening ---------------------------------------------------------------------------------------

def test_open_store_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(f"sqlite:///{tmp_path}/a/b.db") as s:
        assert s.url == f"sqlite:///{tmp_path}/a/b.db" and (tmp_path / "a/b.db").exists()
        assert isinstance(s, Store)
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel.db") as s:
        assert Path(s.url.removeprefix("sqlite:///")) == tmp_path / "rel.db"
    monkeypatch.setenv("WASTETRACK_STORE", str(tmp_path / "env.db"))
    with open_store(None) as s:
        assert s.url.endswith("env.db")
    for scheme in ("postgresql", "postgres", "postgis"):
        assert parse(f"{scheme}://wt@db:5432/wastetrack") == ("postgis", "postgresql://wt@db:5432/wastetrack")
    with pytest.raises(StoreError, match=r"^cannot connect to postgresql://wt:\*\*\*@127\.0\.0\.1:1/x: "):
        open_store("postgis://wt:s3cr3t@127.0.0.1:1/x")  # nothing listens on port 1
    with pytest.raises(ValueError, match="scheme"):
        open_store("mysql://x")


def test_read_table_helper(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "wastetrack.db"
    with open_store(path) as s:
        write_night(s, D2, ["L-1"])
    leads = read_table(path, "leads", date=D2)
    assert isinstance(leads, gpd.GeoDataFrame) and leads["lead_id"].tolist() == ["L-1"]
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "typo.db", "leads")
    assert not (tmp_path / "typo.db").exists()


def test_sqlite_file_settings_and_sortable_time_text(tmp_path: Path) -> None:
    """SQLite only: WAL, foreign keys, and the stored time text (sorts in time order)."""
    path = tmp_path / "wt.db"
    with open_store(path) as s:
        stays = make_stays(D2, n=3)
        stays["start"] = ts(f"{D2}T21:00:07.5", f"{D2}T21:00:07", f"{D2}T20:59:59")
        s.replace_night(D2, stays, make_hauls(D2), make_leads(D2, []), make_run(D2))
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        texts = [r[0] for r in con.execute('SELECT "start" FROM stays ORDER BY "start"')]
        assert texts == [f"{D2}T20:59:59+08:00", f"{D2}T21:00:07+08:00", f"{D2}T21:00:07.500000+08:00"]
        con.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):  # night rows need their run row
            con.execute("INSERT INTO hauls (date, haul_id, vehicle_id) VALUES ('2030-01-01', 'h', 'v')")
    finally:
        con.close()


@pytest.mark.slow
def test_write_200k_stays(store: Store) -> None:
    stays = make_stays(D2, n=200_000, seed=1)
    t0 = time.perf_counter()
    store.replace_night(D2, stays, make_hauls(D2), make_leads(D2, ["L-1"]), make_run(D2))
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = store.read("stays", D2)
    read_s = time.perf_counter() - t0
    print(f"\n200k stays: write {write_s:.2f} s, read {read_s:.2f} s ({store.url.split(':')[0]})")
    assert len(got) == 200_000 and got["stay_id"].is_unique
    assert_frame_equal(night_part(got).iloc[-5:].reset_index(drop=True),
                       stays.iloc[-5:][[*STAY_COLUMNS, *PLACE_COLUMNS]].reset_index(drop=True))


# --- tracks around leads, the night's carry-over state, what a night published ----------------------

def make_tracks(date: str, ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame({
        "lead_id": pd.Series(ids, dtype="str"),
        "vehicle_id": pd.Series((["沪AD1234", "苏E12345"] * n)[:n], dtype="str"),
        "start": ts(*[f"{date}T22:01:07"] * n),
        "end": ts(*[f"{date}T23:15:00.5"] * n),
        "n_fixes": pd.array([3 + i for i in range(n)], dtype="Int64"),
        "wkt": pd.Series([f"LINESTRING ({120.9 + i / 100} 31.3, 120.98 31.38, 121.0{i} 31.4{i})"
                          for i in range(n)], dtype="str"),
    })


STATE = {"uri": "file:///data/out/.wastetrack/state/2026-11-20.parquet", "vehicles": 312, "fixes": 48_113,
         "created_at": "2026-11-21T02:00:41+08:00",
         "open_hauls": [{"vehicle_id": "沪AD1234", "since": "2026-11-20T23:41:07+08:00"}], "schema": 1}


def test_tracks_state_and_publication_round_trip(store: Store) -> None:
    tracks = make_tracks(D2, ["L-1", "L-3"])
    store.replace_night(D2, make_stays(D2), make_hauls(D2), make_leads(D2, ["L-1", "L-2", "L-3"]),
                        make_run(D2, run_id="run-20261121T020000-7f3a", out_version="v3"),
                        tracks=tracks, state=STATE)
    got = store.read("lead_tracks", D2)
    assert isinstance(got, gpd.GeoDataFrame) and got.crs.to_epsg() == 4326
    assert_frame_equal(night_part(got), tracks[list(TRACK_COLUMNS)])
    assert shapely.equals(got.geometry.to_numpy(), shapely.from_wkt(tracks["wkt"].to_numpy())).all()
    assert got.geometry.iloc[1].coords[2] == (121.01, 31.41)
    assert store.read("lead_tracks")["date"].tolist() == [D2, D2]

    assert store.state_of(D2) == STATE
    assert store.state_of(D1) is None
    night_state = store.read("night_state", D2)
    assert night_state.loc[0, ["uri", "vehicles", "fixes"]].tolist() == [STATE["uri"], 312, 48_113]
    assert night_state.at[0, "created_at"] == pd.Timestamp("2026-11-21 02:00:41", tz=TZ)

    assert store.published(D2) == {"run_id": "run-20261121T020000-7f3a", "out_version": "v3", "status": "ok"}
    assert store.published(D1) is None
    runs = store.read("runs")
    assert runs.loc[0, ["run_id", "out_version"]].tolist() == ["run-20261121T020000-7f3a", "v3"]
    write_night(store, D1, ["L-9"])  # a run without run_id / out_version
    assert store.published(D1) == {"run_id": None, "out_version": None, "status": "ok"}


def test_state_accepts_numpy_counts_and_keeps_extra_json(store: Store) -> None:
    state = {**STATE, "vehicles": np.int64(3), "fixes": np.int32(7), "ratio": np.float64(0.5)}
    store.replace_night(D2, make_stays(D2), make_hauls(D2), make_leads(D2, []), make_run(D2), state=state)
    assert store.state_of(D2) == {**STATE, "vehicles": 3, "fixes": 7, "ratio": 0.5}


def test_rerun_without_tracks_or_state_drops_the_old_ones(store: Store) -> None:
    store.replace_night(D2, make_stays(D2), make_hauls(D2), make_leads(D2, ["L-1"]), make_run(D2),
                        tracks=make_tracks(D2, ["L-1"]), state=STATE)
    store.replace_night(D1, make_stays(D1), make_hauls(D1), make_leads(D1, ["L-1"]), make_run(D1),
                        tracks=make_tracks(D1, ["L-1"]), state={**STATE, "fixes": 1})
    write_night(store, D2, ["L-1", "L-2"])
    assert store.read("lead_tracks", D2).empty and store.state_of(D2) is None
    assert len(store.read("lead_tracks", D1)) == 1 and store.state_of(D1)["fixes"] == 1


def test_bad_tracks_and_state_are_rejected_before_anything_changes(store: Store) -> None:
    leads = make_leads(D2, ["L-1", "L-2"])
    store.replace_night(D2, make_stays(D2), make_hauls(D2), leads, make_run(D2),
                        tracks=make_tracks(D2, ["L-1"]), state=STATE)
    before = snapshot(store)

    def refused(exc: type[Exception], match: str, tracks: pd.DataFrame | None = None,
                state: dict | None = None) -> None:
        with pytest.raises(exc, match=match):
            store.replace_night(D2, make_stays(D2, n=9), make_hauls(D2), leads, make_run(D2),
                                tracks=tracks, state=STATE if state is None else state)

    good = make_tracks(D2, ["L-1", "L-2"])
    for wkt, why in (("POINT (121 31)", "LINESTRING"), ("LINESTRING EMPTY", "LINESTRING"),
                     ("LINESTRING (121 31, 121.1", "not WKT"),
                     ("LINESTRING (355000 3470000, 356000 3471000)", "WGS-84")):  # metres, not degrees
        refused(ValueError, rf"^lead_tracks\.wkt: .*{why}", good.assign(wkt=[good.at[0, "wkt"], wkt]))
    refused(TypeError, r"lead_tracks\.wkt", good.assign(wkt=[good.at[0, "wkt"], None]))
    refused(ValueError, "not among the night's leads", make_tracks(D2, ["L-1", "L-7"]))
    refused(Exception, "missing columns", good.drop(columns=["n_fixes"]))
    refused(ValueError, r"night_state\.uri", state={k: v for k, v in STATE.items() if k != "uri"})
    refused(ValueError, r"night_state\.vehicles", state={**STATE, "vehicles": True})
    refused(ValueError, r"night_state\.fixes", state={**STATE, "fixes": 1.5})
    refused(ValueError, r"night_state\.created_at", state={**STATE, "created_at": "tomorrow"})
    refused(TypeError, "night_state", state=["not", "a", "mapping"])  # type: ignore[arg-type]
    assert_same(before, snapshot(store))


def test_a_failing_track_rolls_back_the_whole_night_and_its_state(store: Store) -> None:
    store.replace_night(D2, make_stays(D2), make_hauls(D2), make_leads(D2, ["L-1"]), make_run(D2),
                        tracks=make_tracks(D2, ["L-1"]), state=STATE)
    before = snapshot(store)
    twice = make_tracks(D2, ["L-2", "L-2"])  # the tracks insert (after stays, hauls, leads) hits its key
    with pytest.raises(Exception, match=r"(?i)unique"):
        store.replace_night(D2, make_stays(D2, n=9), make_hauls(D2), make_leads(D2, ["L-2"]), make_run(D2),
                            tracks=twice, state={**STATE, "fixes": 0})
    assert_same(before, snapshot(store))
    assert store.state_of(D2) == STATE


def test_concurrent_writers_of_one_night_queue(empty_url: str) -> None:
    """Two processes re-running the same night: the write lock makes them queue, neither fails."""
    with open_store(empty_url) as s:
        write_night(s, D2, ["L-1"])
    errors: list[BaseException] = []

    def rerun(ids: list[str]) -> None:
        try:
            with open_store(empty_url) as s:
                for _ in range(4):
                    write_night(s, D2, ids)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rerun, args=(ids,)) for ids in (["L-1", "L-2"], ["L-3"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_store(empty_url) as s:
        assert s.read("leads", D2)["lead_id"].tolist() in (["L-1", "L-2"], ["L-3"])
        assert len(s.read("stays", D2)) == len(make_stays(D2))


# --- schema versions and migrations -------------------------------------------------------------------

LATEST = migrations.latest("sqlite")


def raw_execute(url: str, *sql: str) -> None:
    """Statements on the store's database without wastetrack (what an older wastetrack or a DBA did)."""
    backend, target = parse(url)
    if backend == "sqlite":
        con = sqlite3.connect(target, isolation_level=None)
        try:
            for q in sql:
                con.execute(q)
        finally:
            con.close()
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as con:
            for q in sql:
                con.execute(q)


def at_version_1(url: str) -> None:
    """Make ``url`` an existing store at schema version 1 with one night in it."""
    if backend_of(url) == "sqlite":
        sqlite3.connect(parse(url)[1]).close()  # an empty file: the runner works on existing stores only
    schema = migrations.open_schema(url)
    try:
        assert [m.name for m in schema.apply(migrations.load(schema.backend)[:1])] == ["001_initial"]
    finally:
        schema.close()
    raw_execute(url, f"INSERT INTO runs (date, status, run_json) VALUES ('{D1}', 'ok', '{{}}')",
                f"INSERT INTO leads (date, lead_id, kind) VALUES ('{D1}', 'L-old', 'illegal_dump')")


def test_migrations_exist_for_both_backends_under_the_same_names() -> None:
    names = {b: [m.name for m in migrations.load(b)] for b in ("sqlite", "postgis")}
    assert names["sqlite"] == names["postgis"]
    assert names["sqlite"][:2] == ["001_initial", "002_tracks_state_publication"]
    assert LATEST == migrations.latest("postgis") == len(names["sqlite"])


def test_an_empty_store_is_created_at_the_latest_version(empty_url: str) -> None:
    with open_store(empty_url) as s:
        write_night(s, D2, ["L-1"])
    st = migrations.status(empty_url)
    assert (st["current"], st["latest"], st["pending"]) == (LATEST, LATEST, [])
    assert st["applied"] == [m.name for m in migrations.load(st["backend"])]
    assert st["backend"] == backend_of(empty_url)
    assert migrations.upgrade(empty_url) == [] and migrations.upgrade(empty_url) == []
    assert read_table(empty_url, "leads")["lead_id"].tolist() == ["L-1"]


def test_an_older_store_is_refused_until_upgraded(empty_url: str) -> None:
    at_version_1(empty_url)
    for attempt in (lambda: open_store(empty_url), lambda: read_table(empty_url, "leads")):
        with pytest.raises(SchemaVersionError) as err:
            attempt()
        message = str(err.value)
        assert "\n" not in message and f"schema version 1, this wastetrack needs {LATEST}" in message
        suggested = re.search(r"run `wastetrack db upgrade --store (\S+)`$", message)
        assert suggested and migrations.status(suggested[1])["current"] == 1  # the command names this store
    st = migrations.status(empty_url)
    assert (st["current"], st["applied"]) == (1, ["001_initial"])
    assert st["pending"] == [m.name for m in migrations.load(st["backend"])[1:]]

    assert migrations.upgrade(empty_url) == st["pending"]
    assert migrations.upgrade(empty_url) == []
    with open_store(empty_url) as s:  # the night written at version 1 is still there, and usable
        assert s.read("leads")["lead_id"].tolist() == ["L-old"]
        assert s.published(D1) == {"run_id": None, "out_version": None, "status": "ok"}
        write_night(s, D2, ["L-old"], run_id="r2")
        assert s.leads_reported_before(D2, ["L-old"]) == {"L-old"}
        assert s.published(D2)["run_id"] == "r2"


def test_a_newer_store_is_refused(empty_url: str) -> None:
    open_store(empty_url).close()
    raw_execute(empty_url, "INSERT INTO schema_version (version, name, applied_at, applied_by) "
                           f"VALUES ({LATEST + 1}, 'future', '2030-01-01T00:00:00+08:00', 'wastetrack 9')")
    with pytest.raises(SchemaVersionError, match=rf"schema version {LATEST + 1}, newer .*: upgrade wastetrack$"):
        open_store(empty_url)
    with pytest.raises(SchemaVersionError, match="upgrade wastetrack"):
        migrations.upgrade(empty_url)
    assert migrations.status(empty_url)["current"] == LATEST + 1


def test_a_failing_migration_changes_nothing_and_a_fixed_one_applies(empty_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """How a later issue adds a table: one more numbered file per backend (here injected)."""
    open_store(empty_url).close()
    known = migrations.load(backend_of(empty_url))

    def with_step(sql: str) -> None:
        step = Migration(LATEST + 1, f"{LATEST + 1:03d}_deliveries", sql)
        monkeypatch.setattr(migrations, "load", lambda backend: (*known, step))

    with_step("CREATE TABLE deliveries (lead_id TEXT NOT NULL PRIMARY KEY);\nCREATE TABLE broken (;\n")
    with pytest.raises(Exception, match=r"(?i)syntax"):
        migrations.upgrade(empty_url)
    assert migrations.status(empty_url)["current"] == LATEST
    with pytest.raises(SchemaVersionError, match="db upgrade"):  # the code now wants the new step
        open_store(empty_url)
    raw_execute(empty_url, "CREATE TABLE deliveries (x TEXT)")  # proves the failed step left no table behind
    raw_execute(empty_url, "DROP TABLE deliveries")

    with_step("CREATE TABLE deliveries (lead_id TEXT NOT NULL PRIMARY KEY);\n")
    assert migrations.upgrade(empty_url) == [f"{LATEST + 1:03d}_deliveries"]
    with open_store(empty_url) as s:
        write_night(s, D2, ["L-1"])
    raw_execute(empty_url, "INSERT INTO deliveries (lead_id) VALUES ('L-1')")


def test_first_opens_racing_each_other_create_the_schema_once(empty_url: str) -> None:
    errors: list[BaseException] = []

    def first_open() -> None:
        try:
            open_store(empty_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_open) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert migrations.status(empty_url)["current"] == LATEST


def test_new_sqlite_files_opened_by_several_writers_at_once_all_open(tmp_path: Path) -> None:
    """Switching a new file to WAL answers "database is locked" without waiting when two
    connections switch at once (about 1 race in 300 failed before the switch retried)."""
    errors: list[BaseException] = []

    def first_open(path: Path) -> None:
        try:
            open_store(str(path)).close()
        except BaseException as exc:
            errors.append(exc)

    for i in range(100):
        path = tmp_path / f"race{i}.db"
        threads = [threading.Thread(target=first_open, args=(path,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert sqlite3.connect(tmp_path / "race99.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_no_store_without_create(empty_url: str) -> None:
    if backend_of(empty_url) == "sqlite":
        with pytest.raises(StoreNotFound):
            migrations.status(empty_url)  # the runner never creates a file from a typo either
        assert not Path(empty_url).exists()
        sqlite3.connect(empty_url).close()  # an empty file is no store either
    with pytest.raises(FileNotFoundError, match="no wastetrack store"):
        read_table(empty_url, "leads")
    assert migrations.status(empty_url)["current"] == 0
    assert migrations.upgrade(empty_url) == [m.name for m in migrations.load(backend_of(empty_url))]


def test_sqlite_file_from_before_migrations_is_upgraded(tmp_path: Path) -> None:
    """A file written by wastetrack 0.1 (PRAGMA user_version = 1, no schema_version) keeps its nights."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript(migrations.load("sqlite")[0].sql + "\nPRAGMA user_version = 1;")
    con.execute(f"INSERT INTO runs (date, status, run_json) VALUES ('{D1}', 'ok', '{{}}')")
    con.execute(f"INSERT INTO leads (date, lead_id, kind) VALUES ('{D1}', 'L-old', 'track_gap')")
    con.execute("INSERT INTO lead_registry VALUES ('L-old', 'track_gap', NULL, ?, ?, 'new', NULL, NULL, ?)",
                (D1, D1, f"{D1}T06:30:00+08:00"))
    con.close()
    with pytest.raises(SchemaVersionError, match=f"schema version 1, this wastetrack needs {LATEST}"):
        open_store(path)
    assert migrations.status(path)["applied"] == ["001_initial"]
    assert migrations.upgrade(path) == [m.name for m in migrations.load("sqlite")[1:]]
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == LATEST
        rows = con.execute("SELECT version, name, applied_by FROM schema_version ORDER BY version").fetchall()
    finally:
        con.close()
    assert rows[0] == (1, "001_initial", "PRAGMA user_version (before versioned migrations)")
    assert [r[0] for r in rows] == list(range(1, LATEST + 1)) and rows[1][2].startswith("wastetrack ")
    with open_store(path) as s:
        assert s.leads_reported_before(D2, ["L-old"]) == {"L-old"}
        write_night(s, D2, ["L-old"])
        assert s.read("lead_registry").loc[0, ["first_date", "last_date"]].tolist() == [D1, D2]


# --- credentials never shown ------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://wt:s3cr3t@db.example:5432/wastetrack", "postgresql://wt:***@db.example:5432/wastetrack"),
    ("postgres://wt:p@ss:w0rd@db/wastetrack?sslmode=require", "postgres://wt:***@db/wastetrack?sslmode=require"),
    ("postgresql://wt@db/wastetrack?sslmode=require&password=s3cr3t",
     "postgresql://wt@db/wastetrack?sslmode=require&password=***"),
    ("postgresql://wt:%73ecret@db/wastetrack", "postgresql://wt:***@db/wastetrack"),
    ("host=db user=wt password='s3 cr3t' dbname=wastetrack", "host=db user=wt password=*** dbname=wastetrack"),
    ("postgresql://wt@db:5432/wastetrack", "postgresql://wt@db:5432/wastetrack"),
    ("postgresql://db/wastetrack", "postgresql://db/wastetrack"),
    ("sqlite:////data/wt.db", "sqlite:////data/wt.db"),
    (Path("/data/wt:1@x.db"), "/data/wt:1@x.db"),
])
def test_mask_url(url: str | Path, shown: str) -> None:
    assert mask_url(url) == shown


def test_mask_secrets_in_messages() -> None:
    msg = "cannot reach postgresql://wt:s3cr3t@db/x (see postgres://a:b@c/d) password=hunter2 user@example"
    assert mask_secrets(msg) == ("cannot reach postgresql://wt:***@db/x (see postgres://a:***@c/d) "
                                 "password=*** user@example")


def test_no_password_in_url_repr_status_or_errors(empty_url: str) -> None:
    with_password = re.sub(r"^(\w+://[^@/:]+)@", r"\1:s3cr3t@", empty_url)
    with_password = empty_url if backend_of(empty_url) == "sqlite" else with_password
    with open_store(with_password) as s:  # the test server trusts 127.0.0.1: the password is not checked
        assert "s3cr3t" not in s.url and "s3cr3t" not in repr(s)
    assert "s3cr3t" not in str(migrations.status(with_password))
    with pytest.raises(StoreError) as err:
        open_store("postgresql://wt:s3cr3t@127.0.0.1:1/wastetrack")
    assert "s3cr3t" not in str(err.value) and err.value.__cause__ is None and err.value.__suppress_context__


# --- the `wastetrack db` command ----------------------------------------------------------------------

def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli_main(["db", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_db_status_and_upgrade(empty_url: str, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at_version_1(empty_url)
    rc, out, _ = run_cli(capsys, "status", "--store", empty_url)
    assert rc == 0 and f"version: 1 (latest {LATEST})" in out and "pending: 002_tracks_state_publication" in out
    assert "run: wastetrack db upgrade --store" in out
    monkeypatch.setenv("WASTETRACK_STORE", empty_url)  # the environment instead of --store
    rc, out, _ = run_cli(capsys, "upgrade")
    assert rc == 0 and "applied 002_tracks_state_publication" in out and out.rstrip().endswith("up to date")
    rc, out, _ = run_cli(capsys, "upgrade")
    assert rc == 0 and "applied" not in out and "nothing to apply" in out
    rc, out, _ = run_cli(capsys, "status")
    assert rc == 0 and f"version: {LATEST} (latest {LATEST})" in out and "pending: -" in out


def test_cli_db_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASTETRACK_STORE", raising=False)
    cases: list[tuple[list[str], str]] = [
        (["status"], "no store given"),
        (["upgrade", "--store", str(tmp_path / "typo.db")], "no store at"),
        (["status", "--store", "postgresql://wt:s3cr3t@127.0.0.1:1/wastetrack"], "cannot connect to"),
        (["upgrade", "--store", "mysql://wt:s3cr3t@db/x"], "unknown store URL scheme"),
    ]
    for argv, expected in cases:
        rc, out, err = run_cli(capsys, *argv)
        assert rc == 2 and out == "", argv
        assert err.startswith("wastetrack db: ") and expected in err and err.count("\n") == 1, err
        assert "s3cr3t" not in err and "Traceback" not in err
    assert not (tmp_path / "typo.db").exists()


# --- PostGIS: geometry, indexes, COPY -------------------------------------------------------------------

@pytest.mark.postgis
def test_postgis_geometry_columns_gist_indexes_and_spatial_sql(pg_url: str) -> None:
    import psycopg

    with open_store(pg_url) as s:
        s.replace_night(D2, make_stays(D2), make_hauls(D2), make_leads(D2, ["L-1", "L-2"]), make_run(D2),
                        tracks=make_tracks(D2, ["L-1"]))
    with psycopg.connect(parse(pg_url)[1]) as con:
        columns = set(con.execute(
            "SELECT f_table_name, f_geometry_column, type, srid FROM geometry_columns "
            "WHERE f_table_schema = current_schema()").fetchall())
        gist = {r[0] for r in con.execute(
            "SELECT tablename || '.' || substring(indexdef from 'gist \\((\\w+)\\)') FROM pg_indexes "
            "WHERE schemaname = current_schema() AND indexdef LIKE '%USING gist%'").fetchall()}
        near = con.execute(  # leads within 100 m of a point, through the index
            "SELECT lead_id FROM leads WHERE ST_DWithin(geom::geography, "
            "ST_SetSRID(ST_MakePoint(120.9801, 31.3801), 4326)::geography, 100) ORDER BY lead_id").fetchall()
        length_m = con.execute("SELECT ST_Length(geom::geography) FROM lead_tracks").fetchone()[0]
        unloads = con.execute("SELECT haul_id, ST_AsText(unload_geom) FROM hauls ORDER BY haul_id").fetchall()
    assert columns == {("stays", "geom", "POINT", 4326), ("hauls", "unload_geom", "POINT", 4326),
                       ("leads", "geom", "POINT", 4326), ("lead_tracks", "geom", "LINESTRING", 4326)}
    assert gist == {"stays.geom", "hauls.unload_geom", "leads.geom", "lead_tracks.geom"}
    assert near == [("L-1",), ("L-2",)]
    assert 10_000 < length_m < 20_000
    assert unloads == [(f"H-{D2}-1", "POINT(121.31 31.12)"), (f"H-{D2}-2", None)]


@pytest.mark.postgis
def test_postgis_writes_with_copy_and_reads_with_read_postgis(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    copies: list[str] = []
    real_copy, real_execute, real_read = psycopg.Cursor.copy, psycopg.Cursor.execute, gpd.read_postgis

    def copy(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        copies.append(str(statement).split(" (")[0])
        return real_copy(self, statement, *args, **kwargs)

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        assert not re.match(r"\s*INSERT\b.*\bVALUES\b", str(query), re.S), f"row-at-a-time insert: {query}"
        return real_execute(self, query, *args, **kwargs)

    def executemany(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("executemany: rows must go through COPY")

    read_postgis_calls: list[str] = []

    def read_postgis(sql: str, *args: Any, **kwargs: Any) -> Any:
        read_postgis_calls.append(sql.split(" FROM ")[1].split()[0])
        return real_read(sql, *args, **kwargs)

    with open_store(pg_url) as s:
        monkeypatch.setattr(psycopg.Cursor, "copy", copy)
        monkeypatch.setattr(psycopg.Cursor, "execute", execute)
        monkeypatch.setattr(psycopg.Cursor, "executemany", executemany)
        monkeypatch.setattr(gpd, "read_postgis", read_postgis)
        s.replace_night(D2, make_stays(D2), make_hauls(D2), make_leads(D2, ["L-1", "L-2"]), make_run(D2),
                        tracks=make_tracks(D2, ["L-1"]), state=STATE)
        assert s.apply_feedback(FB) == 3
        for table in ("stays", "leads", "lead_tracks", "hauls"):
            assert len(s.read(table, D2))
    assert copies == ["COPY runs", "COPY stays", "COPY hauls", "COPY leads", "COPY lead_tracks",
                      "COPY night_state", "COPY lead_registry", "COPY wastetrack_incoming_feedback",
                      "COPY lead_registry"]
    assert read_postgis_calls == ["stays", "leads", "lead_tracks"]


@pytest.mark.postgis
def test_postgis_search_path_problems_are_explained(pg_url: str, pg_server: tuple[str, str]) -> None:
    postgis_schema = pg_server[1]
    only_ours = re.sub(rf"%2C{postgis_schema}\b", "", pg_url)  # search_path without the PostGIS schema
    assert only_ours != pg_url
    with pytest.raises(StoreError, match=rf"PostGIS is installed in schema '{postgis_schema}', which is not on"):
        open_store(only_ours)
    no_schema = re.sub(r"csearch_path%3D\w+", "csearch_path%3Dwt_does_not_exist", only_ours)
    with pytest.raises(StoreError, match="no schema of its search_path exists"):
        open_store(no_schema)
    with open_store(pg_url) as s:  # nothing was left half-created
        assert s.dates() == []


def test_sqlite_file_that_is_not_a_database_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the nights you are looking for\n" * 100)
    with pytest.raises(StoreError, match=r"^sqlite:///.*notes\.db: file is not a database$"):
        open_store(path)
