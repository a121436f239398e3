"""Detect stays (where a truck stood still) from cleaned fixes, vectorised over all vehicles at once.

Why not the classic "anchor point + radius" loop (trackintel, movingpandas)? It
is a Python loop per fix and O(k²) per stop, and a real night has ~100 million
fixes. Instead each fix gets a *smoothed speed*: the distance between the fixes
``stay_window_s`` before and after it, divided by the time between them. GPS
jitter of a parked truck is metres over two minutes (≈1 km/h) while a truck
creeping in a queue moves hundreds of metres, so one threshold separates them.
Windows never reach across a silence longer than ``stay_silence_split_s``: a truck
that goes dark, drives off and comes back to the same spot must not look like
it stood still (that is exactly the track gap we look for later).

GPS noise is discounted before the speed test (``stay_gps_jitter_m``): a feed
with a fix every minute or two from a noisy terminal shows a standing truck
"moving" 50-100 m between fixes, which over 90 s is 2-4 km/h.

Runs of standing fixes become stays; runs separated by a short hop (shunting
inside a site) are merged; stays shorter than ``stay_min_duration_s`` (red
lights, short jams) are dropped. A sparse feed shows a 4-minute stop as two
fixes 90 s apart, so the length that counts is ``dwell_s``: the stay's span
plus the idle time of the intervals around it (time beyond driving their
distance at ``stay_idle_speed_kmh``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack.clean import epoch_seconds, vehicle_codes
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import local_xy_m
from wastetrack.models import FIX_COLUMNS, STAY_COLUMNS, require_columns
from wastetrack.values import tri_state

_LON0, _LAT0 = 120.5, 31.0  # centre of the delta for the local metric frame


def _run_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sum of ``values[s:e+1]`` for each run (runs ascending, not overlapping), each run on its own."""
    padded = np.r_[values, 0.0]
    bounds = np.c_[starts, ends + 1].ravel()
    return np.add.reduceat(padded, bounds)[0::2]


def standing_mask(
    seg: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    window_s: float,
    max_speed_mps: float,
    jitter_m: float = 0.0,
) -> np.ndarray:
    """True where the speed over the window before or after a fix (in its segment) is below threshold.

    ``jitter_m`` of the displacement is GPS noise, not movement, and is discounted first.
    """
    n = len(t)
    if n == 0:
        return np.zeros(0, dtype=bool)
    # segments are contiguous in sorted order; a composite key keeps searchsorted inside a segment
    span = float(t.max() - t.min()) + 4 * window_s + 1.0
    key = seg.astype(np.float64) * span + (t - t.min())
    idx = np.arange(n)
    seg_start = np.r_[0, np.flatnonzero(seg[1:] != seg[:-1]) + 1]
    seg_end = np.r_[seg_start[1:] - 1, n - 1]
    first = np.repeat(seg_start, np.diff(np.r_[seg_start, n]))
    last = np.repeat(seg_end, np.diff(np.r_[seg_start, n]))
    fwd = np.minimum(np.searchsorted(key, key + window_s, side="left"), last)
    back = np.maximum(np.searchsorted(key, key - window_s, side="right") - 1, first)
    fwd = np.maximum(fwd, idx)
    back = np.minimum(back, idx)
    # slow over either half-window: a stay keeps its first and last fixes (a symmetric window would
    # trim ``window_s`` off both ends), and a fix is only "moving" if it moves on both sides
    with np.errstate(divide="ignore", invalid="ignore"):
        dt_f, dt_b = t[fwd] - t, t - t[back]
        d_f = np.maximum(np.hypot(x[fwd] - x, y[fwd] - y) - jitter_m, 0.0)
        d_b = np.maximum(np.hypot(x - x[back], y - y[back]) - jitter_m, 0.0)
        v_f = np.where(dt_f > 0, d_f / dt_f, np.inf)
        v_b = np.where(dt_b > 0, d_b / dt_b, np.inf)
    v = np.minimum(v_f, v_b)
    return v < max_speed_mps


def _no_stays() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in (*STAY_COLUMNS, "dwell_s")})


