"""Track gaps as reachable regions: where a truck that went dark while loaded could have unloaded, and where
it most likely did.

The terminal went dark at P0 (the last fix) and came back at P1 (the first fix
after) ``T`` seconds later. Driving no faster than ``reach_speed_kmh`` and
tipping for at least ``unload_min_s``, the truck can only have unloaded at a
point S with ``|P0 S| + |S P1| <= v_max (T - u_min)``: an ellipse with foci P0
and P1 — the *reachable region*. Its counties are the ones that may have to act.

Within the region the unloading place is weighed by what the truck itself
showed, each term a physical fact (``place_gaps``):

* **time** — driving P0 → S → P1 on roads (``road_detour_factor`` times the
  straight line) at the truck's own speed, measured on its fixes around the
  silence, leaves ``u(S) = T - drive(S)`` for unloading. Unloading takes minutes
  (tipping plus manoeuvring, ``gap_unload_typical_s``), so a place that leaves
  a plausible dwell weighs more; a place needing more than the truck's speed to
  be reached in time weighs less, the faster the less.
* **course** — a loaded truck drives towards where it is going: S lies ahead of
  its course into the silence (its bearing over the last ``gap_course_base_m``
  before P0), and P1 lies ahead of S on its course out of it. A truck that went
  dark on the way out and came back on the way home (out and back) places S at
  the far end of the region from the loading site; one that drove through places
  it between P0 and P1. Standing trucks have no course: the term is off.
* **map** — nobody tips illegally inside a construction site or an approved
  receiver's fence (that would be a loading, or a legal unloading).
* **where it went dark** — a loaded truck that crawled or stood as it went dark weighs that place as much
  as every drive the silence allows: it had arrived where it meant to tip. One still driving may have
  switched off early on the way or as it reached its spot, and the track cannot tell which: the place
  where it went dark keeps a quarter of that weight (``gap_dark_here_weight``). Being one place, it
  outweighs any 250 m of the drives, which spread over square kilometres; a pile reported there and then,
  or a spot where dumping was found before, can still outweigh it.
* **known spots** — waste reported where the truck could have been, in the
  silence's time (tonight's dumping reports), and spots where dumping was found
  before (earlier nights' leads and reports), weigh more: dumpers come back to
  the same field.

The lead's point is the place whose ``gap_place_radius_m`` disk holds the most
of that weight, inside the county that holds the most (the county that must
act, ``candidate_counties[0]``); the other counties with a share are copied in.

Everything here is a function of one vehicle's fixes and of the night's shared
inputs (sites, boundaries, reports, the store's known spots), so shards give the
same answer and a re-run gives the same point. The geometry of each silence
travels in the lead's ``evidence["region"]``, so the merge step can place it
again with the spots only the store knows (``place_from_evidence``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wastetrack import boundaries as bnd
from wastetrack.clean import _ts_i8
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import haversine_m
from wastetrack.features import FixIndex
from wastetrack.models import RECEIVER_KINDS

_EARTH_K = np.pi / 180.0 * 6371008.8  # metres per degree of latitude
#: stage-1 grid per silence (cells along each axis of the region's bounding box) and the refining grid
_GRID1 = 48
_GRID2 = 28
#: ``mass_near`` (report tracing) runs once per (report, silence) pair, and a busy road gives thousands: its
#: region total and its disk are integrated on coarser grids (shares within a few percent of the fine ones)
_MASS_GRID = 24
_MASS_DISK = 8
#: fixes looked at before / after a silence to measure the truck's course
_COURSE_FIXES = 64
#: counties below this share of the weight are not named (rounding noise of the grid)
_MIN_COUNTY_SHARE = 0.02
#: silences placed at once (memory: about 1 MB of grids per silence)
_PLACE_CHUNK = 256

#: what ``silence_geometry`` returns per silence: the facts the placement needs, nothing else
GEOMETRY_COLUMNS = (
    "key", "vehicle_id", "lon0", "lat0", "lon1", "lat1", "t0_s", "t1_s", "gap_s", "speed_mps",
    "course0_deg", "course1_deg", "stood0", "stood1", "leaving0",
)
#: the numeric ones (``geometry_from_evidence`` casts them)
_GEOMETRY_FLOATS = ("lon0", "lat0", "lon1", "lat1", "t0_s", "t1_s", "gap_s", "speed_mps", "course0_deg",
                    "course1_deg")


# ---------------------------------------------------------------- the facts of a silence


def _drive_speed(fx: FixIndex, code: np.ndarray, t0: np.ndarray, t1: np.ndarray, params: Params
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(metres, seconds) the truck drove in the ``gap_speed_window_s`` before ``t0`` and after ``t1``.

    Driving is every step between fixes except those inside a stay: a run of
    standing fixes (the stay detector's smoothed-speed test, ``stays.standing_mask``)
    longer than ``stay_min_duration_s``. A red light or a jam is shorter and
    counts: it is part of how long the road takes. Only the fixes of the windows
    are looked at (a few hundred per silence), never the whole shard.
    """
    from wastetrack.stays import standing_mask

    n = len(code)
    w = int(params.gap_speed_window_s * 1e6)
    lo_a, hi_a = fx.range_of(code, t0 - w, t0 + 1)
    lo_b, hi_b = fx.range_of(code, t1, t1 + w + 1)
    lo, hi = np.r_[lo_a, lo_b], np.r_[hi_a, hi_b]
    cnt = np.maximum(hi - lo, 0)
    if cnt.sum() == 0:
        return np.zeros(n), np.zeros(n)
    seg = np.repeat(np.arange(2 * n), cnt)
    idx = lo[seg] + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    t = fx.t_us[idx] / 1e6
    x, y = fx.x[idx], fx.y[idx]
    stand = standing_mask(seg, t, x, y, params.stay_window_s, params.stay_max_speed_kmh / 3.6,
                          jitter_m=params.stay_gps_jitter_m)
    # standing runs and their duration: a stay's steps are not driving
    brk = np.r_[True, (seg[1:] != seg[:-1]) | (stand[1:] != stand[:-1])]
    run = np.cumsum(brk) - 1
    r_t0 = pd.Series(t).groupby(run).transform("min").to_numpy()
    r_t1 = pd.Series(t).groupby(run).transform("max").to_numpy()
    in_stay = stand & (r_t1 - r_t0 > params.stay_min_duration_s)
    same = seg[1:] == seg[:-1]
    dt = np.diff(t)
    ok = same & (dt > 0) & (dt <= params.stay_silence_split_s) & ~(in_stay[1:] & in_stay[:-1])
    d = np.hypot(np.diff(x), np.diff(y))
    owner = seg[1:] % n
    dist = np.bincount(owner[ok], weights=d[ok], minlength=n)
    secs = np.bincount(owner[ok], weights=dt[ok], minlength=n)
    return dist, secs


