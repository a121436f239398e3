"""The simulator writes a contract-exact landing directory and a truth file that matches it."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from wastetrack.contract.readers import GPS_REQUIRED
from wastetrack.contract.readers import MANIFEST_REQUIRED as _MANIFEST_REQUIRED
from wastetrack.contract.readers import REPORT_REQUIRED as _REPORT_REQUIRED
from wastetrack.coords import haversine_m
from wastetrack.simulate import simulate
from wastetrack.simulate.fleet import is_valid_credit_code

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared/contract/example"
# the contract's required columns, as the readers enforce them
REQUIRED_GPS, MANIFEST_REQUIRED, REPORT_REQUIRED = (set(GPS_REQUIRED), set(_MANIFEST_REQUIRED), set(_REPORT_REQUIRED))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    landing = simulate(root / "landing", root / "truth.json", seed=7, days=2, trucks=12)
    return landing, json.loads((root / "truth.json").read_text(encoding="utf-8"))


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _records(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.read_metadata(path).num_rows
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return sum(1 for _ in csv.reader(io.StringIO(raw.decode("utf-8-sig")))) - 1


def _header(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return pq.read_schema(path).names
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return next(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_same_seed_gives_identical_bytes(tmp_path):
    a = simulate(tmp_path / "a", tmp_path / "a.json", seed=3, days=1, trucks=4)
    b = simulate(tmp_path / "b", tmp_path / "b.json", seed=3, days=1, trucks=4)
    c = simulate(tmp_path / "c", tmp_path / "c.json", seed=4, days=1, trucks=4)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    ta = json.loads((tmp_path / "a.json").read_text())
    tb = json.loads((tmp_path / "b.json").read_text())
    ta.pop("landing"), tb.pop("landing")
    assert ta == tb


def test_truth_inside_landing_is_refused(tmp_path):
    with pytest.raises(ValueError):
        simulate(tmp_path / "l", tmp_path / "l" / "truth.json", seed=1, days=1, trucks=2)


def test_layout_and_batch_json(scenario):
    landing, truth = scenario
    assert sorted(p.name for p in (landing / "reference").iterdir()) == [
        "carriers.csv",
        "liaisons.csv",
        "sites.geojson",
        "vehicles.csv",
    ]
    assert not any(p.name.endswith(".json") and "truth" in p.name for p in landing.rglob("*"))
    for day in truth["dates"]:
        ddir = landing / day
        batch = json.loads((ddir / "batch.json").read_text(encoding="utf-8"))
        assert batch["date"] == day and batch["complete"] is True
        assert batch["coord_sys"] == {"gps": "wgs84", "reports": "gcj02"}
        listed = {f["path"] for f in batch["files"]}
        on_disk = {str(p.relative_to(ddir)) for p in ddir.rglob("*") if p.is_file() and p.name != "batch.json"}
        assert listed == on_disk
        suffixes = {Path(p).name.split(".", 1)[1] for p in listed if p.startswith("gps/")}
        assert suffixes == {"csv", "csv.gz", "parquet"}
        for f in batch["files"]:
            path = ddir / f["path"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
            assert _records(path) == f["rows"], f["path"]
            cols = set(_header(path))
            if f["path"].startswith("gps/"):
                assert cols >= REQUIRED_GPS
            elif f["path"] == "manifests.csv":
                assert cols >= MANIFEST_REQUIRED
            else:
                assert cols >= REPORT_REQUIRED


def test_parquet_time_encodings(scenario):
    landing, truth = scenario
    gps = landing / truth["dates"][0] / "gps"
    types = {p.name: str(pq.read_schema(p).field("ts").type) for p in gps.glob("*.parquet")}
    assert any(t.startswith("timestamp") for t in types.values())
    assert "int64" in types.values()


def test_reference_files(scenario):
    landing, _ = scenario
    ref = landing / "reference"
    sites = json.loads((ref / "sites.geojson").read_text(encoding="utf-8"))
    assert sites["coord_sys"] == "gcj02"
    kinds = Counter(f["properties"]["kind"] for f in sites["features"])
    assert kinds["construction"] >= 5 and kinds["disposal"] and kinds["recycling"] and kinds["transfer"]
    geoms = Counter(f["geometry"]["type"] for f in sites["features"])
    assert geoms["Polygon"] and geoms["Point"]
    assert all("radius_m" in f["properties"] for f in sites["features"] if f["geometry"]["type"] == "Point")
    carriers = pd.read_csv(ref / "carriers.csv", dtype=str)
    assert carriers["carrier_id"].map(is_valid_credit_code).all()
    vehicles = pd.read_csv(ref / "vehicles.csv", dtype=str)
    assert set(vehicles["carrier_id"]) <= set(carriers["carrier_id"])
    li = pd.read_csv(ref / "liaisons.csv", dtype=str, keep_default_na=False)
    assert set(li["level"]) == {"province", "city", "county", "town"}
    assert set(li["active"]) == {"true", "false"}


def test_every_violation_kind_present(scenario):
    _, truth = scenario
    kinds = Counter((e["kind"], e["subkind"]) for e in truth["events"])
    for kind in ("illegal_dump", "diverted", "unmanifested", "track_gap"):
        assert any(k == kind for k, _ in kinds), kinds
    assert {s for k, s in kinds if k == "illegal_dump"} >= {"same_county", "other_province"}
    assert any(e["cross_border"] for e in truth["events"])
    assert all(e["date"] == e["end"][:10] for e in truth["events"])
    assert all(e["primary_liaison_id"] for e in truth["events"])
    expected = Counter(r["expected"] for r in truth["reports"])
    assert expected["explained"] >= 1 and expected["untraced"] >= 1
    assert truth["legit_long_stops"]
    assert truth["defects"]["duplicates"] > 0 and truth["defects"]["late_rows"] > 0


def _secs(ts: pd.Series) -> pd.Series:
    return (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _read_gps(landing: Path, dates: list[str]) -> pd.DataFrame:
    """A minimal independent reader: every part, every time format, plates normalised, epoch seconds."""
    frames = []
    for day in dates:
        for p in sorted((landing / day / "gps").iterdir()):
            if p.suffix == ".parquet":
                df = pd.read_parquet(p)
                raw = df["ts"]
                t = raw.astype("int64") / 1000.0 if raw.dtype == "int64" else _secs(raw)
            else:
                df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
                raw = df["ts"]
                epoch = raw.str.fullmatch(r"\d{12,14}")
                tz = raw.str.contains(r"(?:Z|[+-]\d\d:\d\d)$")
                t = pd.Series(float("nan"), index=df.index)
                t[epoch] = raw[epoch].astype("int64") / 1000.0
                t[tz & ~epoch] = _secs(pd.to_datetime(raw[tz & ~epoch], utc=True, errors="coerce", format="ISO8601"))
                naive = ~tz & ~epoch
                t[naive] = _secs(
                    pd.to_datetime(raw[naive], errors="coerce", format="ISO8601").dt.tz_localize("Asia/Shanghai")
                )
            frames.append(
                pd.DataFrame(
                    {
                        "vehicle_id": df["vehicle_id"]
                        .astype(str)
                        .str.replace("·", "")
                        .str.replace(" ", "")
                        .str.strip(),
                        "t": t.astype(float),
                        "lon": pd.to_numeric(df["lon"], errors="coerce"),
                        "lat": pd.to_numeric(df["lat"], errors="coerce"),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True).dropna()


def test_events_are_in_the_feed(scenario):
    """Dumps show a stay at the truth's place; track gaps are silent; long stops are really there."""
    landing, truth = scenario
    gps = _read_gps(landing, truth["dates"])
    assert len(gps) > 10_000
    for e in truth["events"]:
        s, t = pd.Timestamp(e["start"]).timestamp(), pd.Timestamp(e["end"]).timestamp()
        mine = gps[gps["vehicle_id"] == e["vehicle_id"]]
        inside = mine[(mine["t"] > s + 1) & (mine["t"] < t - 1)]
        if e["kind"] == "track_gap":
            assert inside.empty, e["event_id"]
            assert 15 * 60 <= t - s <= 61 * 60
            assert not mine[(mine["t"] > t) & (mine["t"] < t + 3600)].empty
        else:  # multipath at a receiver puts the fixes 60-150 m outside its fence (site radius + 150 m)
            limit = 60 if "gps_drift_unload" not in e.get("features", []) else 700
            d = haversine_m(inside["lon"], inside["lat"], e["lon"], e["lat"])
            assert (d < limit).sum() >= 3, e["event_id"]
    for stop in truth["legit_long_stops"][:20]:
        s, t = pd.Timestamp(stop["start"]).timestamp(), pd.Timestamp(stop["end"]).timestamp()
        mine = gps[(gps["vehicle_id"] == stop["vehicle_id"]) & (gps["t"] >= s) & (gps["t"] <= t)]
        assert not mine.empty
        assert (haversine_m(mine["lon"], mine["lat"], stop["lon"], stop["lat"]) < 60).mean() > 0.8


