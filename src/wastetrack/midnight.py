"""The midnight rule: which night reports an event, and which night stores a stay or a haul.

Contract v1.1: every event is reported once, in the first run that can decide
it — the run of the day on which it ended, unless deciding needs the next day's
data (an off-site stop of a truck without sensors is an unloading only once the
truck is seen loading again). Leads are therefore placed by ``decided_at``;
stays and hauls by their end.

Whether an event *ended* is itself something the day's data may not show. When
a vehicle's data of the day stops within ``open_event_margin_s`` of midnight
and the event is still going on then, the day cannot know it ended that day:
the next night, which sees how it really ended, decides it. Still going on
means its end is that last fix, or (for a lead) it ended within the margin
before it while the truck was still within ``open_event_radius_m`` of it and
still reporting at midnight (silent no longer than ``stay_silence_split_s``)
and not seen driving off at road speed (``open_event_leaving_kmh``): in the
receiver's yard after a gate queue, at the second spot of a split dump — places
a truck reaches at a crawl.
That next night, in turn, takes back such items of the previous day by the
same test on the same fixes (the carried tail holds them), so nothing is lost
or reported twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import max_per_vehicle, vehicle_time_order
from wastetrack.config import Params
from wastetrack.coords import haversine_m
from wastetrack.models import HAUL_COLUMNS


def _us(ts: pd.Series) -> np.ndarray:
    """int64 microseconds (UTC) of a time column; NaT becomes the smallest int64."""
    return np.asarray(pd.Series(ts).astype(f"datetime64[us, {TIMEZONE}]").array.asi8, dtype=np.int64)


def _last_fix(fixes: pd.DataFrame, t: np.ndarray, mask: np.ndarray) -> pd.Series:
    """Per vehicle (index: plate), the time of its last fix among ``mask`` rows, as int64 µs."""
    return max_per_vehicle(fixes["vehicle_id"], t, mask).rename("_last")


class NightBoundary:
    """Decides which night an event, stay or haul belongs to (per vehicle: shard by shard gives the same)."""

    def __init__(self, fixes: pd.DataFrame, date: str, params: Params) -> None:
        self.date = date
        self.day0 = pd.Timestamp(date, tz=TIMEZONE)
        self.day1 = self.day0 + pd.Timedelta(days=1)
        self.margin = pd.Timedelta(seconds=params.open_event_margin_s)
        self.radius_m = params.open_event_radius_m
        self.reporting = pd.Timedelta(seconds=params.stay_silence_split_s)
        t = _us(fixes["ts"])
        self.last0 = _last_fix(fixes, t, t < self.day0.value // 1000)
        self.last1 = _last_fix(fixes, t, t < self.day1.value // 1000)
        self.where0 = _last_place(fixes, t, t < self.day0.value // 1000, params)
        self.where1 = _last_place(fixes, t, t < self.day1.value // 1000, params)
        self.leaving_mps = params.open_event_leaving_kmh / 3.6

    @staticmethod
    def _last(frame: pd.DataFrame, last: pd.Series) -> np.ndarray:
        keys = frame["vehicle_id"].astype(str).to_numpy()
        return last.reindex(keys).fillna(np.iinfo(np.int64).min).to_numpy(dtype=np.int64)

    def _still_there(self, frame: pd.DataFrame, place: tuple[str, str] | None, end_us: np.ndarray,
                     last: pd.Series, where: pd.DataFrame, day_us: int) -> np.ndarray:
        """The event may still have been going on when the vehicle's data before ``day_us`` stopped."""
        last_us = self._last(frame, last)
        margin = int(self.margin.total_seconds() * 1e6)
        near_midnight = last_us >= day_us - margin
        open_ = (end_us == last_us) & near_midnight
        if place is None or not all(c in frame for c in place):
            return open_
        keys = frame["vehicle_id"].astype(str).to_numpy()
        w = where.reindex(keys)
        lon, lat = frame[place[0]].to_numpy(float), frame[place[1]].to_numpy(float)
        d = haversine_m(lon, lat, w["lon"].to_numpy(float), w["lat"].to_numpy(float))
        nearby = np.nan_to_num(d, nan=np.inf) <= self.radius_m
        # still reporting when the day ended (no longer silent than a parked terminal's interval): a truck
        # that went dark at 23:50 after its dump is not "still there", it is gone from the data
        reporting = last_us >= day_us - int(self.reporting.total_seconds() * 1e6)
        # ... nor is one whose last fix was at road speed: it drove off (yards and split spots are crawled)
        driving = np.nan_to_num(w["speed_mps"].to_numpy(float), nan=0.0) >= self.leaving_mps
        return open_ | (reporting & nearby & ~driving & (end_us >= last_us - margin) & (end_us <= last_us))

    def masks(self, frame: pd.DataFrame, on: str = "end", place: tuple[str, str] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(belongs to this night, belonged to an earlier night) for rows with ``vehicle_id`` and ``on``.

        Leads are placed by ``decided_at`` — when the evidence was complete (an
        off-site stay is only an unloading once the truck came back to load) —
        so an event that ended at 23:35 but was decided at 00:35 is reported by
        the next night, not lost between the two. ``place`` (lon, lat columns):
        an event the truck was still at when the day's data stopped is left to
        the next night (see the module's docstring); without it only an event
        that ends at the vehicle's last fix is.
        """
        if frame.empty:
            return np.zeros(0, bool), np.zeros(0, bool)
        end = frame[on]
        end_us = _us(end)
        ended = end.dt.tz_convert(TIMEZONE).dt.strftime("%Y-%m-%d").to_numpy()
        day0 = self.day0.value // 1000
        day1 = self.day1.value // 1000
        open_now = self._still_there(frame, place, end_us, self.last1, self.where1, day1)
        left_to_us = (ended < self.date) & self._still_there(frame, place, end_us, self.last0, self.where0, day0)
        mine = ((ended == self.date) & ~open_now) | left_to_us
        return mine, ~mine & (ended < self.date)


def _last_place(fixes: pd.DataFrame, t: np.ndarray, mask: np.ndarray, params: Params) -> pd.DataFrame:
    """Per vehicle (index: plate), where its last fix among ``mask`` rows was (lon, lat), and how fast it
    moved from the fix before (``speed_mps``; NaN without one within ``stay_silence_split_s``).

    Grouped on integer vehicle codes, like ``clean.max_per_vehicle``: plates become
    strings only for the few result rows.
    """
    veh = fixes["vehicle_id"]
    if isinstance(veh.dtype, pd.CategoricalDtype):
        codes, names = np.asarray(veh.cat.codes.to_numpy(), dtype=np.int64), veh.cat.categories
    else:
        codes, names = pd.factorize(veh)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return pd.DataFrame({"lon": pd.Series(dtype=float), "lat": pd.Series(dtype=float),
                             "speed_mps": pd.Series(dtype=float)})
    order = idx[vehicle_time_order(codes[idx], t[idx])]
    last = np.r_[codes[order][1:] != codes[order][:-1], True]
    rows = order[last]
    pos = np.flatnonzero(last)
    prev = np.where(pos > 0, order[np.maximum(pos - 1, 0)], rows)
    has_prev = (pos > 0) & (codes[prev] == codes[rows])
    lon, lat = fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float)
    dt = (t[rows] - t[prev]) / 1e6
    ok = has_prev & (dt > 0) & (dt <= params.stay_silence_split_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(ok, haversine_m(lon[prev], lat[prev], lon[rows], lat[rows]) / dt, np.nan)
    plates = pd.Index(np.asarray(names, dtype=object)[codes[rows]]).astype(str)
    return pd.DataFrame({"lon": lon[rows], "lat": lat[rows], "speed_mps": speed}, index=plates)


def split_by_night(leads: pd.DataFrame, boundary: NightBoundary) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leads this night reports, leads earlier nights reported) — each event is reported once."""
    mine, earlier = boundary.masks(leads, on="decided_at" if "decided_at" in leads else "end", place=("lon", "lat"))
    return leads.loc[mine].copy(), leads.loc[earlier]


def of_the_night(stays: pd.DataFrame, hauls: pd.DataFrame, boundary: NightBoundary) -> tuple[pd.DataFrame, ...]:
    """Stays and hauls of this night (same rule as leads): each lands in exactly one night of the store."""
    s = stays.loc[boundary.masks(stays)[0]] if len(stays) else stays
    h = (
        hauls.loc[boundary.masks(hauls)[0], list(HAUL_COLUMNS)]
        if len(hauls)
        else hauls.reindex(columns=list(HAUL_COLUMNS))
    )
    return s.reset_index(drop=True), h.reset_index(drop=True)
