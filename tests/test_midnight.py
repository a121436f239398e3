"""The midnight rule (contract v1.1): an event is reported once, by the first run that can decide it — the run of
the day it ended, unless deciding needs the next day's data.

Unit tests drive ``midnight.NightBoundary`` with one truck's fixes as each night
sees them (night D: up to midnight; night D+1: the carried tail of D and its own
day); pipeline tests run two sealed batches through ``run_night`` and count where
each lead appears. Times 23:55-00:10, with and without sensors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from test_audit import MIN, SITE, _landing, _run_both, _track, _write_day  # the audit's tiny fixtures
from wastetrack.config import DEFAULT_PARAMS
from wastetrack.coords import gcj02_to_wgs84
from wastetrack.midnight import NightBoundary

D1, D2 = "2026-11-21", "2026-11-22"
TZ = "Asia/Shanghai"
_K = np.pi / 180.0 * 6371008.8
PLACE = (121.60, 31.12)  # open ground


def _at(hhmm: str, day: str = D1) -> pd.Timestamp:
    return pd.Timestamp(f"{day}T{hhmm}:00+08:00")


def _off(x_m: float, y_m: float = 0.0, at: tuple[float, float] = PLACE) -> tuple[float, float]:
    return at[0] + x_m / (_K * np.cos(np.radians(at[1]))), at[1] + y_m / _K


def _fixes(points: list[tuple[pd.Timestamp, tuple[float, float]]]) -> pd.DataFrame:
    """One truck's fixes every 30 s, moving linearly between the given (time, place) points."""
    rows = []
    for (t0, p0), (t1, p1) in itertools.pairwise(points):
        n = max(int((t1 - t0).total_seconds() // 30), 1)
        for i in range(n):
            f = i / n
            rows.append((t0 + i * pd.Timedelta(seconds=30), p0[0] + (p1[0] - p0[0]) * f, p0[1] + (p1[1] - p0[1]) * f))
    rows.append((points[-1][0], *points[-1][1]))
    fx = pd.DataFrame(rows, columns=["ts", "lon", "lat"]).assign(vehicle_id="沪AM0001")
    fx["ts"] = fx["ts"].astype(f"datetime64[us, {TZ}]")
    return fx


def _lead(end: pd.Timestamp, decided: pd.Timestamp | None = None, at: tuple[float, float] = PLACE) -> pd.DataFrame:
    f = pd.DataFrame({"vehicle_id": ["沪AM0001"], "end": [end], "decided_at": [decided or end],
                      "lon": [at[0]], "lat": [at[1]]})
    for c in ("end", "decided_at"):
        f[c] = f[c].astype(f"datetime64[us, {TZ}]")
    return f


def _nights(track: pd.DataFrame, lead: pd.DataFrame) -> list[str]:
    """The nights that report ``lead``: D sees the fixes before midnight, D+1 the carried tail and its day."""
    got = []
    d1 = track.loc[track["ts"] < _at("00:00", D2)]
    mine, _ = NightBoundary(d1, D1, DEFAULT_PARAMS).masks(lead, "decided_at", ("lon", "lat"))
    if mine[0] and lead["decided_at"].iloc[0] < _at("00:00", D2):
        got.append(D1)
    d2 = track.loc[track["ts"] >= _at("20:00", D1)]  # the carried tail reaches back hours before midnight
    mine, _ = NightBoundary(d2, D2, DEFAULT_PARAMS).masks(lead, "decided_at", ("lon", "lat"))
    if mine[0]:
        got.append(D2)
    return got


def test_a_truck_still_in_the_receivers_yard_at_midnight_is_reported_by_the_next_night_only() -> None:
    # gate queue stay ends 23:52 (the lead's end), the truck tips inside 300 m away until 00:06
    yard = _off(300.0)
    track = _fixes([(_at("23:30"), _off(-5000)), (_at("23:40"), PLACE), (_at("23:52"), PLACE),
                    (_at("23:53"), yard), (_at("00:06", D2), yard), (_at("00:20", D2), _off(6000))])
    assert _nights(track, _lead(_at("23:52"))) == [D2]


@pytest.mark.parametrize("end", ["23:55", "23:58"])
def test_a_dump_that_ended_before_midnight_while_the_truck_drove_off_is_reported_that_night(end: str) -> None:
    track = _fixes([(_at("23:30"), _off(-5000)), (_at("23:45"), PLACE), (_at(end), PLACE),
                    (_at("00:10", D2), _off(9000))])
    assert _nights(track, _lead(_at(end))) == [D1]


def test_a_truck_seen_driving_off_at_road_speed_by_midnight_is_not_still_there() -> None:
    # the body came down at 23:52; the truck stood on until 23:59:10, then drove off: its last fix of D,
    # at 23:59:40, is 370 m away at 44 km/h — within the radius, but on the road, not in a yard
    off = pd.Timestamp(f"{D1}T23:59:10+08:00")
    track = _fixes([(_at("23:30"), _off(-5000)), (_at("23:40"), PLACE), (off, PLACE),
                    (_at("00:10", D2), _off(8000))])
    d1 = track.loc[track["ts"] < _at("00:00", D2)]
    last = d1.iloc[-1]
    away_m = np.hypot((last["lon"] - PLACE[0]) * _K * np.cos(np.radians(PLACE[1])), (last["lat"] - PLACE[1]) * _K)
    assert 300 < away_m < DEFAULT_PARAMS.open_event_radius_m
    assert _nights(track, _lead(_at("23:52"))) == [D1]
    # crawling the same 370 m over the last few minutes (to a second spot, into a yard) it may still be at it
    crawl = _fixes([(_at("23:30"), _off(-5000)), (_at("23:40"), PLACE), (_at("23:53"), PLACE),
                    (_at("00:00", D2), _off(370)), (_at("00:10", D2), _off(8000))])
    assert _nights(crawl, _lead(_at("23:52"))) == [D2]


def test_a_truck_that_went_dark_right_after_its_dump_is_not_still_there() -> None:
    # tipping sensor: decided at 23:50; the terminal was off from 23:51 until 00:40
    track = _fixes([(_at("23:30"), _off(-5000)), (_at("23:40"), PLACE), (_at("23:50"), PLACE),
                    (_at("23:51"), _off(200))])
    later = _fixes([(_at("00:40", D2), _off(3000)), (_at("01:00", D2), _off(9000))])
    assert _nights(pd.concat([track, later], ignore_index=True), _lead(_at("23:50"))) == [D1]


def test_a_dump_still_going_on_at_the_last_fix_is_left_to_the_next_night() -> None:
    # standing at the spot from 23:48 through midnight: its end on D is just D's last fix
    track = _fixes([(_at("23:30"), _off(-5000)), (_at("23:48"), PLACE), (_at("00:05", D2), PLACE),
                    (_at("00:20", D2), _off(8000))])
    d1 = track.loc[track["ts"] < _at("00:00", D2)]
    assert _nights(track, _lead(d1["ts"].iloc[-1])) == [D2]


@pytest.mark.parametrize("end", ["00:02", "00:10"])
def test_an_event_that_ended_after_midnight_is_the_next_nights(end: str) -> None:
    track = _fixes([(_at("23:30"), _off(-5000)), (_at("23:50"), PLACE), (_at(end, D2), PLACE),
                    (_at("00:30", D2), _off(8000))])
    assert _nights(track, _lead(_at(end, D2))) == [D2]


@pytest.mark.parametrize(("end", "reload", "expected"), [
    ("23:30", "23:50", D1),  # sensorless: decided when the truck had loaded again for 5 min, still on D
    ("23:55", "00:40", D2),  # ... and here only after midnight: the next night decides it
    ("23:40", "23:57", D2),  # loading began 23:57: a loading is one after 5 min, at 00:02
])
def test_a_sensorless_stop_is_reported_by_the_night_its_reload_decided_it(end: str, reload: str, expected: str) -> None:
    site = _off(-12000)
    r = _at(reload) if reload > "12:00" else _at(reload, D2)
    track = _fixes([(_at("23:00"), _off(-5000)), (_at("23:10"), PLACE), (_at(end), PLACE),
                    (r - pd.Timedelta(minutes=1), site), (r + pd.Timedelta(minutes=20), site),
                    (r + pd.Timedelta(minutes=40), _off(-20000))])
    decided = r + pd.Timedelta(seconds=DEFAULT_PARAMS.load_min_dwell_s)
    assert _nights(track, _lead(_at(end), decided)) == [expected]


# ---------------------------------------------------------------- through the pipeline, two sealed batches


def _receiver() -> tuple[tuple[float, float], tuple[float, float]]:
    """ZY-3101-06 (recycling, in the example's reference): a point 130 m outside its north fence (the gate
    queue) and its centre (the tipping face), WGS-84."""
    fence = np.array([[121.2410799, 31.1795411], [121.2403055, 31.1804796], [121.2396151, 31.1799839],
                      [121.2399605, 31.1792228], [121.2408614, 31.1790614]])
    lon, lat = gcj02_to_wgs84(fence[:, 0], fence[:, 1])
    centre = (float(lon.mean()), float(lat.mean()))
    north = int(np.argmax(lat))
    return (float(lon[north]), float(lat[north]) + 130.0 / _K), centre


def _kinds_by_night(tmp_path, fixes: pd.DataFrame) -> list[tuple[str, str]]:
    landing = _landing(tmp_path)
    for day in (D1, D2):
        _write_day(landing, day, fixes)
    return [(day, kind) for day, kind, _ in _run_both(landing, tmp_path / "out")]


def test_an_unmanifested_receiver_visit_across_midnight_is_reported_once_by_the_next_night(tmp_path) -> None:
    gate, face = _receiver()
    t = _at("22:30")
    fixes = _track([
        (t, t + 20 * MIN, SITE, SITE),
        (t + 20 * MIN, t + 70 * MIN, SITE, gate),
        (t + 70 * MIN, t + 79 * MIN, gate, gate),  # 23:40-23:49 queue at the gate
        (t + 79 * MIN, t + 81 * MIN, gate, face),
        (t + 81 * MIN, t + 98 * MIN, face, face),  # 23:51-00:08 tipping inside
        (t + 98 * MIN, t + 148 * MIN, face, SITE),
        (t + 148 * MIN, t + 170 * MIN, SITE, SITE),
    ])
    assert _kinds_by_night(tmp_path, fixes) == [(D2, "unmanifested")]


def test_the_same_visit_an_hour_earlier_is_reported_by_its_own_night(tmp_path) -> None:
    gate, face = _receiver()
    t = _at("21:30")
    fixes = _track([
        (t, t + 20 * MIN, SITE, SITE),
        (t + 20 * MIN, t + 70 * MIN, SITE, gate),
        (t + 70 * MIN, t + 79 * MIN, gate, gate),
        (t + 79 * MIN, t + 81 * MIN, gate, face),
        (t + 81 * MIN, t + 98 * MIN, face, face),  # tipping until 23:08
        (t + 98 * MIN, t + 148 * MIN, face, SITE),
        (t + 148 * MIN, t + 170 * MIN, SITE, SITE),
    ])
    assert _kinds_by_night(tmp_path, fixes) == [(D1, "unmanifested")]


def test_a_sensor_dump_split_across_midnight_is_reported_once_by_the_next_night(tmp_path) -> None:
    # body lifted at the first spot 23:44-23:50, the rest tipped 400 m on until 00:04; sensors on this truck
    spot2 = _off(400.0)
    t = _at("22:20")
    fixes = _track([
        (t, t + 20 * MIN, SITE, SITE),
        (t + 20 * MIN, t + 84 * MIN, SITE, PLACE),
        (t + 84 * MIN, t + 90 * MIN, PLACE, PLACE),  # 23:44-23:50, tipping
        (t + 90 * MIN, t + 92 * MIN, PLACE, spot2),
        (t + 92 * MIN, t + 104 * MIN, spot2, spot2),  # 23:52-00:04
        (t + 104 * MIN, t + 170 * MIN, spot2, SITE),
        (t + 170 * MIN, t + 190 * MIN, SITE, SITE),
    ])
    tip = (fixes["ts"] >= t + 85 * MIN) & (fixes["ts"] < t + 88 * MIN)
    fixes["tipping"] = tip
    fixes["loaded"] = fixes["ts"] < t + 88 * MIN
    assert _kinds_by_night(tmp_path, fixes) == [(D2, "illegal_dump")]