def _course(fx: FixIndex, i: np.ndarray, direction: int, base_m: float, horizon_s: float) -> np.ndarray:
    """Bearing (degrees from north) the truck drove at fix ``i``: from the fix ``base_m`` before it to it
    (``direction`` -1), or from it to the fix ``base_m`` after it (+1); NaN when it did not move that far
    within ``horizon_s`` (a standing truck has no course)."""
    n = len(i)
    out = np.full(n, np.nan)
    if n == 0 or fx.n == 0:
        return out
    k = np.arange(1, _COURSE_FIXES + 1)
    j = i[:, None] + direction * k[None, :]
    inside = (j >= 0) & (j < fx.n) & (i[:, None] >= 0)
    jj = np.clip(j, 0, fx.n - 1)
    ii = np.clip(i, 0, fx.n - 1)[:, None]
    valid = inside & (fx.codes[jj] == fx.codes[ii]) & (np.abs(fx.t_us[jj] - fx.t_us[ii]) <= horizon_s * 1e6)
    dist = np.hypot(fx.x[jj] - fx.x[ii], fx.y[jj] - fx.y[ii])
    far = valid & (dist >= base_m)
    hit = far.any(axis=1)
    first = np.argmax(far, axis=1)
    jsel = jj[np.arange(n), first]
    dx = (fx.x[ii[:, 0]] - fx.x[jsel]) * -direction
    dy = (fx.y[ii[:, 0]] - fx.y[jsel]) * -direction
    out[hit] = np.degrees(np.arctan2(dx[hit], dy[hit])) % 360.0
    return out


def _window_move(fx: FixIndex, i: np.ndarray, direction: int, min_s: float, params: Params
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How far the truck moved between fix ``i`` and the first fix at least ``min_s`` before it (``direction``
    -1) or after it (+1), within a parked terminal's interval (``stay_silence_split_s``): (found, metres,
    seconds). The standing and the crawling test read the same window, each with its own length."""
    n = len(i)
    if n == 0 or fx.n == 0:
        return np.zeros(n, bool), np.zeros(n), np.ones(n)
    k = np.arange(1, _COURSE_FIXES + 1)
    j = np.clip(i[:, None] + direction * k[None, :], 0, fx.n - 1)
    dt = np.abs(fx.t_us[j] - fx.t_us[i][:, None]) / 1e6
    ok = (fx.codes[j] == fx.codes[i][:, None]) & (dt >= min_s) & (dt <= params.stay_silence_split_s)
    jj = j[np.arange(n), np.argmax(ok, axis=1)]
    d = np.hypot(fx.x[jj] - fx.x[i], fx.y[jj] - fx.y[i])
    return ok.any(axis=1), d, np.maximum(np.abs(fx.t_us[jj] - fx.t_us[i]) / 1e6, 1.0)


def _standing(fx: FixIndex, i: np.ndarray, direction: int, params: Params) -> np.ndarray:
    """Was the truck standing at fix ``i``: over the ``stay_window_s`` before it (``direction`` -1) or after it
    (+1) it moved no more than GPS jitter plus a crawl (the stay detector's own test)."""
    hit, d, t = _window_move(fx, i, direction, params.stay_window_s, params)
    return hit & (d <= params.stay_gps_jitter_m + params.stay_max_speed_kmh / 3.6 * t)


def _crawling(fx: FixIndex, i: np.ndarray, direction: int, params: Params) -> np.ndarray:
    """Did the truck crawl into fix ``i`` (``direction`` -1: over the ``gap_crawl_window_s`` before it) or out of
    it (+1: after it): slower than ``gap_crawl_max_kmh`` in a straight line."""
    hit, d, t = _window_move(fx, i, direction, params.gap_crawl_window_s, params)
    return hit & (d / t <= params.gap_crawl_max_kmh / 3.6)


def silence_geometry(
    keys: Sequence[str], vehicle_id: pd.Series, start: pd.Series, end: pd.Series, fixes: pd.DataFrame,
    params: Params = DEFAULT_PARAMS, index: FixIndex | None = None,
) -> pd.DataFrame:
    """Per silence (``vehicle_id`` dark from ``start`` to ``end``): where it went dark and came back, how long,
    how fast the truck drives, its course in and out, and whether it stood at either end
    (``GEOMETRY_COLUMNS``; vectorised over silences).

    ``start``/``end`` are the times of the fixes around the silence. The speed is the
    truck's own driving speed over ``gap_speed_window_s`` before and after the
    silence (red lights included, stays not); without enough driving it is
    ``gap_cruise_speed_kmh``.
    """
    fx = index or FixIndex(fixes)
    n = len(vehicle_id)
    if n == 0 or fx.n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in GEOMETRY_COLUMNS})
    code = fx.code_of(pd.Series(vehicle_id).reset_index(drop=True))
    t0 = _ts_i8(pd.Series(start).reset_index(drop=True).astype("datetime64[us, Asia/Shanghai]"))
    t1 = _ts_i8(pd.Series(end).reset_index(drop=True).astype("datetime64[us, Asia/Shanghai]"))
    i0 = fx.last_at_or_before(code, t0)
    i1 = fx.first_at_or_after(code, t1)
    ok = (i0 >= 0) & (i1 >= 0)
    i0c, i1c = np.where(ok, i0, 0), np.where(ok, i1, 0)
    lon = fixes["lon"].to_numpy(float)
    lat = fixes["lat"].to_numpy(float)
    dist, secs = _drive_speed(fx, np.where(ok, code, -1), np.where(ok, fx.t_us[i0c], 0),
                              np.where(ok, fx.t_us[i1c], 0), params)
    fallback = params.gap_cruise_speed_kmh / 3.6
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = np.where(secs >= params.gap_speed_min_driving_s, dist / secs, fallback)
    speed = np.clip(measured, params.gap_speed_min_kmh / 3.6, params.reach_speed_kmh / 3.6)
    horizon = params.gap_speed_window_s
    c0 = _course(fx, i0c, -1, params.gap_course_base_m, horizon)
    c1 = _course(fx, i1c, +1, params.gap_course_base_m, horizon)
    stood0 = _standing(fx, i0c, -1, params) | _crawling(fx, i0c, -1, params)
    stood1 = _standing(fx, i1c, +1, params) | _crawling(fx, i1c, +1, params)
    out = pd.DataFrame({
        "key": list(keys),
        "vehicle_id": pd.Series(vehicle_id).astype(str).to_numpy(object),
        "lon0": lon[i0c], "lat0": lat[i0c], "lon1": lon[i1c], "lat1": lat[i1c],
        "t0_s": fx.t_us[i0c] / 1e6, "t1_s": fx.t_us[i1c] / 1e6,
        "gap_s": (fx.t_us[i1c] - fx.t_us[i0c]) / 1e6,
        "speed_mps": speed, "course0_deg": c0, "course1_deg": c1, "stood0": stood0, "stood1": stood1,
        "leaving0": False,  # set where the origin site is known (``leaving_site``)
    })
    return out.loc[ok].reset_index(drop=True)


# ---------------------------------------------------------------- the region and its weights


