"""The midnight rule: which night reports an event, and which night stores a stay or a haul.

Contract v1.1: every event is reported once, in the first run that can decide
it — the run of the day on which it ended, unless deciding needs the next day's
data (an off-site stop of a truck without sensors is an unloading only once the
truck is seen loading again). Leads are therefore placed by ``decided_at``;
stays and hauls by their end.

One caveat: an item still open when a vehicle's data stops in the last
``open_event_margin_s`` of a day (its end is then just the last fix we have) is
left to the next night, which sees how it really ended; that next night, in
turn, takes back such items of the previous day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import max_per_vehicle
from wastetrack.config import Params
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
        t = _us(fixes["ts"])
        self.last0 = _last_fix(fixes, t, t < self.day0.value // 1000)
        self.last1 = _last_fix(fixes, t, t < self.day1.value // 1000)

    @staticmethod
    def _last(frame: pd.DataFrame, last: pd.Series) -> np.ndarray:
        keys = frame["vehicle_id"].astype(str).to_numpy()
        return last.reindex(keys).fillna(np.iinfo(np.int64).min).to_numpy(dtype=np.int64)

    def masks(self, frame: pd.DataFrame, on: str = "end") -> tuple[np.ndarray, np.ndarray]:
        """(belongs to this night, belonged to an earlier night) for rows with ``vehicle_id`` and ``on``.

        Leads are placed by ``decided_at`` — when the evidence was complete (an
        off-site stay is only an unloading once the truck came back to load) —
        so an event that ended at 23:35 but was decided at 00:35 is reported by
        the next night, not lost between the two.
        """
        if frame.empty:
            return np.zeros(0, bool), np.zeros(0, bool)
        end = frame[on]
        end_us = _us(end)
        ended = end.dt.tz_convert(TIMEZONE).dt.strftime("%Y-%m-%d").to_numpy()
        day0 = self.day0.value // 1000
        day1 = self.day1.value // 1000
        margin = int(self.margin.total_seconds() * 1e6)
        open_now = (end_us == self._last(frame, self.last1)) & (end_us >= day1 - margin)
        left_to_us = (ended < self.date) & (end_us == self._last(frame, self.last0)) & (end_us >= day0 - margin)
        mine = ((ended == self.date) & ~open_now) | left_to_us
        return mine, ~mine & (ended < self.date)


def split_by_night(leads: pd.DataFrame, boundary: NightBoundary) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leads this night reports, leads earlier nights reported) — each event is reported once."""
    mine, earlier = boundary.masks(leads, on="decided_at" if "decided_at" in leads else "end")
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
