"""Unit tests of the core stages on hand-built tracks: clean, stays, hauls, reconcile, routing."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from wastetrack.clean import clean_fixes
from wastetrack.config import Params
from wastetrack.hauls import build_hauls, went_home_guess
from wastetrack.reconcile import match_manifests
from wastetrack.routing import LiaisonDirectory, route_leads
from wastetrack.scoring import lead_group, model_p
from wastetrack.stays import detect_stays

TZ = "Asia/Shanghai"
M_PER_DEG_LAT = 111_195.0


def track(
    vehicle: str, t0: str, legs: list[tuple[str, float, float, float]], every_s: int = 15, seed: int = 0
) -> pd.DataFrame:
    """Fixes for legs of ('stand', seconds, lon, lat) or ('drive', seconds, lon_to, lat_to)."""
    rng = np.random.default_rng(seed)
    rows = []
    t = pd.Timestamp(t0, tz=TZ)
    lon, lat = None, None
    for kind, secs, x, y in legs:
        n = int(secs // every_s)
        if kind == "stand":
            lon, lat = x, y
            for _ in range(n):
                rows.append((t, lon + rng.normal(0, 6 / 95_000), lat + rng.normal(0, 6 / M_PER_DEG_LAT)))
                t += pd.Timedelta(seconds=every_s)
        elif kind == "drive":
            xs, ys = np.linspace(lon, x, n + 1)[1:], np.linspace(lat, y, n + 1)[1:]
            for a, b in zip(xs, ys, strict=True):
                rows.append((t, a, b))
                t += pd.Timedelta(seconds=every_s)
            lon, lat = x, y
        elif kind == "dark":  # terminal silent; the truck reappears at (x, y)
            t += pd.Timedelta(seconds=secs)
            lon, lat = x, y
    f = pd.DataFrame(rows, columns=["ts", "lon", "lat"])
    f.insert(0, "vehicle_id", vehicle)
    for c in ("speed_kmh", "heading"):
        f[c] = np.nan
    f["loaded"] = pd.array([pd.NA] * len(f), dtype="boolean")
    f["tipping"] = pd.array([pd.NA] * len(f), dtype="boolean")
    f["source_file"] = "t.csv"
    f["source_row"] = np.arange(1, len(f) + 1)
    return f


A = (121.30, 31.10)  # construction site
B = (121.36, 31.12)  # ~6 km east: receiver
C = (121.33, 31.20)  # a field


def test_stays_found_and_red_light_ignored() -> None:
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 600, *A),
            ("drive", 300, 121.33, 31.11),
            ("stand", 60, 121.33, 31.11),
            ("drive", 240, *B),
            ("stand", 480, *B),
            ("drive", 120, 121.37, 31.13),
        ],
    )
    stays = detect_stays(clean_fixes(f)[0])
    assert len(stays) == 2
    assert abs(stays["lon"].iloc[0] - A[0]) < 0.0005 and abs(stays["lon"].iloc[1] - B[0]) < 0.0005
    assert 540 <= stays["duration_s"].iloc[0] <= 620
    assert 420 <= stays["duration_s"].iloc[1] <= 500


def test_stay_does_not_bridge_a_silence_with_movement() -> None:
    # the truck goes dark at X, drives off, and reappears at X 30 minutes later: no stay spans the gap
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 15, *A),
            ("drive", 300, 121.32, 31.10),
            ("dark", 1800, 121.32, 31.10),
            ("drive", 300, 121.35, 31.10),
        ],
    )
    assert detect_stays(clean_fixes(f)[0]).empty


def test_a_truck_shuttling_between_a_site_and_the_yard_next_door_makes_a_stay_at_each() -> None:
    from shapely.geometry import Point

    from wastetrack import boundaries as bnd
    from wastetrack.geofence import detect_placed_stays

    # a site and, 370 m east, a recycling yard (fences 120 m round, so 130 m of lane between them). Loading
    # 12 min, a crawl of 5 min to the yard (3 km/h: a queue, "standing" to the speed test), tipping 12 min,
    # the crawl back, loading again: to the speed test one stay of 46 minutes
    yard = (A[0] + 370 / 95_340, A[1])
    geoms = gpd.GeoSeries([Point(*A), Point(*yard)], crs="EPSG:4326").to_crs(3857).buffer(120).to_crs(4326)

    def sites(kinds: list[str]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"site_id": ["GD-1", "XN-1"], "kind": kinds, "accepts": [[], []],
                                 "valid_from": [None, None], "valid_to": [None, None],
                                 "county_adcode": ["310117", "310117"]}, geometry=geoms.values, crs="EPSG:4326")

    f = track("沪AD1234", "2026-11-20 22:00", [
        ("stand", 600, A[0], A[1] - 0.05), ("drive", 300, *A), ("stand", 720, *A),
        ("drive", 300, *yard), ("stand", 720, *yard), ("drive", 300, *A), ("stand", 720, *A),
        ("drive", 300, A[0], A[1] + 0.05),
    ])
    fixes = clean_fixes(f)[0]
    assert len(detect_stays(fixes)) == 2  # where it came from, then the 46 minutes
    b = bnd.load_boundaries()
    split = detect_placed_stays(fixes, sites(["construction", "recycling"]), b)
    assert list(split["site_id"]) == ["", "GD-1", "XN-1", "GD-1"]
    hauls = build_hauls(split, fixes)
    assert hauls.iloc[0]["unload_site_id"] == "XN-1"
    # two construction sites side by side are one loading visit, as before
    assert len(detect_placed_stays(fixes, sites(["construction", "construction"]), b)) == 2
    # one fix thrown into the yard's fence by noise moves nothing
    stray = f.copy()
    in_a = stray.index[(stray["ts"] > stray["ts"].iloc[0] + pd.Timedelta(minutes=20))][:1]  # loading at A
    stray.loc[in_a, ["lon", "lat"]] = yard
    kept = clean_fixes(stray.iloc[:110])[0]
    assert ((kept["lon"] == yard[0]) & (kept["lat"] == yard[1])).sum() == 1  # not dropped as a teleport
    one = detect_placed_stays(kept, sites(["construction", "recycling"]), b)
    assert list(one["site_id"]) == ["", "GD-1"]


def test_clean_drops_duplicates_and_teleports() -> None:
    f = track("沪AD1234", "2026-11-20 22:00", [("stand", 300, *A), ("drive", 300, *B)])
    spike = f.iloc[[5]].copy()
    spike["ts"] = spike["ts"] + pd.Timedelta(seconds=3)
    spike["lon"] += 0.5  # ~50 km away, 3 s later
    dirty = pd.concat([f, f.iloc[:4], spike], ignore_index=True).sample(frac=1.0, random_state=1)
    cleaned, stats = clean_fixes(dirty)
    assert stats.duplicates == 4 and stats.teleports == 1
    assert len(cleaned) == len(f)
    assert cleaned["ts"].is_monotonic_increasing


def _labelled(stays: pd.DataFrame, places: dict[int, tuple[str, str]]) -> pd.DataFrame:
    s = stays.copy()
    s["site_id"] = ""
    s["site_kind"] = ""
    for i, (sid, kind) in places.items():
        s.loc[i, "site_id"] = sid
        s.loc[i, "site_kind"] = kind
    s["county_adcode"], s["city_adcode"], s["province_adcode"] = "310117", "310100", "310000"
    return s


def test_haul_unloads_at_receiver_not_at_fuel_stop() -> None:
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 900, *A),
            ("drive", 300, *C),
            ("stand", 900, *C),  # 15-min stop: fuel station
            ("drive", 300, *B),
            ("stand", 600, *B),
            ("drive", 600, *A),
            ("stand", 900, *A),
        ],
    )
    fixes = clean_fixes(f)[0]
    stays = _labelled(
        detect_stays(fixes),
        {0: ("GD-1", "construction"), 2: ("XN-1", "disposal"), 3: ("GD-1", "construction")},
    )
    hauls = build_hauls(stays, fixes)
    first = hauls.iloc[0]
    assert first["unload_evidence"] == "receiver" and first["unload_site_id"] == "XN-1"


def test_a_receiver_the_truck_left_still_loaded_is_not_where_it_unloaded() -> None:
    # loaded at A, 6 minutes at the gate of receiver C (another yard) with the load sensor reading loaded
    # all the while and on the drive away, then tipped at receiver B, where the sensor turned empty
    f = track("沪AD1234", "2026-11-20 22:00", [
        ("stand", 900, *A), ("drive", 300, *C), ("stand", 360, *C), ("drive", 300, *B), ("stand", 600, *B),
        ("drive", 600, *A), ("stand", 900, *A),
    ])
    ts = f["ts"]
    t_b = ts.iloc[0] + pd.Timedelta(seconds=900 + 300 + 360 + 300 + 120)  # two minutes into the stay at B
    f["loaded"] = pd.array(((ts >= ts.iloc[0] + pd.Timedelta(seconds=600)) & (ts < t_b)).to_numpy(),
                           dtype="boolean")
    fixes = clean_fixes(f)[0]
    places = {0: ("GD-1", "construction"), 1: ("XN-2", "disposal"), 2: ("XN-1", "disposal"),
              3: ("GD-1", "construction")}
    stays = _labelled(detect_stays(fixes), places)
    assert len(stays) == 4
    first = build_hauls(stays, fixes).iloc[0]
    assert first["unload_site_id"] == "XN-1"  # the drop at B (step 1), not the gate of C
    # without the drop at B the haul is not decided at C: the truck left C loaded, its load went elsewhere
    no_drop = fixes.assign(loaded=pd.array(fixes["ts"] >= fixes["ts"].iloc[0] + pd.Timedelta(seconds=600),
                                           dtype="boolean"))
    no_drop.loc[no_drop.index[:40], "loaded"] = False  # the sensor works: it read empty before the loading
    assert build_hauls(stays, no_drop).iloc[0]["unload_site_id"] != "XN-2"
    # a sensor stuck at "loaded" says nothing: C is where the map says it unloaded
    stuck = fixes.assign(loaded=pd.array([True] * len(fixes), dtype="boolean"))
    assert build_hauls(stays, stuck).iloc[0]["unload_site_id"] == "XN-2"


def test_a_load_sensor_that_flickers_empty_at_a_stop_and_reads_loaded_on_the_drive_away_did_not_drop_there() -> None:
    # loaded at A, 20 minutes' drive, a 5-minute stop at C (no site) where the load sensor flickers to
    # "empty" for its last minute and the first of the drive away, then reads "loaded" again the rest of the
    # 10-minute drive to receiver B, where it turns empty: the load went at B. That the sensor reads mostly
    # empty until the truck loads again is not enough: after B it is empty anyway, and a long wait there
    # outweighs the drive
    f = track("沪AD1234", "2026-11-20 22:00", [
        ("stand", 900, *A), ("drive", 1200, *C), ("stand", 300, *C), ("drive", 600, *B), ("stand", 2400, *B),
        ("drive", 600, *A), ("stand", 900, *A),
    ])
    ts = f["ts"]

    def at(s: float) -> pd.Timestamp:
        return ts.iloc[0] + pd.Timedelta(seconds=s)

    def first_haul(loaded: pd.Series) -> pd.Series:
        fixes = clean_fixes(f.assign(loaded=pd.array(loaded.to_numpy(), dtype="boolean")))[0]
        stays = _labelled(detect_stays(fixes), {0: ("GD-1", "construction"), 2: ("XN-1", "disposal"),
                                                3: ("GD-1", "construction")})
        assert len(stays) == 4
        return build_hauls(stays, fixes).iloc[0]

    stop_end = 900 + 1200 + 300
    loaded = (ts >= at(600)) & (ts < at(stop_end + 600 + 120))
    flicker = (ts >= at(stop_end - 60)) & (ts < at(stop_end + 60))  # the stop's last minute and the next
    assert first_haul(loaded & ~flicker)["unload_site_id"] == "XN-1"  # where the sensor turned empty for good
    # the same stop with the sensor empty from its last minute on (no load on the drive to B): C it was
    at_c = first_haul((ts >= at(600)) & (ts < at(stop_end - 60)))
    assert (at_c["unload_site_id"], at_c["unload_evidence"]) == ("", "sensor")
    assert abs(at_c["unload_lon"] - C[0]) < 0.001


def test_haul_without_receiver_unloads_at_dwell_and_gap_wins_over_a_short_stop() -> None:
    # the truck is loaded until its first plausible unloading: a 4-minute stop (a jam, a light)
    # before a dark detour is not one, so the silence is the unloading
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 900, *A),
            ("drive", 300, *C),
            ("stand", 420, *C),
            ("drive", 600, *A),
            ("stand", 900, *A),
            ("drive", 200, 121.31, 31.12),
            ("stand", 240, 121.31, 31.12),
            ("dark", 1800, 121.31, 31.125),
            ("drive", 200, *A),
            ("stand", 600, *A),
        ],
    )
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    places = {
        i: ("GD-1", "construction") for i in stays.index[np.hypot(stays["lon"] - A[0], stays["lat"] - A[1]) < 0.002]
    }
    hauls = build_hauls(_labelled(stays, places), fixes, Params())
    ev = list(hauls["unload_evidence"])
    assert ev[0] == "dwell" and abs(hauls["unload_lon"].iloc[0] - C[0]) < 0.001
    assert ev[1] == "gap"
    assert hauls["gap_max_reach_m"].iloc[1] > 10_000


def test_manifests_matched_one_to_one_and_cancelled_ignored() -> None:
    t = pd.Timestamp("2026-11-20 22:00", tz=TZ)
    hauls = pd.DataFrame(
        {
            "haul_id": ["h1", "h2"],
            "vehicle_id": ["V", "V"],
            "depart": [t, t + pd.Timedelta(hours=2)],
            "origin_site_id": ["GD-1", "GD-1"],
            "unload_start": [t + pd.Timedelta(minutes=40), t + pd.Timedelta(minutes=160)],
            "unload_end": [t + pd.Timedelta(minutes=50), t + pd.Timedelta(minutes=170)],
        }
    )
    man = pd.DataFrame(
        {
            "manifest_id": ["m1", "m2", "m3"],
            "vehicle_id": ["V", "V", "V"],
            "carrier_id": ["C"] * 3,
            "origin_site_id": ["GD-1"] * 3,
            "dest_site_id": ["XN-1"] * 3,
            "waste_type": ["muck"] * 3,
            "volume_m3": [10.0] * 3,
            "issued_at": [
                t - pd.Timedelta(minutes=30),
                t + pd.Timedelta(minutes=90),
                t + pd.Timedelta(minutes=100),
            ],
            "departed_at": [t + pd.Timedelta(minutes=5), t + pd.Timedelta(minutes=118), pd.NaT],
            "received_at": pd.Series([pd.NaT] * 3, dtype="datetime64[ns, Asia/Shanghai]"),
            "status": ["received", "received", "cancelled"],
            "cross_region_filing": [""] * 3,
        }
    )
    out = match_manifests(hauls, man).set_index("haul_id")
    assert out.loc["h1", "manifest_id"] == "m1" and out.loc["h2", "manifest_id"] == "m2"


def test_routing_falls_back_county_city_province_and_copies() -> None:
    liaisons = pd.DataFrame(
        {
            "liaison_id": ["P31", "P32", "C3205", "K320583b", "K310118", "K310118x", "P33"],
            "level": ["province", "province", "city", "county", "county", "county", "province"],
            "adcode": ["310000", "320000", "320500", "320583", "310118", "310118", "330000"],
            "role": ["primary", "primary", "primary", "backup", "primary", "primary", "primary"],
            "active": [True, True, True, True, True, False, True],
        }
    )
    d = LiaisonDirectory(liaisons)
    assert d.resolve("320583") == "K320583b"  # backup when no primary
    assert d.resolve("320509") == "C3205"  # no county liaison: the city
    assert d.resolve("330421") == "P33"  # nor city: the province
    leads = pd.DataFrame(
        {
            "county_adcode": ["320509"],
            "origin_county_adcode": ["310118"],
            "carrier_id": ["X"],
            "cross_border": [True],
            "province_adcode": ["320000"],
        }
    )
    carriers = pd.DataFrame({"carrier_id": ["X"], "county_adcode": ["320583"]})
    r = route_leads(leads, d, carriers).iloc[0]
    assert r["primary_liaison_id"] == "C3205"
    assert r["cc_liaison_ids"] == ["K310118", "K320583b", "P32", "P31"]


@pytest.mark.parametrize("every_s", [10, 30])
def test_stays_robust_to_sampling_interval(every_s: int) -> None:
    f = track(
        "沪AD1234",
        "2026-11-20 23:50",
        [("stand", 600, *A), ("drive", 600, *B), ("stand", 600, *B)],
        every_s=every_s,
        seed=every_s,
    )
    stays = detect_stays(clean_fixes(f)[0])
    assert len(stays) == 2
    # the second stay starts after midnight: one stay, not cut at the day boundary
    assert stays["start"].iloc[1].day == 21 and stays["duration_s"].iloc[1] >= 500


def test_haul_verdicts_apply_the_contract_definitions() -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    from wastetrack.detect import haul_verdicts

    sites = gpd.GeoDataFrame(
        {
            "site_id": ["XN-1", "XN-2", "XN-OLD", "GD-1"],
            "kind": ["disposal", "recycling", "disposal", "construction"],
            "accepts": [["muck", "mud"], ["demolition"], ["muck"], []],
            "valid_from": [None, None, pd.Timestamp("2025-01-01").date(), None],
            "valid_to": [None, None, pd.Timestamp("2026-11-19").date(), None],
        },
        geometry=[Point(121.0, 31.0)] * 4,
        crs="EPSG:4326",
    )
    end = pd.Timestamp("2026-11-20 01:00", tz=TZ)
    h = pd.DataFrame(
        {
            "unload_site_id": ["XN-1", "XN-2", "XN-1", "XN-OLD", "", "", "XN-1"],
            "unload_evidence": ["receiver", "receiver", "receiver", "receiver", "sensor", "gap", "receiver"],
            "manifest_id": ["m1", "m2", "m3", "m4", "m5", "", ""],
            "manifest_dest_site_id": ["XN-1", "XN-2", "XN-2", "XN-OLD", "XN-1", "", ""],
            "manifest_waste_type": ["muck", "muck", "muck", "muck", "muck", "", ""],
            "unload_end": [end] * 7,
        }
    )
    v = haul_verdicts(h, sites)
    assert list(v["kind"]) == ["", "diverted", "diverted", "diverted", "illegal_dump", "track_gap", "unmanifested"]
    assert v["problems"].iloc[1] == ["not_accepted"]
    assert v["problems"].iloc[2] == ["wrong_receiver"]
    assert v["problems"].iloc[3] == ["permit_invalid"]  # valid_to 2026-11-19, unloaded 2026-11-20 local


def test_parked_truck_reporting_every_five_minutes_is_one_stay() -> None:
    # terminals report every 300 s with the ignition off (as in the contract example)
    f = track("沪AD1234", "2026-11-20 06:00", [("stand", 4 * 3600, *A)], every_s=300)
    f = pd.concat([f, track("沪AD1234", "2026-11-20 10:00", [("stand", 15, *A), ("drive", 600, *B)])])
    stays = detect_stays(clean_fixes(f)[0])
    assert len(stays) == 1
    assert stays["duration_s"].iloc[0] >= 4 * 3600 - 301


def _hauls_loading_at_a(f: pd.DataFrame) -> pd.DataFrame:
    """Hauls of a hand-built track whose stays at A are loadings at construction site GD-1."""
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    at_a = stays.index[np.hypot(stays["lon"] - A[0], stays["lat"] - A[1]) < 0.002]
    return build_hauls(_labelled(stays, {i: ("GD-1", "construction") for i in at_a}), fixes)


def test_silence_on_a_straight_drive_back_does_not_hide_the_dump_before_it() -> None:
    # dump at C (7 min), then the terminal is off for 15 min while driving straight back towards A
    mid = (121.315, 31.15)  # on the straight line C → A, ~6 km from C
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 900, *A),
            ("drive", 600, *C),
            ("stand", 420, *C),
            ("drive", 60, 121.329, 31.195),
            ("dark", 900, *mid),
            ("drive", 300, *A),
            ("stand", 900, *A),
        ],
    )
    hauls = _hauls_loading_at_a(f)
    assert hauls["unload_evidence"].iloc[0] == "dwell"
    assert abs(hauls["unload_lon"].iloc[0] - C[0]) < 0.001


def test_a_long_off_site_stop_before_a_silence_places_the_unloading_where_it_stood() -> None:
    # stood 10 min off-site at C, then dark for 30 min: it tipped there, before going dark or just after
    # (the track cannot tell which: a truck that stands, then switches off at its spot, is the commonest
    # track gap). Either way the unloading is decided, it starts when the truck stood at C, and the lead
    # sits at C — not 3 km along the silence
    from wastetrack import boundaries as bnd
    from wastetrack.gaps import locate_gap_hauls

    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 900, *A),
            ("drive", 900, *C),
            ("stand", 600, *C),
            ("dark", 1800, 121.32, 31.15),
            ("drive", 900, *A),
            ("stand", 900, *A),
        ],
    )
    fixes = clean_fixes(f)[0]
    hauls = _hauls_loading_at_a(f)
    first = hauls.iloc[[0]]
    stood = detect_stays(fixes).iloc[1]
    assert abs(stood["lon"] - C[0]) < 0.001 and abs(stood["lat"] - C[1]) < 0.001
    assert first["unload_evidence"].iloc[0] in ("dwell", "gap")
    assert stood["start"] <= first["unload_start"].iloc[0] <= stood["end"]
    placed, _ = locate_gap_hauls(first, fixes, None, bnd.load_boundaries())
    lon, lat = placed["unload_lon"].iloc[0], placed["unload_lat"].iloc[0]
    assert np.hypot((lon - C[0]) * 95_000, (lat - C[1]) * M_PER_DEG_LAT) < 150


# ---------------------------------------------------------------- hauls that end at home, silent receivers, manifests

H = (121.31, 31.135)  # the truck's park, ~4 km from A


def test_a_last_haul_is_decided_at_the_dump_the_night_the_truck_parks_not_at_the_depot() -> None:
    # loaded at A, 6 minutes off-site at C, then home for the rest of the night: no loading ever follows
    f = track(
        "沪AD1234",
        "2026-11-20 04:00",
        [
            ("stand", 900, *A),
            ("drive", 900, *C),
            ("stand", 360, *C),
            ("drive", 900, *H),
            ("stand", 4 * 3600, *H),
        ],
        every_s=30,
    )
    h = _hauls_loading_at_a(f)
    assert len(h) == 1
    haul = h.iloc[0]
    assert haul["ended_by"] == "park" and bool(haul["returned_empty"])
    assert haul["unload_evidence"] == "dwell"
    assert abs(haul["unload_lon"] - C[0]) < 0.001 and abs(haul["unload_lat"] - C[1]) < 0.001
    park_start = haul["haul_end_at"]
    assert abs(haul["unload_lon"] - H[0]) > 0.01
    # decided once the park has lasted long enough to be one: the same night, not the next evening's loading
    assert haul["decided_at"] == park_start + pd.Timedelta(seconds=Params().shift_park_min_s)
    assert haul["decided_at"].day == 20


def test_an_hour_at_the_trucks_own_park_ends_the_haul_there() -> None:
    # home at H for the evening, loaded at A, eight minutes at a field C, then home for 90 minutes (a break
    # between shifts), a ten-minute fuel stop F on the way back and loaded again at A. The break at home ends
    # the haul: C is its unloading, decided when the break had lasted an hour — not the fuel stop after it
    fuel = (121.29, 31.16)

    def run(first_stand_at: tuple[float, float], break_at: tuple[float, float]) -> pd.Series:
        f = track("沪AD1234", "2026-11-20 01:00", [
            ("stand", 3 * 3600, *first_stand_at), ("drive", 900, *A), ("stand", 900, *A), ("drive", 900, *C),
            ("stand", 480, *C), ("drive", 900, *break_at), ("stand", 90 * 60, *break_at), ("drive", 600, *fuel),
            ("stand", 600, *fuel), ("drive", 600, *A), ("stand", 900, *A), ("drive", 900, *B),
        ], every_s=30)
        return _hauls_loading_at_a(f).iloc[0]

    haul = run(H, H)
    assert haul["ended_by"] == "park" and haul["unload_evidence"] == "dwell"
    assert abs(haul["unload_lon"] - C[0]) < 0.001 and abs(haul["unload_lat"] - C[1]) < 0.001
    assert haul["decided_at"] == haul["haul_end_at"] + pd.Timedelta(seconds=Params().home_park_min_s)
    # 90 minutes anywhere else (a truck park on the way, a wait) is no park: the haul runs on to the next loading
    elsewhere = (121.36, 31.17)
    haul = run(H, elsewhere)
    assert haul["ended_by"] == "load"
    # ... nor at a place that is not known as the truck's park (no stay of hours there)
    haul = run(elsewhere, H)
    assert haul["ended_by"] == "load"


def _went_home_track(after_park: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """Loaded at A; under 3 minutes at a light L; 8 minutes at C; home to H for 3 hours; then ``after_park``."""
    light = (121.315, 31.15)
    return track("沪AD1234", "2026-11-20 03:00", [
        ("stand", 900, *A), ("drive", 600, *light), ("stand", 170, *light), ("drive", 600, *C),
        ("stand", 480, *C), ("drive", 900, *H), ("stand", 3 * 3600, *H), *after_park,
    ], every_s=30)


def test_a_truck_that_went_home_loaded_unloaded_at_its_likeliest_stop(monkeypatch) -> None:
    # the model finds no stop likely enough on its own (the light 0.45, C 0.3): the truck still went home
    # without calling at a receiver, so its load went somewhere on the way — the likeliest stop long enough to
    # tip (the light, under 3 minutes, is not), a lead with the lower "went_home" score
    import wastetrack.unloading as unloading

    monkeypatch.setattr(unloading, "score_candidates",
                        lambda c, model=None: np.where(c["dwell_s"].to_numpy(float) > 300, 0.3, 0.45))
    f = _went_home_track([])
    fixes = clean_fixes(f)[0]
    stays = _site_a_receiver_b(detect_stays(fixes))
    haul = build_hauls(stays, fixes).iloc[0]
    assert haul["ended_by"] == "park" and haul["unload_evidence"] == "dwell"
    assert abs(haul["unload_lon"] - C[0]) < 0.001 and abs(haul["unload_lat"] - C[1]) < 0.001
    assert bool(went_home_guess(pd.DataFrame([haul]))[0])
    ev = {"unload_evidence": "dwell", "unload_p": 0.3, "went_home_loaded": True}
    assert lead_group("illegal_dump", ev) == "illegal_dump|went_home" and model_p("illegal_dump", ev) is None
    # parked loaded, waiting for the receiver to open, and delivered at B after the park: no unloading on the way
    f = _went_home_track([("drive", 900, *B), ("stand", 600, *B), ("drive", 900, *H), ("stand", 3600, *H)])
    fixes = clean_fixes(f)[0]
    haul = build_hauls(_site_a_receiver_b(detect_stays(fixes)), fixes).iloc[0]
    assert haul["ended_by"] == "park" and haul["unload_evidence"] == ""
    # a false loading (the truck called at A at the end of its shift) and straight home: standing 20 minutes
    # where it then parks, the terminal off for half an hour, is being home, not a dump
    f = track("沪AD1234", "2026-11-20 05:00", [("stand", 900, *A), ("drive", 900, *H), ("stand", 1200, *H),
                                                ("dark", 1800, *H), ("stand", 3 * 3600, *H)], every_s=30)
    fixes = clean_fixes(f)[0]
    haul = build_hauls(_site_a_receiver_b(detect_stays(fixes)), fixes).iloc[0]
    assert haul["ended_by"] == "park" and haul["unload_evidence"] == ""


def test_a_haul_still_on_the_road_when_the_data_ends_is_not_decided_yet() -> None:
    f = track("沪AD1234", "2026-11-20 22:00", [("stand", 900, *A), ("drive", 900, *C), ("stand", 360, *C),
                                                ("drive", 600, 121.32, 31.15)])
    haul = _hauls_loading_at_a(f).iloc[0]
    assert haul["ended_by"] == "" and not bool(haul["returned_empty"])
    assert haul["unload_evidence"] == "" and pd.isna(haul["decided_at"])


def test_a_loaded_truck_stopping_at_a_second_site_has_not_loaded_again() -> None:
    a2 = (121.318, 31.105)  # another construction site on the way, ~2 km from A
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 900, *A),  # loading
            ("drive", 150, *a2),
            ("stand", 330, *a2),  # a 5.5-minute stop at another site's fence: traffic, not a loading
            ("drive", 400, *B),
            ("stand", 600, *B),
            ("drive", 600, *A),
            ("stand", 900, *A),
        ],
    )
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    near = lambda p: np.hypot(stays["lon"] - p[0], stays["lat"] - p[1]) < 0.002  # noqa: E731
    places = {i: ("GD-1", "construction") for i in stays.index[near(A)]}
    places |= {i: ("GD-2", "construction") for i in stays.index[near(a2)]}
    places |= {i: ("XN-1", "disposal") for i in stays.index[near(B)]}
    hauls = build_hauls(_labelled(stays, places), fixes)
    first = hauls.iloc[0]
    assert first["origin_site_id"] == "GD-1" and first["unload_site_id"] == "XN-1"
    assert not (hauls["origin_site_id"] == "GD-2").any()


def _site_a_receiver_b(stays: pd.DataFrame) -> pd.DataFrame:
    """Stays labelled: those within ~200 m of A at construction site GD-1, of B at receiver XN-1."""
    near = lambda p: np.hypot(stays["lon"] - p[0], stays["lat"] - p[1]) < 0.002  # noqa: E731
    places = {i: ("GD-1", "construction") for i in stays.index[near(A)]}
    places |= {i: ("XN-1", "disposal") for i in stays.index[near(B)]}
    return _labelled(stays, places)


def _with_load_sensor(f: pd.DataFrame, empty_until: pd.Timestamp, loaded_until: pd.Timestamp) -> pd.DataFrame:
    """The track with a load sensor: empty until ``empty_until``, loaded until ``loaded_until``, then empty."""
    f = f.copy()
    ts = f["ts"]
    f["loaded"] = pd.array(((ts >= empty_until) & (ts < loaded_until)).to_numpy(), dtype="boolean")
    return f


def test_a_silence_the_load_sensor_says_the_load_went_in_is_decided_when_it_ends() -> None:
    # loaded at A, dark for 45 minutes near C, back empty (the load sensor says so), at A again at 23:55 to
    # load: the truck said where its load went, so the haul is decided at 23:40 — that night — not when the
    # next loading had lasted five minutes (00:00, the next night's run)
    legs = [("stand", 900, *A), ("drive", 900, *C), ("dark", 2700, 121.335, 31.2), ("drive", 900, *A),
            ("stand", 270, *A)]
    f = track("沪AD1234", "2026-11-20 22:25", legs)
    back = pd.Timestamp("2026-11-20 23:40", tz=TZ)
    sensed = _with_load_sensor(f, pd.Timestamp("2026-11-20 22:32", tz=TZ), back - pd.Timedelta(minutes=1))
    haul = _hauls_loading_at_a(sensed).iloc[0]
    assert haul["unload_evidence"] == "gap" and haul["unload_end"] == back
    assert haul["decided_at"] == back
    # without the sensor the same silence waits for the haul's end (the next loading, not over by midnight)
    haul = _hauls_loading_at_a(f).iloc[0]
    assert pd.isna(haul["decided_at"]) or haul["decided_at"] >= pd.Timestamp("2026-11-21 00:00", tz=TZ)
    # ... and so does one after which the sensor flickered empty once and read loaded again (a flap)
    flap = sensed.copy()
    after = (flap["ts"] > back).to_numpy()
    flap.loc[after, "loaded"] = True
    flap.loc[np.flatnonzero(after)[0], "loaded"] = False
    haul = _hauls_loading_at_a(flap).iloc[0]
    assert pd.isna(haul["decided_at"]) or haul["decided_at"] >= pd.Timestamp("2026-11-21 00:00", tz=TZ)


def test_a_truck_that_drove_off_loaded_and_came_back_empty_from_a_dark_trip_did_load() -> None:
    # loaded at A, drove off reading loaded for 4 minutes, went dark for 25 minutes and came back empty, a
    # 20-minute drive back to A: over the whole window to the next call at A the sensor reads mostly empty
    # (80 of 96 readings), but the readings after the silence describe the dark dump, not the site. The
    # loading stands and the silence is the haul's unloading, decided when it ends
    legs = [("stand", 900, *A), ("drive", 240, 121.31, 31.13), ("dark", 1500, 121.32, 31.16),
            ("drive", 1200, *A), ("stand", 900, *A)]
    f = track("沪AD1234", "2026-11-20 20:00", legs)
    back = pd.Timestamp("2026-11-20 20:44", tz=TZ)
    sensed = _with_load_sensor(f, pd.Timestamp("2026-11-20 20:05", tz=TZ), back - pd.Timedelta(minutes=1))
    hauls = _hauls_loading_at_a(sensed)
    first = hauls.iloc[0]
    assert first["depart"] < pd.Timestamp("2026-11-20 20:16", tz=TZ)  # the first visit is a loading
    assert first["unload_evidence"] == "gap" and first["decided_at"] == back
    # a truck that drove off from the same call reading empty, before its silence too, did not load there
    # (its sensor works: it reads loaded from the next loading at A on)
    empty = _with_load_sensor(f, pd.Timestamp("2026-11-20 21:10", tz=TZ), pd.Timestamp("2026-11-21 00:00", tz=TZ))
    assert not (_hauls_loading_at_a(empty)["depart"] < pd.Timestamp("2026-11-20 20:16", tz=TZ)).any()


def test_a_glitch_as_the_terminal_goes_dark_or_comes_back_is_a_teleport() -> None:
    # standing at B; the last fix before a 15-minute silence is thrown 9 km away (the terminal glitched as it
    # went dark); the slow step out of the glitch (9 km in 15 minutes) proves nothing after a silence
    legs = [("stand", 300, *B), ("dark", 900, *B), ("stand", 300, *B)]
    f = track("沪AD1234", "2026-11-20 22:00", legs)
    n_before = int((f["ts"] < pd.Timestamp("2026-11-20 22:05", tz=TZ)).sum())
    for glitch in (n_before - 1, n_before):  # the last fix before the silence, the first after it
        g = f.copy()
        g.loc[glitch, "lon"] -= 0.095
        cleaned, stats = clean_fixes(g)
        assert stats.teleports == 1 and cleaned["lon"].max() - cleaned["lon"].min() < 0.001
    # a truck that really is somewhere else after the silence (its next fixes agree) keeps every fix
    moved = track("沪AD1234", "2026-11-20 22:00", [("stand", 300, *B), ("dark", 900, *C), ("stand", 300, *C)])
    assert clean_fixes(moved)[1].teleports == 0


def test_a_truck_whose_sensor_reads_empty_as_it_leaves_a_site_did_not_load_there() -> None:
    # called at site A for 9 minutes without loading, stopped 10 minutes for fuel at C, came back, loaded,
    # unloaded at the receiver B: one haul, from the second visit; the fuel stop is no unloading
    legs = [
        ("stand", 540, *A),  # no load: the sensor reads empty as the truck leaves
        ("drive", 300, *C),
        ("stand", 600, *C),  # fuel
        ("drive", 300, *A),
        ("stand", 900, *A),  # loading
        ("drive", 600, *B),
        ("stand", 600, *B),  # the receiver
        ("drive", 600, *A),
        ("stand", 900, *A),
    ]
    f = track("沪AD1234", "2026-11-20 19:40", legs)
    t0 = f["ts"].iloc[0]
    loads_at = t0 + pd.Timedelta(seconds=540 + 300 + 600 + 300 + 600)
    unloads_at = t0 + pd.Timedelta(seconds=540 + 300 + 600 + 300 + 900 + 600 + 300)
    fixes = clean_fixes(_with_load_sensor(f, loads_at, unloads_at))[0]
    stays = detect_stays(fixes)
    stays = _site_a_receiver_b(stays)
    hauls = build_hauls(stays, fixes)
    assert (hauls["unload_lon"].dropna() - C[0]).abs().min() > 0.01  # the fuel stop is no unloading
    first = hauls.iloc[0]
    assert first["depart"] > loads_at and first["unload_site_id"] == "XN-1"
    # a sensor that never reads loaded is not believed: without it the first visit is a loading again
    stuck = fixes.assign(loaded=pd.array([False] * len(fixes), dtype="boolean"))
    assert build_hauls(stays, stuck)["depart"].min() < loads_at - pd.Timedelta(minutes=20)


def test_a_loading_in_a_dead_zone_counts_the_minutes_driving_does_not_explain() -> None:
    # a sparse feed sees the truck at the site for 3 minutes; the bay is a dead zone, and it reappears 25
    # minutes later 3 km away: driving explains about 8 of them, so it loaded for well over 5 minutes
    out = (121.30, 31.127)  # ~3 km north of A, on the way to B
    legs = [
        ("stand", 270, *A),
        ("dark", 1500, *out),
        ("drive", 400, *B),
        ("stand", 600, *B),
        ("drive", 600, *A),
        ("stand", 900, *A),
    ]
    f = track("沪AD1234", "2026-11-20 04:00", legs, every_s=90)
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    stays = _site_a_receiver_b(stays)
    first_visit = stays.loc[stays["site_id"] == "GD-1"].iloc[0]
    assert first_visit["end"] - first_visit["start"] < pd.Timedelta(minutes=5)  # too short a loading by itself
    hauls = build_hauls(stays, fixes)
    first = hauls.iloc[0]
    assert first["depart"] == first_visit["end"] and first["unload_site_id"] == "XN-1"


def test_a_silence_with_both_ends_at_the_site_does_not_make_a_second_loading() -> None:
    # loaded for 9 minutes, silent 14 minutes at the site (or on a dark trip out and back: the track cannot
    # tell), seen 3 more minutes there: the short second visit is not a loading of its own
    legs = [
        ("stand", 540, *A),
        ("drive", 180, A[0] + 0.004, A[1]),  # moved across the site, then silent
        ("dark", 840, A[0] + 0.001, A[1]),
        ("stand", 240, *A),
        ("drive", 600, *B),
        ("stand", 600, *B),
        ("drive", 600, *A),
        ("stand", 900, *A),
    ]
    fixes = clean_fixes(track("沪AD1234", "2026-11-20 22:30", legs, every_s=60))[0]
    stays = detect_stays(fixes)
    stays = _site_a_receiver_b(stays)
    hauls = build_hauls(stays, fixes)
    first = hauls.iloc[0]
    assert first["depart"] == stays.loc[stays["site_id"] == "GD-1"].iloc[0]["end"]  # leaves after the long visit
    assert first["unload_site_id"] == "XN-1" and first["unload_evidence"] == "receiver"


def test_a_truck_dark_in_the_loading_bay_from_its_arrival_loaded_there() -> None:
    # one fix as it reaches the site, 14 minutes dark in the bay, 4 minutes seen before it leaves: a loading
    # (the silence began at the site; no loading just before it) — its dump at C is a lead. Starting the
    # same silence away from the site (a dark trip back to it) makes no loading of a 4-minute call.
    def hauls_for(dark_from: tuple[float, float]) -> pd.DataFrame:
        f = track("沪AD1234", "2026-11-20 01:20", [
            ("stand", 900, *B), ("drive", 840, *dark_from), ("dark", 840, *A), ("stand", 240, *A),
            ("drive", 900, *C), ("stand", 480, *C), ("drive", 900, *A), ("stand", 900, *A),
        ], every_s=60)
        fixes = clean_fixes(f)[0]
        return build_hauls(_site_a_receiver_b(detect_stays(fixes)), fixes)

    h = hauls_for(A)
    assert len(h) == 2
    assert h.iloc[0]["unload_evidence"] == "dwell"
    assert abs(h.iloc[0]["unload_lon"] - C[0]) < 0.001 and abs(h.iloc[0]["unload_lat"] - C[1]) < 0.001
    away = hauls_for((A[0] + 0.02, A[1]))  # dark from 1.9 km east of the site
    assert len(away) == 1  # only the second, long visit to A is a loading


def _sites_ab() -> gpd.GeoDataFrame:
    from shapely.geometry import Point

    geoms = gpd.GeoSeries([Point(*A), Point(*B)], crs="EPSG:4326").to_crs(3857).buffer(120).to_crs(4326)
    return gpd.GeoDataFrame(
        {
            "site_id": ["GD-1", "XN-1"],
            "kind": ["construction", "disposal"],
            "accepts": [[], ["muck"]],
            "valid_from": [None, None],
            "valid_to": [None, None],
            "county_adcode": ["310117", "310117"],
        },
        geometry=geoms.values,
        crs="EPSG:4326",
    )


def _silent_at_receiver() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loaded at A; the terminal goes dark 600 m before receiver B and comes back 500 m after it, 16 min later."""
    before_b = (B[0] - 0.006, B[1] - 0.002)
    after_b = (B[0] - 0.005, B[1] - 0.001)
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 900, *A),
            ("drive", 540, *before_b),
            ("dark", 16 * 60, *after_b),
            ("drive", 600, *A),
            ("stand", 900, *A),
        ],
    )
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    at_a = stays.index[np.hypot(stays["lon"] - A[0], stays["lat"] - A[1]) < 0.002]
    return build_hauls(_labelled(stays, {i: ("GD-1", "construction") for i in at_a}), fixes), fixes