def _local(lon: np.ndarray, lat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular metres around each row's (lon0, lat0) (broadcasting): exact to <0.1 % over 50 km."""
    return (lon - lon0) * _EARTH_K * np.cos(np.radians(lat0)), (lat - lat0) * _EARTH_K


def _lonlat(x: np.ndarray, y: np.ndarray, lon0: np.ndarray, lat0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lon0 + x / (_EARTH_K * np.cos(np.radians(lat0))), lat0 + y / _EARTH_K


def region_sum_m(gap_s: np.ndarray | float, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """The reachable region's bound on ``|P0 S| + |S P1|``: the farthest drive the silence allows, tipping
    included (``reach_speed_kmh``, ``unload_min_s``)."""
    return np.maximum(np.asarray(gap_s, float) - params.unload_min_s, 0.0) * params.reach_speed_kmh / 3.6


def in_region(lon: np.ndarray, lat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray, lon1: np.ndarray,
              lat1: np.ndarray, sum_m: np.ndarray) -> np.ndarray:
    """Element-wise: is (lon, lat) inside the ellipse with foci (lon0, lat0), (lon1, lat1) and this sum?"""
    return haversine_m(lon0, lat0, lon, lat) + haversine_m(lon, lat, lon1, lat1) <= sum_m


def _weights(
    x: np.ndarray, y: np.ndarray, g: dict[str, np.ndarray], params: Params
) -> np.ndarray:
    """Log weight of unloading at local points (x, y) (metres from P0) of each silence (rows of ``g``).

    Shapes broadcast: ``x``/``y`` (n, k), ``g`` arrays (n, 1). Outside the reachable
    region: -inf.
    """
    x1, y1 = g["x1"], g["y1"]
    d0 = np.hypot(x, y)
    d1 = np.hypot(x1 - x, y1 - y)
    inside = d0 + d1 <= g["sum_m"]
    # time: the dwell the drive leaves, against how long unloading takes
    drive = (d0 + d1) * params.road_detour_factor / g["speed"]
    u = g["gap_s"] - drive
    u_min = params.unload_min_s
    uu = np.maximum(u, u_min)
    # log-normal whose most common value (its mode) is the typical unloading
    sig = params.gap_unload_spread
    mu = np.log(params.gap_unload_typical_s) + sig**2
    lognormal = np.exp(-0.5 * ((np.log(uu) - mu) / sig) ** 2) / (uu * sig * np.sqrt(2 * np.pi))
    w_typ = params.gap_unload_typical_share
    dwell = w_typ * lognormal + (1.0 - w_typ) / np.maximum(g["gap_s"], u_min)
    late = np.maximum(u_min - u, 0.0) / (params.gap_speed_tolerance * drive + 60.0)
    lw = np.log(dwell) - 0.5 * late**2
    # course: ahead of the way in, behind the way out (a standing truck has none: kappa 0)
    scale = params.gap_course_base_m
    with np.errstate(invalid="ignore", divide="ignore"):
        cos0 = np.where(d0 > 0, (x * g["e0x"] + y * g["e0y"]) / d0, 1.0)
        cos1 = np.where(d1 > 0, ((x1 - x) * g["e1x"] + (y1 - y) * g["e1y"]) / d1, 1.0)
    lw = lw + g["k0"] * (cos0 - 1.0) * (1.0 - np.exp(-d0 / scale))
    lw = lw + g["k1"] * (cos1 - 1.0) * (1.0 - np.exp(-d1 / scale))
    return np.where(inside, lw, -np.inf)


def _box_sum(w: np.ndarray, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
    """Sum of ``w`` (n, gx, gy) over a (2hx+1) × (2hy+1) box around every cell (per-row half-widths)."""
    n, gx, gy = w.shape
    ii = np.zeros((n, gx + 1, gy + 1))
    ii[:, 1:, 1:] = w.cumsum(axis=1).cumsum(axis=2)
    ax = np.arange(gx)[None, :, None]
    ay = np.arange(gy)[None, None, :]
    hxb, hyb = hx[:, None, None], hy[:, None, None]
    x0, x1 = np.clip(ax - hxb, 0, gx), np.clip(ax + hxb + 1, 0, gx)
    y0, y1 = np.clip(ay - hyb, 0, gy), np.clip(ay + hyb + 1, 0, gy)
    r = np.arange(n)[:, None, None]
    return ii[r, x1, y1] - ii[r, x0, y1] - ii[r, x1, y0] + ii[r, x0, y0]


class _Map:
    """The shared places the weight looks up: site fences (no illegal tipping inside) and counties."""

    def __init__(self, sites: gpd.GeoDataFrame | None, boundaries: gpd.GeoDataFrame) -> None:
        self.boundaries = boundaries
        self.fences = None
        if sites is not None and len(sites):
            kinds = sites["kind"].astype(str)
            use = sites.loc[kinds.isin(("construction", *RECEIVER_KINDS))]
            if len(use):
                self.fences = shapely.union_all(np.asarray(use.to_crs("EPSG:4326").geometry.values))
                shapely.prepare(self.fences)

    def in_fence(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        if self.fences is None or lon.size == 0:
            return np.zeros(lon.shape, bool)
        return shapely.contains_xy(self.fences, lon, lat)

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if lon.size == 0:
            return np.zeros(0, object), np.zeros(0, object)
        w = bnd.locate(lon.ravel(), lat.ravel(), self.boundaries)
        return (w["county_adcode"].to_numpy(object).reshape(lon.shape),
                w["province_adcode"].to_numpy(object).reshape(lon.shape))


def _params_arrays(geo: pd.DataFrame, params: Params) -> dict[str, np.ndarray]:
    """Per-silence constants of the weight as (n, 1) arrays, in metres from P0."""
    lon0, lat0 = geo["lon0"].to_numpy(float), geo["lat0"].to_numpy(float)
    x1, y1 = _local(geo["lon1"].to_numpy(float), geo["lat1"].to_numpy(float), lon0, lat0)
    gap = geo["gap_s"].to_numpy(float)
    d01 = np.hypot(x1, y1)
    sum_m = np.maximum(region_sum_m(gap, params), d01 + 1.0)

    def unit(deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ok = np.isfinite(deg)
        r = np.radians(np.where(ok, deg, 0.0))
        return np.sin(r), np.cos(r), np.where(ok, params.gap_course_kappa, 0.0)

    e0x, e0y, k0 = unit(geo["course0_deg"].to_numpy(float))
    e1x, e1y, k1 = unit(geo["course1_deg"].to_numpy(float))
    cols = {"x1": x1, "y1": y1, "gap_s": gap, "sum_m": sum_m, "speed": geo["speed_mps"].to_numpy(float),
            "e0x": e0x, "e0y": e0y, "k0": k0, "e1x": e1x, "e1y": e1y, "k1": k1, "lon0": lon0, "lat0": lat0}
    return {k: np.asarray(v, float)[:, None] for k, v in cols.items()}


def _frame(g: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per silence: centre, unit axes and semi-axes of the region in metres from P0."""
    cx, cy = g["x1"] / 2.0, g["y1"] / 2.0
    d01 = np.hypot(g["x1"], g["y1"])
    ux = np.where(d01 > 1.0, g["x1"] / np.maximum(d01, 1e-9), 1.0)
    uy = np.where(d01 > 1.0, g["y1"] / np.maximum(d01, 1e-9), 0.0)
    a = g["sum_m"] / 2.0
    b = np.sqrt(np.maximum(a**2 - (d01 / 2.0) ** 2, 1.0))
    return cx, cy, ux, uy, a, b


def _grid(cx: np.ndarray, cy: np.ndarray, ux: np.ndarray, uy: np.ndarray, half_u: np.ndarray, half_v: np.ndarray,
          size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y) of a size × size grid per silence, axis-aligned to (ux, uy), and the cell sizes."""
    s = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    su = s[None, :, None] * half_u[:, :, None]
    sv = s[None, None, :] * half_v[:, :, None]
    x = cx[:, :, None] + su * ux[:, :, None] - sv * uy[:, :, None]
    y = cy[:, :, None] + su * uy[:, :, None] + sv * ux[:, :, None]
    return x, y, 2.0 * half_u[:, 0] / size, 2.0 * half_v[:, 0] / size


def _spot_pairs(geo: pd.DataFrame, g: dict[str, np.ndarray], spots: pd.DataFrame | None) -> pd.DataFrame:
    """(silence row, spot row, weight, x, y) of every known spot inside a silence's reachable region."""
    empty = pd.DataFrame({"r": np.zeros(0, int), "s": np.zeros(0, int), "weight": np.zeros(0),
                          "x": np.zeros(0), "y": np.zeros(0)})
    if spots is None or spots.empty or geo.empty:
        return empty
    slon, slat = spots["lon"].to_numpy(float), spots["lat"].to_numpy(float)
    # only the spots within each region's longitude band are tested (spots sorted by longitude once, two
    # binary searches per silence): linear in silences and spots, plus the pairs that are near
    order = np.argsort(slon, kind="stable")
    half = g["sum_m"][:, 0] / 2.0 / (_EARTH_K * np.cos(np.radians(g["lat0"][:, 0])))
    mid = g["lon0"][:, 0] + g["x1"][:, 0] / 2.0 / (_EARTH_K * np.cos(np.radians(g["lat0"][:, 0])))
    lo = np.searchsorted(slon[order], mid - half, side="left")
    hi = np.searchsorted(slon[order], mid + half, side="right")
    cnt = np.maximum(hi - lo, 0)
    if cnt.sum() == 0:
        return empty
    r_idx = np.repeat(np.arange(len(geo)), cnt)
    s_idx = order[lo[r_idx] + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))]
    x, y = _local(slon[s_idx], slat[s_idx], g["lon0"][r_idx, 0], g["lat0"][r_idx, 0])
    d0 = np.hypot(x, y)
    d1 = np.hypot(g["x1"][r_idx, 0] - x, g["y1"][r_idx, 0] - y)
    ok = d0 + d1 <= g["sum_m"][r_idx, 0]
    t0 = geo["t0_s"].to_numpy(float)[r_idx]
    t1 = geo["t1_s"].to_numpy(float)[r_idx]
    w0 = spots["w0"].to_numpy(float)[s_idx] if "w0" in spots else np.full(len(s_idx), np.nan)
    w1 = spots["w1"].to_numpy(float)[s_idx] if "w1" in spots else np.full(len(s_idx), np.nan)
    at_the_time = np.isfinite(w0) & np.isfinite(w1) & (w0 <= t1) & (w1 >= t0)
    weight = np.where(at_the_time, spots["weight_now"].to_numpy(float)[s_idx] if "weight_now" in spots
                      else 0.0, spots["weight"].to_numpy(float)[s_idx])
    ok &= weight > 0
    out = pd.DataFrame({"r": r_idx[ok], "s": s_idx[ok], "weight": weight[ok], "x": x[ok], "y": y[ok]})
    return out.sort_values(["r", "s"], kind="stable", ignore_index=True)


def known_spots(
    reports: pd.DataFrame | None = None, earlier: pd.DataFrame | None = None, params: Params = DEFAULT_PARAMS
) -> pd.DataFrame:
    """Places where dumping is known, as the placement weighs them: columns lon, lat, w0, w1, weight,
    weight_now, source.

    ``reports``: dumping reports (with their window ``w0``/``w1``, epoch s): waste
    seen there — in a silence's time it is very likely that truck's load
    (``gap_report_spot_weight``), otherwise a spot dumpers use
    (``gap_known_spot_weight``). ``earlier``: points where earlier nights found
    dumping (``lon``, ``lat``: illegal dumps, traced reports).
    """
    frames = []
    if reports is not None and len(reports):
        frames.append(pd.DataFrame({
            "lon": reports["lon"].to_numpy(float), "lat": reports["lat"].to_numpy(float),
            "w0": reports["w0"].to_numpy(float), "w1": reports["w1"].to_numpy(float),
            "weight": params.gap_known_spot_weight, "weight_now": params.gap_report_spot_weight,
            "source": reports["report_id"].astype(str).to_numpy(object) if "report_id" in reports else "report",
        }))
    if earlier is not None and len(earlier):
        frames.append(pd.DataFrame({
            "lon": earlier["lon"].to_numpy(float), "lat": earlier["lat"].to_numpy(float),
            "w0": np.nan, "w1": np.nan, "weight": params.gap_known_spot_weight,
            "weight_now": params.gap_known_spot_weight,
            "source": earlier["source"].astype(str).to_numpy(object) if "source" in earlier else "earlier",
        }))
    if not frames:
        return pd.DataFrame(columns=["lon", "lat", "w0", "w1", "weight", "weight_now", "source"])
    out = pd.concat(frames, ignore_index=True)
    return out.loc[np.isfinite(out["lon"]) & np.isfinite(out["lat"])].reset_index(drop=True)


def _spot_disk_mass(pr: np.ndarray, sx: np.ndarray, sy: np.ndarray, mass: np.ndarray, radius: float) -> np.ndarray:
    """Per spot, the mass of the spots of the same silence within ``radius`` (itself included).

    A k-d tree over (x, y, silence × a gulf no radius bridges) finds the pairs: linear in the
    pairs that are near, where an all-pairs matrix grew with the square of every spot of the
    night (a busy night's merge step held gigabytes of it).
    """
    from scipy.spatial import cKDTree

    gulf = 1e3 * (radius + float(np.ptp(sx) + np.ptp(sy)) + 1.0)
    tree = cKDTree(np.column_stack([sx, sy, pr.astype(float) * gulf]))
    pairs = tree.query_pairs(radius, output_type="ndarray")
    out = mass.astype(float).copy()
    if len(pairs):
        np.add.at(out, pairs[:, 0], mass[pairs[:, 1]])
        np.add.at(out, pairs[:, 1], mass[pairs[:, 0]])
    return out


def place_gaps(
    geo: pd.DataFrame, sites: gpd.GeoDataFrame | None, boundaries: gpd.GeoDataFrame,
    params: Params = DEFAULT_PARAMS, spots: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The most likely unloading place and the counties of each silence's reachable region.

    ``geo``: ``GEOMETRY_COLUMNS`` (``silence_geometry``). Returns per row ``key``,
    ``lon``/``lat`` (the lead's point), ``county_adcode``/``province_adcode``
    (the likeliest county, which holds the point), ``candidate_counties`` (list of
    ``{county_adcode, province_adcode, share}``, largest first), ``region``
    (the geometry, for the evidence), ``placement`` (how the point was chosen:
    ``method`` ``course_and_time`` or ``known_spot``, ``mass_share``: the weight
    within ``gap_place_radius_m`` of it) and ``provinces`` (how many the region's
    weight touches). Vectorised over silences (grids of a few thousand points each). One thread: the
    prepared fences and the boundaries' tree are GEOS objects that must not be shared between threads
    (placing chunks on threads corrupted the heap of a 100 M-fix night).
    """
    cols = ["key", "lon", "lat", "county_adcode", "province_adcode", "candidate_counties", "region",
            "placement", "provinces"]
    if geo is None or geo.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    geo = geo.reset_index(drop=True)
    mp = _Map(sites, boundaries)
    # silences are placed independently, a chunk at a time: the grids are (silences × cells) arrays, and a
    # delta night's merge step places thousands
    chunks = [_place_chunk(geo.iloc[i:i + _PLACE_CHUNK].reset_index(drop=True), mp, params, spots, cols)
              for i in range(0, len(geo), _PLACE_CHUNK)]
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def _place_chunk(geo: pd.DataFrame, mp: _Map, params: Params, spots: pd.DataFrame | None,
                 cols: list[str]) -> pd.DataFrame:
    """``place_gaps`` on a few hundred silences."""
    n = len(geo)
    g = _params_arrays(geo, params)
    cx, cy, ux, uy, a, b = _frame(g)
    radius = params.gap_place_radius_m

    # ---- stage 1: the whole region on a grid; mass of every cell
    x, y, cell_u, cell_v = _grid(cx, cy, ux, uy, a, b, _GRID1)
    xf, yf = x.reshape(n, -1), y.reshape(n, -1)
    lw = _weights(xf, yf, g, params)
    lon_f, lat_f = _lonlat(xf, yf, g["lon0"], g["lat0"])
    lw = np.where(mp.in_fence(lon_f, lat_f), lw + np.log(params.gap_fence_weight), lw)
    top = np.max(np.where(np.isfinite(lw), lw, -1e300), axis=1, keepdims=True)
    area = (cell_u * cell_v)[:, None]
    mass = np.where(np.isfinite(lw), np.exp(lw - top), 0.0) * area
    # point candidates: known spots (a narrow bump of weight A on the local density: A · density · 2πσ²) and,
    # for a truck that went dark and came back standing at one place, that place (it most likely never left)
    pts = _point_candidates(geo, g, spots, mass.sum(axis=1), top[:, 0], mp, params)
    pr = pts["r"].to_numpy()
    lws = pts["lw"].to_numpy(float)
    spot_mass = pts["mass"].to_numpy(float)
    slon, slat = pts["lon"].to_numpy(float), pts["lat"].to_numpy(float)
    # county of every cell with weight, and of every spot
    heavy = mass > 1e-6 * mass.max(axis=1, keepdims=True)
    county = np.full(mass.shape, "", dtype=object)
    prov = np.full(mass.shape, "", dtype=object)
    if heavy.any():
        c_, p_ = mp.locate(lon_f[heavy], lat_f[heavy])
        county[heavy], prov[heavy] = c_, p_
    s_county, s_prov = mp.locate(slon, slat)
    shares, best_county, n_prov = _county_shares(mass, county, prov, pr, spot_mass, s_county, s_prov)

    # ---- best place inside the likeliest county: disk mass of cells, and of spots
    in_best = county == best_county[:, None]
    hx = np.maximum(np.round(radius / np.maximum(cell_u, 1e-9)).astype(int), 0)
    hy = np.maximum(np.round(radius / np.maximum(cell_v, 1e-9)).astype(int), 0)
    disk = _box_sum(mass.reshape(n, _GRID1, _GRID1), hx, hy).reshape(n, -1)
    disk = np.where(in_best & (mass > 0), disk, -1.0)
    if len(pr):
        # a spot's disk holds its own mass, the spots near it and the density around it
        sx, sy = pts["x"].to_numpy(float), pts["y"].to_numpy(float)
        local = np.exp(np.where(np.isfinite(lws), lws, -np.inf) - top[pr, 0]) * np.pi * radius**2
        s_disk = _spot_disk_mass(pr, sx, sy, spot_mass, radius) + np.where(np.isfinite(local), local, 0.0)
        s_disk = np.where(s_county == best_county[pr], s_disk, -1.0)
    else:
        s_disk = np.zeros(0)
    cell_best = _central_argmax(disk, xf, yf)
    cell_val = disk[np.arange(n), cell_best]
    spot_best = np.full(n, -1)
    spot_val = np.full(n, -1.0)
    if len(pr):
        order = np.lexsort((np.arange(len(pr)), -s_disk, pr))  # per silence: best disk first, then spot order
        first = np.r_[True, pr[order][1:] != pr[order][:-1]]
        spot_best[pr[order][first]] = order[first]
        spot_val[pr[order][first]] = s_disk[order][first]
    use_spot = spot_val > cell_val

    # ---- stage 2: refine the best cell on a finer grid (the spot, when a spot won, is the point)
    bx, by = xf[np.arange(n), cell_best][:, None], yf[np.arange(n), cell_best][:, None]
    half_u = np.maximum((hx[:, None] + 1.5) * cell_u[:, None], 1.5 * radius)
    half_v = np.maximum((hy[:, None] + 1.5) * cell_v[:, None], 1.5 * radius)
    x2, y2, cu2, cv2 = _grid(bx, by, ux, uy, half_u, half_v, _GRID2)
    x2f, y2f = x2.reshape(n, -1), y2.reshape(n, -1)
    lw2 = _weights(x2f, y2f, g, params)
    lon2, lat2 = _lonlat(x2f, y2f, g["lon0"], g["lat0"])
    lw2 = np.where(mp.in_fence(lon2, lat2), lw2 + np.log(params.gap_fence_weight), lw2)
    m2 = np.where(np.isfinite(lw2), np.exp(lw2 - top), 0.0)
    live = m2 > 1e-9
    c2 = np.full(m2.shape, "", dtype=object)
    if live.any():
        c2[live] = mp.locate(lon2[live], lat2[live])[0]
    m2 = np.where(c2 == best_county[:, None], m2, 0.0)
    h2x = np.maximum(np.round(radius / np.maximum(cu2, 1e-9)).astype(int), 0)
    h2y = np.maximum(np.round(radius / np.maximum(cv2, 1e-9)).astype(int), 0)
    d2 = _box_sum(m2.reshape(n, _GRID2, _GRID2), h2x, h2y).reshape(n, -1)
    d2 = np.where(m2 > 0, d2, -1.0)
    k2 = _central_argmax(d2, x2f, y2f)
    ok2 = d2[np.arange(n), k2] > 0
    px = np.where(ok2, x2f[np.arange(n), k2], bx[:, 0])
    py = np.where(ok2, y2f[np.arange(n), k2], by[:, 0])
    if len(pr):
        sb = np.where(use_spot, spot_best, 0)
        px = np.where(use_spot, pts["x"].to_numpy(float)[sb], px)
        py = np.where(use_spot, pts["y"].to_numpy(float)[sb], py)
    lon, lat = _lonlat(px, py, g["lon0"][:, 0], g["lat0"][:, 0])
    p_county, p_prov = mp.locate(lon, lat)
    total = mass.sum(axis=1) + (np.bincount(pr, weights=spot_mass, minlength=n) if len(pr) else 0.0)
    chosen = np.where(use_spot, spot_val, cell_val)
    rows = []
    for i in range(n):  # one small dict per silence (hundreds a night): the evidence
        rows.append({
            "key": geo["key"].iloc[i],
            "lon": float(lon[i]), "lat": float(lat[i]),
            "county_adcode": str(p_county[i] or best_county[i] or ""),
            "province_adcode": str(p_prov[i] or ""),
            "candidate_counties": shares[i],
            "region": region_evidence(geo.iloc[i], float(g["sum_m"][i, 0])),
            "placement": {
                "method": str(pts["method"].iloc[spot_best[i]]) if use_spot[i] else "course_and_time",
                "radius_m": radius,
                "mass_share": round(float(max(chosen[i], 0.0) / total[i]), 3) if total[i] > 0 else None,
                **({"spot": str(pts["source"].iloc[spot_best[i]])}
                   if use_spot[i] and pts["source"].iloc[spot_best[i]] else {}),
            },
            "provinces": int(n_prov[i]),
        })
    return pd.DataFrame(rows, columns=cols)


def _point_candidates(
    geo: pd.DataFrame, g: dict[str, np.ndarray], spots: pd.DataFrame | None, cells_mass: np.ndarray,
    top: np.ndarray, mp: _Map, params: Params,
) -> pd.DataFrame:
    """Places that carry a mass of their own beside the grid: (r, x, y, lon, lat, lw, mass, method, source).

    * a known spot inside the region: ``weight`` · density there · 2πσ² (``report_place_sigma_m``);
    * where a truck went dark and came back standing still, at one place (P0 and P1 within
      ``gap_place_radius_m`` of each other): the midpoint, with ``gap_stood_weight`` times the mass of every
      drive the silence allows — a truck that stopped, switched off and was found standing there again
      most likely never left (a red light passed twice is the rare other way);
    * otherwise where the truck went dark standing or crawling (``stood0``), with the same mass: a loaded
      truck slows to a crawl only in a jam or where it means to tip, and one that then stays dark long
      enough to unload had arrived. Not when it crawled within ``gap_leaving_site_m`` of the site it had
      just loaded at (``leaving0``): that is the gate and the convoy out, and it counts as still driving.
      Coming back standing (``stood1``) alone is no such sign: an empty truck on its way back stands at
      every light, and where it reappears says only what course and time say;
    * where a truck still driving went dark, ``gap_dark_ahead_m`` ahead on its course, with
      ``gap_dark_here_weight`` times that mass: drivers switch off either early on the way or as they
      reach the spot, and the spot is ahead of where they did, never behind.
    """
    cols = ["r", "x", "y", "lon", "lat", "lw", "mass", "method", "source"]
    pairs = _spot_pairs(geo, g, spots)
    frames = []
    if len(pairs):
        pr = pairs["r"].to_numpy()
        lws = _weights(pairs["x"].to_numpy()[:, None], pairs["y"].to_numpy()[:, None],
                       {k: v[pr] for k, v in g.items()}, params)[:, 0]
        slon, slat = _lonlat(pairs["x"].to_numpy(), pairs["y"].to_numpy(), g["lon0"][pr, 0], g["lat0"][pr, 0])
        lws = np.where(mp.in_fence(slon, slat), lws + np.log(params.gap_fence_weight), lws)
        m = pairs["weight"].to_numpy() * np.exp(lws - top[pr]) * 2 * np.pi * params.report_place_sigma_m**2
        src = spots["source"].to_numpy(object)[pairs["s"].to_numpy()] if "source" in spots else ""
        frames.append(pd.DataFrame({"r": pr, "x": pairs["x"].to_numpy(), "y": pairs["y"].to_numpy(), "lon": slon,
                                    "lat": slat, "lw": lws, "mass": np.where(np.isfinite(m), m, 0.0),
                                    "method": "known_spot", "source": src}))
    if {"stood0", "stood1"} <= set(geo.columns):
        s0 = geo["stood0"].fillna(False).astype(bool).to_numpy()
        s1 = geo["stood1"].fillna(False).astype(bool).to_numpy()
        if "leaving0" in geo:
            s0 = s0 & ~geo["leaving0"].fillna(False).astype(bool).to_numpy()
        close = np.hypot(g["x1"][:, 0], g["y1"][:, 0]) <= params.gap_place_radius_m
        # one place when both ends stood together (their midpoint); else where it went dark (P0, the origin),
        # or, still driving, a little ahead on its course (none known: at P0)
        ahead = np.where(g["k0"][:, 0] > 0, params.gap_dark_ahead_m, 0.0)
        for pick, along, fwd, method, weight in (
            (s0 & s1 & close, 0.5, 0.0, "stood_there", params.gap_stood_weight),
            (s0 & ~(s1 & close), 0.0, 0.0, "stood_going_dark", params.gap_stood_weight),
            (~s0 & ~(s1 & close), 0.0, 1.0, "went_dark_here", params.gap_dark_here_weight),
        ):
            r = np.flatnonzero(pick)
            if not r.size or weight <= 0:
                continue
            x = g["x1"][r, 0] * along + fwd * ahead[r] * g["e0x"][r, 0]
            y = g["y1"][r, 0] * along + fwd * ahead[r] * g["e0y"][r, 0]
            lws = _weights(x[:, None], y[:, None], {k: v[r] for k, v in g.items()}, params)[:, 0]
            lon, lat = _lonlat(x, y, g["lon0"][r, 0], g["lat0"][r, 0])
            fence = np.where(mp.in_fence(lon, lat), params.gap_fence_weight, 1.0)
            lws = lws + np.log(fence)
            mass = np.where(np.isfinite(lws), weight * fence * cells_mass[r], 0.0)
            frames.append(pd.DataFrame({"r": r, "x": x, "y": y, "lon": lon, "lat": lat, "lw": lws,
                                        "mass": mass, "method": method, "source": ""}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c not in ("method", "source") else object)
                             for c in cols}).astype({"r": int})
    return pd.concat(frames, ignore_index=True)[cols]


def _central_argmax(score: np.ndarray, x: np.ndarray, y: np.ndarray, tol: float = 0.02) -> np.ndarray:
    """Per row, the index of the best ``score``; among near-ties (within ``tol`` of the best) the one nearest
    their centre. A drive-through silence weighs the whole stretch between P0 and P1 alike: its middle,
    not whichever end the grid happens to list first, is the place to search."""
    best = score.max(axis=1, keepdims=True)
    near = (score >= best - tol * np.abs(best)) & (score > 0)
    wsum = np.maximum(near.sum(axis=1, keepdims=True), 1)
    mx = np.where(near, x, 0.0).sum(axis=1, keepdims=True) / wsum
    my = np.where(near, y, 0.0).sum(axis=1, keepdims=True) / wsum
    d = np.where(near, np.hypot(x - mx, y - my), np.inf)
    pick = np.argmin(d, axis=1)
    return np.where(near.any(axis=1), pick, np.argmax(score, axis=1))


def mass_near(geo: pd.DataFrame, lon: np.ndarray, lat: np.ndarray, radius_m: float,
              params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Per silence (row of ``geo``), the share of its unloading weight within ``radius_m`` of (lon, lat).

    How strongly a silence points at one spot: a truck that went dark on its way
    past a pile and came back just beyond it puts most of its weight there; one
    dark for an hour spreads it over a county. Same weights as ``place_gaps``
    (no map, no known spots): a grid over the region plus a fine grid on the disk.
    """
    n = len(geo)
    if n == 0:
        return np.zeros(0)
    geo = geo.reset_index(drop=True)
    g = _params_arrays(geo, params)
    cx, cy, ux, uy, a, b = _frame(g)
    x, y, cu, cv = _grid(cx, cy, ux, uy, a, b, _MASS_GRID)
    lw = _weights(x.reshape(n, -1), y.reshape(n, -1), g, params)
    top = np.max(np.where(np.isfinite(lw), lw, -1e300), axis=1, keepdims=True)
    total = (np.where(np.isfinite(lw), np.exp(lw - top), 0.0) * (cu * cv)[:, None]).sum(axis=1)
    px, py = _local(np.asarray(lon, float), np.asarray(lat, float), g["lon0"][:, 0], g["lat0"][:, 0])
    half = np.full((n, 1), float(radius_m))
    dx, dy, du, dv = _grid(px[:, None], py[:, None], np.ones((n, 1)), np.zeros((n, 1)), half, half, _MASS_DISK)
    inside = np.hypot(dx - px[:, None, None], dy - py[:, None, None]) <= radius_m
    ld = _weights(dx.reshape(n, -1), dy.reshape(n, -1), g, params)
    disk = (np.where(np.isfinite(ld) & inside.reshape(n, -1), np.exp(ld - top), 0.0) * (du * dv)[:, None]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.minimum(disk / total, 1.0), 0.0)


def _county_shares(
    mass: np.ndarray, county: np.ndarray, prov: np.ndarray, pr: np.ndarray, spot_mass: np.ndarray,
    s_county: np.ndarray, s_prov: np.ndarray,
) -> tuple[list[list[dict]], np.ndarray, np.ndarray]:
    """Per silence: counties by share of the weight (largest first, ties by adcode), the likeliest county,
    and how many provinces hold a share.

    Integer codes and ``bincount`` over the cells with weight (a chunk has hundreds of thousands of cells
    and a handful of counties): string columns and a group-by per silence cost half of the placement.
    """
    n = mass.shape[0]
    live = (mass > 0) & (county != "")
    spot_live = (spot_mass > 0) & (s_county != "")
    r = np.r_[np.nonzero(live)[0], pr[spot_live]].astype(np.int64)
    c_all = np.r_[county[live], s_county[spot_live]].astype(object)
    p_all = np.r_[prov[live], s_prov[spot_live]].astype(object)
    m_all = np.r_[mass[live], spot_mass[spot_live]].astype(float)
    shares: list[list[dict]] = [[] for _ in range(n)]
    best = np.full(n, "", dtype=object)
    n_prov = np.zeros(n, int)
    if r.size == 0:
        return shares, best, n_prov
    # codes in sorted order of the adcodes, so ordering by code is ordering by adcode
    c_code, c_names = pd.factorize(c_all, sort=True)
    p_code, p_names = pd.factorize(p_all, sort=True)
    n_c, n_p = len(c_names), max(len(p_names), 1)
    key = (r * n_c + c_code) * n_p + p_code
    uk, inv = np.unique(key, return_inverse=True)
    m = np.bincount(inv, weights=m_all)
    g_r, rest = np.divmod(uk, n_c * n_p)
    g_c, g_p = np.divmod(rest, n_p)
    tot = np.bincount(g_r, weights=m, minlength=n)
    share = m / tot[g_r]
    order = np.lexsort((g_c, -share, g_r))
    g_r, g_c, g_p, share = g_r[order], g_c[order], g_p[order], share[order]
    bounds = np.flatnonzero(np.r_[True, g_r[1:] != g_r[:-1], True])
    for a, b in pairwise(bounds.tolist()):
        sel = np.arange(a, b)
        kept = sel[share[sel] >= _MIN_COUNTY_SHARE]
        if kept.size == 0:
            kept = sel[:1]
        i = int(g_r[a])
        shares[i] = [{"county_adcode": str(c_names[g_c[k]]), "province_adcode": str(p_names[g_p[k]]),
                      "share": round(float(share[k]), 3)} for k in kept]
        best[i] = str(c_names[g_c[kept[0]]])
        n_prov[i] = len(np.unique(g_p[kept]))
    return shares, best, n_prov


def region_evidence(row: pd.Series, sum_m: float) -> dict:
    """The region as the lead carries it: enough to test a report against it and to place it again."""
    def num(v: object, nd: int) -> float | None:
        f = float(v)  # type: ignore[arg-type]
        return round(f, nd) if np.isfinite(f) else None

    return {
        "foci": [[num(row["lon0"], 7), num(row["lat0"], 7)], [num(row["lon1"], 7), num(row["lat1"], 7)]],
        "t0_s": num(row["t0_s"], 0), "t1_s": num(row["t1_s"], 0),
        "gap_s": num(row["gap_s"], 1),
        "sum_max_m": num(sum_m, 0),
        "speed_kmh": num(float(row["speed_mps"]) * 3.6, 2),
        "course_in_deg": num(row["course0_deg"], 1),
        "course_out_deg": num(row["course1_deg"], 1),
        "stood_in": bool(row.get("stood0", False)),
        "stood_out": bool(row.get("stood1", False)),
        "leaving_site": bool(row.get("leaving0", False)),
    }


def geometry_from_evidence(keys: Sequence[str], regions: Sequence[dict], vehicles: Sequence[str]) -> pd.DataFrame:
    """``GEOMETRY_COLUMNS`` back from leads' ``evidence["region"]`` (the merge step places them again)."""
    rows = []
    for k, r, v in zip(keys, regions, vehicles, strict=True):
        (lon0, lat0), (lon1, lat1) = r["foci"]
        rows.append({
            "key": k, "vehicle_id": v, "lon0": lon0, "lat0": lat0, "lon1": lon1, "lat1": lat1,
            "t0_s": r["t0_s"], "t1_s": r["t1_s"], "gap_s": r["gap_s"], "speed_mps": float(r["speed_kmh"]) / 3.6,
            "course0_deg": np.nan if r.get("course_in_deg") is None else r["course_in_deg"],
            "course1_deg": np.nan if r.get("course_out_deg") is None else r["course_out_deg"],
            "stood0": bool(r.get("stood_in", False)), "stood1": bool(r.get("stood_out", False)),
            "leaving0": bool(r.get("leaving_site", False)),
        })
    out = pd.DataFrame(rows, columns=list(GEOMETRY_COLUMNS))
    for c in _GEOMETRY_FLOATS:
        out[c] = out[c].astype(float)
    return out


def region_covers(region: dict, lon: float, lat: float) -> bool:
    """Is (lon, lat) inside a lead's reachable region (``evidence["region"]``)?"""
    (lon0, lat0), (lon1, lat1) = region["foci"]
    return bool(in_region(np.array([lon]), np.array([lat]), np.array([lon0]), np.array([lat0]),
                          np.array([lon1]), np.array([lat1]), np.array([float(region["sum_max_m"])]))[0])


def leaving_site(geo: pd.DataFrame, origin_site_id: np.ndarray, sites: gpd.GeoDataFrame | None,
                 params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Per silence: did the truck go dark within ``gap_leaving_site_m`` of the fence of ``origin_site_id`` (the
    site it loaded at)? A crawl there is the way out of the site, not the arrival at a spot."""
    from wastetrack.geofence import distance_to_site

    if len(geo) == 0 or sites is None or not len(sites) or "site_id" not in sites:
        return np.zeros(len(geo), bool)
    d = distance_to_site(geo["lon0"].to_numpy(float), geo["lat0"].to_numpy(float), origin_site_id, sites)
    return np.nan_to_num(d, nan=np.inf) <= params.gap_leaving_site_m


# ---------------------------------------------------------------- the stage (called per shard)


def locate_gap_hauls(
    hauls: pd.DataFrame, fixes: pd.DataFrame, sites: gpd.GeoDataFrame | None, boundaries: gpd.GeoDataFrame,
    params: Params = DEFAULT_PARAMS, spots: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hauls with every gap unloading placed, the placements by ``haul_id``).

    A haul whose unloading is a silence (``unload_evidence`` ``gap``) gets its
    ``unload_lon/lat`` and ``gap_lon/lat`` at the most likely place and its
    county there; ``detect`` then builds the lead from it and ``gap_evidence``
    adds the region to the lead's evidence.
    """
    if hauls.empty or "unload_evidence" not in hauls:
        return hauls, place_gaps(None, sites, boundaries, params)
    is_gap = (hauls["unload_evidence"].astype(str) == "gap") & hauls["gap_start"].notna() & hauls["gap_end"].notna()
    if not is_gap.any():
        return hauls, place_gaps(None, sites, boundaries, params)
    g = hauls.loc[is_gap]
    geo = silence_geometry(g["haul_id"].astype(str).tolist(), g["vehicle_id"], g["gap_start"], g["gap_end"],
                           fixes, params)
    if "origin_site_id" in g and len(geo):
        origin = g.set_index(g["haul_id"].astype(str))["origin_site_id"]
        geo["leaving0"] = leaving_site(geo, origin.reindex(geo["key"].astype(str)).to_numpy(object), sites, params)
    placed = place_gaps(geo, sites, boundaries, params, spots)
    if placed.empty:
        return hauls, placed
    at = placed.set_index("key")
    out = hauls.copy()
    rows = out.index[is_gap.to_numpy()]
    hid = out.loc[rows, "haul_id"].astype(str)
    have = hid.isin(at.index).to_numpy()
    rows, hid = rows[have], hid[have]
    for col, src in (("unload_lon", "lon"), ("unload_lat", "lat"), ("gap_lon", "lon"), ("gap_lat", "lat")):
        out.loc[rows, col] = at.loc[hid, src].to_numpy(float)
    for col, src in (("unload_county_adcode", "county_adcode"), ("unload_province_adcode", "province_adcode")):
        out.loc[rows, col] = at.loc[hid, src].astype(str).to_numpy(object)
    return out, placed


def gap_evidence(leads: pd.DataFrame, placed: pd.DataFrame) -> pd.DataFrame:
    """Track-gap leads with their region in the evidence: ``region``, ``placement``, ``candidate_counties``,
    ``cross_border_possible`` (the region's weight touches more than one province)."""
    if leads.empty or placed is None or placed.empty or "haul_id" not in leads:
        return leads
    at = placed.set_index("key")
    out = leads.copy()
    evs = []
    for kind, hid, ev in zip(out["kind"], out["haul_id"], out["evidence"], strict=True):
        if kind == "track_gap" and str(hid) in at.index:
            p = at.loc[str(hid)]
            ev = {**ev, "region": p["region"], "placement": p["placement"],
                  "candidate_counties": p["candidate_counties"], "cross_border_possible": bool(p["provinces"] > 1)}
        evs.append(ev)
    out["evidence"] = evs
    return out


def place_from_evidence(
    leads: pd.DataFrame, sites: gpd.GeoDataFrame | None, boundaries: gpd.GeoDataFrame, params: Params,
    spots: pd.DataFrame | None,
) -> pd.DataFrame:
    """Track-gap leads placed again with more known spots (the merge step: the store's earlier findings).

    Only the point, its county and province, the cross-border flag and the
    evidence of the placement change; the lead's id, times and vehicle do not.
    """
    if leads.empty or spots is None or spots.empty:
        return leads
    has = [i for i, (k, ev) in enumerate(zip(leads["kind"], leads["evidence"], strict=True))
           if k == "track_gap" and isinstance(ev, dict) and isinstance(ev.get("region"), dict)]
    if not has:
        return leads
    sub = leads.iloc[has]
    geo = geometry_from_evidence([str(i) for i in has], [ev["region"] for ev in sub["evidence"]],
                                 list(sub["vehicle_id"].astype(str)))
    # a region with no known spot in it is placed as the shard placed it (without spots): only the others
    # are placed again (a delta night has thousands of track gaps, and a few have a spot)
    touched = np.unique(_spot_pairs(geo, _params_arrays(geo, params), spots)["r"].to_numpy())
    has = [has[r] for r in touched]
    geo = geo.iloc[touched].reset_index(drop=True)
    placed = place_gaps(geo, sites, boundaries, params, spots).set_index("key")
    out = leads.copy()
    evs = list(out["evidence"])
    for i in has:
        p = placed.loc[str(i)]
        out.iloc[i, out.columns.get_loc("lon")] = p["lon"]
        out.iloc[i, out.columns.get_loc("lat")] = p["lat"]
        out.iloc[i, out.columns.get_loc("county_adcode")] = p["county_adcode"]
        out.iloc[i, out.columns.get_loc("province_adcode")] = p["province_adcode"]
        evs[i] = {**evs[i], "placement": p["placement"], "candidate_counties": p["candidate_counties"],
                  "cross_border_possible": bool(p["provinces"] > 1)}
    out["evidence"] = evs
    op = out["origin_county_adcode"].astype(str).str[:2]
    pp = out["province_adcode"].astype(str).str[:2]
    out["cross_border"] = (op != "") & (pp != "") & (op != pp)
    return out


__all__ = [
    "GEOMETRY_COLUMNS", "gap_evidence", "geometry_from_evidence", "in_region", "known_spots", "leaving_site",
    "locate_gap_hauls", "mass_near", "place_from_evidence", "place_gaps", "region_covers", "region_sum_m",
    "silence_geometry",
]
