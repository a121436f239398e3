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
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]").astype(np.int64)


def sort_fixes(fixes: pd.DataFrame) -> pd.DataFrame:
    """Vehicle-then-time order with a stable tie-break, so every later stage can use array neighbours.

    Sorting on integer codes with ``np.lexsort`` is several times faster than
    ``sort_values`` on a string column, which matters at 100 million fixes.
    """
    codes = pd.factorize(fixes["vehicle_id"], sort=True)[0]
    order = np.lexsort((_ts_i8(fixes["ts"]), codes))
    return fixes.take(order).reset_index(drop=True)


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Seconds since the epoch as float64, whatever the datetime resolution pandas chose."""
    return _ts_i8(ts) / 1e6


def _spikes(
    vehicle: np.ndarray, t: np.ndarray, lon: np.ndarray, lat: np.ndarray, max_mps: float
) -> np.ndarray:
    """Fixes whose implied speed to BOTH neighbours exceeds ``max_mps``: a spike out and back."""
    n = len(t)
    bad = np.zeros(n, dtype=bool)
    if n < 3:
        return bad
    same = vehicle[1:] == vehicle[:-1]
    d = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    dt = np.maximum(t[1:] - t[:-1], 1.0)
    fast = same & (d / dt > max_mps) & (d > 200.0)
    # fix i is a spike when the step into it and the step out of it are both too fast
    bad[1:-1] = fast[:-1] & fast[1:]
    # a first or last fix of a vehicle that jumps away from its only neighbour
    first = np.r_[True, ~same]
    last = np.r_[~same, True]
    step_in = np.r_[False, fast]
    step_out = np.r_[fast, False]
    next_out = np.r_[step_out[1:], False]
    prev_in = np.r_[False, step_in[:-1]]
    bad |= first & step_out & ~next_out
    bad |= last & step_in & ~prev_in
    return bad


def clean_fixes(fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> tuple[pd.DataFrame, CleanStats]:
    """Return fixes sorted by vehicle and time without duplicates and teleports, plus what was removed.

    A duplicate is the same vehicle at the same instant; the first upload wins
    (later ones are re-uploads). Teleports are removed in up to three passes so
    a burst of two bad fixes is caught as well.
    """
    require_columns(fixes, FIX_COLUMNS[:4], "fixes")
    n_in = len(fixes)
    f = sort_fixes(fixes)
    # after sorting, a duplicate is the same vehicle at the same instant as its predecessor
    veh = f["vehicle_id"].to_numpy()
    t = _ts_i8(f["ts"])
    dup = np.r_[False, (veh[1:] == veh[:-1]) & (t[1:] == t[:-1])] if len(f) else np.zeros(0, bool)
    f = f.loc[~dup].reset_index(drop=True)
    n_tele = 0
    max_mps = params.teleport_speed_kmh / 3.6
    for _ in range(3):
        codes = pd.factorize(f["vehicle_id"])[0]
        bad = _spikes(
            codes, epoch_seconds(f["ts"]), f["lon"].to_numpy(float), f["lat"].to_numpy(float), max_mps
        )
        if not bad.any():
            break
        n_tele += int(bad.sum())
        f = f.loc[~bad].reset_index(drop=True)
    return f, CleanStats(n_in, int(dup.sum()), n_tele, len(f))
