"""Clean GPS fixes: order, de-duplicate and drop teleports, all as array operations.

Readers have already quarantined rows that are invalid on their own ((0,0),
unparseable times, bad plates). What is left are defects that only show in
sequence: the same fix uploaded twice (late re-uploads overlap the live feed),
fixes out of order across parts, and "teleports" — a single fix kilometres away
from both neighbours within seconds. Those are dropped here, and counted, since
they are not wrong rows but wrong readings of a valid row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import haversine_m
from wastetrack.models import FIX_COLUMNS, require_columns

#: a step this short is never a teleport, however fast it looks (GPS jitter between fixes a second apart)
SPIKE_MIN_M = 200.0


@dataclass(frozen=True)
class CleanStats:
    fixes_in: int
    duplicates: int
    teleports: int
    fixes_out: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _ts_i8(ts: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (int64) for ordering; NaT never reaches here (readers quarantine it)."""
    arr = ts.array
    if isinstance(ts.dtype, pd.DatetimeTZDtype) and ts.dtype.unit == "us":
        return np.asarray(arr.asi8, dtype=np.int64)  # no copy, no conversion: the common case
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]").astype(np.int64)


def vehicle_codes(vehicle: pd.Series, sort: bool = False) -> np.ndarray:
    """Integer codes of the vehicle column, equal for equal plates.

    Shards carry ``vehicle_id`` as a categorical over sorted plates, so its codes
    are free and already in plate order; a plain string column is factorised
    (``sort=True`` gives plate order too). Stages compare codes of neighbouring
    fixes instead of strings: 10^8 string comparisons are what made cleaning slow.
    """
    if isinstance(vehicle.dtype, pd.CategoricalDtype):
        if not sort or vehicle.cat.categories.is_monotonic_increasing:
            return np.asarray(vehicle.cat.codes.to_numpy(), dtype=np.int64)
        return np.asarray(pd.factorize(vehicle.astype(str), sort=True)[0], dtype=np.int64)
    return np.asarray(pd.factorize(vehicle, sort=sort)[0], dtype=np.int64)


def max_per_vehicle(vehicle: pd.Series, values: np.ndarray, mask: np.ndarray | None = None) -> pd.Series:
    """Per plate (index: plate string), the maximum of ``values`` over the rows in ``mask``.

    Groups on integer codes, not strings: turning 10^7 categorical plates into
    strings to group them would cost more than the whole stay detection.
    """
    if isinstance(vehicle.dtype, pd.CategoricalDtype):
        codes, names = np.asarray(vehicle.cat.codes.to_numpy(), dtype=np.int64), vehicle.cat.categories
    else:
        codes, names = pd.factorize(vehicle)
    if mask is not None:
        codes, values = codes[mask], values[mask]
    out = pd.Series(values).groupby(codes, sort=True).max()
    out.index = pd.Index(np.asarray(names, dtype=object)[out.index.to_numpy()]).astype(str)
    return out


#: bits of a fix's time offset (µs) in the combined (vehicle, time) sort key: 2^42 µs is 50 days
_TIME_BITS = 42