def detect_stays(fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS, breaks: np.ndarray | None = None
                 ) -> pd.DataFrame:
    """Stays of every vehicle (columns ``models.STAY_COLUMNS``) from fixes sorted by vehicle and time.

    ``breaks`` (one per fix, optional): a stay never runs on into a fix marked True, nor merges across it
    — where the map says the truck moved to another place (``geofence.place_breaks``).
    """
    require_columns(fixes, FIX_COLUMNS[:4], "fixes")
    n = len(fixes)
    if n == 0:
        return _no_stays()
    veh = vehicle_codes(fixes["vehicle_id"])
    t = epoch_seconds(fixes["ts"])
    lon = fixes["lon"].to_numpy(float)
    lat = fixes["lat"].to_numpy(float)
    x, y = local_xy_m(lon, lat, _LON0, _LAT0)
    new_seg = np.r_[True, (veh[1:] != veh[:-1]) | (np.diff(t) > params.stay_silence_split_s)]
    seg = np.cumsum(new_seg)
    stand = standing_mask(
        seg, t, x, y, params.stay_window_s, params.stay_max_speed_kmh / 3.6, params.stay_gps_jitter_m
    )

    # runs of standing fixes within one segment: a silence ends a run, because what happened in it
    # is unknown (the truck may have driven off and back); runs on both sides of a short silence at
    # the same spot are joined again by the merge below
    # a jump between consecutive fixes also ends a run (a quiet minute or two during which the truck
    # moved: it did not stand still across it)
    jump = np.hypot(np.diff(x), np.diff(y)) > params.stay_merge_distance_m
    forced = np.zeros(n, dtype=bool) if breaks is None else np.asarray(breaks, dtype=bool)
    brk = np.r_[True, (stand[1:] != stand[:-1]) | (seg[1:] != seg[:-1]) | jump | forced[1:]]
    starts = np.flatnonzero(brk)
    ends = np.r_[starts[1:] - 1, n - 1]
    keep = stand[starts]
    starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return _no_stays()
    counts = ends - starts + 1
    # run means: each run summed on its own (np.add.reduceat), so a stay's position never depends on
    # what else the frame holds — a running cumsum would carry rounding from every earlier vehicle,
    # and a vehicle's stays would move in the 7th decimal with the shard it landed in
    cx = _run_sums(x, starts, ends) / counts
    cy = _run_sums(y, starts, ends) / counts

    # merge runs of one vehicle separated by a short hop in time and space
    rv = veh[starts]
    gap = t[starts[1:]] - t[ends[:-1]]
    hop = np.hypot(cx[1:] - cx[:-1], cy[1:] - cy[:-1])
    merge = (rv[1:] == rv[:-1]) & (gap <= params.stay_merge_gap_s) & (hop <= params.stay_merge_distance_m)
    merge &= ~forced[starts[1:]]
    group = np.cumsum(np.r_[True, ~merge]) - 1
    g_first = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    g_last = np.r_[g_first[1:] - 1, len(group) - 1]
    s_idx = starts[g_first]
    e_idx = ends[g_last]
    w = counts.astype(float)
    wx = np.bincount(group, weights=cx * w)
    wy = np.bincount(group, weights=cy * w)
    wn = np.bincount(group, weights=w)
    sx, sy = wx / wn, wy / wn
    n_fixes = wn.astype(np.int64)
    duration = t[e_idx] - t[s_idx]
    dwell = duration + idle_around(seg, t, x, y, s_idx, e_idx, params.stay_idle_speed_kmh / 3.6)
    # a run of one fix has no duration of its own: its idle neighbours alone make no stay
    ok = (duration >= params.stay_min_duration_s) | ((dwell >= params.stay_min_duration_s) & (n_fixes >= 2))
    s_idx, e_idx, sx, sy, n_fixes, duration = s_idx[ok], e_idx[ok], sx[ok], sy[ok], n_fixes[ok], duration[ok]
    dwell = dwell[ok]

    k = np.pi / 180.0 * 6371008.8
    s_lon = _LON0 + sx / (k * np.cos(np.radians(_LAT0)))
    s_lat = _LAT0 + sy / k

    # sensors: any tipping during the stay; load state when it arrived and when it left
    tip = tri_state(fixes["tipping"]) if "tipping" in fixes else np.full(n, -1, np.int8)
    load = tri_state(fixes["loaded"]) if "loaded" in fixes else np.full(n, -1, np.int8)
    tip_true = np.r_[0, np.cumsum(tip == 1)]
    tip_known = np.r_[0, np.cumsum(tip >= 0)]
    any_tip = (tip_true[e_idx + 1] - tip_true[s_idx]) > 0
    known_tip = (tip_known[e_idx + 1] - tip_known[s_idx]) > 0
    # the neighbouring fix counts only if it is close in time: after a silence its reading says
    # nothing about the stay (the load may have gone during the silence)
    before = np.where(s_idx > 0, s_idx - 1, s_idx)
    near_s = params.sensor_neighbour_s
    before = np.where((veh[before] == veh[s_idx]) & (t[s_idx] - t[before] <= near_s), before, s_idx)
    after = np.where(e_idx < n - 1, e_idx + 1, e_idx)
    after = np.where((veh[after] == veh[e_idx]) & (t[after] - t[e_idx] <= near_s), after, e_idx)

    def _state(code: np.ndarray, fallback: np.ndarray) -> pd.Series:
        c = np.where(code >= 0, code, fallback)
        return pd.Series(pd.array(np.where(c >= 0, c == 1, False), dtype="boolean")).mask(c < 0)

    vid = fixes["vehicle_id"].iloc[s_idx].astype(str).to_numpy(dtype=object)
    ts = fixes["ts"]
    start = ts.iloc[s_idx].reset_index(drop=True)
    end = ts.iloc[e_idx].reset_index(drop=True)
    stays = pd.DataFrame(
        {
            "stay_id": pd.Series(vid).astype(str) + "@" + pd.Series(t[s_idx].astype(np.int64)).astype(str),
            "vehicle_id": vid,
            "start": start,
            "end": end,
            "duration_s": duration,
            "lon": s_lon,
            "lat": s_lat,
            "n_fixes": n_fixes,
            # where it stood first and last: a queue creeping to a gate pulls the mean outside the fence
            "first_lon": lon[s_idx],
            "first_lat": lat[s_idx],
            "last_lon": lon[e_idx],
            "last_lat": lat[e_idx],
            "tipping_any": pd.Series(pd.array(any_tip, dtype="boolean")).mask(~known_tip),
            "loaded_before": _state(load[before], load[s_idx]),
            "loaded_after": _state(load[after], load[e_idx]),
            # span plus the idle minutes around it: how long the truck most likely stood
            "dwell_s": dwell,
        }
    )
    return stays


