"""Which trucks stood, passed or went dark near a dumping report in its window: a grid-and-time index.

The old way was a cross join of every report with every fix in their joint
bounding box, so its cost grew with reports × fleet (80 reports at 5 M fixes
took more than 23 GB). Here every fix and stay gets a grid cell as wide as the
tracing radius; a report can only see the 3 × 3 cells around its own, so one
``isin`` pass over the cell keys picks the few fixes near any report, and only
those are paired with the reports of their cell and tested exactly (haversine
distance, time window). Silences are few and their reachable regions are
large, so they are paired the other way round: each silence's region covers a
handful of coarse cells, and a report meets only the silences of its cell.
Cost: linear in fixes, plus the pairs that really are near each other.

This module only *observes* (``report_candidates``): per (report, vehicle) what
the truck did there — a stay (how long, how close, its sensors, whether its
haul unloaded there), a pass (how close, how slowly, how long it lingered, its
load before and after) or a silence whose reachable region covers the report.
Judging which truck most likely dumped is ``trace.rank_candidates`` (in the
merge step, across vehicles).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import _ts_i8, epoch_seconds, vehicle_codes, vehicle_time_order
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import haversine_m, local_xy_m

_LON0, _LAT0 = 120.5, 31.0  # centre of the delta: the same local metric frame as stays
_CELL_BITS = 31

#: one row per observation of a truck near a report (several per truck: each stay, one pass, each silence)
CANDIDATE_COLUMNS = (
    "report_id", "vehicle_id", "kind", "distance_m", "is_stay", "dwell_min", "start", "end", "lon", "lat",
    "loaded_before", "loaded_after", "tipping", "site_id", "site_kind", "min_speed_kmh", "linger_s", "phase",
    "haul_id", "region_km2", "region_share", "stale",
)
#: how an observation sits in its vehicle's haul (``haul_phase``)
PHASES = ("dump", "receiver", "loaded", "empty", "after_dump", "")


def cell_keys(lon: np.ndarray, lat: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, cx, cy): the int64 key of each point's grid cell of ``cell_m`` metres, and its indices."""
    x, y = local_xy_m(np.asarray(lon, float), np.asarray(lat, float), _LON0, _LAT0)
    cx = np.floor(x / cell_m).astype(np.int64)
    cy = np.floor(y / cell_m).astype(np.int64)
    return _key(cx, cy), cx, cy


