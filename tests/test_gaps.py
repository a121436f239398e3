"""Track gaps as reachable regions (``wastetrack.gaps``): where the silent truck could have unloaded, the
counties that touches, and the most likely unloading place.

Tracks are built by hand in a local metric frame around a point of the delta:
a truck driving on a road 1.3 times the straight line (the detour index the
placement assumes) at 36 km/h, fixes every 20 s, tipping for 10 minutes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from wastetrack import boundaries as bnd
from wastetrack.config import DEFAULT_PARAMS
from wastetrack.coords import haversine_m
from wastetrack.gaps import (
    gap_evidence,
    geometry_from_evidence,
    in_region,
    known_spots,
    locate_gap_hauls,
    place_gaps,
    region_covers,
    silence_geometry,
)
from wastetrack.routing import LiaisonDirectory, route_leads

T0 = pd.Timestamp("2026-11-20T21:00:00+08:00")
SPEED = 10.0  # m/s
DETOUR = DEFAULT_PARAMS.road_detour_factor
_K = np.pi / 180.0 * 6371008.8


def _ll(x: np.ndarray, y: np.ndarray, lon0: float, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    return lon0 + np.asarray(x) / (_K * np.cos(np.radians(lat0))), lat0 + np.asarray(y) / _K


def _drive(x0: float, y0: float, x1: float, y1: float, t0: float) -> tuple[list, float]:
    """Fixes every 5 s of a drive a→b at SPEED on a zigzag road DETOUR times the straight line (a triangle
    wave across the line); returns (rows, t_end)."""
    d = float(np.hypot(x1 - x0, y1 - y0))
    secs = d * DETOUR / SPEED
    n = max(int(secs // 5), 1)
    period = 400.0
    amp = np.sqrt(DETOUR**2 - 1.0) * period / 4.0
    ux, uy = (x1 - x0) / max(d, 1e-9), (y1 - y0) / max(d, 1e-9)
    rows = []
    for i in range(n):
        along = d * i / n
        phase = (along / period) % 1.0
        off = amp * (4 * phase if phase < 0.25 else 2 - 4 * phase if phase < 0.75 else 4 * phase - 4)
        rows.append((t0 + i * secs / n, x0 + ux * along - uy * off, y0 + uy * along + ux * off))
    return rows, t0 + secs


def _fixes(rows: list, lon0: float, lat0: float, vehicle: str = "沪AG0001") -> pd.DataFrame:
    t = np.array([r[0] for r in rows])
    lon, lat = _ll(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), lon0, lat0)
    return pd.DataFrame({
        "vehicle_id": vehicle,
        "ts": (T0 + pd.to_timedelta(t, unit="s")).astype("datetime64[us, Asia/Shanghai]"),
        "lon": lon, "lat": lat,
        "loaded": pd.array([None] * len(t), dtype="boolean"),
    })


def _silent_trip(leg_out: tuple, dark_from: float, spot: tuple, dark_until: float, leg_back: tuple,
                 lon0: float, lat0: float, dwell_s: float = 600.0) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
    """A drive out to ``spot``, tipping ``dwell_s``, a drive ``leg_back``; fixes missing between the times
    the truck passed ``dark_from`` metres and (on the way back) ``dark_until`` metres along its legs."""
    out, t1 = _drive(*leg_out[0], *spot, 0.0)
    back, t2 = _drive(*spot, *leg_back[1], t1 + dwell_s)
    d_out = np.hypot(spot[0] - leg_out[0][0], spot[1] - leg_out[0][1])
    rows = [r for r in out if np.hypot(r[1] - leg_out[0][0], r[2] - leg_out[0][1]) <= dark_from]
    rows += [r for r in back if np.hypot(r[1] - spot[0], r[2] - spot[1]) >= dark_until]
    fx = _fixes([*rows, (t2 + 20, *leg_back[1])], lon0, lat0)
    gap = np.diff(fx["ts"].astype("int64").to_numpy())
    i = int(np.argmax(gap))
    assert d_out > dark_from
    return fx, fx["ts"].iloc[i], fx["ts"].iloc[i + 1]


def _place(fx: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, **kw) -> pd.Series:
    geo = silence_geometry(["g"], pd.Series([fx["vehicle_id"].iloc[0]]), pd.Series([start]), pd.Series([end]), fx)
    assert len(geo) == 1
    return place_gaps(geo, None, bnd.load_boundaries(), **kw).iloc[0]


LON0, LAT0 = 120.92, 31.40  # Kunshan (320583): 8 km every way stays in the county
#: the region's own weights, without the prior that the driver switched off where he tipped
DRIVES_ONLY = replace(DEFAULT_PARAMS, gap_dark_here_weight=0.0)


def test_out_and_back_dark_drive_weighs_the_far_end_not_the_midpoint() -> None:
    # out east 5 km, dark from 1 km out until 2 km from home on the way back
    fx, a, b = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    p = _place(fx, a, b, params=DRIVES_ONLY)
    s_lon, s_lat = _ll(5000.0, 0.0, LON0, LAT0)
    d = haversine_m(p["lon"], p["lat"], s_lon, s_lat)
    mid = haversine_m(*_ll(1500.0, 0.0, LON0, LAT0), s_lon, s_lat)
    assert mid > 3000 and d < 400, (d, p["placement"])
    assert p["placement"]["method"] == "course_and_time"
    assert p["county_adcode"] == "320583" and p["candidate_counties"][0]["county_adcode"] == "320583"


def test_a_truck_dark_at_speed_is_placed_just_ahead_of_where_it_went_dark_and_its_region_names_the_counties(
) -> None:
    # the same out-and-back drive: the driver may have switched off on the way (the drives above) or as he
    # reached his spot; that one place outweighs any 250 m of the spread-out drives, so it is the lead's point
    # — ahead of the dark fix on the truck's course (east), since the spot is never behind where it switched off
    fx, a, b = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    p = _place(fx, a, b)
    geo = silence_geometry(["g"], pd.Series([fx["vehicle_id"].iloc[0]]), pd.Series([a]), pd.Series([b]), fx)
    x0 = (geo["lon0"].iloc[0] - LON0) * _K * np.cos(np.radians(LAT0))
    x = (p["lon"] - LON0) * _K * np.cos(np.radians(LAT0))
    ahead = DEFAULT_PARAMS.gap_dark_ahead_m
    assert abs(haversine_m(p["lon"], p["lat"], geo["lon0"].iloc[0], geo["lat0"].iloc[0]) - ahead) < 1.0
    assert x - x0 > 0.9 * ahead, (x, x0)  # along the course the zigzag road keeps (within its 35 degrees)
    assert p["placement"]["method"] == "went_dark_here"
    assert p["county_adcode"] == p["candidate_counties"][0]["county_adcode"] == "320583"
    assert p["region"]["sum_max_m"] == _place(fx, a, b, params=DRIVES_ONLY)["region"]["sum_max_m"]


def test_drive_through_silence_weighs_the_stretch_between_where_it_went_dark_and_came_back() -> None:
    # east 6 km straight through, dumping at 3 km; dark from 1.5 km to 4.5 km
    fx, a, b = _silent_trip(((0, 0), None), 1500.0, (3000.0, 0.0), 1500.0, (None, (6000, 0)), LON0, LAT0)
    p = _place(fx, a, b, params=DRIVES_ONLY)
    x = (p["lon"] - LON0) * _K * np.cos(np.radians(LAT0))
    y = (p["lat"] - LAT0) * _K
    assert abs(x - 3000.0) < 600 and abs(y) < 300, (x, y)


def test_a_truck_that_crawled_into_its_silence_is_placed_where_it_went_dark() -> None:
    # east 3 km at speed, then 150 m at a crawl (3 km/h) onto a field; dark there 14 min; back west, seen
    # again 1.2 km from the field, driving
    out, t1 = _drive(0.0, 0.0, 3000.0, 0.0, 0.0)
    crawl = [(t1 + k * 10.0, 3000.0 + 150.0 * k / 18, 0.0) for k in range(19)]
    back, _ = _drive(3150.0, 0.0, 0.0, 0.0, crawl[-1][0] + 14 * 60.0)
    rows = [*out, *crawl, *[r for r in back if 3150.0 - r[1] >= 1200.0]]
    fx = _fixes(rows, LON0, LAT0)
    a, b = fx["ts"].iloc[len(out) + len(crawl) - 1], fx["ts"].iloc[len(out) + len(crawl)]
    geo = silence_geometry(["g"], pd.Series([fx["vehicle_id"].iloc[0]]), pd.Series([a]), pd.Series([b]), fx)
    assert bool(geo["stood0"].iloc[0]) and not bool(geo["stood1"].iloc[0])
    p = _place(fx, a, b)
    d = haversine_m(p["lon"], p["lat"], *_ll(3150.0, 0.0, LON0, LAT0))
    assert d < 60, (d, p["placement"])
    assert p["placement"]["method"] == "stood_going_dark"


def test_a_crawl_into_the_silence_on_the_way_out_of_the_loading_site_is_not_where_it_unloaded() -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from wastetrack.gaps import leaving_site

    # out of the site's gate at a crawl (the queue in its access lane), dark 300 m on, for 20 minutes; back
    # west 1.2 km from where it went dark. The same track 3 km from the site is a truck arriving at its spot
    def trip(x_gate: float) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
        crawl = [(k * 10.0, x_gate + 300.0 * k / 30, 0.0) for k in range(31)]
        back, _ = _drive(x_gate + 300.0, 0.0, x_gate - 3000.0, 0.0, crawl[-1][0] + 20 * 60.0)
        rows = [*crawl, *[r for r in back if x_gate + 300.0 - r[1] >= 1200.0]]
        fx = _fixes(rows, LON0, LAT0)
        return fx, fx["ts"].iloc[len(crawl) - 1], fx["ts"].iloc[len(crawl)]

    site = gpd.GeoDataFrame({"site_id": ["GD-1"], "kind": ["construction"]},
                            geometry=[box(*_ll(-400.0, -200.0, LON0, LAT0), *_ll(0.0, 200.0, LON0, LAT0))],
                            crs="EPSG:4326")
    placed = {}
    for name, x_gate in (("leaving", 0.0), ("arriving", 3000.0)):
        fx, a, b = trip(x_gate)
        geo = silence_geometry([name], pd.Series([fx["vehicle_id"].iloc[0]]), pd.Series([a]), pd.Series([b]), fx)
        assert bool(geo["stood0"].iloc[0])  # both crawled into the silence
        geo["leaving0"] = leaving_site(geo, np.array(["GD-1"]), site)
        placed[name] = (bool(geo["leaving0"].iloc[0]), place_gaps(geo, site, bnd.load_boundaries()).iloc[0])
    leaving, p = placed["leaving"]
    assert leaving and p["placement"]["method"] != "stood_going_dark"
    assert p["region"]["leaving_site"] and p["region"]["stood_in"]  # the evidence says both
    arriving, q = placed["arriving"]
    assert not arriving and q["placement"]["method"] == "stood_going_dark"
    assert haversine_m(q["lon"], q["lat"], *_ll(3300.0, 0.0, LON0, LAT0)) < 60
    # the flag travels in the region: the merge step places it the same way
    again = geometry_from_evidence(["g"], [p["region"]], ["沪AG0001"])
    assert bool(again["leaving0"].iloc[0])
    assert not leaving_site(again, np.array(["GD-2"]), site)[0]  # another site's fence is not its way out


def test_a_truck_that_went_dark_at_speed_has_no_standing_end() -> None:
    fx, a, b = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    geo = silence_geometry(["g"], pd.Series([fx["vehicle_id"].iloc[0]]), pd.Series([a]), pd.Series([b]), fx)
    assert not bool(geo["stood0"].iloc[0]) and not bool(geo["stood1"].iloc[0])


def test_a_reported_pile_in_the_region_at_the_time_is_where_the_truck_unloaded() -> None:
    fx, a, b = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    geo = silence_geometry(["g"], pd.Series(["沪AG0001"]), pd.Series([a]), pd.Series([b]), fx)
    pile_lon, pile_lat = _ll(4300.0, 600.0, LON0, LAT0)  # 0.9 km off the kinematic guess, inside the region
    reports = pd.DataFrame({"report_id": ["R1"], "lon": [pile_lon], "lat": [pile_lat],
                            "w0": [a.timestamp() - 1800], "w1": [b.timestamp() + 3600]})
    p = place_gaps(geo, None, bnd.load_boundaries(), spots=known_spots(reports)).iloc[0]
    assert p["placement"]["method"] == "known_spot" and p["placement"]["spot"] == "R1"
    assert haversine_m(p["lon"], p["lat"], pile_lon, pile_lat) < 1.0
    # the same pile reported for another time is only a spot dumpers use: weaker, but still inside the region
    reports[["w0", "w1"]] = [[a.timestamp() - 5 * 86400, a.timestamp() - 4 * 86400]]
    q = place_gaps(geo, None, bnd.load_boundaries(), spots=known_spots(reports)).iloc[0]
    assert q["placement"]["method"] in ("known_spot", "went_dark_here")
    far_lon, far_lat = _ll(-3000.0, 0.0, LON0, LAT0)  # behind the truck, outside where it could go: no pull
    reports[["lon", "lat", "w0", "w1"]] = [[far_lon, far_lat, a.timestamp() - 1800, b.timestamp() + 3600]]
    r = place_gaps(geo, None, bnd.load_boundaries(), spots=known_spots(reports)).iloc[0]
    assert r["placement"]["method"] == "went_dark_here"


def test_region_across_a_provincial_border_names_both_provinces_and_copies_them() -> None:
    # Qingpu (Shanghai) → west across the border into Kunshan (Jiangsu)
    lon0, lat0 = 121.035, 31.15
    fx, a, b = _silent_trip(((0, 0), None), 600.0, (-6000.0, 0.0), 5000.0, (None, (0, 0)), lon0, lat0)
    p = _place(fx, a, b)
    provinces = {c["province_adcode"] for c in p["candidate_counties"]}
    assert len(provinces) >= 2 and p["provinces"] >= 2, p["candidate_counties"]
    shares = [c["share"] for c in p["candidate_counties"]]
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 1.0) < 0.05
    assert p["county_adcode"] == p["candidate_counties"][0]["county_adcode"]
    where = bnd.locate(np.array([p["lon"]]), np.array([p["lat"]]))
    assert where["county_adcode"].iloc[0] == p["county_adcode"]
    # routing: the likeliest county acts, the others and both provinces are copied
    origin = bnd.locate(np.array([fx["lon"].iloc[0]]), np.array([fx["lat"].iloc[0]]))["county_adcode"].iloc[0]
    codes = [c["county_adcode"] for c in p["candidate_counties"]] + [origin]
    liaisons = pd.DataFrame({
        "liaison_id": [f"L-{c}" for c in dict.fromkeys(codes)] + ["P-310000", "P-320000"],
        "level": ["county"] * len(dict.fromkeys(codes)) + ["province", "province"],
        "adcode": [*dict.fromkeys(codes), "310000", "320000"],
        "role": "primary", "active": True,
    })
    lead = pd.DataFrame([{
        "kind": "track_gap", "county_adcode": p["county_adcode"], "province_adcode": p["province_adcode"],
        "origin_county_adcode": origin, "carrier_id": "", "cross_border": p["province_adcode"][:2] != origin[:2],
        "evidence": {"candidate_counties": p["candidate_counties"]},
    }])
    routed = route_leads(lead, LiaisonDirectory(liaisons), pd.DataFrame({"carrier_id": [], "county_adcode": []}))
    assert routed["primary_liaison_id"].iloc[0] == f"L-{p['county_adcode']}"
    cc = set(routed["cc_liaison_ids"].iloc[0])
    assert {"P-310000", "P-320000"} <= cc
    assert {f"L-{c['county_adcode']}" for c in p["candidate_counties"][1:]} <= cc


def test_placement_avoids_a_receiver_fence_and_is_inside_the_region() -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    fx, a, b = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    free = _place(fx, a, b)
    fence = gpd.GeoSeries([Point(free["lon"], free["lat"])], crs="EPSG:4326").to_crs(3857).buffer(500)
    sites = gpd.GeoDataFrame({"site_id": ["ZY-1"], "kind": ["disposal"]}, geometry=fence.to_crs("EPSG:4326"))
    geo = silence_geometry(["g"], pd.Series(["沪AG0001"]), pd.Series([a]), pd.Series([b]), fx)
    p = place_gaps(geo, sites, bnd.load_boundaries()).iloc[0]
    assert not sites.geometry.iloc[0].contains(Point(p["lon"], p["lat"]))
    g = geo.iloc[0]
    assert in_region(np.array([p["lon"]]), np.array([p["lat"]]), g["lon0"], g["lat0"], g["lon1"], g["lat1"],
                     np.array([p["region"]["sum_max_m"]]))[0]
    assert region_covers(p["region"], p["lon"], p["lat"])


def test_placement_is_per_silence_whatever_else_is_computed_with_it() -> None:
    one, a1, b1 = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    two, a2, b2 = _silent_trip(((0, 0), None), 800.0, (0.0, 4000.0), 1500.0, (None, (0, 0)), 120.6, 30.9)
    two["vehicle_id"] = "浙FG0002"
    both = pd.concat([one, two], ignore_index=True)
    together = silence_geometry(["a", "b"], pd.Series(["沪AG0001", "浙FG0002"]), pd.Series([a1, a2]),
                                pd.Series([b1, b2]), both)
    placed = place_gaps(together, None, bnd.load_boundaries()).set_index("key")
    for key, fx, a, b in (("a", one, a1, b1), ("b", two, a2, b2)):
        alone = _place(fx, a, b)
        assert (placed.loc[key, "lon"], placed.loc[key, "lat"]) == (alone["lon"], alone["lat"])
        assert placed.loc[key, "candidate_counties"] == alone["candidate_counties"]


def test_placement_in_chunks_is_the_placement_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import wastetrack.gaps as gaps

    one, a1, b1 = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    two, a2, b2 = _silent_trip(((0, 0), None), 800.0, (0.0, 4000.0), 1500.0, (None, (0, 0)), 120.6, 30.9)
    two["vehicle_id"] = "浙FG0002"
    geo = silence_geometry(["a", "b"], pd.Series(["沪AG0001", "浙FG0002"]), pd.Series([a1, a2]),
                           pd.Series([b1, b2]), pd.concat([one, two], ignore_index=True))
    geo = pd.concat([geo.assign(key=geo["key"] + str(k)) for k in range(3)], ignore_index=True)
    spots = known_spots(earlier=pd.DataFrame({"lon": [geo["lon0"].iloc[0] + 0.03], "lat": [geo["lat0"].iloc[0]],
                                              "source": ["ID-1"]}))
    whole = place_gaps(geo, None, bnd.load_boundaries(), spots=spots)
    monkeypatch.setattr(gaps, "_PLACE_CHUNK", 4)
    chunked = place_gaps(geo, None, bnd.load_boundaries(), spots=spots)
    assert len(whole) == 6
    pd.testing.assert_frame_equal(whole.drop(columns="region"), chunked.drop(columns="region"))


def test_the_region_in_the_evidence_places_the_lead_again_exactly() -> None:
    fx, a, b = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), LON0, LAT0)
    hauls = pd.DataFrame({
        "haul_id": ["h1"], "vehicle_id": ["沪AG0001"], "unload_evidence": ["gap"], "gap_start": [a],
        "gap_end": [b], "unload_lon": [np.nan], "unload_lat": [np.nan], "gap_lon": [np.nan], "gap_lat": [np.nan],
        "unload_county_adcode": [""], "unload_province_adcode": [""],
    })
    out, placed = locate_gap_hauls(hauls, fx, None, bnd.load_boundaries())
    assert out["unload_county_adcode"].iloc[0] == "320583"
    leads = pd.DataFrame([{"kind": "track_gap", "haul_id": "h1", "vehicle_id": "沪AG0001", "evidence": {}}])
    ev = gap_evidence(leads, placed)["evidence"].iloc[0]
    assert {"region", "placement", "candidate_counties", "cross_border_possible"} <= set(ev)
    again = place_gaps(geometry_from_evidence(["h1"], [ev["region"]], ["沪AG0001"]), None, bnd.load_boundaries())
    d = haversine_m(again["lon"].iloc[0], again["lat"].iloc[0], out["unload_lon"].iloc[0], out["unload_lat"].iloc[0])
    assert d < 30.0  # rounding of the stored foci only


def test_the_merge_places_again_only_the_gaps_whose_region_holds_a_known_spot() -> None:
    from wastetrack.gaps import place_from_evidence

    leads = []
    for k, (lon0, lat0) in enumerate(((LON0, LAT0), (120.6, 30.9))):
        fx, a, b = _silent_trip(((0, 0), None), 1000.0, (5000.0, 0.0), 3000.0, (None, (0, 0)), lon0, lat0)
        hauls = pd.DataFrame({
            "haul_id": [f"h{k}"], "vehicle_id": ["沪AG0001"], "unload_evidence": ["gap"], "gap_start": [a],
            "gap_end": [b], "unload_lon": [np.nan], "unload_lat": [np.nan], "gap_lon": [np.nan],
            "gap_lat": [np.nan], "unload_county_adcode": [""], "unload_province_adcode": [""],
        })
        out, placed = locate_gap_hauls(hauls, fx, None, bnd.load_boundaries(), DRIVES_ONLY)
        lead = pd.DataFrame([{"kind": "track_gap", "haul_id": f"h{k}", "vehicle_id": "沪AG0001", "evidence": {}}])
        ev = gap_evidence(lead, placed)["evidence"].iloc[0]
        leads.append({"kind": "track_gap", "vehicle_id": "沪AG0001", "evidence": ev,
                      "lon": out["unload_lon"].iloc[0], "lat": out["unload_lat"].iloc[0],
                      "county_adcode": out["unload_county_adcode"].iloc[0],
                      "province_adcode": out["unload_province_adcode"].iloc[0],
                      "origin_county_adcode": "310115", "cross_border": False})
    leads = pd.DataFrame(leads)
    # a spot where dumping was found before, 4 km out on the first silence's way: inside its region only
    spot_lon, spot_lat = _ll(np.array([4000.0]), np.array([300.0]), LON0, LAT0)
    spots = known_spots(earlier=pd.DataFrame({"lon": spot_lon, "lat": spot_lat, "source": ["ID-1"]}))
    again = place_from_evidence(leads, None, bnd.load_boundaries(), DRIVES_ONLY, spots)
    assert again["evidence"].iloc[0]["placement"]["method"] == "known_spot"
    assert haversine_m(again["lon"].iloc[0], again["lat"].iloc[0], spot_lon[0], spot_lat[0]) < 1.0
    # the other is left exactly as its shard placed it
    assert (again["lon"].iloc[1], again["lat"].iloc[1]) == (leads["lon"].iloc[1], leads["lat"].iloc[1])
    assert again["evidence"].iloc[1] == leads["evidence"].iloc[1]


@pytest.mark.parametrize("gap_min", [13, 45, 180])
def test_region_bounds_the_farthest_drive(gap_min: int) -> None:
    from wastetrack.gaps import region_sum_m

    s = region_sum_m(np.array([gap_min * 60.0]))[0]
    expected = (gap_min * 60.0 - DEFAULT_PARAMS.unload_min_s) * DEFAULT_PARAMS.reach_speed_kmh / 3.6
    assert s == pytest.approx(expected)