def idle_around(
    seg: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    s_idx: np.ndarray,
    e_idx: np.ndarray,
    idle_speed_mps: float,
) -> np.ndarray:
    """Seconds of the intervals just before and after each run that driving their distance does not explain.

    Only within a segment (a longer silence is no idle time: what happened in
    it is unknown). The fix before a stop was taken while the truck still drove
    to it and the fix after once it drove off again, so the idle share of those
    two intervals is when it most likely stood.
    """
    n = len(t)
    prev = np.maximum(s_idx - 1, 0)
    nxt = np.minimum(e_idx + 1, n - 1)
    has_prev = (s_idx > 0) & (seg[prev] == seg[s_idx])
    has_next = (e_idx < n - 1) & (seg[nxt] == seg[e_idx])
    drive_b = np.hypot(x[s_idx] - x[prev], y[s_idx] - y[prev]) / idle_speed_mps
    drive_a = np.hypot(x[nxt] - x[e_idx], y[nxt] - y[e_idx]) / idle_speed_mps
    idle_b = np.where(has_prev, np.maximum((t[s_idx] - t[prev]) - drive_b, 0.0), 0.0)
    idle_a = np.where(has_next, np.maximum((t[nxt] - t[e_idx]) - drive_a, 0.0), 0.0)
    return idle_b + idle_a
