"""The storage contract, written once for every backend.

Every test takes the ``store`` fixture, parametrised by backend. Adding PostGIS is one
line in ``BACKENDS`` (plus its ``postgis`` mark); the assertions stay the same.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from wastetrack.models import FEEDBACK_COLUMNS, HAUL_COLUMNS, LEAD_COLUMNS, PLACE_COLUMNS, STAY_COLUMNS
from wastetrack.store import open_store, read_table
from wastetrack.store.base import TABLES, Store

TZ = "Asia/Shanghai"
TS = f"datetime64[us, {TZ}]"
D1, D2 = "2026-11-19", "2026-11-20"

#: backend → (open an EMPTY store for one test, marks). PostGIS will be one more line, e.g.
#: "postgis": (lambda tmp: open_store(fresh_pg_database()), [pytest.mark.postgis]),
BACKENDS: dict[str, tuple[Callable[[Path], Store], list[pytest.MarkDecorator]]] = {
    "sqlite": (lambda tmp: open_store(tmp / "wastetrack.db"), []),
}


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in BACKENDS.items()])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with BACKENDS[request.param][0](tmp_path) as s:
        yield s


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
    with pytest.raises(NotImplementedError, match="PostGIS"):
        open_store("postgresql://wastetrack@localhost/wastetrack")
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
