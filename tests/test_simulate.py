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

from wastetrack.contract.readers import GPS_REQUIRED, read_night
from wastetrack.contract.readers import MANIFEST_REQUIRED as _MANIFEST_REQUIRED
from wastetrack.contract.readers import REPORT_REQUIRED as _REPORT_REQUIRED
from wastetrack.coords import haversine_m
from wastetrack.simulate import simulate
from wastetrack.simulate.fleet import is_valid_credit_code
from wastetrack.simulate.nights import arrived_to_load
from wastetrack.simulate.profiles import PROFILES, SPOT_STYLES, draw_knobs
from wastetrack.simulate.trips import Segment

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


@pytest.mark.parametrize("profile", ["standard", "sparse"])
def test_same_seed_gives_identical_bytes(tmp_path, profile):
    a = simulate(tmp_path / "a", tmp_path / "a.json", seed=3, days=1, trucks=4, profile=profile)
    b = simulate(tmp_path / "b", tmp_path / "b.json", seed=3, days=1, trucks=4, profile=profile)
    c = simulate(tmp_path / "c", tmp_path / "c.json", seed=4, days=1, trucks=4, profile=profile)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    ta = json.loads((tmp_path / "a.json").read_text())
    tb = json.loads((tmp_path / "b.json").read_text())
    ta.pop("landing"), tb.pop("landing")
    assert ta == tb and ta["profile"] == profile


def test_truth_inside_landing_is_refused(tmp_path):
    with pytest.raises(ValueError):
        simulate(tmp_path / "l", tmp_path / "l" / "truth.json", seed=1, days=1, trucks=2)


def test_unknown_profile_is_refused(tmp_path):
    with pytest.raises(ValueError, match="standard, hard, sparse"):
        simulate(tmp_path / "l", tmp_path / "t.json", seed=1, days=1, trucks=2, profile="easy")


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
    for e in truth["events"]:
        assert e["date"] == e["end"][:10] and e["primary_liaison_id"], e["event_id"]
        # reported by the night it ended, or a later one when deciding needs later data
        assert not e["decidable"] or e["report_night"] >= e["date"], e["event_id"]
    expected = Counter(r["expected"] for r in truth["reports"])
    assert expected["explained"] >= 1 and expected["untraced"] >= 1
    assert all(not r["vehicle_ids"] for r in truth["reports"] if r["expected"] == "untraced")
    assert truth["legit_long_stops"]
    assert truth["defects"]["duplicates"] > 0 and truth["defects"]["late_rows"] > 0
    assert truth["world"]["profile"] == truth["profile"] == "standard"
    assert {t["vehicle_id"] for t in truth["trucks"]} >= {e["vehicle_id"] for e in truth["events"]}


def test_sensorless_events_are_decided_by_the_next_loading(scenario, adversarial):
    """The contract's rule: an off-site stop or silence of a truck without sensors is only known to be an
    unloading once the truck loads again — seen from when it arrived at the site (a queue at the gate, a wait
    for the excavator), not from when the bucket started; the truth's report_night follows it. A sensor truck's
    by the first sensor reading after it that the feed carries."""
    seen = sensed = 0
    for _, truth in (scenario, adversarial):
        loads = {}
        for h in truth["hauls"]:
            loads.setdefault(h["vehicle_id"], []).append(_t(h["load_start"]))
        for e in truth["events"]:
            if not e["decidable"] or e["kind"] == "report_trace":
                continue
            decided = _t(e["decided_at"])
            local = pd.Timestamp(max(decided, _t(e["end"])), unit="s", tz="UTC").tz_convert("Asia/Shanghai")
            nights = {local.date().isoformat()}
            if e["kind"] in ("illegal_dump", "track_gap") and not e["sensors"]:
                later = [t for t in loads[e["vehicle_id"]] if t > _t(e["end"])]
                assert later and min(later) - 3600 <= decided - 300 <= min(later) + 1, e["event_id"]
                seen += 1
            elif e["kind"] in ("illegal_dump", "track_gap"):
                # a sensor truck's: the first reading the feed carries after it (a row re-uploaded late is
                # seen by the next night's batch), or its next loading when the feed carries none
                assert decided >= _t(e["end"]) - 1, e["event_id"]
                sensed += decided <= _t(e["end"]) + 600
                nights.add((local + pd.Timedelta(days=1)).date().isoformat())
            else:
                assert decided == pytest.approx(_t(e["end"]), abs=1), e["event_id"]
            assert e["report_night"] in nights, e["event_id"]
    assert seen and sensed


