"""What the unloading model sees of a candidate stop or silence: array code over all candidates at once.

A haul's candidates are its off-site stays and its silences (``hauls.track_candidates``).
Whether one of them was the unloading shows in how the truck behaved around it,
so every feature is a fact of the track, measured the same way for a dense or a
sparse feed:

* the stop itself — how long the truck stood (``dwell_s``: the span plus the idle
  minutes around it), how many fixes saw it, for a silence the time not explained
  by driving between where it went dark and where it came back;
* the way there and away — effective speed over the minutes before and after,
  the turn between arriving and leaving (dumpers turn back), the detour from the
  line between where the truck came from and where it went next;
* its place in the haul — distance from the loading site, and how that compares
  with the farthest the truck got (the unloading is where a haul turns back),
  time since departure and until the haul ended, how the haul ended (loaded
  again, parked, terminal off);
* the truck's habits — distance to its usual park (where it stands for hours),
  to the receivers and sites it visits, how many of its other stops were here,
  and how close the haul's fixes came to those receivers before and after the
  candidate (a sparse feed can miss the stay of a receiver visit, not the fixes);
* the time of night; the load and tipping sensors where fitted (-1: unknown).

Every feature depends on the vehicle's own data only (shards give the same
answer), and none on a site map: the map is judged later (``detect``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import _ts_i8
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import local_xy_m

_LON0, _LAT0 = 120.5, 31.0  # local metric frame (as stays.py)
#: time range of one composite (vehicle, time) key: 2^42 µs ≈ 51 days
_SPAN_US = 1 << 42
#: how far before and after a candidate its approach and departure are measured: a few fix intervals of
#: the sparsest feeds (1-2 min), short enough to stay on the road leading to the stop. This and the two
#: below define features, not decisions: the shipped model was trained with them (changing one means
#: retraining, ``wastetrack train``), which is why they are not ``Params``
CONTEXT_S = 300.0
#: two stops of one truck this close are the same place (fence tolerance of a site)
SAME_PLACE_M = 150.0
#: stands in for "no such place" in distance features (farther than any haul)
FAR_M = 100_000.0

#: the model's inputs, in order (the shipped model's JSON lists them; a mismatch refuses to load)
FEATURES: tuple[str, ...] = (
    "is_silence",
    "dwell_s",
    "span_s",
    "idle_s",
    "n_fixes",
    "endpoint_gap_m",
    "speed_before_kmh",
    "speed_after_kmh",
    "turn_deg",
    "detour_m",
    "detour_ratio",
    "from_origin_m",
    "reach_share",
    "is_farthest",
    "since_depart_s",
    "until_end_s",
    "ended_by_load",
    "ended_by_park",
    "ended_by_off",
    "n_stops_in_haul",
    "stops_after",
    "home_m",
    "usual_receiver_m",
    "receiver_before_m",
    "receiver_after_m",
    "usual_site_m",
    "repeat_here",
    "hour_sin",
    "hour_cos",
    "tipping",
    "loaded_before",
    "loaded_after",
)


class FixIndex:
    """Fixes of a frame as arrays with a composite (vehicle, time) key, for vectorised look-ups by time."""

    def __init__(self, fixes: pd.DataFrame) -> None:
        veh = fixes["vehicle_id"]
        if isinstance(veh.dtype, pd.CategoricalDtype):
            self.codes = np.asarray(veh.cat.codes.to_numpy(), dtype=np.int64)
            self.names = pd.Index(veh.cat.categories.astype(str))
        else:
            codes, names = pd.factorize(veh.astype(str))
            self.codes = np.asarray(codes, dtype=np.int64)
            self.names = pd.Index(names)
        self.t_us = _ts_i8(fixes["ts"]) if len(fixes) else np.zeros(0, np.int64)
        self.t0 = int(self.t_us.min()) if len(self.t_us) else 0
        self.key = self.codes * _SPAN_US + (self.t_us - self.t0)
        self.x, self.y = local_xy_m(fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float), _LON0, _LAT0)
        self.n = len(self.t_us)

    def code_of(self, vehicle_id: pd.Series) -> np.ndarray:
        """Vehicle codes of plates (-1: the plate has no fix here)."""
        return np.asarray(self.names.get_indexer(vehicle_id.astype(str).to_numpy()), dtype=np.int64)

    def search(self, code: np.ndarray, t_us: np.ndarray, side: str) -> np.ndarray:
        """``searchsorted`` of (vehicle, time) in the fixes; stays inside the vehicle's block of rows."""
        k = code * _SPAN_US + np.clip(t_us - self.t0, -1, _SPAN_US - 1)
        return np.searchsorted(self.key, k, side=side)  # type: ignore[call-overload]

    def last_at_or_before(self, code: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """Index of the vehicle's last fix at or before ``t_us`` (-1: none)."""
        k = code * _SPAN_US + np.clip(t_us - self.t0, -1, _SPAN_US - 1)
        i = np.searchsorted(self.key, k, side="right") - 1
        ok = (code >= 0) & (i >= 0)
        ok &= self.codes[np.maximum(i, 0)] == code
        return np.where(ok, i, -1)

    def first_at_or_after(self, code: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """Index of the vehicle's first fix at or after ``t_us`` (-1: none)."""
        k = code * _SPAN_US + np.clip(t_us - self.t0, -1, _SPAN_US - 1)
        i = np.searchsorted(self.key, k, side="left")
        ok = (code >= 0) & (i < self.n)
        ok &= self.codes[np.minimum(i, max(self.n - 1, 0))] == code
        return np.where(ok, i, -1)

    def range_of(self, code: np.ndarray, t0_us: np.ndarray, t1_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) fix indices of each vehicle's fixes in [t0, t1)."""
        lo = np.searchsorted(self.key, code * _SPAN_US + np.clip(t0_us - self.t0, -1, _SPAN_US - 1), side="left")
        hi = np.searchsorted(self.key, code * _SPAN_US + np.clip(t1_us - self.t0, -1, _SPAN_US - 1), side="left")
        hi = np.where(code >= 0, np.maximum(hi, lo), lo)
        return lo, hi


def _xy(lon: pd.Series | np.ndarray, lat: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return local_xy_m(np.asarray(lon, float), np.asarray(lat, float), _LON0, _LAT0)


def _angle_deg(ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Angle between vectors a and b in degrees (0: straight on, 180: back the way it came)."""
    dot = ax * bx + ay * by
    na, nb = np.hypot(ax, ay), np.hypot(bx, by)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.clip(dot / (na * nb), -1.0, 1.0)
    return np.where((na > 1.0) & (nb > 1.0), np.degrees(np.arccos(c)), 0.0)


def haul_reach(hauls: pd.DataFrame, fx: FixIndex) -> np.ndarray:
    """Per haul: the farthest any of its fixes got from the loading site (m); 0 when it has none.

    Hauls of one vehicle do not overlap, so every fix belongs to at most one
    haul and the ranges concatenate without a loop; a maximum is exact in any
    order, so a haul's reach never depends on what else the shard holds.
    """
    n = len(hauls)
    if n == 0 or fx.n == 0:
        return np.zeros(n)
    code = fx.code_of(hauls["vehicle_id"])
    lo, hi = fx.range_of(code, _ts_i8(hauls["depart"]), _ts_i8(hauls["haul_end_at"]))
    length = hi - lo
    total = int(length.sum())
    if total == 0:
        return np.zeros(n)
    owner = np.repeat(np.arange(n), length)
    offsets = np.r_[0, np.cumsum(length)[:-1]]
    idx = np.arange(total) - np.repeat(offsets, length) + np.repeat(lo, length)
    ox, oy = _xy(hauls["origin_lon"], hauls["origin_lat"])
    d = np.hypot(fx.x[idx] - ox[owner], fx.y[idx] - oy[owner])
    out = np.zeros(n)
    has = length > 0
    starts = offsets[has]
    out[has] = np.maximum.reduceat(d, starts)
    return out


def _nearest_of_vehicle(
    cands: pd.DataFrame, points: pd.DataFrame, exclude_same_id: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the nearest of the vehicle's ``points``, how many lie within ``SAME_PLACE_M``).

    A join on the vehicle (a truck has tens of stays a night, so the pairs stay
    few); ``exclude_same_id`` leaves a stay out of its own count.
    """
    n = len(cands)
    if n == 0 or len(points) == 0:
        return np.full(n, FAR_M), np.zeros(n)
    left = pd.DataFrame({
        "_row": np.arange(n),
        "vehicle_id": cands["vehicle_id"].astype(str).to_numpy(object),
        "_id": cands["stay_id"].astype(str).to_numpy(object),
        "_x": cands["_x"].to_numpy(float),
        "_y": cands["_y"].to_numpy(float),
    })
    px, py = _xy(points["lon"], points["lat"])
    right = pd.DataFrame({
        "vehicle_id": points["vehicle_id"].astype(str).to_numpy(object),
        "_pid": points["stay_id"].astype(str).to_numpy(object),
        "_px": px,
        "_py": py,
    })
    pairs = left.merge(right, on="vehicle_id", how="inner")
    if exclude_same_id:
        pairs = pairs.loc[pairs["_id"].to_numpy() != pairs["_pid"].to_numpy()]
    if pairs.empty:
        return np.full(n, FAR_M), np.zeros(n)
    d = np.hypot(pairs["_x"].to_numpy() - pairs["_px"].to_numpy(), pairs["_y"].to_numpy() - pairs["_py"].to_numpy())
    rows = pairs["_row"].to_numpy()
    near = np.full(n, FAR_M)
    np.minimum.at(near, rows, d)
    count = np.bincount(rows, weights=(d <= SAME_PLACE_M).astype(float), minlength=n)
    return near, count


def home_parks(stays: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """The stays where each truck parks between shifts: off-site, ``shift_park_min_s`` or longer (its home)."""
    kind = stays["site_kind"].astype(str) if "site_kind" in stays else pd.Series("", index=stays.index)
    return stays.loc[(kind == "") & (stays["duration_s"].astype(float) >= params.shift_park_min_s)]


def home_m(frame: pd.DataFrame, parks: pd.DataFrame) -> np.ndarray:
    """Per row of ``frame`` (vehicle_id, lon, lat): metres to the nearest of its vehicle's ``parks``
    (``home_parks``; ``FAR_M`` when it has none)."""
    x, y = _xy(frame["lon"], frame["lat"])
    rows = pd.DataFrame({"vehicle_id": frame["vehicle_id"].to_numpy(), "stay_id": "", "_x": x, "_y": y})
    return _nearest_of_vehicle(rows, parks)[0]


def candidate_features(
    cands: pd.DataFrame,
    fixes: pd.DataFrame,
    stays: pd.DataFrame,
    params: Params = DEFAULT_PARAMS,
    fx: FixIndex | None = None,
) -> pd.DataFrame:
    """The ``FEATURES`` of every candidate (rows aligned with ``cands``), all float64.

    ``cands`` are ``hauls.track_candidates`` rows (with their haul's context);
    ``stays`` every labelled stay of the frame (the truck's habits).
    """
    n = len(cands)
    if n == 0:
        return pd.DataFrame({f: np.zeros(0) for f in FEATURES})
    fx = FixIndex(fixes) if fx is None else fx
    code = fx.code_of(cands["vehicle_id"])
    t0, t1 = _ts_i8(cands["start"]), _ts_i8(cands["end"])
    ctx_us = int(CONTEXT_S * 1e6)
    x, y = _xy(cands["lon"], cands["lat"])
    x0, y0 = _xy(cands["lon0"], cands["lat0"])
    x1, y1 = _xy(cands["lon1"], cands["lat1"])
    out: dict[str, np.ndarray] = {}
    silence = (cands["kind"] == "silence").to_numpy()
    out["is_silence"] = silence.astype(float)
    out["dwell_s"] = cands["dwell_s"].to_numpy(float)
    out["span_s"] = cands["span_s"].to_numpy(float)
    out["idle_s"] = np.where(silence, 0.0, out["dwell_s"] - out["span_s"])
    out["n_fixes"] = cands["n_fixes"].to_numpy(float)
    out["endpoint_gap_m"] = np.hypot(x1 - x0, y1 - y0)

    # the way there and away: where the truck was CONTEXT_S before arriving and after leaving
    i_b = fx.last_at_or_before(code, t0 - ctx_us)
    i_a = fx.first_at_or_after(code, t1 + ctx_us)
    ok_b, ok_a = i_b >= 0, i_a >= 0
    jb, ja = np.maximum(i_b, 0), np.maximum(i_a, 0)
    bx, by = np.where(ok_b, fx.x[jb], x0), np.where(ok_b, fx.y[jb], y0)
    ax, ay = np.where(ok_a, fx.x[ja], x1), np.where(ok_a, fx.y[ja], y1)
    dt_b = np.where(ok_b, (t0 - fx.t_us[jb]) / 1e6, 0.0)
    dt_a = np.where(ok_a, (fx.t_us[ja] - t1) / 1e6, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["speed_before_kmh"] = np.where(dt_b > 0, np.hypot(x0 - bx, y0 - by) / dt_b * 3.6, -1.0)
        out["speed_after_kmh"] = np.where(dt_a > 0, np.hypot(ax - x1, ay - y1) / dt_a * 3.6, -1.0)
    out["turn_deg"] = np.where(ok_b & ok_a, _angle_deg(x0 - bx, y0 - by, ax - x1, ay - y1), -1.0)

    # detour from the line between the truck's previous and next stop (any stop, at a site or not)
    prev_x, prev_y, next_x, next_y = _neighbour_stops(cands, stays, x0, y0, x1, y1)
    via = np.hypot(x - prev_x, y - prev_y) + np.hypot(next_x - x, next_y - y)
    direct = np.hypot(next_x - prev_x, next_y - prev_y)
    out["detour_m"] = via - direct
    out["detour_ratio"] = (via - direct) / np.maximum(via, 1.0)

    # its place in the haul
    ox, oy = _xy(cands["origin_lon"], cands["origin_lat"])
    from_origin = np.hypot(x - ox, y - oy)
    out["from_origin_m"] = from_origin
    reach = cands["haul_reach_m"].to_numpy(float)
    out["reach_share"] = np.where(reach > 0, np.minimum(from_origin / np.maximum(reach, 1.0), 2.0), 0.0)
    far = pd.Series(from_origin).groupby(cands["haul_id"].to_numpy()).transform("max").to_numpy()
    out["is_farthest"] = (from_origin >= far).astype(float)
    dep = _ts_i8(cands["depart"])
    end_at = _ts_i8(cands["haul_end_at"].fillna(cands["end"]))
    out["since_depart_s"] = (t0 - dep) / 1e6
    out["until_end_s"] = np.where(cands["haul_end_at"].notna().to_numpy(), (end_at - t1) / 1e6, -1.0)
    ended = cands["ended_by"].astype(str).to_numpy()
    for how in ("load", "park", "off"):
        out[f"ended_by_{how}"] = (ended == how).astype(float)
    stops = (~silence).astype(float)
    out["n_stops_in_haul"] = pd.Series(stops).groupby(cands["haul_id"].to_numpy()).transform("sum").to_numpy()
    order = cands.assign(_stop=stops, _t=t0).sort_values(["haul_id", "_t"], ascending=[True, False], kind="stable")
    after = order.groupby("haul_id", sort=False)["_stop"].cumsum() - order["_stop"]
    out["stops_after"] = after.reindex(cands.index).to_numpy(float)

    # the truck's habits
    c = cands.assign(_x=x, _y=y)
    if "stay_id" not in c:
        c["stay_id"] = ""
    st = stays
    kind = st["site_kind"].astype(str) if "site_kind" in st else pd.Series("", index=st.index)
    out["home_m"], _ = _nearest_of_vehicle(c, home_parks(st, params))
    out["usual_receiver_m"], _ = _nearest_of_vehicle(c, st.loc[kind.isin(("disposal", "recycling", "transfer"))])
    out["usual_site_m"], _ = _nearest_of_vehicle(c, st.loc[kind == "construction"])
    _, out["repeat_here"] = _nearest_of_vehicle(c, st, exclude_same_id=True)
    receivers = st.loc[kind.isin(("disposal", "recycling", "transfer"))]
    out["receiver_before_m"], out["receiver_after_m"] = _receiver_approach(cands, fx, code, receivers)

    local = cands["start"].dt.tz_convert(TIMEZONE)
    hour = (local.dt.hour + local.dt.minute / 60.0).to_numpy(float)
    out["hour_sin"] = np.sin(2 * np.pi * hour / 24.0)
    out["hour_cos"] = np.cos(2 * np.pi * hour / 24.0)
    for col in ("tipping", "loaded_before", "loaded_after"):
        out[col] = cands[col].to_numpy(float) if col in cands else np.full(n, -1.0)
    frame = pd.DataFrame({f: np.asarray(out[f], dtype=np.float64) for f in FEATURES}, index=cands.index)
    return frame.fillna(-1.0)


def _receiver_approach(
    cands: pd.DataFrame, fx: FixIndex, code: np.ndarray, receivers: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """How close the haul's fixes came to the truck's usual receivers before and after each candidate (m).

    The fixes of [departure, candidate start) and of (candidate end, haul end)
    are paired with the truck's receiver places (its stays at receivers, one per
    ``SAME_PLACE_M`` cell); a minimum is exact in any order. Only the
    undecided hauls' candidates come here, so the pairs stay few.
    """
    n = len(cands)
    before, after = np.full(n, FAR_M), np.full(n, FAR_M)
    if n == 0 or len(receivers) == 0 or fx.n == 0:
        return before, after
    rx, ry = _xy(receivers["lon"], receivers["lat"])
    spots = pd.DataFrame({
        "_code": fx.code_of(receivers["vehicle_id"]),
        "_cx": np.round(rx / SAME_PLACE_M).astype(np.int64),
        "_cy": np.round(ry / SAME_PLACE_M).astype(np.int64),
        "_sx": rx,
        "_sy": ry,
    })
    spots = spots.loc[spots["_code"] >= 0].drop_duplicates(["_code", "_cx", "_cy"])
    if spots.empty:
        return before, after
    t0, t1 = _ts_i8(cands["start"]), _ts_i8(cands["end"])
    dep = _ts_i8(cands["depart"])
    end_at = _ts_i8(cands["haul_end_at"].fillna(cands["end"]))
    for out, (a, b) in ((before, (dep, t0)), (after, (t1 + 1, end_at))):
        lo, hi = fx.range_of(code, a, b)
        length = np.maximum(hi - lo, 0)
        total = int(length.sum())
        if total == 0:
            continue
        owner = np.repeat(np.arange(n), length)
        offsets = np.r_[0, np.cumsum(length)[:-1]]
        idx = np.arange(total) - np.repeat(offsets, length) + np.repeat(lo, length)
        pairs = pd.DataFrame({"_owner": owner, "_code": fx.codes[idx], "_x": fx.x[idx], "_y": fx.y[idx]}).merge(
            spots[["_code", "_sx", "_sy"]], on="_code", how="inner"
        )
        if pairs.empty:
            continue
        d = np.hypot(pairs["_x"].to_numpy() - pairs["_sx"].to_numpy(), pairs["_y"].to_numpy() - pairs["_sy"].to_numpy())
        np.minimum.at(out, pairs["_owner"].to_numpy(), d)
    return before, after


def _neighbour_stops(
    cands: pd.DataFrame, stays: pd.DataFrame, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the truck stood last before each candidate and next after it (else the candidate's own ends)."""
    n = len(cands)
    px, py, nx, ny = x0.copy(), y0.copy(), x1.copy(), y1.copy()
    if len(stays) == 0 or n == 0:
        return px, py, nx, ny
    sx, sy = _xy(stays["lon"], stays["lat"])
    s = pd.DataFrame({
        "vehicle_id": stays["vehicle_id"].astype(str).to_numpy(object),
        "_s0": _ts_i8(stays["start"]),
        "_s1": _ts_i8(stays["end"]),
        "_sx": sx,
        "_sy": sy,
    })
    q = pd.DataFrame({
        "_row": np.arange(n),
        "vehicle_id": cands["vehicle_id"].astype(str).to_numpy(object),
        "_t0": _ts_i8(cands["start"]) - 1,
        "_t1": _ts_i8(cands["end"]) + 1,
    })
    prev = pd.merge_asof(
        q.sort_values("_t0", kind="stable"), s.sort_values("_s1", kind="stable"),
        left_on="_t0", right_on="_s1", by="vehicle_id", direction="backward",
    ).sort_values("_row")
    nxt = pd.merge_asof(
        q.sort_values("_t1", kind="stable"), s.sort_values("_s0", kind="stable"),
        left_on="_t1", right_on="_s0", by="vehicle_id", direction="forward",
    ).sort_values("_row")
    has_p = prev["_sx"].notna().to_numpy()
    has_n = nxt["_sx"].notna().to_numpy()
    px = np.where(has_p, prev["_sx"].to_numpy(float), px)
    py = np.where(has_p, prev["_sy"].to_numpy(float), py)
    nx = np.where(has_n, nxt["_sx"].to_numpy(float), nx)
    ny = np.where(has_n, nxt["_sy"].to_numpy(float), ny)
    return px, py, nx, ny


__all__ = ["FEATURES", "FixIndex", "candidate_features", "haul_reach", "home_m", "home_parks"]
