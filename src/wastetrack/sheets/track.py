"""A lead's track as plain arrays, and the key points a reader needs (arrival, tipping, the gap, ...).

A sheet reads its track three times (two maps and the key-point table), and a
night writes thousands of sheets: so the track is cleaned once into numpy
arrays (``Track``) and everything after that is array code, with no pandas
indexing per lead. Cleaning drops what would draw a false story: (0,0) and
out-of-range fixes, duplicate times, and single fixes that jump kilometres away
and back (drawn, they read as a detour to the dump site).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from wastetrack.clean import spikes
from wastetrack.config import DEFAULT_PARAMS
from wastetrack.coords import haversine_m
from wastetrack.sheets.labels import TIMEZONE, as_dict, as_float, as_local_ts, fmt_minutes, text
from wastetrack.values import tri_state

_TZ = ZoneInfo(TIMEZONE)
_EPOCH = pd.Timestamp(0, tz="UTC")

#: A silence longer than this between two fixes, while the truck moved, is drawn dashed (short drop-outs
#: are normal, and a parked truck reports only every few minutes).
GAP_DASH_S = 180.0
#: Moving at least this far during a silence makes it a gap (below: a parked truck's heartbeat).
GAP_MOVED_M = 250.0
#: A silence this long is a gap even without moving.
GAP_LONG_S = 1800.0
#: Faster than this between two fixes is a position jump, not driving.
#: Rows of the key-track-point table: enough to follow the haul, few enough for one printed page.
MAX_TRACK_ROWS = 24
#: A fix this close in time to a time the detector recorded (gap start, departure) is that moment's fix.
SAME_MOMENT_S = 2.0


@dataclass(frozen=True)
class Track:
    """Cleaned fixes in time order: ``t`` in seconds since the epoch, load/tipping as 1/0/-1 (unknown)."""

    t: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    speed: np.ndarray
    loaded: np.ndarray
    tipping: np.ndarray
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.t)

    def silent(self) -> np.ndarray:
        """``silent_segments`` of this track, computed once (the maps and the table all ask)."""
        if "silent" not in self._memo:
            self._memo["silent"] = silent_segments(self)
        return self._memo["silent"]

    def ts(self, i: int) -> pd.Timestamp:
        """Local time of fix ``i``."""
        return local_ts(float(self.t[i]))


def local_ts(seconds: float) -> pd.Timestamp:
    """Seconds since the epoch as an Asia/Shanghai timestamp."""
    return pd.Timestamp(dt.datetime.fromtimestamp(seconds, _TZ))


EMPTY = Track(*(np.zeros(0) for _ in range(4)), np.zeros(0, np.int8), np.zeros(0, np.int8))


_UNIT_PER_S = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _seconds(col: pd.Series) -> np.ndarray:
    """Fix times as seconds since the epoch; naive times are local (the contract's rule); NaN when unreadable."""
    dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        if not isinstance(dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_localize(TIMEZONE, ambiguous="NaT", nonexistent="NaT")
        raw = col.array.asi8
        out = raw / _UNIT_PER_S.get(getattr(col.dtype, "unit", "ns"), 1e9)
        out[raw == np.iinfo(np.int64).min] = np.nan
        return out
    if pd.api.types.is_integer_dtype(dtype):  # epoch milliseconds (the contract allows them)
        return col.to_numpy(dtype=float) / 1000.0
    parsed = [as_local_ts(v) for v in col.tolist()]
    return np.array([np.nan if p is None else p.timestamp() for p in parsed], dtype=float)


def _floats(col: pd.Series) -> np.ndarray:
    if col.dtype == np.float64:
        return col.to_numpy()
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def clean_track(track: pd.DataFrame | Track | None) -> Track:
    """Fixes with usable coordinates and times, in time order, as arrays (see ``Track``)."""
    if isinstance(track, Track):
        return track
    if track is None or len(track) == 0:
        return EMPTY
    cols = track.columns
    if "lon" not in cols or "lat" not in cols or "ts" not in cols:
        return EMPTY
    lon, lat = _floats(track["lon"]), _floats(track["lat"])
    t = _seconds(track["ts"])
    ok = (
        np.isfinite(lon)
        & np.isfinite(lat)
        & np.isfinite(t)
        & (np.abs(lon) <= 180)
        & (np.abs(lat) <= 90)
        & ~((lon == 0) & (lat == 0))
    )
    idx = np.flatnonzero(ok)
    if len(idx) > 1 and not (np.diff(t[idx]) >= 0).all():
        idx = idx[np.argsort(t[idx], kind="stable")]
    if len(idx) > 1:  # the first fix of a repeated time wins
        idx = idx[np.append(True, np.diff(t[idx]) > 0)]
    # the project's one teleport rule (clean.spikes), on this one vehicle
    max_mps = DEFAULT_PARAMS.teleport_speed_kmh / 3.6
    idx = idx[~spikes(np.zeros(idx.size, np.int64), t[idx], lon[idx], lat[idx], max_mps)]
    speed = _floats(track["speed_kmh"])[idx] if "speed_kmh" in cols else np.full(len(idx), np.nan)
    states = []
    for col in ("loaded", "tipping"):
        states.append(tri_state(track[col])[idx] if col in cols else np.full(len(idx), -1, dtype=np.int8))
    return Track(t[idx], lon[idx], lat[idx], speed, states[0], states[1])


def silent_segments(track: Track) -> np.ndarray:
    """For each pair of consecutive fixes: was the terminal silent in between?

    Silent means no fix for more than ``GAP_DASH_S`` while the truck moved
    ``GAP_MOVED_M`` or more, or no fix for ``GAP_LONG_S``: parked trucks report
    only every few minutes, and that is not a gap.
    """
    if len(track) < 2:
        return np.zeros(max(len(track) - 1, 0), dtype=bool)
    d = np.diff(track.t)
    moved = haversine_m(track.lon[:-1], track.lat[:-1], track.lon[1:], track.lat[1:])
    return ((d > GAP_DASH_S) & (moved >= GAP_MOVED_M)) | (d > GAP_LONG_S)


def lead_gap_segments(track: Track, gap: tuple[pd.Timestamp, pd.Timestamp] | None) -> np.ndarray:
    """Segments (between consecutive fixes) that are the lead's silence: they overlap the recorded gap and
    are themselves a silence (no fix for more than ``GAP_DASH_S``). Fixes inside the window are shown as
    what they are, never drawn over as "silent"."""
    n = len(track)
    if gap is None or n < 2:
        return np.zeros(max(n - 1, 0), dtype=bool)
    s0, s1 = gap[0].timestamp(), gap[1].timestamp()
    t = track.t
    return (t[:-1] < s1) & (t[1:] > s0) & (np.diff(t) > GAP_DASH_S)


# ------------------------------------------------------------------------------------------------ lead times
@dataclass(frozen=True)
class LeadTimes:
    """The moments a sheet refers to, read once from the lead and its evidence (None when not recorded).

    ``gap`` is the silence the lead is about (``evidence.gap_start/gap_end``, or
    the lead's own start/end for a ``track_gap`` without them); ``depart`` is when
    the haul left its origin site.
    """

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    depart: pd.Timestamp | None
    gap_start: pd.Timestamp | None
    gap_end: pd.Timestamp | None

    @property
    def gap(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        if self.gap_start is None or self.gap_end is None:
            return None
        return self.gap_start, self.gap_end


def lead_times(lead: Mapping[str, Any]) -> LeadTimes:
    ev = as_dict(lead.get("evidence"))
    start, end = as_local_ts(lead.get("start")), as_local_ts(lead.get("end"))
    kind = text(lead.get("kind"))
    g0, g1 = as_local_ts(ev.get("gap_start")), as_local_ts(ev.get("gap_end"))
    if kind == "track_gap":
        g0, g1 = g0 or start, g1 or end
    depart = as_local_ts(ev.get("depart")) or as_local_ts(ev.get("origin_stay_end"))
    return LeadTimes(start, end, depart, g0, g1)


# ------------------------------------------------------------------------------------------------ key points
@dataclass(frozen=True)
class KeyPoint:
    """One row of the key-track-point table; ``role`` names why it is there (machine-readable)."""

    ts: pd.Timestamp
    role: str
    note: str
    lon: float
    lat: float
    speed_kmh: float
    loaded: int
    tipping: int
    dist_m: float
    site: str


#: role → words, in priority order (the first roles survive when rows must be cut).
ROLE_WORDS: dict[str, str] = {
    "gap-start": "定位中断开始（本线索）",
    "gap-end": "定位恢复（本线索）",
    "arrival": "到达事件点",
    "departure": "离开事件点",
    "tip-start": "举升开始",
    "tip-end": "举升结束",
    "unloaded": "转为空车",
    "loaded": "转为重车",
    "depart": "驶离来源工地",
    "silence-end": "信号恢复",
    "nearest": "距事件点最近",
    "first": "轨迹起点",
    "last": "轨迹终点",
}


def key_points(
    track: Track,
    lead: Mapping[str, Any],
    times: LeadTimes,
    sites_at: Any = None,
) -> list[KeyPoint]:
    """The fixes a reader needs, each with why it matters; ``sites_at(lon, lat)`` names the fence of each.

    Vectorised change detection over the whole track; only the selected rows
    become text. Load state is forward-filled over unknown fixes so a sensor
    dropout is not read as a load change. The lead's own silence is labelled
    at the detector's recorded times (a row without coordinates if no fix is
    there), and other silences are called what they are: short signal losses.
    """
    n = len(track)
    if n == 0:  # no fixes: the sheet says so instead of a table of recorded times only
        return []
    kind = text(lead.get("kind"))
    ev_lon, ev_lat = as_float(lead.get("lon")), as_float(lead.get("lat"))
    dist = (
        haversine_m(track.lon, track.lat, ev_lon, ev_lat)
        if ev_lon is not None and ev_lat is not None and n
        else np.full(n, np.nan)
    )
    masks: dict[str, np.ndarray] = {}
    extra: list[tuple[str, float]] = []  # (role, time) rows without a fix at that moment
    gap = times.gap
    lead_gap_seg = np.zeros(max(n - 1, 0), dtype=bool)
    if gap is not None:
        for role, moment in (("gap-start", gap[0]), ("gap-end", gap[1])):
            sec = moment.timestamp()
            m = np.zeros(n, dtype=bool)
            if n:
                i = int(np.argmin(np.abs(track.t - sec)))
                if abs(track.t[i] - sec) <= SAME_MOMENT_S:
                    m[i] = True
            if not m.any():
                extra.append((role, sec))
            masks[role] = m
        lead_gap_seg = lead_gap_segments(track, gap)
    pos = np.arange(n)
    in_event = np.zeros(n, dtype=bool)
    if kind != "track_gap" and times.start is not None and times.end is not None and n:
        in_event = (track.t >= times.start.timestamp()) & (track.t <= times.end.timestamp())
    first_in = pos == (int(np.argmax(in_event)) if in_event.any() else -1)
    last_in = pos == (n - 1 - int(np.argmax(in_event[::-1])) if in_event.any() else -1)
    # Load state carried forward over unknown fixes (a sensor dropout is not a load change).
    seen = np.where(track.loaded >= 0, np.arange(n), -1)
    np.maximum.accumulate(seen, out=seen)
    known = np.where(seen >= 0, track.loaded[np.maximum(seen, 0)], -1).astype(float)
    known[known < 0] = np.nan
    prev = np.append(np.nan, known[:-1])
    tip = track.tipping
    tip_prev = np.append(np.int8(0), tip[:-1])
    silent = track.silent() & ~lead_gap_seg
    depart_m = np.zeros(n, dtype=bool)
    if times.depart is not None and n:
        i = int(np.argmin(np.abs(track.t - times.depart.timestamp())))
        depart_m[i] = abs(track.t[i] - times.depart.timestamp()) <= 60.0
    nearest = pos == (int(np.nanargmin(dist)) if n and np.isfinite(dist).any() else -1)
    masks.update(
        {
            "arrival": first_in,
            "departure": last_in,
            "tip-start": (tip == 1) & (tip_prev != 1),
            "tip-end": (tip == 0) & (tip_prev == 1),
            "unloaded": (known == 0) & (prev == 1),
            "loaded": (known == 1) & (prev == 0),
            "depart": depart_m,
            "silence-end": np.append(False, silent),
            "nearest": nearest & ~in_event,
            "first": pos == 0,
            "last": pos == n - 1,
        }
    )
    roles = [r for r in ROLE_WORDS if r in masks]
    rows: list[KeyPoint] = []
    if n:
        stacked = np.vstack([masks[r] for r in roles])
        chosen = np.flatnonzero(stacked.any(axis=0))
        budget = MAX_TRACK_ROWS - len(extra)
        if len(chosen) > budget:
            first_prio = np.argmax(stacked[:, chosen], axis=0)
            chosen = np.sort(chosen[np.argsort(first_prio, kind="stable")[:budget]])
        site_names = sites_at(track.lon[chosen], track.lat[chosen]) if sites_at else [""] * len(chosen)
        for k, i in enumerate(chosen.tolist()):  # a few dozen selected rows, not the track
            here = [r for r in roles if masks[r][i]]
            words = [_role_words(r, track, i, gap) for r in here]
            rows.append(
                KeyPoint(
                    ts=track.ts(i),
                    role=" ".join(here),
                    note="、".join(words),
                    lon=float(track.lon[i]),
                    lat=float(track.lat[i]),
                    speed_kmh=float(track.speed[i]),
                    loaded=int(track.loaded[i]),
                    tipping=int(track.tipping[i]),
                    dist_m=float(dist[i]),
                    site=site_names[k],
                )
            )
    for role, sec in extra:
        words = _role_words(role, track, -1, gap) + "（依据检测记录，该时刻无定位点）"
        rows.append(KeyPoint(local_ts(sec), role, words, np.nan, np.nan, np.nan, -1, -1, np.nan, ""))
    rows.sort(key=lambda r: r.ts)
    return rows


def _role_words(role: str, track: Track, i: int, gap: tuple[pd.Timestamp, pd.Timestamp] | None) -> str:
    if role == "gap-end" and gap is not None:
        minutes = (gap[1] - gap[0]).total_seconds() / 60.0
        return f"定位恢复（本线索中断 {fmt_minutes(minutes)}）"
    if role == "silence-end" and i > 0:
        return f"信号恢复（此前缺失 {fmt_minutes((track.t[i] - track.t[i - 1]) / 60.0)}，非本线索中断）"
    return ROLE_WORDS[role]
