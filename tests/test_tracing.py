"""Report tracing as a ranking (``trace``, ``spacetime``, ``leads.report_trace_leads``).

Hand-made frames around one report in open ground (Kunshan): trucks that stood,
lingered, drove past or went dark near it, with or without sensors, and the
haul each observation sits in. Each test states the physical case it guards.
"""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from wastetrack import boundaries as bnd
from wastetrack.config import DEFAULT_PARAMS
from wastetrack.coords import haversine_m
from wastetrack.spacetime import haul_phase, report_candidates, silence_reach_m
from wastetrack.trace import rank_candidates, report_windows, score_candidates, trace_reports

TZ = "Asia/Shanghai"
LON0, LAT0 = 120.92, 31.40  # open ground in Kunshan (320583)
_K = np.pi / 180.0 * 6371008.8
NIGHT = pd.Timestamp("2026-11-20T00:00:00+08:00")


def _ll(x: float, y: float) -> tuple[float, float]:
    return LON0 + x / (_K * np.cos(np.radians(LAT0))), LAT0 + y / _K


def _t(hhmm: str) -> pd.Timestamp:
    """A time of the night: "02:10" or "02:10:30"."""
    return NIGHT + pd.to_timedelta(hhmm if hhmm.count(":") == 2 else f"{hhmm}:00")


def _reports(window: tuple[str, str] | None = ("01:00", "05:00"), reported: str = "09:00") -> pd.DataFrame:
    lon, lat = _ll(0.0, 0.0)
    r = pd.DataFrame({
        "report_id": ["R1"], "reported_at": [_t(reported)],
        "observed_from": [_t(window[0]) if window else pd.NaT], "observed_to": [_t(window[1]) if window else pd.NaT],
        "lon": [lon], "lat": [lat],
    })
    return report_windows(r, DEFAULT_PARAMS)


def _stay(vehicle: str, x: float, y: float, start: str, minutes: float, **kw: object) -> dict:
    lon, lat = _ll(x, y)
    s = _t(start)
    row = {
        "stay_id": f"{vehicle}@{int(s.timestamp())}", "vehicle_id": vehicle, "start": s,
        "end": s + pd.Timedelta(minutes=minutes), "duration_s": minutes * 60.0, "lon": lon, "lat": lat,
        "n_fixes": 10, "tipping_any": None, "loaded_before": None, "loaded_after": None, "site_id": "",
        "site_kind": "", "county_adcode": "320583", "city_adcode": "320500", "province_adcode": "320000",
    }
    row.update(kw)
    return row


def _stays(*rows: dict) -> pd.DataFrame:
    s = pd.DataFrame(list(rows))
    for c in ("start", "end"):
        s[c] = s[c].astype(f"datetime64[us, {TZ}]")
    for c in ("tipping_any", "loaded_before", "loaded_after"):
        s[c] = s[c].astype("boolean")
    return s


def _haul(vehicle: str, depart: str, unload: dict | None, end: str, evidence: str = "dwell", site: str = "") -> dict:
    return {
        "haul_id": f"{vehicle}@{depart}", "vehicle_id": vehicle, "depart": _t(depart),
        "unload_start": unload["start"] if unload else pd.NaT, "unload_end": unload["end"] if unload else pd.NaT,
        "unload_stay_id": unload["stay_id"] if unload else "", "unload_evidence": evidence if unload else "",
        "unload_site_id": site, "gap_start": pd.NaT, "end": _t(end), "origin_site_id": "GD-1", "manifest_id": "",
    }


def _hauls(*rows: dict) -> pd.DataFrame:
    h = pd.DataFrame(list(rows))
    for c in ("depart", "unload_start", "unload_end", "gap_start", "end"):
        h[c] = pd.to_datetime(h[c], utc=True).dt.tz_convert(TZ).astype(f"datetime64[us, {TZ}]")
    return h


def _track(vehicle: str, points: list[tuple[str, float, float, float | None]], loaded: list | None = None
           ) -> pd.DataFrame:
    """Fixes (time, x, y, speed km/h); ``loaded`` per fix (None: no sensor)."""
    lon, lat = zip(*[_ll(x, y) for _, x, y, _ in points], strict=True)
    return pd.DataFrame({
        "vehicle_id": vehicle,
        "ts": pd.Series([_t(t) for t, *_ in points]).astype(f"datetime64[us, {TZ}]"),
        "lon": lon, "lat": lat,
        "speed_kmh": [np.nan if v is None else v for *_, v in points],
        "loaded": pd.array(loaded if loaded is not None else [None] * len(points), dtype="boolean"),
    })