def test_a_silence_at_the_gate_of_the_manifests_receiver_is_a_receiver_visit_not_a_track_gap() -> None:
    from wastetrack import boundaries as bnd
    from wastetrack.detect import classify_hauls, explain_by_silent_receiver

    hauls, _ = _silent_at_receiver()
    first = hauls.iloc[[0]]
    assert pd.notna(first["silence_start"].iloc[0])
    judged = explain_by_silent_receiver(first.assign(manifest_dest_site_id="XN-1", manifest_received_at=pd.NaT),
                                        _sites_ab())
    assert judged["unload_evidence"].iloc[0] == "receiver_silent"
    assert judged["unload_site_id"].iloc[0] == "XN-1"
    # a yard the haul had no manifest for (none, or one for a yard not on the map) explains a silence only
    # when the terminal was seen at its fence: from 480 m out it is still a gap; gone dark in the yard, a visit
    for dest in ("", "XN-9"):
        other = explain_by_silent_receiver(first.assign(manifest_dest_site_id=dest, manifest_received_at=pd.NaT),
                                           _sites_ab())
        assert other["unload_evidence"].iloc[0] == "gap"
        inside = explain_by_silent_receiver(first.assign(manifest_dest_site_id=dest, manifest_received_at=pd.NaT,
                                                         silence_lon0=B[0], silence_lat0=B[1]), _sites_ab())
        assert (inside["unload_evidence"].iloc[0], inside["unload_site_id"].iloc[0]) == ("receiver_silent", "XN-1")
    # with the manifest to that receiver the haul is legitimate; without one, dark 480 m out, it is a track
    # gap, not a delivery the paperwork never announced
    vehicles = pd.DataFrame({"vehicle_id": ["沪AD1234"], "carrier_id": ["C1"]})
    manifest = {
        "manifest_id": "m1", "manifest_dest_site_id": "XN-1", "manifest_waste_type": "muck",
        "manifest_volume_m3": 10.0, "manifest_status": "in_transit", "manifest_carrier_id": "C1",
        "manifest_received_at": pd.NaT,
    }
    legit = classify_hauls(first.assign(**manifest), _sites_ab(), vehicles, bnd.load_boundaries())
    assert legit.empty or (legit["kind"] != "track_gap").all()
    none = {**manifest, "manifest_id": "", "manifest_dest_site_id": "", "manifest_waste_type": "",
            "manifest_status": "", "manifest_carrier_id": ""}
    leads = classify_hauls(first.assign(**none), _sites_ab(), vehicles, bnd.load_boundaries())
    assert list(leads["kind"]) == ["track_gap"]