def test_routing_rule_fallbacks():
    from wastetrack.simulate.routing import route

    rows = [
        ("P1", "province", "330000", "primary", "true"),
        ("C1", "city", "320500", "primary", "true"),
        ("K1", "county", "330421", "backup", "true"),
        ("K2", "county", "320585", "primary", "false"),
        ("K3", "county", "320585", "backup", "true"),
        ("K4", "county", "320581", "primary", "true"),
        ("K5", "county", "320581", "backup", "true"),
    ]
    li = pd.DataFrame(rows, columns=["liaison_id", "level", "adcode", "role", "active"])
    cc = {"330421": "330400", "320585": "320500", "320509": "320500", "330482": "330400", "320581": "320500"}
    assert route("320581", li, cc) == "K4"  # active primary
    assert route("330421", li, cc) == "K1"  # only a backup
    assert route("320585", li, cc) == "K3"  # primary inactive
    assert route("320509", li, cc) == "C1"  # nobody in the county: the city
    assert route("330482", li, cc) == "P1"  # nobody in county nor city: the province


def test_credit_codes():
    assert is_valid_credit_code("91310118MA6MXA7G0K")
    assert not is_valid_credit_code("91310118MA6MXA7G0J")


# ---- adversarial realism ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory):
    root = tmp_path_factory.mktemp("adv")
    landing = simulate(root / "landing", root / "truth.json", seed=5, days=3, trucks=20)
    return landing, json.loads((root / "truth.json").read_text(encoding="utf-8"))