def test_a_loading_is_seen_from_the_arrival_at_the_site_not_from_the_first_bucket():
    """A truck that queues 8 minutes at the gate, inside the fence, then loads: its loading decides its last
    dump from the arrival (the pipeline sees a truck at a site, not an excavator)."""
    cx, cy, r = 0.0, 0.0, 200.0
    # drive 2 km straight in at 36 km/h (10 m/s), the last 150 m (inside the fence) at a crawl over 8 min
    drive = Segment("drive", 1000.0, 1000.0 + 185.0 + 480.0, path_x=np.array([-2000.0, -150.0, -10.0]),
                    path_y=np.zeros(3), tk=np.array([0.0, 185.0, 665.0]), dk=np.array([0.0, 1850.0, 1990.0]))
    wait = Segment("dwell", drive.t1, drive.t1 + 300.0, x=-10.0, y=0.0)  # waits for the excavator
    load = Segment("dwell", wait.t1, wait.t1 + 900.0, x=-10.0, y=0.0, tags={"load": True, "site_at": (cx, cy, r)})
    arrived = arrived_to_load([drive, wait, load], 2)
    # inside the 200 m fence 1800 m into the drive, 180 s after it began: 8 min before the wait, 13 before loading
    assert arrived == pytest.approx(1000.0 + 180.0, abs=11.0)
    at_once = Segment("dwell", drive.t1, drive.t1 + 900.0, x=-10.0, y=0.0, tags=load.tags)
    assert arrived_to_load([drive, at_once], 1) == pytest.approx(arrived, abs=11.0)  # no wait: the same entry
    bare = Segment("dwell", 50.0, 100.0, x=0.0, y=0.0, tags={"load": True})
    assert arrived_to_load([bare], 0) == 50.0  # no site known: the loading itself


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


def test_first_night_unmanifested_hauls_are_not_scored(scenario, adversarial):
    """The first night has no previous day, and a night haul's manifest may be issued the afternoon before: the
    contract forbids judging it, so the truth does not score it (any other undecidable event says why too)."""
    seen = 0
    for _, truth in (scenario, adversarial):
        first = truth["dates"][0]
        for e in truth["events"]:
            if e["kind"] == "unmanifested" and e["date"] == first and e["end"][11:13] < "12":
                assert not e["decidable"] and "first night" in e["undecidable_reason"], e["event_id"]
                seen += 1
            else:
                assert e["decidable"] == (not e["undecidable_reason"]), e["event_id"]
    assert seen


def test_events_are_in_the_feed(scenario):
    """Dumps show fixes at the truth's place (as many as the truth says survived the feed's defects);
    track gaps are silent; long stops are really there."""
    landing, truth = scenario
    gps = _read_gps(landing, truth["dates"])
    assert len(gps) > 10_000
    with_evidence = 0
    for e in truth["events"]:
        s, t = _t(e["start"]), _t(e["end"])
        mine = gps[gps["vehicle_id"] == e["vehicle_id"]]
        if e["kind"] == "track_gap":
            assert mine[(mine["t"] > s + 1) & (mine["t"] < t - 1)].empty, e["event_id"]
            assert 15 * 60 <= t - s <= 61 * 60
            assert not mine[(mine["t"] > t) & (mine["t"] < t + 3600)].empty
            continue
        inside = mine[(mine["t"] >= s - 60) & (mine["t"] <= t + 60)]
        near = np.zeros(len(inside), dtype=bool)
        for lon, lat in e["spots"]:
            near |= haversine_m(inside["lon"], inside["lat"], lon, lat) <= 300
        assert int(near.sum()) == e["evidence_fixes"], e["event_id"]
        with_evidence += e["evidence_fixes"] >= 3
    assert with_evidence >= len(truth["events"]) // 2
    for stop in truth["legit_long_stops"][:20]:
        s, t = pd.Timestamp(stop["start"]).timestamp(), pd.Timestamp(stop["end"]).timestamp()
        mine = gps[(gps["vehicle_id"] == stop["vehicle_id"]) & (gps["t"] >= s) & (gps["t"] <= t)]
        assert not mine.empty
        assert (haversine_m(mine["lon"], mine["lat"], stop["lon"], stop["lat"]) < 60).mean() > 0.8