def _drive(vehicle: str, t0: str, x0: float, x1: float, y: float, kmh: float, every_s: float = 30.0,
           loaded: bool | None = None) -> pd.DataFrame:
    secs = abs(x1 - x0) / (kmh / 3.6)
    n = int(secs // every_s) + 1
    pts = [((_t(t0) + pd.Timedelta(seconds=i * every_s)).strftime("%H:%M:%S"), x0 + (x1 - x0) * i * every_s / secs, y,
            kmh) for i in range(n)]
    f = pd.DataFrame({
        "vehicle_id": vehicle,
        "ts": pd.Series([_t("00:00") + pd.to_timedelta(p[0]) for p in pts]).astype(f"datetime64[us, {TZ}]"),
        "lon": [_ll(p[1], p[2])[0] for p in pts], "lat": [_ll(p[1], p[2])[1] for p in pts],
        "speed_kmh": kmh, "loaded": pd.array([loaded] * n, dtype="boolean"),
    })
    return f


def _trace(reports: pd.DataFrame, stays: pd.DataFrame | None = None, fixes: pd.DataFrame | None = None,
           hauls: pd.DataFrame | None = None, today: pd.DataFrame | None = None, **kw: object
           ) -> tuple[pd.DataFrame, list[dict]]:
    hauls = hauls if hauls is not None else pd.DataFrame(columns=["vehicle_id", "depart"])
    c = report_candidates(reports, stays if stays is not None else pd.DataFrame(),
                          fixes if fixes is not None else pd.DataFrame(), DEFAULT_PARAMS.report_radius_m, hauls,
                          silences=True)
    sites = gpd.GeoDataFrame({"site_id": [], "kind": [], "county_adcode": []}, geometry=[], crs="EPSG:4326")
    vehicles = pd.DataFrame({"vehicle_id": ["A", "B", "C", "D"], "carrier_id": ["c1", "c1", "c2", "c2"]})
    return trace_reports(reports, today if today is not None else pd.DataFrame(), pd.DataFrame(), c, hauls,
                         SimpleNamespace(vehicles=vehicles),
                         sites, bnd.load_boundaries(), DEFAULT_PARAMS, **kw)


def test_the_truck_whose_haul_unloaded_at_the_spot_beats_an_empty_truck_standing_nearer() -> None:
    dump = _stay("A", 90.0, 40.0, "02:00", 8.0)
    idle = _stay("B", 20.0, -10.0, "02:30", 12.0)  # nearer, but it had unloaded at a receiver an hour before
    hauls = _hauls(_haul("A", "01:10", dump, "03:30"),
                   _haul("B", "00:40", _stay("B", 8000.0, 0.0, "01:20", 10.0), "04:00", "receiver", "ZY-1"))
    leads, untraced = _trace(_reports(), _stays(dump, idle), hauls=hauls)
    assert untraced == [] and len(leads) == 1
    lead = leads.iloc[0]
    assert lead["kind"] == "report_trace" and lead["vehicle_id"] == "A" and lead["candidates"] == ["A"]
    ev = lead["evidence"]
    assert ev["top_kind"] == "stay" and ev["candidates_detail"][0]["haul_phase"] == "dump"
    assert ev["candidates_detail"][0]["score_parts"]["haul"] > 0


def test_a_report_beside_a_truck_s_own_dump_lead_is_that_lead_s_even_when_another_truck_ranks_first() -> None:
    # a split dump: truck A tipped part of its load at the reported pile (a 4-minute stop 30 m off it) and the
    # rest 600 m on, where tonight's illegal_dump lead of its haul stands; truck B stood 5 m from the pile later,
    # loaded, on its way to a receiver, and ranks first. A passed the pile again on its next haul (its best
    # sighting, but not the one beside its dump). One event, one lead: the report is A's lead's
    a_part = _stay("A", 30.0, 0.0, "01:30", 4.0)
    a_dump = _stay("A", 600.0, 0.0, "01:36", 8.0)
    a_again = _stay("A", 8.0, 0.0, "03:40", 5.0)
    b = _stay("B", 5.0, 0.0, "03:10", 6.0)
    hauls = _hauls(_haul("A", "01:10", a_dump, "02:30"),
                   _haul("A", "03:20", _stay("A", 8000.0, 0.0, "04:20", 10.0), "04:40", "receiver", "ZY-1"),
                   _haul("B", "02:50", _stay("B", 8000.0, 0.0, "04:00", 10.0), "04:30", "receiver", "ZY-1"))
    stays = _stays(a_part, a_dump, a_again, b)
    alone, _ = _trace(_reports(), stays, hauls=hauls)
    assert alone["vehicle_id"].iloc[0] == "B" and alone["candidates"].iloc[0][:2] == ["B", "A"]  # B ranks first
    detail = alone["evidence"].iloc[0]["candidates_detail"]
    assert detail[1]["at"].startswith("2026-11-20T03:40")  # A's best sighting is on its next haul
    lon, lat = _ll(600.0, 0.0)
    lead = pd.DataFrame([{
        "lead_id": "ID-20261120-aaaaaaaaaa", "kind": "illegal_dump", "vehicle_id": "A", "lon": lon, "lat": lat,
        "start": a_dump["start"], "end": a_dump["end"], "haul_id": "A@01:10", "score": 0.9,
        "evidence": {"haul_id": "A@01:10", "unload_evidence": "dwell", "unload_p": 0.9},
    }])
    leads, untraced = _trace(_reports(), stays, hauls=hauls, today=lead)
    assert untraced == [] and list(leads["kind"]) == ["illegal_dump"]
    assert leads["report_ids"].iloc[0] == ["R1"]
    # B's haul had no dump lead: the same lead beside B's stay would not take the report from A's sighting alone
    far = lead.assign(lon=_ll(2600.0, 0.0)[0])  # 2.6 km on: no longer the same dump as the pile
    leads, _ = _trace(_reports(), stays, hauls=hauls, today=far)
    assert "report_trace" in set(leads["kind"])


def test_a_spot_where_three_trucks_stood_alike_names_none_of_them_unless_one_stands_out() -> None:
    # a lay-by: three trucks each stood there 5-7 minutes in the window, 20-60 m from the reported pile; each
    # alone would be named. Together they say the spot is where trucks stop: untraced, all three listed
    alike = [_stay("A", 20.0, 0.0, "01:40", 6.0), _stay("B", 40.0, 10.0, "02:30", 7.0),
             _stay("C", 60.0, -10.0, "03:20", 5.0)]
    for one in alike:
        named, _ = _trace(_reports(), _stays(one))
        assert list(named["kind"]) == ["report_trace"] and named["vehicle_id"].iloc[0] == one["vehicle_id"]
    two, _ = _trace(_reports(), _stays(*alike[:2]))
    assert list(two["kind"]) == ["report_trace"]  # two trucks: one of them is named, the other listed
    leads, untraced = _trace(_reports(), _stays(*alike))
    assert leads.empty
    assert untraced[0]["report_id"] == "R1" and sorted(untraced[0]["candidates"]) == ["A", "B", "C"]
    assert "none singled out" in untraced[0]["reason"]
    # one of them lifted its body there and left empty: far stronger than standing, it is named
    alike[0] = _stay("A", 20.0, 0.0, "01:40", 6.0, tipping_any=True, loaded_before=True, loaded_after=False)
    leads, untraced = _trace(_reports(), _stays(*alike))
    assert untraced == [] and leads["vehicle_id"].iloc[0] == "A" and leads["candidates"].iloc[0][0] == "A"


def test_a_truck_driving_past_at_speed_is_no_culprit_and_the_report_stays_untraced() -> None:
    passing = _drive("C", "02:10", -2000.0, 2000.0, 60.0, 45.0, loaded=True)  # a main road 60 m from the pile
    leads, untraced = _trace(_reports(), fixes=passing)
    assert leads.empty
    assert untraced == [{"report_id": "R1", "reason": "only trucks passing at speed within 1 km in the window"}]


def test_a_truck_that_lingered_at_the_spot_without_a_detected_stay_is_traced() -> None:
    # a sparse terminal: in at 02:00, one fix beside the pile 2.5 min later, out at 02:06 — no stay detected
    fx = _track("D", [("01:57", -1500.0, 0.0, 40.0), ("02:00", -200.0, 0.0, 15.0), ("02:02:30", 40.0, 30.0, 0.0),
                      ("02:06", 250.0, 0.0, 12.0), ("02:09", 1600.0, 0.0, 40.0)])
    hauls = _hauls(_haul("D", "01:20", None, "03:00"))  # loaded since 01:20, no unloading found
    leads, untraced = _trace(_reports(), fixes=fx, hauls=hauls)
    assert untraced == [] and leads.iloc[0]["vehicle_id"] == "D"
    detail = leads.iloc[0]["evidence"]["candidates_detail"][0]
    assert detail["kind"] == "pass" and detail["dwell_min"] * 60 >= DEFAULT_PARAMS.report_linger_s


def test_a_truck_that_stood_beside_the_pile_for_hours_without_a_stay_was_parked_not_tipping() -> None:
    # one fix 200 m from the pile at 00:30, the next there at 05:30 (terminal off while it stood), then away:
    # no stay, a pass that "lingered" five hours — as a stay of hours is, that is parking
    fx = _track("D", [("00:20", -1500.0, 0.0, 40.0), ("00:30", -200.0, 0.0, 0.0), ("05:30", -190.0, 10.0, 0.0),
                      ("05:34", 1600.0, 0.0, 40.0)])
    reports = _reports(window=("00:00", "06:00"))
    c = score_candidates(report_candidates(reports, pd.DataFrame(), fx, 1000.0), {})
    p = c.loc[c["kind"] == "pass"].iloc[0]
    assert p["dwell_min"] > 4 * 60 and p["p_kind"] == 0.0 and p["p_dwell"] < 0
    leads, untraced = _trace(reports, fixes=fx)
    assert leads.empty and "lead_id" not in untraced[0]
    # the same truck standing there six minutes is a truck that lingered as long as tipping takes: traced
    short = _track("D", [("02:20", -1500.0, 0.0, 40.0), ("02:30", -60.0, 0.0, 0.0), ("02:36", -50.0, 10.0, 0.0),
                         ("02:40", 1600.0, 0.0, 40.0)])
    leads, _ = _trace(reports, fixes=short)
    assert list(leads["vehicle_id"]) == ["D"]


def test_a_truck_dark_near_the_spot_that_came_back_empty_is_traced() -> None:
    # loaded, dark 700 m before the pile for 14 minutes, reappears 800 m past it with the sensor empty
    fx = pd.concat([
        _drive("A", "02:00", -4000.0, -700.0, 0.0, 40.0, loaded=True),
        _drive("A", "02:19", 800.0, 3000.0, 0.0, 40.0, loaded=False),
    ], ignore_index=True)
    leads, untraced = _trace(_reports(), fixes=fx)
    assert untraced == [] and leads.iloc[0]["vehicle_id"] == "A"
    ev = leads.iloc[0]["evidence"]
    assert ev["top_kind"] == "silence" and ev["loaded_before"] is True and ev["loaded_after"] is False


def test_the_same_silence_far_from_the_spot_does_not_name_the_truck() -> None:
    # dark for 14 min, 12 km away: it could not have gone there and back, and its region says nothing here
    fx = pd.concat([
        _drive("A", "02:00", -16000.0, -12700.0, 0.0, 40.0, loaded=True),
        _drive("A", "02:19", -11200.0, -9000.0, 0.0, 40.0, loaded=False),
    ], ignore_index=True)
    leads, untraced = _trace(_reports(), fixes=fx)
    assert leads.empty and untraced[0]["reason"].startswith("no truck within")


def test_up_to_three_candidates_are_listed_best_first_with_their_evidence() -> None:
    a = _stay("A", 30.0, 0.0, "02:00", 7.0, tipping_any=True, loaded_before=True, loaded_after=False)
    b = _stay("B", 120.0, 0.0, "02:20", 9.0)
    c = _stay("C", 180.0, 60.0, "03:00", 6.0)
    d = _stay("D", 700.0, 0.0, "03:00", 6.0, loaded_before=False, loaded_after=False)  # arrived empty, far
    leads, _ = _trace(_reports(), _stays(d, c, b, a))
    lead = leads.iloc[0]
    assert lead["candidates"] == ["A", "B", "C"]
    detail = lead["evidence"]["candidates_detail"]
    assert [x["vehicle_id"] for x in detail] == ["A", "B", "C"]
    assert detail[0]["score_parts"]["sensors"] == 3.0 and detail[0]["score"] > detail[1]["score"] > detail[2]["score"]
    assert lead["evidence"]["n_candidates"] == 3


def test_ranking_never_depends_on_the_order_observations_arrive_in() -> None:
    rng = np.random.default_rng(7)
    rows = [_stay(v, float(x), float(y), "02:00", float(m)) for v, x, y, m in
            zip("ABCD", rng.uniform(-300, 300, 4), rng.uniform(-300, 300, 4), rng.uniform(4, 20, 4), strict=True)]
    rows.append(_stay("B", 15.0, 15.0, "03:00", 4.0))
    reports = _reports()
    c = report_candidates(reports, _stays(*rows), pd.DataFrame(), 1000.0)
    first = rank_candidates(c, {})
    for seed in range(5):
        shuffled = c.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        pd.testing.assert_frame_equal(rank_candidates(shuffled, {}), first)


def test_a_late_report_without_a_window_is_explained_by_the_lead_an_earlier_night_reported() -> None:
    lon, lat = _ll(25.0, -20.0)
    earlier = pd.DataFrame([{
        "lead_id": "ID-20261117-aaaaaaaaaa", "kind": "illegal_dump", "vehicle_id": "B", "lon": lon, "lat": lat,
        "start": _t("02:00") - pd.Timedelta(days=2), "end": _t("02:10") - pd.Timedelta(days=2),
    }])
    leads, untraced = _trace(_reports(window=None, reported="10:00"), history_leads=earlier)
    assert leads.empty
    assert untraced == [{"report_id": "R1", "lead_id": "ID-20261117-aaaaaaaaaa",
                         "reason": "explained by lead ID-20261117-aaaaaaaaaa reported on an earlier night"}]
    # a report whose window excludes that night is not explained by it
    _, untraced = _trace(_reports(window=("01:00", "05:00")), history_leads=earlier)
    assert "lead_id" not in untraced[0]


def _gap_lead(lead_id: str, vehicle: str, dark: tuple[float, float], back: tuple[float, float], t0: pd.Timestamp,
              minutes: float, at: tuple[float, float], course: tuple[float, float] = (90.0, 270.0),
              share: float = 0.2) -> dict:
    """A track-gap lead as the store keeps it: its point where the shard placed it and its silence's region
    (the truck went dark at ``dark`` on ``course[0]`` and came back at ``back`` on ``course[1]``)."""
    (lon0, lat0), (lon1, lat1), (lon, lat) = _ll(*dark), _ll(*back), _ll(*at)
    gap_s = minutes * 60.0
    region = {"foci": [[lon0, lat0], [lon1, lat1]], "t0_s": t0.timestamp(), "t1_s": t0.timestamp() + gap_s,
              "gap_s": gap_s, "sum_max_m": DEFAULT_PARAMS.reach_speed_kmh / 3.6 * (gap_s - DEFAULT_PARAMS.unload_min_s),
              "speed_kmh": 30.0, "course_in_deg": course[0], "course_out_deg": course[1], "stood_in": False,
              "stood_out": False, "leaving_site": False}
    return {"lead_id": lead_id, "kind": "track_gap", "vehicle_id": vehicle, "lon": lon, "lat": lat,
            "start": t0, "end": t0 + pd.Timedelta(seconds=gap_s), "county_adcode": "320583",
            "province_adcode": "320000", "origin_county_adcode": "310115", "cross_border": True,
            "evidence": {"region": region, "placement": {"method": "went_dark_here", "mass_share": share}}}


def test_a_report_days_late_inside_an_earlier_night_s_silence_names_that_track_gap_lead() -> None:
    # two nights ago truck B went dark loaded 3 km west of the pile, driving east, and came back 25 min later
    # 2.6 km west of it driving west (out and back): its lead went out where it went dark, far from the pile
    two_ago = _t("02:00") - pd.Timedelta(days=2)
    gap = _gap_lead("TG-20261118-bbbbbbbbbb", "B", (-3000.0, 0.0), (-2600.0, 150.0), two_ago, 25.0, (-2800.0, 0.0))
    late = _reports(window=None, reported="10:00")  # a pile seen this morning, no window: up to three days old
    leads, untraced = _trace(late, history_leads=pd.DataFrame([gap]))
    assert leads.empty
    assert untraced == [{"report_id": "R1", "lead_id": "TG-20261118-bbbbbbbbbb",
                         "reason": "explained by lead TG-20261118-bbbbbbbbbb reported on an earlier night"}]
    # a window that says the pile appeared on another night, or a pile the silence could not reach: untraced
    for reports, g in ((_reports(window=("01:00", "05:00")), gap),
                       (late, _gap_lead("TG-20261118-bbbbbbbbbb", "B", (-3000.0, 0.0), (-2600.0, 150.0), two_ago,
                                        9.0, (-2800.0, 0.0)))):
        _, untraced = _trace(reports, history_leads=pd.DataFrame([g]))
        assert "lead_id" not in untraced[0], untraced


def test_tonight_s_track_gap_at_an_untimed_pile_comes_before_an_older_dump_lead_there() -> None:
    # a pile seen at 10:00 without a window: truck A went dark at it tonight (02:00), truck B was found
    # dumping there two nights ago (dumpers come back to the same field)
    tonight = pd.DataFrame([_gap_lead("TG-20261120-aaaaaaaaaa", "A", (-80.0, 0.0), (1500.0, 0.0), _t("02:00"),
                                      22.0, (60.0, 0.0), course=(90.0, 90.0))])
    lon, lat = _ll(25.0, -20.0)
    older = pd.DataFrame([{
        "lead_id": "ID-20261118-bbbbbbbbbb", "kind": "illegal_dump", "vehicle_id": "B", "lon": lon, "lat": lat,
        "start": _t("02:00") - pd.Timedelta(days=2), "end": _t("02:10") - pd.Timedelta(days=2),
    }])
    leads, untraced = _trace(_reports(window=None, reported="10:00"), today=tonight, history_leads=older)
    assert leads.set_index("lead_id").loc["TG-20261120-aaaaaaaaaa", "report_ids"] == ["R1"]
    assert untraced == []
    # without tonight's silence the older lead still explains it
    _, untraced = _trace(_reports(window=None, reported="10:00"), history_leads=older)
    assert untraced[0]["lead_id"] == "ID-20261118-bbbbbbbbbb"


def test_of_two_silences_placed_on_the_same_pile_the_one_that_weighs_it_more_explains_it() -> None:
    from wastetrack.trace import explain_by_leads

    a = _gap_lead("TG-20261120-aaaaaaaaaa", "A", (-3000.0, 0.0), (-2600.0, 0.0), _t("01:00"), 25.0, (0.0, 0.0),
                  share=0.38)
    b = _gap_lead("TG-20261120-bbbbbbbbbb", "B", (-2000.0, 0.0), (-1800.0, 0.0), _t("03:00"), 25.0, (0.0, 0.0),
                  share=0.81)
    for order in ([a, b], [b, a]):
        assert explain_by_leads(_reports(), pd.DataFrame(order), DEFAULT_PARAMS) == {"R1": "TG-20261120-bbbbbbbbbb"}


def test_a_delivery_into_a_yard_explains_no_pile_down_the_road_from_it() -> None:
    # truck A's unmanifested delivery into yard ZY-9 (its lead at the tipping face, 260 m from the pile);
    # the pile lies outside the yard's fence: A's load is in the yard, so the report is still open for a
    # truck dark near it or seen at it. A report inside the yard's fence, or a pile where the truck itself
    # stood (the "yard" may be the GPS's drift), is the delivery's
    from wastetrack.trace import explain_by_leads

    def delivery(x: float) -> pd.DataFrame:
        lon, lat = _ll(x, 0.0)
        return pd.DataFrame([{"lead_id": "UM-20261120-aaaaaaaaaa", "kind": "unmanifested", "vehicle_id": "A",
                              "lon": lon, "lat": lat, "start": _t("02:00"), "end": _t("02:15"),
                              "evidence": {"unload_site_id": "ZY-9", "unload_evidence": "receiver"}}])

    reports = _reports()
    assert explain_by_leads(reports, delivery(260.0), DEFAULT_PARAMS, sites_of_reports={}) == {}
    assert explain_by_leads(reports, delivery(260.0), DEFAULT_PARAMS, sites_of_reports={"R1": "ZY-9"}) == {
        "R1": "UM-20261120-aaaaaaaaaa"}
    assert explain_by_leads(reports, delivery(40.0), DEFAULT_PARAMS, sites_of_reports={}) == {
        "R1": "UM-20261120-aaaaaaaaaa"}
    # ... also when the lead's point was put in the yard and only its evidence says where the truck stood
    stood_lon, stood_lat = _ll(40.0, 0.0)
    moved = delivery(260.0)
    moved["evidence"] = [{**moved["evidence"].iloc[0], "stood_lon": stood_lon, "stood_lat": stood_lat}]
    assert explain_by_leads(reports, moved, DEFAULT_PARAMS, sites_of_reports={}) == {"R1": "UM-20261120-aaaaaaaaaa"}
    # a dump lead (no yard) at 260 m explains it as before
    dump = delivery(260.0).assign(kind="illegal_dump", evidence=[{}])
    assert explain_by_leads(reports, dump, DEFAULT_PARAMS, sites_of_reports={}) == {"R1": "UM-20261120-aaaaaaaaaa"}


def test_a_delivery_lead_s_point_is_in_the_yard_it_names() -> None:
    # the truck's fixes at the tipping face drifted 200 m east of the yard's fence (a 100 m square): the
    # lead says the load went into the yard, so its point is the fence point nearest where it stood, and
    # where it stood stays in the evidence; a dump lead's point is where the truck stood
    from shapely.geometry import box

    from wastetrack.detect import _into_the_yard

    lo0, la0 = _ll(-50.0, -50.0)
    lo1, la1 = _ll(50.0, 50.0)
    sites = gpd.GeoDataFrame({"site_id": ["ZY-9"], "kind": ["disposal"]}, geometry=[box(lo0, la0, lo1, la1)],
                             crs="EPSG:4326")
    lon, lat = _ll(250.0, 0.0)
    leads = pd.DataFrame([{"kind": k, "lon": lon, "lat": lat, "evidence": {"unload_site_id": "ZY-9"}}
                          for k in ("unmanifested", "illegal_dump")])
    out = _into_the_yard(leads, sites)
    d = haversine_m(out["lon"].to_numpy(float), out["lat"].to_numpy(float), *_ll(50.0, 0.0))
    assert d[0] < 2.0 and out["evidence"].iloc[0]["stood_outside_fence_m"] == 200
    ev = out["evidence"].iloc[0]
    assert (ev["stood_lon"], ev["stood_lat"]) == (round(lon, 6), round(lat, 6))
    assert out["lon"].iloc[1] == lon and "stood_lon" not in out["evidence"].iloc[1]


def test_a_stay_before_the_window_of_an_untimed_report_still_counts_but_weighs_less() -> None:
    old = _stay("A", 30.0, 0.0, "02:00", 8.0, tipping_any=True, loaded_before=True, loaded_after=False)
    old["start"] -= pd.Timedelta(days=2)
    old["end"] -= pd.Timedelta(days=2)
    reports = _reports(window=None, reported="10:00")
    c = score_candidates(report_candidates(reports, _stays(old), pd.DataFrame(), 1000.0), {})
    assert bool(c["stale"].iloc[0]) and c["p_stale"].iloc[0] < 0
    timed = score_candidates(report_candidates(_reports(window=("01:00", "05:00")), _stays(old), pd.DataFrame(),
                                               1000.0), {})
    assert timed.empty  # a report with a window: two nights before it is not its time


def test_standing_inside_a_site_the_waste_is_not_in_is_no_evidence() -> None:
    yard = _stay("A", 150.0, 0.0, "02:00", 12.0, site_id="ZY-9", site_kind="disposal")
    c = score_candidates(report_candidates(_reports(), _stays(yard), pd.DataFrame(), 1000.0), {})
    assert c["p_site"].iloc[0] < 0 and c["score"].iloc[0] < DEFAULT_PARAMS.report_min_score
    same = score_candidates(report_candidates(_reports(), _stays(yard), pd.DataFrame(), 1000.0), {"R1": "ZY-9"})
    assert same["p_site"].iloc[0] == 0.0


def test_haul_phase_knows_loaded_unloading_and_empty() -> None:
    dump = _stay("A", 0.0, 0.0, "02:00", 8.0)
    hauls = _hauls(_haul("A", "01:00", dump, "03:00"),
                   _haul("B", "01:00", _stay("B", 0.0, 0.0, "01:40", 8.0), "03:00", "sensor"))
    got = haul_phase(pd.Series(["A", "A", "A", "B", "A", "C"]),
                     pd.Series([_t("01:30"), _t("02:00"), _t("02:30"), _t("02:30"), _t("00:30"), _t("02:00")]),
                     pd.Series(["", dump["stay_id"], "", "", "", ""]), None, hauls)
    assert list(got) == ["loaded", "dump", "after_dump", "empty", "", ""]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_silence_index_finds_what_a_brute_force_region_test_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(30):
        t = 0.0
        x, y = rng.uniform(-20000, 20000, 2)
        for _ in range(40):
            t += rng.choice([30.0, 30.0, 30.0, 600.0, 1500.0])
            x, y = x + rng.normal(0, 300), y + rng.normal(0, 300)
            rows.append((f"V{v:02d}", t, x, y))
    f = pd.DataFrame(rows, columns=["vehicle_id", "t", "x", "y"])
    lon, lat = _ll(f["x"].to_numpy(), f["y"].to_numpy())
    fixes = pd.DataFrame({"vehicle_id": f["vehicle_id"], "ts": (NIGHT + pd.to_timedelta(f["t"], unit="s"))
                          .astype(f"datetime64[us, {TZ}]"), "lon": lon, "lat": lat})
    r_lon, r_lat = _ll(rng.uniform(-20000, 20000, 40), rng.uniform(-20000, 20000, 40))
    reports = pd.DataFrame({"report_id": [f"R{i}" for i in range(40)], "lon": r_lon, "lat": r_lat,
                            "w0": NIGHT.timestamp(), "w1": NIGHT.timestamp() + 86400.0})
    got = report_candidates(reports, pd.DataFrame(), fixes, 1000.0, silences=True)
    got = got.loc[got["kind"] == "silence"]
    want = set()
    for (_, a), (_, b) in zip(f.iloc[:-1].iterrows(), f.iloc[1:].iterrows(), strict=True):
        dt = b["t"] - a["t"]
        if a["vehicle_id"] != b["vehicle_id"] or not (DEFAULT_PARAMS.stay_silence_split_s <= dt):
            continue
        s = silence_reach_m(np.array([dt]), DEFAULT_PARAMS)[0]
        la, pa = _ll(a["x"], a["y"])
        lb, pb = _ll(b["x"], b["y"])
        for rid, x, y in zip(reports["report_id"], r_lon, r_lat, strict=True):
            if haversine_m(la, pa, x, y) + haversine_m(x, y, lb, pb) <= s:
                want.add((rid, a["vehicle_id"], round(a["t"])))
    have = {(r, v, round((pd.Timestamp(s) - NIGHT).total_seconds())) for r, v, s in
            zip(got["report_id"], got["vehicle_id"], got["start"], strict=True)}
    assert len(want) > 5 and have == want


def test_history_stays_near_reports_are_every_stay_the_candidates_would_take() -> None:
    from wastetrack.spacetime import near_pairs
    from wastetrack.trace import StoreHistory

    rng = np.random.default_rng(11)
    n = 5000
    frames = {
        d: pd.DataFrame({"stay_id": [f"{d}-{i}" for i in range(n)], "vehicle_id": "沪A00001",
                         "lon": 121.0 + rng.uniform(0, 0.5, n), "lat": 31.0 + rng.uniform(0, 0.5, n)})
        for d in ("2026-11-18", "2026-11-19")
    }

    class Store:
        def dates(self) -> list[str]:
            return sorted(frames)

        def read(self, table: str, date: str) -> pd.DataFrame:
            return frames[date]

    reports = pd.DataFrame({"report_id": ["R1", "R2", "R3"], "lon": [121.1, 121.3, 121.31],
                            "lat": [31.2, 31.4, 31.4]})
    radius = 1000.0
    history = StoreHistory(Store(), "2026-11-20", days=3)
    near = history.stays(near=(reports["lon"].to_numpy(), reports["lat"].to_numpy(), radius))
    everything = history.stays()
    assert len(everything) == 2 * n
    p, _ = near_pairs(everything["lon"].to_numpy(), everything["lat"].to_numpy(), reports, radius)
    assert set(near["stay_id"]) >= set(everything["stay_id"].iloc[np.unique(p)])
    assert 0 < len(near) < 0.05 * len(everything)
    # a superset only by the width of a rounding error: nothing farther than the radius and a metre
    pts = zip(reports["lon"], reports["lat"], strict=True)
    d = np.min([haversine_m(near["lon"], near["lat"], lo, la) for lo, la in pts], axis=0)
    assert (d <= radius + 1.0).all()