def _t(v: str) -> float:
    return pd.Timestamp(v).timestamp()


def test_adversarial_features_present(adversarial):
    """Each adversarial feature of the brief is in a moderately sized scenario, and recorded."""
    _, truth = adversarial
    adv = truth["adversarial"]
    stats = truth["stats"]["adversarial"]
    # sensor faults: only on sensor-equipped trucks
    assert adv["sensor_faults"]["tipping_stuck_false"] and adv["sensor_faults"]["load_flapping"]
    assert stats["load_flap_windows"] == len(adv["load_flaps"]) > 0
    assert all(60 <= _t(f["end"]) - _t(f["start"]) <= 6 * 60 for f in adv["load_flaps"])
    # multipath: loadings and unloadings, 60-150 m off the fence (fence distance measured with shapely)
    assert {d["what"] for d in adv["gps_drift"]} == {"load", "unload"}
    assert all(59 <= d["fence_distance_m"] <= 152 for d in adv["gps_drift"])
    events = truth["events"]
    feats = Counter(f for e in events for f in e["features"])
    assert feats["near_receiver_dump"] and feats["red_light_dump"], feats
    near = [e for e in events if "near_receiver_dump" in e["features"]]
    assert all(300 <= e["notes"]["near_receiver_fence_m"] <= 905 for e in near)
    assert all(e["kind"] == "illegal_dump" and not e["unload_site_id"] for e in near)
    light = [e for e in events if "red_light_dump" in e["features"]]
    assert sum(e["notes"]["light_stops_nearby"] for e in light) > 0  # honest trucks stand there too
    sensorless_dumps = [e for e in events if e["kind"] == "illegal_dump" and "no_sensors" in e["features"]]
    assert any(f.endswith("_dump") and "_stop_" in f for e in sensorless_dumps for f in e["features"])
    dark = [e for e in sensorless_dumps if "dark_after_dump" in e["features"]]
    assert dark and len(adv["dark_after_dump"]) == len(dark)
    for d in adv["dark_after_dump"]:  # the silence starts after the dump and lasts 20-40 min
        ev = next(e for e in events if e["event_id"] == d["event_id"])
        assert _t(d["start"]) > _t(ev["end"]) and 20 * 60 - 1 <= _t(d["end"]) - _t(d["start"]) <= 40 * 60 + 1
    assert adv["empty_silences"] and stats["empty_silences"] == len(adv["empty_silences"])
    assert any(s["kind"] in ("fuel", "jam") and s["loaded"] for s in truth["legit_long_stops"])
    assert any(s["kind"] == "red_light" for s in truth["legit_long_stops"])