def _key(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    off = 1 << (_CELL_BITS - 1)
    return ((cx + off) << _CELL_BITS) | (cy + off)


def _report_cells(reports: pd.DataFrame, cell_m: float) -> pd.DataFrame:
    """(cell key, report row) for the 3 × 3 cells around each report."""
    _, cx, cy = cell_keys(reports["lon"].to_numpy(float), reports["lat"].to_numpy(float), cell_m)
    dx, dy = np.meshgrid([-1, 0, 1], [-1, 0, 1])
    ncx = (cx[:, None] + dx.ravel()[None, :]).ravel()
    ncy = (cy[:, None] + dy.ravel()[None, :]).ravel()
    return pd.DataFrame({"cell": _key(ncx, ncy), "r": np.repeat(np.arange(len(reports)), 9)})


def _near(points_lon: np.ndarray, points_lat: np.ndarray, reports: pd.DataFrame, radius_m: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """(point index, report row) of every point within ``radius_m`` of a report (exact, via the grid)."""
    if len(points_lon) == 0 or len(reports) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cell_m = max(float(radius_m), 1.0)
    keys, _, _ = cell_keys(points_lon, points_lat, cell_m)
    rc = _report_cells(reports, cell_m)
    # a hash lookup: numpy's isin sorts all the points' keys, 15x slower on a shard of millions
    cand = np.flatnonzero(pd.Index(np.unique(rc["cell"].to_numpy())).get_indexer(keys) >= 0)
    if cand.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = pd.DataFrame({"cell": keys[cand], "p": cand}).merge(rc, on="cell")
    p, r = pairs["p"].to_numpy(np.int64), pairs["r"].to_numpy(np.int64)
    d = haversine_m(points_lon[p], points_lat[p], reports["lon"].to_numpy(float)[r],
                    reports["lat"].to_numpy(float)[r])
    ok = d <= radius_m
    return p[ok], r[ok]


def near_pairs(points_lon: np.ndarray, points_lat: np.ndarray, reports: pd.DataFrame, radius_m: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """(point index, report row) of every point within ``radius_m`` of a report: the grid index, for callers
    that pair reports with other points (leads)."""
    return _near(np.asarray(points_lon, float), np.asarray(points_lat, float), reports.reset_index(drop=True),
                 radius_m)


def _bool_obj(values: pd.Series | np.ndarray) -> np.ndarray:
    b = pd.Series(values).astype("boolean")
    return b.astype(object).where(b.notna(), None).to_numpy()


def _windows(reports: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(w0, w1, earliest): the report's window, and the earliest time any observation is looked at
    (``w0_any``: a report without a window may describe a pile days old)."""
    w0, w1 = reports["w0"].to_numpy(float), reports["w1"].to_numpy(float)
    early = reports["w0_any"].to_numpy(float) if "w0_any" in reports else w0
    return w0, w1, np.minimum(early, w0)


# ---------------------------------------------------------------- where an observation sits in its haul


def haul_phase(vehicle_id: pd.Series, t: pd.Series, stay_id: pd.Series | None, gap_start: pd.Series | None,
               hauls: pd.DataFrame | None) -> np.ndarray:
    """The ``phase`` of ``haul_context``."""
    return haul_context(vehicle_id, t, stay_id, gap_start, hauls)[0]


def haul_context(vehicle_id: pd.Series, t: pd.Series, stay_id: pd.Series | None, gap_start: pd.Series | None,
                 hauls: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(phase, haul_id) per observation (a vehicle at time ``t``): ``dump`` (it is its haul's off-site unloading, as the
    detector decided it), ``receiver`` (its haul's unloading at a receiver), ``loaded`` (between loading
    and unloading: the truck had a load to lose), ``empty`` (after an unloading a sensor or a receiver
    showed, before the next loading), ``after_dump`` (after an unloading the track step chose: part of the
    load may be left) or ``''`` (no haul around it: unknown). ``stay_id``/``gap_start`` identify the
    observation as a stay or a silence, to recognise the haul's own unloading.
    """
    n = len(vehicle_id)
    out = np.full(n, "", dtype=object)
    hid = np.full(n, "", dtype=object)
    if n == 0 or hauls is None or hauls.empty or "depart" not in hauls:
        return out, hid
    h = hauls.loc[hauls["depart"].notna()]
    if h.empty:
        return out, hid
    h = h.reset_index(drop=True)
    h = pd.DataFrame({
        "vehicle_id": h["vehicle_id"].astype(str).to_numpy(object),
        "depart": _ts_col(h, "depart"),
        "u0": _ts_col(h, "unload_start"),
        "u1": _ts_col(h, "unload_end"),
        "h_end": _ts_col(h, "end"),
        "h_gap": _ts_col(h, "gap_start"),
        "h_stay": h["unload_stay_id"].fillna("").astype(str).to_numpy(object) if "unload_stay_id" in h else "",
        "h_ev": h["unload_evidence"].fillna("").astype(str).to_numpy(object) if "unload_evidence" in h else "",
        "h_site": h["unload_site_id"].fillna("").astype(str).to_numpy(object) if "unload_site_id" in h else "",
        "h_id": h["haul_id"].fillna("").astype(str).to_numpy(object) if "haul_id" in h else "",
    }).sort_values("depart", kind="stable")
    obs = pd.DataFrame({
        "vehicle_id": pd.Series(vehicle_id).astype(str).to_numpy(object),
        "t": _as_ts(pd.Series(t).reset_index(drop=True)),
        "_i": np.arange(n),
        "_stay": (pd.Series(stay_id).fillna("").astype(str).to_numpy(object) if stay_id is not None
                  else np.full(n, "", dtype=object)),
        "_gap": (_as_ts(pd.Series(gap_start).reset_index(drop=True)) if gap_start is not None
                 else pd.Series(pd.NaT, index=range(n), dtype=f"datetime64[us, {TIMEZONE}]")),
    }).sort_values("t", kind="stable")
    m = pd.merge_asof(obs, h, left_on="t", right_on="depart", by="vehicle_id", direction="backward")
    has = m["depart"].notna().to_numpy()
    within = has & ~(m["h_end"].notna() & (m["t"] >= m["h_end"])).to_numpy(bool)
    ev = m["h_ev"].fillna("").astype(str).to_numpy()
    found = ev != ""
    before = ~found | (m["u0"].notna() & (m["t"] < m["u0"])).to_numpy(bool)
    after = found & (m["u1"].notna() & (m["t"] >= m["u1"])).to_numpy(bool)
    stay = m["_stay"].to_numpy()
    own_stay = (stay != "") & (stay == m["h_stay"].fillna("").astype(str).to_numpy())
    own_gap = (m["_gap"].notna() & m["h_gap"].notna() & (m["_gap"] == m["h_gap"])).to_numpy(bool) & (ev == "gap")
    is_unload = found & (own_stay | own_gap | (~before & ~after))
    at_site = m["h_site"].fillna("").astype(str).to_numpy() != ""
    # after a sensor or a receiver the load is known gone; after an unloading the track chose, the truck may
    # still carry the rest (a split dump's second spot)
    measured = np.isin(ev, ("sensor", "receiver", "receiver_scan", "receiver_track", "receiver_silent"))
    phase = np.select(
        [~within, is_unload & ~at_site, is_unload & at_site, before, after & measured, after],
        ["", "dump", "receiver", "loaded", "empty", "after_dump"], default="",
    )
    out[m["_i"].to_numpy()] = phase
    hid[m["_i"].to_numpy()] = np.where(within, m["h_id"].fillna("").astype(str).to_numpy(object), "")
    return out, hid


def _as_ts(values: pd.Series) -> pd.Series:
    """A time column as tz-aware microseconds in the project's time zone (NaT kept)."""
    return pd.to_datetime(values, utc=True).dt.tz_convert(TIMEZONE).astype(f"datetime64[us, {TIMEZONE}]")


def _ts_col(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(pd.NaT, index=frame.index, dtype=f"datetime64[us, {TIMEZONE}]")
    return _as_ts(frame[name])


# ---------------------------------------------------------------- stays


def _stay_rows(reports: pd.DataFrame, stays: pd.DataFrame, radius_m: float, hauls: pd.DataFrame | None
               ) -> pd.DataFrame | None:
    p, r = _near(stays["lon"].to_numpy(float), stays["lat"].to_numpy(float), reports, radius_m)
    if p.size == 0:
        return None
    w0, w1, early = _windows(reports)
    s0, s1 = epoch_seconds(stays["start"])[p], epoch_seconds(stays["end"])[p]
    ok = (s0 <= w1[r]) & (s1 >= early[r])
    p, r, s1 = p[ok], r[ok], s1[ok]
    if p.size == 0:
        return None
    st = stays.iloc[p]
    r_lon, r_lat = reports["lon"].to_numpy(float)[r], reports["lat"].to_numpy(float)[r]
    d = haversine_m(st["lon"].to_numpy(float), st["lat"].to_numpy(float), r_lon, r_lat)
    # a queue creeping to a spot pulls the mean away: the nearest of mean, first and last point counts
    for a, b in (("first_lon", "first_lat"), ("last_lon", "last_lat")):
        if a in st:
            d = np.fmin(d, haversine_m(st[a].to_numpy(float), st[b].to_numpy(float), r_lon, r_lat))
    dwell = st["dwell_s"].to_numpy(float) if "dwell_s" in st else st["duration_s"].to_numpy(float)
    dwell = np.where(np.isfinite(dwell), dwell, st["duration_s"].to_numpy(float))
    n = p.size

    def col(name: str, default: object) -> np.ndarray:
        return st[name].to_numpy(object) if name in st else np.full(n, default, dtype=object)

    phase, haul_id = haul_context(st["vehicle_id"], st["start"], st.get("stay_id"), None, hauls)
    return pd.DataFrame({
        "report_id": reports["report_id"].to_numpy(object)[r],
        "vehicle_id": st["vehicle_id"].astype(str).to_numpy(object),
        "kind": "stay",
        "distance_m": d,
        "is_stay": True,
        "dwell_min": dwell / 60.0,
        "start": st["start"].array,
        "end": st["end"].array,
        "lon": st["lon"].to_numpy(float),
        "lat": st["lat"].to_numpy(float),
        "loaded_before": _bool_obj(st["loaded_before"]) if "loaded_before" in st else np.full(n, None),
        "loaded_after": _bool_obj(st["loaded_after"]) if "loaded_after" in st else np.full(n, None),
        "tipping": _bool_obj(st["tipping_any"]) if "tipping_any" in st else np.full(n, None),
        "site_id": pd.Series(col("site_id", "")).fillna("").astype(str).to_numpy(object),
        "site_kind": pd.Series(col("site_kind", "")).fillna("").astype(str).to_numpy(object),
        "min_speed_kmh": 0.0,
        "linger_s": dwell,
        "phase": phase,
        "haul_id": haul_id,
        "region_km2": np.nan,
        "region_share": np.nan,
        "stale": s1 < w0[r],
    })


# ---------------------------------------------------------------- passes (fixes)


def _sorted(fixes: pd.DataFrame) -> pd.DataFrame:
    """Fixes in vehicle-then-time order (shards already are; a hand-made frame may not be)."""
    codes = vehicle_codes(fixes["vehicle_id"])
    t = _ts_i8(fixes["ts"])
    if len(t) < 2 or bool(np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (t[1:] >= t[:-1])))):
        return fixes
    return fixes.take(vehicle_time_order(codes, t)).reset_index(drop=True)


def _pass_rows(reports: pd.DataFrame, fixes: pd.DataFrame, radius_m: float, hauls: pd.DataFrame | None,
               params: Params) -> pd.DataFrame | None:
    """One row per (report, vehicle) that had fixes within ``radius_m`` in the window: its closest approach,
    and how long and how slowly it lingered within ``report_near_m`` (the longest such run of fixes)."""
    f_lon, f_lat = fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float)
    p, r = _near(f_lon, f_lat, reports, radius_m)
    if p.size == 0:
        return None
    t = _ts_i8(fixes["ts"]) / 1e6
    w0, w1, _ = _windows(reports)
    ok = (t[p] >= w0[r]) & (t[p] <= w1[r])
    p, r = p[ok], r[ok]
    if p.size == 0:
        return None
    codes = vehicle_codes(fixes["vehicle_id"])
    n = len(t)
    r_lon, r_lat = reports["lon"].to_numpy(float), reports["lat"].to_numpy(float)
    d = haversine_m(f_lon[p], f_lat[p], r_lon[r], r_lat[r])
    # speed at each paired fix: the terminal's own when given, else from its neighbours
    prev = np.maximum(p - 1, 0)
    nxt = np.minimum(p + 1, n - 1)
    same_prev = (codes[prev] == codes[p]) & (p > 0)
    same_next = (codes[nxt] == codes[p]) & (p < n - 1)
    dt_prev = np.where(same_prev, t[p] - t[prev], np.inf)
    dt_next = np.where(same_next, t[nxt] - t[p], np.inf)
    v_prev = haversine_m(f_lon[prev], f_lat[prev], f_lon[p], f_lat[p]) / np.maximum(dt_prev, 1.0)
    v_next = haversine_m(f_lon[p], f_lat[p], f_lon[nxt], f_lat[nxt]) / np.maximum(dt_next, 1.0)
    implied = np.fmin(np.where(np.isfinite(dt_prev), v_prev, np.nan), np.where(np.isfinite(dt_next), v_next, np.nan))
    told = fixes["speed_kmh"].to_numpy(float)[p] / 3.6 if "speed_kmh" in fixes else np.full(p.size, np.nan)
    speed = np.where(np.isfinite(told), told, implied) * 3.6
    pr = pd.DataFrame({"r": r, "p": p, "d": d, "speed": speed, "code": codes[p], "t": t[p]})
    pr = pr.sort_values(["r", "p"], kind="stable").reset_index(drop=True)
    near = (pr["d"] <= params.report_near_m).to_numpy()
    # runs of consecutive near fixes of one vehicle: how long the truck lingered near the spot
    rr, pp = pr["r"].to_numpy(), pr["p"].to_numpy()
    brk = np.r_[True, (rr[1:] != rr[:-1]) | (pp[1:] != pp[:-1] + 1) | ~near[1:] | ~near[:-1]]
    run = np.cumsum(brk) - 1
    first = pd.Series(pp).groupby(run).transform("min").to_numpy()
    last = pd.Series(pp).groupby(run).transform("max").to_numpy()
    a, b = np.maximum(first - 1, 0), np.minimum(last + 1, n - 1)
    in_a = (codes[a] == codes[first]) & (first > 0)
    in_b = (codes[b] == codes[last]) & (last < n - 1)
    span = t[last] - t[first]
    # time between the fixes around the run beyond driving its distance at a crawl: standing time
    path = (haversine_m(f_lon[a], f_lat[a], f_lon[first], f_lat[first])
            + haversine_m(f_lon[last], f_lat[last], f_lon[b], f_lat[b])
            + haversine_m(f_lon[first], f_lat[first], f_lon[last], f_lat[last]))
    idle = np.where(in_a & in_b, (t[b] - t[a]) - path / (params.stay_idle_speed_kmh / 3.6), 0.0)
    idle = np.minimum(idle, np.where(in_a & in_b, t[b] - t[a], 0.0))
    pr["linger"] = np.where(near, np.maximum(span, idle), 0.0)
    load = fixes["loaded"].astype("boolean") if "loaded" in fixes else pd.Series(pd.NA, index=fixes.index,
                                                                                   dtype="boolean")
    pr["lb"] = _bool_obj(load.to_numpy()[np.where(in_a, a, first)])
    pr["la"] = _bool_obj(load.to_numpy()[np.where(in_b, b, last)])
    pr["near_speed"] = np.where(near, pr["speed"].to_numpy(), np.nan)
    # per (report, vehicle): the closest fix, the longest linger (its load before and after), the slowest speed
    key = ["r", "code"]
    g = pr.groupby(key, sort=True)
    closest = pr.loc[g["d"].idxmin()].set_index(key)
    longest = pr.sort_values([*key, "linger", "d"], ascending=[True, True, False, True], kind="stable")
    longest = longest.drop_duplicates(key).set_index(key)
    slowest = g["near_speed"].min()
    fastest_any = g["speed"].min()
    idx = closest.index
    cp = closest["p"].to_numpy()
    ts = fixes["ts"].array[cp]
    rows = idx.get_level_values("r").to_numpy()
    min_speed = slowest.reindex(idx).to_numpy(float)
    min_speed = np.where(np.isfinite(min_speed), min_speed, fastest_any.reindex(idx).to_numpy(float))
    phase, haul_id = haul_context(fixes["vehicle_id"].iloc[cp].astype(str).reset_index(drop=True), pd.Series(ts),
                                  None, None, hauls)
    return pd.DataFrame({
        "report_id": reports["report_id"].to_numpy(object)[rows],
        "vehicle_id": fixes["vehicle_id"].iloc[cp].astype(str).to_numpy(object),
        "kind": "pass",
        "distance_m": closest["d"].to_numpy(float),
        "is_stay": False,
        "dwell_min": longest["linger"].reindex(idx).to_numpy(float) / 60.0,
        "start": ts,
        "end": ts,
        "lon": f_lon[cp],
        "lat": f_lat[cp],
        "loaded_before": longest["lb"].reindex(idx).to_numpy(object),
        "loaded_after": longest["la"].reindex(idx).to_numpy(object),
        "tipping": np.full(len(cp), None, dtype=object),
        "site_id": "",
        "site_kind": "",
        "min_speed_kmh": min_speed,
        "linger_s": longest["linger"].reindex(idx).to_numpy(float),
        "phase": phase,
        "haul_id": haul_id,
        "region_km2": np.nan,
        "region_share": np.nan,
        "stale": False,
    })


# ---------------------------------------------------------------- silences


def silence_reach_m(gap_s: np.ndarray, params: Params) -> np.ndarray:
    """The drive a silence allows at a truck's usual speed after the shortest unloading (straight-line metres):
    the region it could plausibly have unloaded in (``gaps.region_sum_m`` is the hard bound at full speed)."""
    return (np.maximum(np.asarray(gap_s, float) - params.unload_min_s, 0.0) * params.gap_cruise_speed_kmh / 3.6
            / params.road_detour_factor)


def _silence_rows(reports: pd.DataFrame, fixes: pd.DataFrame, hauls: pd.DataFrame | None, params: Params
                  ) -> pd.DataFrame | None:
    """One row per (report, silence) whose plausible region covers the report, in its window.

    A silence is a gap between two fixes of one vehicle longer than a parked
    terminal's interval (``stay_silence_split_s``) and at most ``track_gap_max_s``.
    """
    t = _ts_i8(fixes["ts"]) / 1e6
    codes = vehicle_codes(fixes["vehicle_id"])
    if len(t) < 2:
        return None
    dt = np.diff(t)
    i = np.flatnonzero((codes[1:] == codes[:-1]) & (dt >= params.stay_silence_split_s)
                       & (dt <= params.track_gap_max_s))
    if i.size == 0:
        return None
    lon, lat = fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float)
    s = silence_reach_m(dt[i], params)
    x0, y0 = local_xy_m(lon[i], lat[i], _LON0, _LAT0)
    x1, y1 = local_xy_m(lon[i + 1], lat[i + 1], _LON0, _LAT0)
    c = np.hypot(x1 - x0, y1 - y0)
    keep = s > c
    i, s, x0, y0, x1, y1, c = i[keep], s[keep], x0[keep], y0[keep], x1[keep], y1[keep], c[keep]
    if i.size == 0:
        return None
    # each region's bounding box in coarse cells (a report meets only the silences of its own cell)
    cell = max(params.report_radius_m, 2000.0)
    a = s / 2.0
    mx, my = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    lo_x, hi_x = np.floor((mx - a) / cell).astype(np.int64), np.floor((mx + a) / cell).astype(np.int64)
    lo_y, hi_y = np.floor((my - a) / cell).astype(np.int64), np.floor((my + a) / cell).astype(np.int64)
    nx, ny = hi_x - lo_x + 1, hi_y - lo_y + 1
    cnt = nx * ny
    owner = np.repeat(np.arange(i.size), cnt)
    k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    cx = lo_x[owner] + k // ny[owner]
    cy = lo_y[owner] + k % ny[owner]
    _, rcx, rcy = cell_keys(reports["lon"].to_numpy(float), reports["lat"].to_numpy(float), cell)
    rk = pd.DataFrame({"cell": _key(rcx, rcy), "r": np.arange(len(reports))})
    pairs = pd.DataFrame({"cell": _key(cx, cy), "g": owner}).merge(rk, on="cell")
    if pairs.empty:
        return None
    g, r = pairs["g"].to_numpy(), pairs["r"].to_numpy()
    w0, w1, early = _windows(reports)
    j = i[g]
    t0, t1 = t[j], t[j + 1]
    r_lon, r_lat = reports["lon"].to_numpy(float)[r], reports["lat"].to_numpy(float)[r]
    d0 = haversine_m(lon[j], lat[j], r_lon, r_lat)
    d1 = haversine_m(lon[j + 1], lat[j + 1], r_lon, r_lat)
    ok = (d0 + d1 <= s[g]) & (t0 <= w1[r]) & (t1 >= early[r])
    if not ok.any():
        return None
    g, r, j, t0, t1, d0, d1 = g[ok], r[ok], j[ok], t0[ok], t1[ok], d0[ok], d1[ok]
    b = np.sqrt(np.maximum((s[g] / 2.0) ** 2 - (c[g] / 2.0) ** 2, 0.0))
    # how much of the silence's unloading weight (course, time: ``gaps``) falls near the report
    from wastetrack.gaps import mass_near, silence_geometry

    vid_all = fixes["vehicle_id"].iloc[j].astype(str).reset_index(drop=True)
    geo = silence_geometry(list(range(j.size)), vid_all, pd.Series(fixes["ts"].array[j]),
                           pd.Series(fixes["ts"].array[j + 1]), fixes, params)
    share = np.zeros(j.size)
    if len(geo):
        keys = geo["key"].to_numpy(int)
        share[keys] = mass_near(geo, r_lon[keys], r_lat[keys], 2.0 * params.report_place_sigma_m, params)
    load = fixes["loaded"].astype("boolean") if "loaded" in fixes else pd.Series(pd.NA, index=fixes.index,
                                                                                   dtype="boolean")
    ts0 = fixes["ts"].array[j]
    vid = fixes["vehicle_id"].iloc[j].astype(str).reset_index(drop=True)
    phase, haul_id = haul_context(vid, pd.Series(ts0), None, pd.Series(ts0), hauls)
    return pd.DataFrame({
        "report_id": reports["report_id"].to_numpy(object)[r],
        "vehicle_id": vid.to_numpy(object),
        "kind": "silence",
        "distance_m": np.minimum(d0, d1),
        "is_stay": False,
        "dwell_min": (t1 - t0) / 60.0,
        "start": ts0,
        "end": fixes["ts"].array[j + 1],
        "lon": lon[j],
        "lat": lat[j],
        "loaded_before": _bool_obj(load.to_numpy()[j]),
        "loaded_after": _bool_obj(load.to_numpy()[j + 1]),
        "tipping": np.full(j.size, None, dtype=object),
        "site_id": "",
        "site_kind": "",
        "min_speed_kmh": np.nan,
        "linger_s": np.nan,
        "phase": phase,
        "haul_id": haul_id,
        "region_km2": np.pi * (s[g] / 2.0) * b / 1e6,
        "stale": t1 < w0[r],
        "region_share": share,
    })


# ---------------------------------------------------------------- the index


def empty_candidates() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in CANDIDATE_COLUMNS})