def test_the_readers_accept_every_profile(scenario, sparse, hard):
    """Each profile's landing is read by the pipeline's own readers without a refusal; hard's swapped
    lon/lat rows are quarantined, not taken."""
    for landing, truth in (scenario, sparse, hard):
        for day in truth["dates"]:
            night = read_night(landing, day)
            assert len(night.gps) > 1000 and len(night.manifests) > 0
            for c in night.counts:
                assert c.rows_in == c.rows_accepted + c.rows_quarantined
    assert hard[1]["defects"]["swapped_lonlat"] > 0
    reasons = [
        str(r) for day in hard[1]["dates"] for r in read_night(hard[0], day).quarantine.frame()["reason"]
    ]
    assert sum("out of range" in r for r in reasons) >= hard[1]["defects"]["swapped_lonlat"] // 2


def test_knobs_are_drawn_per_world():
    """No single constant defines a world: each seed draws its own knobs inside the profile's ranges."""
    knobs = [draw_knobs("standard", np.random.default_rng(s)) for s in range(12)]
    assert len({k.interval_moving_s for k in knobs}) == 12 and len({k.drift_mean_m for k in knobs}) == 12
    std = PROFILES["standard"]
    for k in knobs:
        assert std.interval_moving_s[0] <= k.interval_moving_s[0] < k.interval_moving_s[1] <= std.interval_moving_s[1]
        assert std.violation_rate[0] <= k.violation_rate <= std.violation_rate[1]
    rng = np.random.default_rng(0)
    drift = np.array([k.drift_m(rng) for k in knobs for _ in range(300)])
    assert (drift < 60).mean() > 0.05 and (drift > 150).mean() > 0.05  # not one 60-150 m band
    near = np.array([k.near_receiver_m(rng) for k in knobs for _ in range(300)])
    assert near.min() >= 150 and (near < 600).mean() > 0.2 and (near > 900).mean() > 0.05
    sparse = draw_knobs("sparse", np.random.default_rng(1))
    assert sparse.sensor_share == 0 and sparse.interval_moving_s[0] >= 60 and sparse.dump_min[1] <= 6


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
    landing = simulate(root / "landing", root / "truth.json", seed=5, days=3, trucks=30)
    return landing, json.loads((root / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparse")
    landing = simulate(root / "landing", root / "truth.json", seed=3, days=2, trucks=10, profile="sparse")
    return landing, json.loads((root / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard")
    landing = simulate(root / "landing", root / "truth.json", seed=3, days=2, trucks=8, profile="hard")
    return landing, json.loads((root / "truth.json").read_text(encoding="utf-8"))


def _t(v: str) -> float:
    return pd.Timestamp(v).timestamp()


def test_dump_variants_present(adversarial):
    """Every spot style and every extra is in a moderately sized world, and recorded."""
    _, truth = adversarial
    events = truth["events"]
    dumps = [e for e in events if e["kind"] == "illegal_dump"]
    assert {e["style"] for e in dumps} == set(SPOT_STYLES)
    feats = Counter(f for e in dumps for f in e["features"])
    assert feats["split_dump"] and feats["dark_after_dump"] and feats["last_haul"], feats
    assert any(f.endswith("_stop_before_dump") for f in feats) and any(f.endswith("_stop_after_dump") for f in feats)
    near = [e for e in dumps if e["style"] == "near_receiver"]
    assert all(e["notes"]["near_receiver_fence_m"] >= 149 and not e["unload_site_id"] for e in near)
    for d in truth["adversarial"]["dark_after_dump"]:  # the silence starts after the dump and lasts 20-40 min
        ev = next(e for e in events if e["event_id"] == d["event_id"])
        assert _t(d["start"]) > _t(ev["end"]) and 20 * 60 - 1 <= _t(d["end"]) - _t(d["start"]) <= 40 * 60 + 1
    assert all(10 <= d["fence_distance_m"] <= 322 for d in truth["adversarial"]["gps_drift"])
    assert {d["what"] for d in truth["adversarial"]["gps_drift"]} == {"load", "unload"}


def test_track_gaps_go_dark_for_the_whole_detour_or_only_around_the_spot(scenario, adversarial, hard):
    """Both ways of going dark are in the test worlds; around the spot, the last fix before the silence is at
    most a few minutes' drive from it (unless a feed defect took the fixes before it too)."""
    styles: Counter = Counter()
    near: list[bool] = []
    for landing, truth in (scenario, adversarial, hard):
        gps = _read_gps(landing, truth["dates"])
        for e in (e for e in truth["events"] if e["kind"] == "track_gap"):
            style = next(f for f in e["features"] if f.startswith("gap_"))
            styles[style] += 1
            mine = gps[gps["vehicle_id"] == e["vehicle_id"]]
            last = mine[mine["t"] <= _t(e["start"]) + 1].iloc[-1]
            d = float(haversine_m(last["lon"], last["lat"], e["lon"], e["lat"]))
            if style == "gap_at_spot":
                near.append(d <= 3 * 60 * 70 / 3.6)  # three minutes at a loaded truck's top speed
    assert styles["gap_at_spot"] and styles["gap_out_and_back"], styles
    assert np.mean(near) >= 0.75, near


def test_the_piles_of_track_gaps_are_reported_like_any_other(tmp_path, scenario, adversarial, hard):
    """A load tipped while the terminal was off lies in the field like any other: the public reports it, and
    a tracer must find the truck that was dark there (a generator that reports only the dumps the track
    shows never asks that). Seed 13's one track gap is reported."""
    simulate(tmp_path / "landing", tmp_path / "truth.json", seed=13, days=2, trucks=20)
    gap_world = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    reported = []
    for _, truth in (scenario, adversarial, hard, (None, gap_world)):
        gaps = {e["event_id"]: e for e in truth["events"] if e["kind"] == "track_gap"}
        for r in truth["reports"]:
            e = gaps.get(r["event_id"] or "")
            if e is None:
                continue
            assert r["expected"] == "explained" and r["vehicle_ids"] == [e["vehicle_id"]]
            assert e["event_id"] in r["event_ids"] and r["report_id"] in e["report_ids"]
            assert min(haversine_m(lon, lat, r["lon"], r["lat"]) for lon, lat in e["spots"]) < 300.0
            reported.append(r["report_id"])
    assert reported


def test_busy_road_dumps_have_innocent_trucks_passing(adversarial):
    """A dump beside a receiver's access road: other trucks of the fleet pass within 200 m that day."""
    landing, truth = adversarial
    gps = _read_gps(landing, truth["dates"])
    busy = [e for e in truth["events"] if e.get("style") == "busy_road"]
    assert busy
    for e in busy:
        day = gps[(gps["t"] > _t(e["start"]) - 86400) & (gps["t"] < _t(e["end"]) + 86400)]
        others = day[(day["vehicle_id"] != e["vehicle_id"])]
        near = haversine_m(others["lon"], others["lat"], e["lon"], e["lat"]) < 200
        assert others.loc[near, "vehicle_id"].nunique() >= 1, e["event_id"]


def test_split_dumps_unload_at_two_spots(adversarial):
    landing, truth = adversarial
    gps = _read_gps(landing, truth["dates"])
    split = [e for e in truth["events"] if "split_dump" in e["features"]]
    assert split
    lo, hi = truth["world"]["split_distance_m"]
    for e in split:
        (a_lon, a_lat), (b_lon, b_lat) = e["spots"]
        assert lo - 1 <= haversine_m(a_lon, a_lat, b_lon, b_lat) <= hi + 1
        mine = gps[(gps["vehicle_id"] == e["vehicle_id"]) & gps["t"].between(_t(e["start"]) - 60, _t(e["end"]) + 60)]
        for lon, lat in e["spots"]:
            assert (haversine_m(mine["lon"], mine["lat"], lon, lat) < 100).any(), e["event_id"]


def test_last_haul_dumps_go_home(adversarial):
    """The last haul of a shift: after the dump the truck parks and loads again only the next evening."""
    _, truth = adversarial
    last = [e for e in truth["events"] if e["last_haul"]]
    assert last
    for e in last:
        later = [_t(h["load_start"]) for h in truth["hauls"] if h["vehicle_id"] == e["vehicle_id"]]
        later = [t for t in later if t > _t(e["end"])]
        assert not later or min(later) - _t(e["end"]) > 6 * 3600, e["event_id"]


def test_reports_arrive_late_and_decoys_sit_near_innocent_trucks(adversarial):
    landing, truth = adversarial
    late = [r for r in truth["reports"] if (r["days_late"] or 0) >= 1]
    assert late
    for r in late:
        rows = pd.read_csv(landing / r["date"] / "reports.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
        row = rows[rows["report_id"] == r["report_id"]].iloc[0]
        ev = next(e for e in truth["events"] if e["event_id"] == r["event_id"])
        assert row["reported_at"][:10] == r["date"] > ev["date"]
        if row["observed_from"]:
            assert _t(row["observed_from"]) <= _t(ev["start"]) and _t(row["observed_to"]) >= _t(ev["end"])
    decoys = [r for r in truth["reports"] if r["expected"] == "untraced"]
    assert {r["decoy_kind"] for r in decoys} >= {"stop", "road"}
    stops = pd.DataFrame(truth["legit_long_stops"])
    gps = _read_gps(landing, truth["dates"])
    for r in decoys:
        if r["decoy_kind"] == "stop":
            assert (haversine_m(stops["lon"], stops["lat"], r["lon"], r["lat"]) < 800).any(), r
        if r["decoy_kind"] == "road":
            assert (haversine_m(gps["lon"], gps["lat"], r["lon"], r["lat"]) < 600).any(), r
        for e in truth["events"]:  # a decoy is no true dump's report
            assert all(haversine_m(lon, lat, r["lon"], r["lat"]) > 1000 for lon, lat in e["spots"]) or e["kind"] in (
                "diverted",
                "unmanifested",
            )


def test_feed_defects_hit_violating_trips_too(adversarial):
    """Zero fixes and late re-uploads are not kept off the violations (a platform cannot know them)."""
    landing, truth = adversarial
    hit = 0
    for day in truth["dates"]:
        for p in sorted((landing / day / "gps").glob("*.csv*")):
            raw = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            raw["vehicle_id"] = raw["vehicle_id"].str.replace("·", "").str.replace(" ", "").str.strip()
            zero = raw[(raw["lon"].isin(["0.0", "0.000000", "0"])) | (raw.get("upload_note", "") == "补传")]
            for e in truth["events"]:
                h = next(x for x in truth["hauls"] if x["event_id"] == e["event_id"])
                mine = zero[zero["vehicle_id"] == e["vehicle_id"]]
                ts = pd.to_datetime(mine["ts"], errors="coerce", format="ISO8601", utc=True)
                t = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
                hit += int(t.between(_t(h["load_start"]) - 600, _t(e["end"]) + 2400).sum())
    assert hit > 0


def test_adversarial_features_in_the_feed(adversarial):
    """The feed shows what the truth says: drifted fixes, silences, stuck and flapping sensors."""
    landing, truth = adversarial
    gps = _read_gps_sensors(landing, truth["dates"])
    adv = truth["adversarial"]
    assert adv["dead_zones"] and adv["empty_silences"] and adv["access_roads"]
    for d in adv["gps_drift"][:15]:
        mine = gps[(gps["vehicle_id"] == d["vehicle_id"]) & gps["t"].between(_t(d["start"]) + 60, _t(d["end"]) - 60)]
        if len(mine) >= 3:
            assert np.median(haversine_m(mine["lon"], mine["lat"], d["lon"], d["lat"])) < 25, d
    for s in adv["empty_silences"] + adv["dark_after_dump"] + adv["dead_zones"]:
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


def test_sparse_profile_has_no_sensors_and_sparse_fixes(sparse):
    landing, truth = sparse
    assert not any(t["sensors"] for t in truth["trucks"]) and any(t["motion_based"] for t in truth["trucks"])
    gps = _read_gps_sensors(landing, truth["dates"])
    assert (gps["loaded"] == "").all() and (gps["tipping"] == "").all()
    gaps = gps.sort_values(["vehicle_id", "t"]).groupby("vehicle_id")["t"].diff().dropna()
    assert gaps[gaps > 5].median() >= 55
    assert all(3 <= e["notes"]["dwell_min"] <= 6 for e in truth["events"] if e["kind"] == "illegal_dump")
    late = [h for h in truth["hauls"] if "late_manifest" in h["features"]]
    assert late
    by_id = {}
    for day in truth["dates"]:
        m = pd.read_csv(landing / day / "manifests.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
        by_id.update(dict(zip(m["manifest_id"], m["issued_at"], strict=True)))
    for h in late:  # entered after the truck left the site, and in a batch the pipeline reads
        assert _t(by_id[h["manifest_id"]]) > _t(h["load_end"]), h["manifest_id"]


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
    assert any(f.startswith("dead_zone_") for h in hauls for f in h["features"])
    assert any("layby_stop_loaded" in h["features"] for h in hauls)


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


def test_tuning_held_out_and_burned_seeds_never_overlap() -> None:
    """A seed is tuned on, or measured on, or burned (looked at while held out): never two of these, and the
    scorecard and the quality floor only ever draw held-out ones."""
    from wastetrack.simulate.seeds import BURNED_SEEDS, HELD_OUT_SEEDS, TUNING_SEEDS, held_out

    tuning, held, burned = set(TUNING_SEEDS), set(HELD_OUT_SEEDS), set(BURNED_SEEDS)
    assert not tuning & held and not tuning & burned and not held & burned
    assert len(held) == len(HELD_OUT_SEEDS) >= 3
    assert set(held_out(3)) <= held and not set(held_out(len(HELD_OUT_SEEDS))) & burned
    with pytest.raises(ValueError):
        held_out(len(HELD_OUT_SEEDS) + 1)