def vehicle_time_order(codes: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """Stable order by (vehicle code, time): ties keep arrival order (the first upload wins).

    One stable argsort of a combined int64 key is twice as fast as ``np.lexsort``
    of the two columns on a shard of millions of fixes; a span that does not fit
    the key (codes beyond 2^21, times beyond 50 days) falls back to lexsort.
    """
    codes = np.asarray(codes, dtype=np.int64)
    t_us = np.asarray(t_us, dtype=np.int64)
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    t0, span = int(t_us.min()), int(t_us.max()) - int(t_us.min())
    if span >= 1 << _TIME_BITS or int(codes.min()) < 0 or int(codes.max()) >= 1 << (62 - _TIME_BITS):
        return np.lexsort((t_us, codes))
    return np.argsort((codes << _TIME_BITS) | (t_us - t0), kind="stable")


def sort_order(fixes: pd.DataFrame) -> np.ndarray:
    """Row order by vehicle (plate order), then time, ties kept in arrival order (stable)."""
    return vehicle_time_order(vehicle_codes(fixes["vehicle_id"], sort=True), _ts_i8(fixes["ts"]))


def sort_fixes(fixes: pd.DataFrame) -> pd.DataFrame:
    """Vehicle-then-time order with a stable tie-break, so every later stage can use array neighbours.

    Sorting on integer codes (``vehicle_time_order``) is several times faster than
    ``sort_values`` on a string column, which matters at 100 million fixes.
    """
    return fixes.take(sort_order(fixes)).reset_index(drop=True)


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Seconds since the epoch as float64, whatever the datetime resolution pandas chose."""
    return _ts_i8(ts) / 1e6


def epoch_seconds_or_nan(values: pd.Series) -> np.ndarray:
    """Seconds since the epoch of a time column that may have gaps (a manifest's scans): NaN where missing."""
    t = pd.to_datetime(values, utc=True)
    return (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(float)


def step_m(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Metres between consecutive points: equirectangular at the pair's mid-latitude.

    Within 0.1 % of the great circle for the steps a spike test weighs (metres to a
    few tens of km in the delta), at a third of haversine's cost — it runs on every
    fix, twice or three times.
    """
    k = np.pi / 180.0 * 6371008.8
    lat_mid = np.radians((lat[1:] + lat[:-1]) * 0.5)
    return np.hypot((lon[1:] - lon[:-1]) * np.cos(lat_mid), lat[1:] - lat[:-1]) * k


def spikes(
    vehicle: np.ndarray, t: np.ndarray, lon: np.ndarray, lat: np.ndarray, max_mps: float
) -> np.ndarray:
    """Fixes whose implied speed to BOTH neighbours exceeds ``max_mps``: a spike out and back.

    The one teleport rule of the project (cleaning here; the simulator's own
    defect check uses it too). A first or last fix of a vehicle that jumps away
    from its only neighbour is a spike as well.

    So is a jump at the edge of a silence: a fix kilometres from the one before
    it, seconds earlier, whose next fix comes only after a long silence (the
    terminal glitched as it went dark) — the slow step out of it proves
    nothing, since a silence makes any place reachable. It goes when the track
    without it holds together (the step over it is possible) and the fix it
    jumped from agrees with its own predecessor; the mirror image (a glitch as
    the terminal came back) likewise. A jump both neighbours confirm is kept.
    """
    n = len(t)
    bad = np.zeros(n, dtype=bool)
    if n < 3:
        return bad
    same = vehicle[1:] == vehicle[:-1]
    d = step_m(lon, lat)
    dt = np.maximum(t[1:] - t[:-1], 1.0)
    fast = same & (d / dt > max_mps) & (d > SPIKE_MIN_M)
    # fix i is a spike when the step into it and the step out of it are both too fast
    bad[1:-1] = fast[:-1] & fast[1:]
    first = np.r_[True, ~same]
    last = np.r_[~same, True]
    step_in = np.r_[False, fast]
    step_out = np.r_[fast, False]
    next_out = np.r_[step_out[1:], False]
    prev_in = np.r_[False, step_in[:-1]]
    bad |= first & step_out & ~next_out
    bad |= last & step_in & ~prev_in
    # a one-sided jump at a silence's edge: the step over the fix is possible, and the fix on the far side
    # of the jump agrees with its own neighbour beyond (not itself the glitch)
    # (looked at only where exactly one step is too fast: a handful of fixes a night, not every fix)
    one = np.flatnonzero(step_in ^ step_out)
    one = one[(one >= 1) & (one <= n - 2)]
    if one.size:
        a, b = one - 1, one + 1
        d2 = haversine_m(lon[a], lat[a], lon[b], lat[b])
        over = same[a] & same[one] & ((d2 / np.maximum(t[b] - t[a], 1.0) <= max_mps) | (d2 <= SPIKE_MIN_M))
        k0, k1 = np.maximum(one - 2, 0), np.minimum(one + 1, n - 2)
        calm_before = (one >= 2) & same[k0] & ~fast[k0]  # the step i-2 -> i-1 is possible
        calm_after = (one <= n - 3) & same[k1] & ~fast[k1]  # the step i+1 -> i+2 is possible
        bad[one] |= over & np.where(step_in[one], calm_before, calm_after)
    return bad


def clean_fixes(fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> tuple[pd.DataFrame, CleanStats]:
    """Return fixes sorted by vehicle and time without duplicates and teleports, plus what was removed.

    A duplicate is the same vehicle at the same instant; the first upload wins
    (later ones are re-uploads). Teleports are removed in up to three passes so
    a burst of two bad fixes is caught as well. All decisions are made on index
    arrays; the frame is copied once, at the end (a shard holds millions of fixes).
    """
    require_columns(fixes, FIX_COLUMNS[:4], "fixes")
    n_in = len(fixes)
    codes = vehicle_codes(fixes["vehicle_id"], sort=True)
    t_us = _ts_i8(fixes["ts"])
    order = vehicle_time_order(codes, t_us)
    c, t = codes[order], t_us[order]
    dup = np.r_[False, (c[1:] == c[:-1]) & (t[1:] == t[:-1])] if n_in else np.zeros(0, bool)
    idx = order[~dup]
    lon_all = fixes["lon"].to_numpy(float)
    lat_all = fixes["lat"].to_numpy(float)
    n_tele = 0
    max_mps = params.teleport_speed_kmh / 3.6
    for _ in range(3):
        bad = spikes(codes[idx], t_us[idx] / 1e6, lon_all[idx], lat_all[idx], max_mps)
        if not bad.any():
            break
        n_tele += int(bad.sum())
        idx = idx[~bad]
    f = fixes.take(idx).reset_index(drop=True)
    return f, CleanStats(n_in, int(dup.sum()), n_tele, len(f))