def report_candidates(
    reports: pd.DataFrame, stays: pd.DataFrame, fixes: pd.DataFrame, radius_m: float,
    hauls: pd.DataFrame | None = None, params: Params = DEFAULT_PARAMS, silences: bool = False,
) -> pd.DataFrame:
    """Every observation of a truck near a report in its window (``CANDIDATE_COLUMNS``), unjudged.

    ``reports`` carry their window as epoch seconds ``w0``/``w1`` (``trace.report_windows``)
    and may carry ``w0_any``, the earliest time a stay or silence is still looked
    at (``stale`` marks those before ``w0``). A stay counts when it is within
    ``radius_m`` and overlaps the window; a pass when the truck had fixes within
    ``radius_m`` inside the window (one row per report and vehicle); a silence
    when its plausible region (``silence_reach_m``) covers the report and it
    overlaps the window (with ``silences``: shards ask for them, the fixes of a
    shard being whole tracks). ``hauls`` (the same vehicles') give each observation its
    ``phase``. ``fixes`` must be sorted by vehicle and time for the pass and
    silence features (shards are; a hand-made frame is sorted here).
    """
    if reports.empty:
        return empty_candidates()
    out = []
    if len(stays):
        out.append(_stay_rows(reports, stays, radius_m, hauls))
    if len(fixes):
        fixes = _sorted(fixes)
        out.append(_pass_rows(reports, fixes, radius_m, hauls, params))
        if silences:
            out.append(_silence_rows(reports, fixes, hauls, params))
    out = [o for o in out if o is not None and len(o)]
    if not out:
        return empty_candidates()
    c = pd.concat(out, ignore_index=True)
    for col in ("start", "end"):
        c[col] = c[col].astype(f"datetime64[us, {TIMEZONE}]")
    c = c[list(CANDIDATE_COLUMNS)]
    return c.sort_values(["report_id", "vehicle_id", "kind", "start", "distance_m"], kind="stable",
                         ignore_index=True)


#: a report's window is widened by this each way when a stop or a lead is matched to it: who saw the pile,
#: and when, is approximate
REPORT_TIME_SLACK_S = 1800.0


def best_first(candidates: pd.DataFrame) -> pd.DataFrame:
    """Every observation, ranked per report best first (``best_per_vehicle``'s order, one row per sighting)."""
    if "score" in candidates:
        keys, asc = ["report_id", "score", "distance_m", "start", "vehicle_id"], [True, False, True, True, True]
    else:
        keys, asc = ["report_id", "is_stay", "distance_m", "start", "vehicle_id"], [True, False, True, True, True]
    return candidates.sort_values(keys, ascending=asc, kind="stable")


def best_per_vehicle(candidates: pd.DataFrame) -> pd.DataFrame:
    """One row per (report, vehicle): its best observation, rows ranked best first per report.

    Best is the highest ``score`` when the candidates are judged
    (``trace.score_candidates``), else a stay before a pass, then the nearest; ties
    go to the earlier observation, then the plate, so the choice never depends on
    the order observations arrived in.
    """
    if candidates.empty:
        return candidates.reset_index(drop=True)
    return best_first(candidates).drop_duplicates(["report_id", "vehicle_id"]).reset_index(drop=True)