def test_adversarial_features_in_the_feed(adversarial):
    """The feed shows what the truth says: drifted fixes, silences, stuck and flapping sensors."""
    landing, truth = adversarial
    gps = _read_gps_sensors(landing, truth["dates"])
    adv = truth["adversarial"]
    for d in adv["gps_drift"][:15]:
        mine = gps[(gps["vehicle_id"] == d["vehicle_id"]) & gps["t"].between(_t(d["start"]) + 60, _t(d["end"]) - 60)]
        if len(mine) >= 3:
            assert np.median(haversine_m(mine["lon"], mine["lat"], d["lon"], d["lat"])) < 25, d
    for s in adv["empty_silences"] + adv["dark_after_dump"]:
        mine = gps[(gps["vehicle_id"] == s["vehicle_id"]) & (gps["t"] > _t(s["start"]) + 1)]
        assert mine.empty or mine["t"].min() >= _t(s["end"]) - 1, s
    for vid in adv["sensor_faults"]["tipping_stuck_false"]:
        mine = gps[gps["vehicle_id"] == vid]
        assert len(mine) and not (mine["tipping"] == "true").any()
    flips = 0
    for f in adv["load_flaps"]:
        mine = gps[(gps["vehicle_id"] == f["vehicle_id"]) & gps["t"].between(_t(f["start"]), _t(f["end"]))]
        flips += int((mine["loaded"] == "false").sum())
    assert flips > 0  # a loaded truck reading empty


def test_manifest_scans_never_after_the_scenario_end(scenario, adversarial):
    for landing, truth in (scenario, adversarial):
        end = pd.Timestamp(truth["dates"][-1]).tz_localize("Asia/Shanghai") + pd.Timedelta(days=1)
        for day in truth["dates"]:
            m = pd.read_csv(landing / day / "manifests.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
            for col in ("departed_at", "received_at"):
                ts = pd.to_datetime(m[col].where(m[col] != ""), errors="coerce", format="ISO8601", utc=True)
                assert (ts.dropna() < end).all(), (day, col)
            assert not ((m["status"] == "received") & (m["received_at"] == "")).any()


def test_truth_hauls_carry_manifests_and_features(adversarial):
    _, truth = adversarial
    hauls = truth["hauls"]
    assert sum(h["kind"] == "legit" for h in hauls) > 100
    assert {h["event_id"] for h in hauls if h["event_id"]} == {e["event_id"] for e in truth["events"]}
    assert any("gps_drift_unload" in h["features"] for h in hauls if h["kind"] == "legit")
    assert any("empty_silence_after_unload" in h["features"] for h in hauls)


def _read_gps_sensors(landing: Path, dates: list[str]) -> pd.DataFrame:
    """GPS with the sensor columns as text ('true'/'false'/''), from the CSV parts (parquet parts too)."""
    frames = []
    for day in dates:
        for p in sorted((landing / day / "gps").iterdir()):
            if p.suffix == ".parquet":
                df = pd.read_parquet(p)
                if "loaded" not in df:
                    continue
                t = _secs(df["ts"]) if df["ts"].dtype != "int64" else df["ts"] / 1000.0
                sens = {c: df[c].map({True: "true", False: "false"}).fillna("") for c in ("loaded", "tipping")}
            else:
                df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
                raw = df["ts"]
                ok = raw.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)?")
                df, raw = df[ok], raw[ok]
                tz = raw.str.contains(r"(?:Z|[+-]\d\d:\d\d)$")
                t = pd.Series(float("nan"), index=df.index)
                t[tz] = _secs(pd.to_datetime(raw[tz], utc=True, format="ISO8601", errors="coerce"))
                t[~tz] = _secs(
                    pd.to_datetime(raw[~tz], format="ISO8601", errors="coerce").dt.tz_localize("Asia/Shanghai")
                )
                norm = {"1": "true", "0": "false", "true": "true", "false": "false"}
                sens = {c: df[c].map(norm).fillna("") for c in ("loaded", "tipping")}
            frames.append(
                pd.DataFrame(
                    {
                        "vehicle_id": df["vehicle_id"].astype(str).str.replace("·", "").str.replace(" ", ""),
                        "t": t.astype(float),
                        "lon": pd.to_numeric(df["lon"], errors="coerce"),
                        "lat": pd.to_numeric(df["lat"], errors="coerce"),
                        **sens,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True).dropna(subset=["t", "lon", "lat"])
