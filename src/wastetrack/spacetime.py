"""Which trucks stood or passed near a dumping report in its window: a grid-and-time index.

The old way was a cross join of every report with every fix in their joint
bounding box, so its cost grew with reports × fleet (80 reports at 5 M fixes
took more than 23 GB). Here every fix and stay gets a grid cell as wide as the
tracing radius; a report can only see the 3 × 3 cells around its own, so one
``isin`` pass over the cell keys picks the few fixes near any report, and only
those are paired with the reports of their cell and tested exactly (haversine
distance, time window). Cost: linear in fixes, plus the pairs that really are
near each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import _ts_i8, epoch_seconds
from wastetrack.coords import haversine_m, local_xy_m

_LON0, _LAT0 = 120.5, 31.0  # centre of the delta: the same local metric frame as stays
_CELL_BITS = 31

CANDIDATE_COLUMNS = (
    "report_id", "vehicle_id", "distance_m", "is_stay", "dwell_min", "start", "end", "lon", "lat",
    "loaded_before", "loaded_after",
)


def cell_keys(lon: np.ndarray, lat: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, cx, cy): the int64 key of each point's grid cell of ``cell_m`` metres, and its indices."""
    x, y = local_xy_m(np.asarray(lon, float), np.asarray(lat, float), _LON0, _LAT0)
    cx = np.floor(x / cell_m).astype(np.int64)
    cy = np.floor(y / cell_m).astype(np.int64)
    off = 1 << (_CELL_BITS - 1)
    return ((cx + off) << _CELL_BITS) | (cy + off), cx, cy


def _report_cells(reports: pd.DataFrame, cell_m: float) -> pd.DataFrame:
    """(cell key, report row) for the 3 × 3 cells around each report."""
    _, cx, cy = cell_keys(reports["lon"].to_numpy(float), reports["lat"].to_numpy(float), cell_m)
    dx, dy = np.meshgrid([-1, 0, 1], [-1, 0, 1])
    ncx = (cx[:, None] + dx.ravel()[None, :]).ravel()
    ncy = (cy[:, None] + dy.ravel()[None, :]).ravel()
    off = 1 << (_CELL_BITS - 1)
    keys = ((ncx + off) << _CELL_BITS) | (ncy + off)
    return pd.DataFrame({"cell": keys, "r": np.repeat(np.arange(len(reports)), 9)})


def _near(points_lon: np.ndarray, points_lat: np.ndarray, reports: pd.DataFrame, radius_m: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """(point index, report row) of every point within ``radius_m`` of a report (exact, via the grid)."""
    if len(points_lon) == 0 or len(reports) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cell_m = max(float(radius_m), 1.0)
    keys, _, _ = cell_keys(points_lon, points_lat, cell_m)
    rc = _report_cells(reports, cell_m)
    cand = np.flatnonzero(np.isin(keys, rc["cell"].to_numpy()))
    if cand.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = pd.DataFrame({"cell": keys[cand], "p": cand}).merge(rc, on="cell")
    p, r = pairs["p"].to_numpy(np.int64), pairs["r"].to_numpy(np.int64)
    d = haversine_m(points_lon[p], points_lat[p], reports["lon"].to_numpy(float)[r],
                    reports["lat"].to_numpy(float)[r])
    ok = d <= radius_m
    return p[ok], r[ok]


def _bool_obj(values: pd.Series) -> np.ndarray:
    b = values.astype("boolean")
    return b.astype(object).where(b.notna(), None).to_numpy()


def report_candidates(
    reports: pd.DataFrame, stays: pd.DataFrame, fixes: pd.DataFrame, radius_m: float
) -> pd.DataFrame:
    """Candidate trucks per report (``CANDIDATE_COLUMNS``), best observation per (report, vehicle).

    ``reports`` carry their window as epoch seconds ``w0``/``w1`` (``trace.report_windows``).
    A stay counts when it is within ``radius_m`` and overlaps the window; a fix
    (a drive-by) when it is within ``radius_m`` and inside the window. A stay beats a
    drive-by, then nearer wins; ties go to the earlier observation, then the plate,
    so the choice never depends on the order fixes arrived in.
    """
    cols = list(CANDIDATE_COLUMNS)
    if reports.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    r_lon, r_lat = reports["lon"].to_numpy(float), reports["lat"].to_numpy(float)
    w0, w1 = reports["w0"].to_numpy(float), reports["w1"].to_numpy(float)
    rid = reports["report_id"].to_numpy(object)
    out = []
    if len(stays):
        p, r = _near(stays["lon"].to_numpy(float), stays["lat"].to_numpy(float), reports, radius_m)
        s0, s1 = epoch_seconds(stays["start"])[p], epoch_seconds(stays["end"])[p]
        ok = (s0 <= w1[r]) & (s1 >= w0[r])
        p, r = p[ok], r[ok]
        st = stays.iloc[p]
        out.append(pd.DataFrame({
            "report_id": rid[r],
            "vehicle_id": st["vehicle_id"].astype(str).to_numpy(object),
            "distance_m": haversine_m(st["lon"].to_numpy(float), st["lat"].to_numpy(float), r_lon[r], r_lat[r]),
            "is_stay": True,
            "dwell_min": st["duration_s"].to_numpy(float) / 60.0,
            "start": st["start"].array,
            "end": st["end"].array,
            "lon": st["lon"].to_numpy(float),
            "lat": st["lat"].to_numpy(float),
            "loaded_before": _bool_obj(st["loaded_before"]) if "loaded_before" in st else None,
            "loaded_after": _bool_obj(st["loaded_after"]) if "loaded_after" in st else None,
        }))
    if len(fixes):
        f_lon, f_lat = fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float)
        p, r = _near(f_lon, f_lat, reports, radius_m)
        t = _ts_i8(fixes["ts"])[p] / 1e6
        ok = (t >= w0[r]) & (t <= w1[r])
        p, r = p[ok], r[ok]
        ts = fixes["ts"].array[p]
        loaded = _bool_obj(fixes["loaded"].iloc[p]) if "loaded" in fixes else np.full(p.size, None)
        out.append(pd.DataFrame({
            "report_id": rid[r],
            "vehicle_id": fixes["vehicle_id"].iloc[p].astype(str).to_numpy(object),
            "distance_m": haversine_m(f_lon[p], f_lat[p], r_lon[r], r_lat[r]),
            "is_stay": False,
            "dwell_min": 0.0,
            "start": ts,
            "end": ts,
            "lon": f_lon[p],
            "lat": f_lat[p],
            "loaded_before": loaded,
            "loaded_after": loaded,
        }))
    out = [o for o in out if len(o)]
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    c = pd.concat(out, ignore_index=True)
    for col in ("start", "end"):
        c[col] = c[col].astype(f"datetime64[us, {TIMEZONE}]")
    return best_per_vehicle(c[cols])


def best_per_vehicle(candidates: pd.DataFrame) -> pd.DataFrame:
    """One row per (report, vehicle): its best observation, rows ranked best first per report."""
    if candidates.empty:
        return candidates.reset_index(drop=True)
    c = candidates.sort_values(
        ["report_id", "is_stay", "distance_m", "start", "vehicle_id"],
        ascending=[True, False, True, True, True],
        kind="stable",
    )
    return c.drop_duplicates(["report_id", "vehicle_id"]).reset_index(drop=True)