def _dark_on_the_way(dark_at: tuple[float, float], back_at: tuple[float, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loaded at A, drives straight to ``dark_at``, goes dark 40 minutes, reappears at ``back_at``, drives home."""
    f = track("沪AD1234", "2026-11-20 22:00", [
        ("stand", 900, *A), ("drive", 600, *dark_at), ("dark", 40 * 60, *back_at), ("drive", 600, *A),
        ("stand", 900, *A),
    ])
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    at_a = stays.index[np.hypot(stays["lon"] - A[0], stays["lat"] - A[1]) < 0.002]
    hauls = build_hauls(_labelled(stays, {i: ("GD-1", "construction") for i in at_a}), fixes)
    return hauls.iloc[[0]].assign(manifest_dest_site_id="XN-1", manifest_received_at=pd.NaT), fixes


def test_a_truck_that_went_dark_driving_straight_for_its_manifests_receiver_delivered_there() -> None:
    from wastetrack.detect import explain_by_silent_receiver

    # dark 2.4 km before receiver B on the straight road from A, back 2.7 km out on the way home 40 min
    # later: a dead zone on the way into the yard the manifest names (farther out than the 1 km rule)
    way = (B[0] - A[0], B[1] - A[1])
    haul, fixes = _dark_on_the_way((B[0] - 0.4 * way[0], B[1] - 0.4 * way[1]),
                                   (B[0] - 0.45 * way[0], B[1] - 0.45 * way[1]))
    assert haul["unload_evidence"].iloc[0] == "gap"
    judged = explain_by_silent_receiver(haul, _sites_ab(), fixes=fixes)
    assert (judged["unload_evidence"].iloc[0], judged["unload_site_id"].iloc[0]) == ("receiver_silent", "XN-1")
    assert explain_by_silent_receiver(haul, _sites_ab())["unload_evidence"].iloc[0] == "gap"  # no track: no course
    assert explain_by_silent_receiver(haul.assign(manifest_dest_site_id=""), _sites_ab(), fixes=fixes)[
        "unload_evidence"].iloc[0] == "gap"  # no paperwork for the yard: only the terminal at its fence says so
    # the same silence entered driving north, the yard some 80 degrees off its course: a track gap
    north, fixes_n = _dark_on_the_way((A[0] + 0.003, A[1] + 0.02), (A[0] + 0.004, A[1] + 0.021))
    assert north["unload_evidence"].iloc[0] == "gap"
    assert explain_by_silent_receiver(north, _sites_ab(), fixes=fixes_n)["unload_evidence"].iloc[0] == "gap"


def test_a_loading_whose_fixes_drifted_off_the_site_is_placed_there_by_the_sites_gate_out_scan() -> None:
    from wastetrack.reconcile import place_loadings_by_gate_out

    # the site GD-1 (120 m round A); the truck loaded 12 minutes with its fixes thrown 300 m east of the
    # fence by the site's cranes and walls, then drove to receiver B: without the site no haul starts there
    east = 420.0 / 95_000
    load = (A[0] + east, A[1])
    f = track("沪AD1234", "2026-11-20 22:00", [("stand", 600, A[0] - 0.05, A[1]), ("drive", 300, *load),
                                               ("stand", 720, *load), ("drive", 600, *B), ("stand", 600, *B),
                                               ("drive", 600, A[0] - 0.05, A[1]), ("stand", 600, A[0] - 0.05, A[1])])
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    stays["site_id"], stays["site_kind"] = "", ""
    at_b = np.hypot(stays["lon"] - B[0], stays["lat"] - B[1]) < 0.002
    stays.loc[at_b, ["site_id", "site_kind"]] = ["XN-1", "disposal"]
    for c, v in (("county_adcode", "310117"), ("city_adcode", "310100"), ("province_adcode", "310000")):
        stays[c] = v
    left = fixes["ts"].iloc[0] + pd.Timedelta(seconds=600 + 300 + 720)  # the stay's end: out of the gate

    def placed(departed: pd.Timestamp | None, status: str = "in_transit", origin: str = "GD-1") -> pd.DataFrame:
        m = pd.DataFrame({"manifest_id": ["m1"], "vehicle_id": ["沪AD1234"], "origin_site_id": [origin],
                          "status": [status], "departed_at": pd.array([departed], dtype="datetime64[us, UTC]")})
        return place_loadings_by_gate_out(stays, m, _sites_ab())

    got = placed(left + pd.Timedelta(seconds=40))
    assert list(got["site_id"]) == ["", "GD-1", "XN-1", ""]
    hauls = build_hauls(got, fixes)
    assert len(hauls) == 1 and hauls.iloc[0]["origin_site_id"] == "GD-1"
    assert hauls.iloc[0]["unload_site_id"] == "XN-1"
    assert build_hauls(stays, fixes).empty  # without it, no loading, no haul
    # no scan, a scan an hour later, a cancelled form, another site: the stay stays off the map
    for m in (placed(None), placed(left + pd.Timedelta(hours=1)), placed(left, status="cancelled"),
              placed(left, origin="XN-1")):
        assert list(m["site_id"]) == ["", "", "XN-1", ""]
    # ... and so does a stop 1.5 km out when the truck is scanned out
    far = stays.copy()
    far.loc[1, "lon"] = A[0] + 1500.0 / 95_000
    m = pd.DataFrame({"manifest_id": ["m1"], "vehicle_id": ["沪AD1234"], "origin_site_id": ["GD-1"],
                      "status": ["in_transit"], "departed_at": pd.array([left], dtype="datetime64[us, UTC]")})
    assert place_loadings_by_gate_out(far, m, _sites_ab()).loc[1, "site_id"] == ""


def test_a_short_call_at_the_site_is_a_loading_when_the_sites_gate_scanned_the_truck_out() -> None:
    from wastetrack.reconcile import place_loadings_by_gate_out

    # a sparse terminal at the bay: one fix every four minutes, so a ten-minute loading at A shows as a stay
    # of four minutes — no loading — and the haul to receiver B is lost; the gate scanned it out at 22:21
    f = track("沪AD1234", "2026-11-20 22:00", [
        ("stand", 600, A[0] - 0.05, A[1]), ("drive", 300, *A), ("stand", 240, *A), ("drive", 600, *B),
        ("stand", 600, *B), ("drive", 600, A[0] - 0.05, A[1]), ("stand", 600, A[0] - 0.05, A[1]),
    ], every_s=240)
    fixes = clean_fixes(f)[0]
    stays = _labelled(detect_stays(fixes), {})
    at = {"A": np.hypot(stays["lon"] - A[0], stays["lat"] - A[1]) < 0.002,
          "B": np.hypot(stays["lon"] - B[0], stays["lat"] - B[1]) < 0.002}
    stays.loc[at["A"], ["site_id", "site_kind"]] = ["GD-1", "construction"]
    stays.loc[at["B"], ["site_id", "site_kind"]] = ["XN-1", "disposal"]
    call = stays.loc[at["A"]].iloc[0]
    assert (call["end"] - call["start"]).total_seconds() < Params().load_min_dwell_s
    assert build_hauls(stays, fixes).empty  # too short to count: no loading, no haul

    def scanned(departed: pd.Timestamp | None, origin: str = "GD-1", status: str = "in_transit") -> pd.DataFrame:
        m = pd.DataFrame({"manifest_id": ["m1"], "vehicle_id": ["沪AD1234"], "origin_site_id": [origin],
                          "status": [status], "departed_at": pd.array([departed], dtype="datetime64[us, UTC]")})
        return place_loadings_by_gate_out(stays, m, _sites_ab())

    out = call["end"] + pd.Timedelta(minutes=2)
    hauls = build_hauls(scanned(out), fixes)
    assert list(hauls["origin_site_id"]) == ["GD-1"] and hauls.iloc[0]["unload_site_id"] == "XN-1"
    # no scan, a scan an hour later, a cancelled form, a form from another site: still no loading
    for other in (scanned(None), scanned(out + pd.Timedelta(hours=1)), scanned(out, status="cancelled"),
                  scanned(out, origin="GD-9")):
        assert not other["scanned_out"].any()
        assert build_hauls(other, fixes).empty


def test_a_stop_at_a_yard_on_the_way_is_no_unloading_when_the_manifests_yard_scanned_the_load_in() -> None:
    from shapely.geometry import Point

    from wastetrack.detect import settle_unloadings

    # loaded at A; a three-minute red light at the edge of yard XN-2 on the way (a road passes it); then
    # twelve minutes inside XN-1, the manifest's yard, which scanned the form in at 22:43
    mid = ((A[0] + B[0]) / 2, (A[1] + B[1]) / 2)
    f = track("沪AD1234", "2026-11-20 22:00", [
        ("stand", 900, *A), ("drive", 300, *mid), ("stand", 200, *mid), ("drive", 300, *B), ("stand", 720, *B),
        ("drive", 600, A[0] - 0.05, A[1]), ("stand", 600, A[0] - 0.05, A[1]),
    ])
    fixes = clean_fixes(f)[0]
    stays = _labelled(detect_stays(fixes), {})
    for (x, y), sid, kind in ((A, "GD-1", "construction"), (mid, "XN-2", "disposal"), (B, "XN-1", "disposal")):
        stays.loc[np.hypot(stays["lon"] - x, stays["lat"] - y) < 0.002, ["site_id", "site_kind"]] = [sid, kind]
    hauls = build_hauls(stays, fixes)
    assert hauls.iloc[0]["unload_site_id"] == "XN-2"  # the first yard it stood at
    geoms = gpd.GeoSeries([Point(*A), Point(*mid), Point(*B)], crs="EPSG:4326").to_crs(3857).buffer(120)
    sites = gpd.GeoDataFrame({"site_id": ["GD-1", "XN-2", "XN-1"], "kind": ["construction", "disposal", "disposal"],
                              "county_adcode": ["310117"] * 3}, geometry=geoms.to_crs(4326).values, crs="EPSG:4326")
    in_b = fixes.loc[np.hypot(fixes["lon"] - B[0], fixes["lat"] - B[1]) < 0.001, "ts"]

    def settled(received: pd.Timestamp | None, dest: str = "XN-1") -> pd.Series:
        h = hauls.assign(manifest_id="m1", manifest_dest_site_id=dest,
                         manifest_received_at=pd.array([received], dtype="datetime64[us, UTC]"))
        return settle_unloadings(h, sites, fixes=fixes).iloc[0]

    got = settled(in_b.iloc[3])
    assert (got["unload_site_id"], got["unload_evidence"]) == ("XN-1", "receiver_scan")
    assert in_b.iloc[0] <= got["unload_start"] <= got["unload_end"] <= in_b.iloc[-1]
    assert np.hypot(got["unload_lon"] - B[0], got["unload_lat"] - B[1]) < 0.001
    # no scan, a scan before the stop at XN-2, a scan an hour after the truck left XN-1: the stop stands
    for received in (None, hauls.iloc[0]["unload_start"] - pd.Timedelta(minutes=30),
                     in_b.iloc[-1] + pd.Timedelta(hours=1)):
        assert settled(received)["unload_site_id"] == "XN-2"
    # the manifest names XN-2 itself: nothing to move
    assert settled(in_b.iloc[3], dest="XN-2")["unload_site_id"] == "XN-2"


def test_a_tipping_that_drifted_off_the_receiver_it_drove_into_is_at_that_receiver() -> None:
    from wastetrack.detect import settle_unloadings

    # the manifest's receiver XN-1 (120 m around B); the body lifted at fixes 300 m east of its fence for
    # 12 minutes, no gate-in scan in the export. Before it, the truck drove in through the yard (fixes at B)
    # — or only passed along the road outside, or never came near
    east = 420.0 / 95_000  # degrees of longitude: 300 m beyond the 120 m fence
    tip = (B[0] + east, B[1])

    def settle(approach: list[tuple[str, float, float, float]], stray: int = -1) -> pd.Series:
        f = track("沪AD1234", "2026-11-20 22:40", [("stand", 60, B[0] - 0.03, B[1]), *approach,
                                                   ("drive", 60, *tip), ("stand", 720, *tip), ("drive", 300, *A)])
        if stray >= 0:  # that fix of the approach thrown into the yard by noise
            f.loc[stray, ["lon", "lat"]] = B
        fixes = clean_fixes(f)[0]
        t_tip = fixes.loc[np.hypot(fixes["lon"] - tip[0], fixes["lat"] - tip[1]) < 0.0005, "ts"]
        haul = pd.DataFrame([{
            "haul_id": "h1", "vehicle_id": "沪AD1234", "unload_site_id": "", "unload_evidence": "sensor",
            "unload_start": t_tip.min(), "unload_end": t_tip.max(), "unload_lon": tip[0], "unload_lat": tip[1],
            "manifest_dest_site_id": "XN-1", "manifest_received_at": pd.NaT,
        }])
        return settle_unloadings(haul, _sites_ab(), fixes=fixes).iloc[0]

    drove_in = settle([("drive", 300, *B), ("stand", 90, *B)])  # in the yard 1.5 min: 6 fixes inside
    assert (drove_in["unload_site_id"], drove_in["unload_evidence"]) == ("XN-1", "receiver_track")
    passed = settle([("drive", 300, B[0], B[1] + 160 / M_PER_DEG_LAT)])  # along the road 40 m off the fence
    assert (passed["unload_site_id"], passed["unload_evidence"]) == ("", "sensor")
    one_fix = settle([("drive", 300, B[0], B[1] + 160 / M_PER_DEG_LAT)], stray=20)  # one fix inside: noise
    assert one_fix["unload_site_id"] == ""
    # without the fixes (a caller that has none) the GPS point stands
    assert settle_unloadings(pd.DataFrame([drove_in.drop(["unload_site_id", "unload_evidence"])]).assign(
        unload_site_id="", unload_evidence="sensor"), _sites_ab()).iloc[0]["unload_site_id"] == ""


def test_a_silence_that_starts_at_the_loading_site_is_not_explained_by_a_receiver_nearby() -> None:
    from wastetrack.detect import explain_by_silent_receiver

    hauls, _ = _silent_at_receiver()
    h = hauls.iloc[[0]].assign(manifest_dest_site_id="XN-1", manifest_received_at=pd.NaT)
    assert explain_by_silent_receiver(h, _sites_ab())["unload_evidence"].iloc[0] == "receiver_silent"
    # the same silence, but the truck went dark at its loading site: it lost the signal there, not at B
    h = h.assign(silence_lon0=A[0], silence_lat0=A[1])
    judged = explain_by_silent_receiver(h, _sites_ab())
    assert judged["unload_evidence"].iloc[0] != "receiver_silent"


def _manifest_rows(rows: list[dict]) -> pd.DataFrame:
    base = {"vehicle_id": "V", "carrier_id": "C", "origin_site_id": "GD-1", "dest_site_id": "XN-1",
            "waste_type": "muck", "volume_m3": 10.0, "cross_region_filing": "", "status": "in_transit"}
    m = pd.DataFrame([{**base, **r} for r in rows])
    for c in ("issued_at", "departed_at", "received_at"):
        m[c] = pd.to_datetime(m[c], utc=True).dt.tz_convert(TZ)
    return m


def _two_hauls(t: pd.Timestamp, minutes: list[tuple[int, int | None, int | None]],
               unload_sites: list[str] | None = None) -> pd.DataFrame:
    """Hauls h1, h2 of truck V from GD-1: (depart, unload start, unload end) in minutes after ``t``."""
    def at(m: int | None) -> pd.Timestamp:
        return pd.NaT if m is None else t + pd.Timedelta(minutes=m)

    hauls = pd.DataFrame({
        "haul_id": ["h1", "h2"], "vehicle_id": ["V", "V"], "origin_site_id": ["GD-1", "GD-1"],
        "depart": [at(d) for d, _, _ in minutes],
        "unload_start": [at(u0) for _, u0, _ in minutes],
        "unload_end": [at(u1) for _, _, u1 in minutes],
    })
    return hauls if unload_sites is None else hauls.assign(unload_site_id=unload_sites)


def test_a_pile_reported_at_one_of_two_likely_stops_makes_it_the_unloading() -> None:
    from wastetrack.hauls import reported_here, track_unloadings
    from wastetrack.trace import report_windows

    # one haul, two stops the model finds likely on the track alone: a fuel station at 20:35 (0.97) and a
    # field at 21:02 (0.89); a pile was reported at the field, seen between 21:30 and 23:00
    t = pd.Timestamp("2026-11-20 20:00", tz=TZ)
    field = (121.30, 31.10)
    c = pd.DataFrame({
        "haul_id": ["h1", "h1"], "vehicle_id": ["V", "V"], "kind": ["stay", "stay"],
        "start": [t + pd.Timedelta(minutes=35), t + pd.Timedelta(minutes=62)],
        "end": [t + pd.Timedelta(minutes=42), t + pd.Timedelta(minutes=70)],
        "lon": [121.35, field[0] + 0.0005], "lat": [31.12, field[1]], "unload_p": [0.97, 0.89],
        "haul_end_at": [t + pd.Timedelta(hours=2)] * 2, "end_known_at": [t + pd.Timedelta(hours=2)] * 2,
    })

    def reports(lon: float, seen: tuple[str, str]) -> pd.DataFrame:
        return report_windows(pd.DataFrame({
            "report_id": ["R1"], "reported_at": [t + pd.Timedelta(hours=14)], "lon": [lon], "lat": [field[1]],
            "observed_from": [pd.Timestamp(f"2026-11-20 {seen[0]}", tz=TZ)],
            "observed_to": [pd.Timestamp(f"2026-11-20 {seen[1]}", tz=TZ)],
        }))

    at_field = reports(field[0], ("21:30", "23:00"))
    assert reported_here(c, at_field).tolist() == [False, True]  # 48 m from the field's stop
    assert track_unloadings(c.assign(reported=reported_here(c, at_field)))["start"].iloc[0] == c["start"].iloc[1]
    assert track_unloadings(c)["start"].iloc[0] == c["start"].iloc[0]  # no report: the likelier stop
    assert not reported_here(c, reports(field[0] + 0.006, ("21:30", "23:00"))).any()  # 620 m off: another pile
    assert not reported_here(c, reports(field[0], ("23:50", "23:59"))).any()  # dumped long after it left


def test_a_call_at_a_site_the_manifests_scans_rule_out_as_a_loading_joins_the_two_hauls() -> None:
    from wastetrack.reconcile import join_false_loadings

    # V left GD-1 at 03:21 under M1 (gate-out scan) and found no unloading; five minutes at GD-2's gate from
    # 03:36 passed for a loading; the "next haul" unloaded at XN-1 03:49-04:00, where M1's gate-in scan was
    # taken at 03:55. One trip: GD-1 → XN-1 under M1. Left as two, the second is an unmanifested haul
    t = pd.Timestamp("2026-11-20 03:00", tz=TZ)
    at = lambda m: t + pd.Timedelta(minutes=m)  # noqa: E731
    hauls = pd.DataFrame({
        "haul_id": ["h1", "h2", "h3"], "vehicle_id": ["V", "V", "V"], "origin_site_id": ["GD-1", "GD-2", "GD-1"],
        "depart": [at(21), at(45), at(130)], "unload_start": [pd.NaT, at(49), at(160)],
        "unload_end": [pd.NaT, at(60), at(170)], "unload_site_id": ["", "XN-1", "XN-1"],
        "unload_evidence": ["", "receiver", "receiver"], "end": [at(36), at(100), at(200)],
        "manifest_id": ["M1", "", "M2"], "manifest_dest_site_id": ["XN-1", "", "XN-1"],
        "manifest_received_at": [at(55), pd.NaT, at(165)],
    })
    joined = join_false_loadings(hauls)
    assert list(joined["haul_id"]) == ["h1", "h3"]
    assert joined.dtypes.equals(hauls.dtypes)  # the store writes the columns it had
    one = joined.iloc[0]
    assert (one["origin_site_id"], one["depart"], one["manifest_id"]) == ("GD-1", at(21), "M1")
    assert (one["unload_site_id"], one["unload_start"], one["end"]) == ("XN-1", at(49), at(100))
    # not joined: the second haul had a manifest of its own (a real second trip) ...
    assert len(join_false_loadings(hauls.assign(manifest_id=["M1", "M9", "M2"]))) == 3
    # ... or M1's scan was not taken during its unloading (that load went somewhere else) ...
    later = hauls.assign(manifest_received_at=[at(120), pd.NaT, at(165)])
    assert len(join_false_loadings(later)) == 3
    # ... or the first haul had unloaded already
    done = hauls.assign(unload_evidence=["dwell", "receiver", "receiver"], unload_start=[at(30), at(49), at(160)])
    assert len(join_false_loadings(done)) == 3
    # the second "haul" went dark (the yard's dead zone) and M1's scan was taken in its silence: one trip too,
    # whose silence the scan then explains; a scan outside the silence joins nothing
    dark = hauls.assign(unload_site_id=["", "", "XN-1"], unload_evidence=["", "gap", "receiver"])
    joined = join_false_loadings(dark)
    assert list(joined["haul_id"]) == ["h1", "h3"] and joined.iloc[0]["unload_evidence"] == "gap"
    assert len(join_false_loadings(dark.assign(manifest_received_at=[at(75), pd.NaT, at(165)]))) == 3


def test_a_manifest_entered_after_the_trip_is_still_the_hauls() -> None:
    t = pd.Timestamp("2026-11-20 09:30", tz=TZ)
    hauls = _two_hauls(t, [(0, 50, 60), (180, 230, 240)], ["XN-1", "XN-1"])
    man = _manifest_rows([
        # 补录: entered 70 minutes after h1 left, no scan
        {"manifest_id": "late", "issued_at": t + pd.Timedelta(minutes=70), "departed_at": pd.NaT,
         "received_at": pd.NaT},
        # h2's own, with its gate-out scan
        {"manifest_id": "own2", "issued_at": t + pd.Timedelta(hours=2), "departed_at": t + pd.Timedelta(hours=3),
         "received_at": pd.NaT},
    ])
    out = match_manifests(hauls, man).set_index("haul_id")
    assert out.loc["h1", "manifest_id"] == "late" and out.loc["h2", "manifest_id"] == "own2"


def test_a_booking_for_the_next_trip_is_not_taken_for_a_late_entry() -> None:
    # both trips ended within the batch (h2 unloaded at 23:55): a manifest still only "issued" at the end of
    # the day covers neither (one still on the road at the batch end: test_a_late_entry_and_a_booking_...)
    t = pd.Timestamp("2026-11-20 20:59", tz=TZ)
    hauls = _two_hauls(t, [(0, 70, 80), (166, 176, 186)], ["XN-1", "XN-1"])
    hauls["haul_end_at"] = [t + pd.Timedelta(minutes=100), t + pd.Timedelta(minutes=200)]
    man = _manifest_rows([
        # issued an hour after h1 left, 1h45 before h2 leaves: h2's booking, not h1's late entry
        {"manifest_id": "next", "issued_at": t + pd.Timedelta(minutes=59), "departed_at": pd.NaT,
         "received_at": pd.NaT},
        # still only "issued" in its own day: a booking for a trip to come, never a late entry
        {"manifest_id": "booked", "issued_at": t + pd.Timedelta(minutes=30), "departed_at": pd.NaT,
         "received_at": pd.NaT, "status": "issued"},
    ])
    out = match_manifests(hauls, man).set_index("haul_id")
    assert out.loc["h2", "manifest_id"] == "next"
    assert out.loc["h1", "manifest_id"] == ""


def test_a_late_entry_and_a_booking_for_a_trip_still_on_the_road_cover_both_trips() -> None:
    # h1 ended at 23:49 (unloaded at XN-1); h2 left at 23:58 and is still on the road when the batch ends.
    # "late" was entered at 23:55 for h1 (补录, in transit, no scan); "booked" was filled in at 23:47 for h2,
    # whose gate-out had not reached the export. Cheapest first gives "late" to h2 (3 minutes before it
    # left) and accuses h1; the pairing that covers both trips is the one to believe.
    t = pd.Timestamp("2026-11-20 22:29", tz=TZ)
    hauls = _two_hauls(t, [(0, 37, 47), (89, None, None)], ["XN-1", ""])
    hauls["haul_end_at"] = [t + pd.Timedelta(minutes=80), pd.NaT]
    man = _manifest_rows([
        {"manifest_id": "late", "issued_at": t + pd.Timedelta(minutes=86), "departed_at": pd.NaT,
         "received_at": pd.NaT},
        {"manifest_id": "booked", "issued_at": t + pd.Timedelta(minutes=78), "departed_at": pd.NaT,
         "received_at": pd.NaT, "status": "issued"},
    ])
    out = match_manifests(hauls, man).set_index("haul_id")
    assert out.loc["h1", "manifest_id"] == "late" and out.loc["h2", "manifest_id"] == "booked"
    # a trip that ended tonight had its gate-out by now: a manifest still only "issued" is not its booking
    closed = hauls.assign(haul_end_at=[t + pd.Timedelta(minutes=80), t + pd.Timedelta(minutes=130)],
                          unload_start=[t + pd.Timedelta(minutes=37), t + pd.Timedelta(minutes=110)],
                          unload_end=[t + pd.Timedelta(minutes=47), t + pd.Timedelta(minutes=118)])
    out = match_manifests(closed, man).set_index("haul_id")
    assert "booked" not in set(out["manifest_id"])
    # a booking made before h1 left and never used since is not h2's: bookings go to the truck's next trip.
    # h1 went without using it (it dumped instead, the commonest reason), and "late" is h2's booking
    early = man.assign(issued_at=[t + pd.Timedelta(minutes=86), t - pd.Timedelta(hours=3)])
    out = match_manifests(hauls, early).set_index("haul_id")
    assert out.loc["h2", "manifest_id"] == "late" and out.loc["h1", "manifest_id"] == ""


def test_a_booking_never_scanned_is_the_trip_whose_load_reached_no_site() -> None:
    # h1 left GD-1 at 21:11 and its load reached no site (tipped in a field at 21:23); "booked" was filled in
    # for V at 20:47 and is still only "issued" at the end of the day: a driver who means to tip on the way
    # does not scan his form at the gate, and the booking is the only record of the trip. h2 left at 22:14
    # under its own scans.
    t = pd.Timestamp("2026-11-19 21:11", tz=TZ)
    hauls = _two_hauls(t, [(0, 12, 20), (63, 130, 137)], ["", "XN-1"])
    hauls["haul_end_at"] = [t + pd.Timedelta(minutes=50), t + pd.Timedelta(minutes=140)]
    own2 = {"manifest_id": "own2", "issued_at": t - pd.Timedelta(minutes=49), "departed_at": t + pd.Timedelta(
        minutes=66), "received_at": t + pd.Timedelta(minutes=131), "status": "received"}
    booked = {"manifest_id": "booked", "issued_at": t - pd.Timedelta(minutes=24), "departed_at": pd.NaT,
              "received_at": pd.NaT, "status": "issued"}
    out = match_manifests(hauls, _manifest_rows([own2, booked])).set_index("haul_id")
    assert out.loc["h1", "manifest_id"] == "booked" and out.loc["h2", "manifest_id"] == "own2"
    # had the load reached XN-1, XN-1 would have scanned the form in: a form never scanned was not this trip's
    delivered = hauls.assign(unload_site_id=["XN-1", "XN-1"])
    assert match_manifests(delivered, _manifest_rows([own2, booked])).set_index("haul_id").loc["h1", "manifest_id"] \
        == ""
    # a booking made in the afternoon and followed by a form filled in before h1 left was for another trip
    afternoon = {**booked, "issued_at": t - pd.Timedelta(hours=7)}
    out = match_manifests(hauls, _manifest_rows([own2, afternoon])).set_index("haul_id")
    assert out.loc["h1", "manifest_id"] == "" and out.loc["h2", "manifest_id"] == "own2"


def test_a_gate_scan_is_not_moved_to_cover_a_trip_without_a_manifest() -> None:
    # h2 (still on the road) left at 23:59 and m1's gate-out is at 00:04: m1 is h2's. m1 could also reach h1
    # (its gate-out 67 min after h1 left, inside the tolerance) and m2 (gate-out 72 min after h2 left) could
    # then be h2's — but scans are records, not forms: h1, hauled without a manifest, stays unmanifested
    t = pd.Timestamp("2026-11-19 22:57", tz=TZ)
    hauls = _two_hauls(t, [(0, 16, 26), (62, None, None)], ["XN-1", ""])
    hauls["haul_end_at"] = [t + pd.Timedelta(minutes=47), pd.NaT]
    man = _manifest_rows([
        {"manifest_id": "m1", "issued_at": t + pd.Timedelta(minutes=25), "departed_at": t + pd.Timedelta(
            minutes=67), "received_at": t + pd.Timedelta(minutes=83), "status": "received"},
        {"manifest_id": "m2", "issued_at": t + pd.Timedelta(minutes=56), "departed_at": t + pd.Timedelta(
            minutes=134), "received_at": t + pd.Timedelta(minutes=152), "status": "received"},
    ])
    out = match_manifests(hauls, man).set_index("haul_id")
    assert out.loc["h2", "manifest_id"] == "m1" and out.loc["h1", "manifest_id"] == ""


def test_a_gate_scan_outbids_a_manifest_known_only_by_its_issue_time() -> None:
    t = pd.Timestamp("2026-11-19 22:40", tz=TZ)
    hauls = _two_hauls(t, [(0, 45, 53), (105, 150, 160)])
    man = _manifest_rows([
        {"manifest_id": "scanned", "issued_at": t - pd.Timedelta(hours=1), "departed_at": t + pd.Timedelta(
            seconds=100), "received_at": pd.NaT},
        # issued four minutes after h1 left, no scan: h2's (the scan already says which one is h1's)
        {"manifest_id": "form", "issued_at": t + pd.Timedelta(minutes=4), "departed_at": pd.NaT,
         "received_at": pd.NaT},
    ])
    out = match_manifests(hauls, man).set_index("haul_id")
    assert out.loc["h1", "manifest_id"] == "scanned" and out.loc["h2", "manifest_id"] == "form"


def test_a_form_stamped_on_the_road_belongs_to_the_next_trip_booked_ahead() -> None:
    # issued 28 min after h1 left (no scan) and 104 min before h2 leaves: booking ahead is routine, stamping a
    # trip already on the road the exception, so the form is h2's, and h1 — which had none — is unmanifested
    t = pd.Timestamp("2026-11-19 23:38", tz=TZ)
    hauls = _two_hauls(t, [(0, 16, 26), (132, 151, 175)], ["XN-1", "XN-1"])
    man = _manifest_rows([{"manifest_id": "form", "issued_at": t + pd.Timedelta(minutes=28),
                           "departed_at": pd.NaT, "received_at": pd.NaT}])
    out = match_manifests(hauls, man).set_index("haul_id")
    assert out.loc["h2", "manifest_id"] == "form" and out.loc["h1", "manifest_id"] == ""
    # alone, the same form is still the trip it was stamped on
    alone = match_manifests(hauls.iloc[:1], man).set_index("haul_id")
    assert alone.loc["h1", "manifest_id"] == "form"


def test_a_receiver_visit_unloads_where_the_truck_stood_longest() -> None:
    # a 2.5-minute halt at the gate (inside the fence tolerance), then 8 minutes at the tipping face 350 m on
    face = (B[0] + 0.0035, B[1])
    f = track(
        "沪AD1234",
        "2026-11-20 22:00",
        [
            ("stand", 900, *A),
            ("drive", 300, *B),
            ("stand", 150, *B),
            ("drive", 60, *face),
            ("stand", 480, *face),
            ("drive", 600, *A),
            ("stand", 900, *A),
        ],
    )
    fixes = clean_fixes(f)[0]
    stays = detect_stays(fixes)
    assert len(stays) == 4
    stays = _labelled(stays, {0: ("GD-1", "construction"), 1: ("XN-1", "disposal"), 2: ("XN-1", "disposal"),
                              3: ("GD-1", "construction")})
    first = build_hauls(stays, fixes).iloc[0]
    assert first["unload_evidence"] == "receiver" and first["unload_stay_id"] == stays["stay_id"].iloc[2]
    assert abs(first["unload_lon"] - face[0]) < 0.0005


def _noisy_stop(jitter_m: float) -> pd.DataFrame:
    """A sparse, noisy feed: a fix every 90 s; standing 9 minutes at C, its fixes jumping 90 m back and forth
    (the noise of a terminal with a 30-40 m error): 3.6 km/h if the noise were movement."""
    t0 = pd.Timestamp("2026-11-20 02:00", tz=TZ)
    rows = []
    for k in range(30):  # 45 minutes: 18 min driving in, 9 standing, 18 driving on
        t = t0 + pd.Timedelta(seconds=90 * k)
        if k < 12:
            lon, lat = C[0] - 0.04 + 0.04 * k / 12, C[1]
        elif k < 18:
            sign = 1 if k % 2 else -1
            lon, lat = C[0] + sign * 40 / 95_000, C[1] + sign * 20 / M_PER_DEG_LAT
        else:
            lon, lat = C[0], C[1] + 0.04 * (k - 17) / 12
        rows.append((t, lon, lat))
    f = pd.DataFrame(rows, columns=["ts", "lon", "lat"])
    f.insert(0, "vehicle_id", "沪AD1234")
    f["speed_kmh"] = np.nan
    f["heading"] = np.nan
    f["loaded"] = pd.array([pd.NA] * len(f), dtype="boolean")
    f["tipping"] = pd.array([pd.NA] * len(f), dtype="boolean")
    return detect_stays(clean_fixes(f)[0], Params(stay_gps_jitter_m=jitter_m))


def test_gps_noise_does_not_hide_a_stop_on_a_sparse_feed() -> None:
    found = _noisy_stop(Params().stay_gps_jitter_m)
    at_c = found.loc[np.hypot(found["lon"] - C[0], found["lat"] - C[1]) < 0.001]
    assert len(at_c) == 1 and at_c["dwell_s"].iloc[0] >= 6 * 60
    # counting the noise as movement loses it (the reason the jitter allowance exists)
    assert _noisy_stop(0.0).empty


def test_a_short_stop_seen_as_two_fixes_counts_its_idle_minutes() -> None:
    # a fix every 100 s at 36 km/h; a 4-minute stop at C shows as two fixes 100 s apart, the fix before it
    # only 300 m back and the one after 400 m on: most of the minutes around the two fixes were idle
    t0 = pd.Timestamp("2026-11-20 02:00", tz=TZ)
    east_m = [-5300, -4300, -3300, -2300, -1300, -300, 0, 0, 400, 1400, 2400, 3400]
    f = pd.DataFrame({
        "vehicle_id": "沪AD1234",
        "ts": [t0 + pd.Timedelta(seconds=100 * k) for k in range(len(east_m))],
        "lon": [C[0] + e / 95_000 for e in east_m],
        "lat": C[1],
    })
    f["speed_kmh"] = np.nan
    f["heading"] = np.nan
    f["loaded"] = pd.array([pd.NA] * len(f), dtype="boolean")
    f["tipping"] = pd.array([pd.NA] * len(f), dtype="boolean")
    stays = detect_stays(clean_fixes(f)[0])
    assert len(stays) == 1
    s = stays.iloc[0]
    assert s["duration_s"] < Params().stay_min_duration_s <= s["dwell_s"]
