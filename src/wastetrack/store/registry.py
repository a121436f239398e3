"""``lead_registry``: derived from the stored leads and feedback, never patched.

Deriving instead of updating in place means a re-run that drops or re-dates a lead, or
feedback that arrives out of order, still leaves the registry exactly right.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.models import FEEDBACK_STATUSES
from wastetrack.store.codec import ts_text

# --- lead_registry: derived from stored leads and feedback ----------------------------------------

ASSIST_STATUSES = ("assist_requested", "assist_replied")
REGISTRY_VALUE_COLUMNS = ("kind", "vehicle_id", "first_date", "last_date", "status", "case_no",
                          "penalty_cny")


def derive_registry(lead_rows: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """What ``lead_registry`` holds for the leads in ``lead_rows``, indexed by lead_id.

    ``lead_rows``: lead_id, date, kind, vehicle_id (every stored night of these leads);
    ``feedback``: their stored feedback rows (``at`` decoded). Deriving instead of patching
    means a re-run that drops or re-dates a lead, or feedback that arrives out of order,
    still leaves the registry exactly right. Rules: first/last date over the nights; kind
    and vehicle from the latest night; status from the latest reply other than an entrusted
    investigation's (ties broken by the
    status's progression, then liaison id) or 'new'; case_no and penalty_cny are the
    latest non-empty ones (a 'closed' reply without the case number keeps the number).
    """
    cols = list(REGISTRY_VALUE_COLUMNS)
    if lead_rows.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="lead_id"))
    latest_night = lead_rows.sort_values(["lead_id", "date"]).drop_duplicates("lead_id", keep="last")
    reg = latest_night.set_index("lead_id")[["kind", "vehicle_id"]].sort_index()
    nights = lead_rows.groupby("lead_id")["date"]
    reg["first_date"] = nights.min()
    reg["last_date"] = nights.max()
    # entrusted evidence collection (委托调查取证) is about evidence, not the lead's status: not counted
    fb = feedback[feedback["lead_id"].isin(reg.index) & ~feedback["status"].isin(ASSIST_STATUSES)]
    rank = {s: i for i, s in enumerate(FEEDBACK_STATUSES)}
    fb = fb.assign(_rank=fb["status"].map(rank).fillna(-1))
    fb = fb.sort_values(["lead_id", "at", "_rank", "liaison_id"])
    fb["case_no"] = fb["case_no"].where(fb["case_no"] != "")  # an empty cell is no case number
    replies = fb.groupby("lead_id")
    reg["status"] = replies["status"].last().reindex(reg.index).fillna("new")
    reg["case_no"] = replies["case_no"].last().reindex(reg.index)  # last() = latest non-empty
    reg["penalty_cny"] = replies["penalty_cny"].last().reindex(reg.index).astype("float64")
    return reg[cols]


def _plain(value: Any) -> Any:
    """For comparing a derived registry row with a stored one: NaN/NA → None, numpy → Python."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def registry_changes(derived: pd.DataFrame, stored: pd.DataFrame, affected: Iterable[str],
                     now: str) -> tuple[list[str], list[tuple]]:
    """(ids to delete, rows to insert) turning ``stored`` into ``derived`` for ``affected`` ids.

    A row whose values did not change is left alone, ``updated_at`` included, so re-running a
    night or re-applying feedback leaves the registry byte-identical.
    """
    stored = stored.set_index("lead_id")
    delete: list[str] = []
    insert: list[tuple] = []
    for lead_id in sorted(set(affected)):
        new = tuple(_plain(v) for v in derived.loc[lead_id]) if lead_id in derived.index else None
        old = (tuple(_plain(stored.at[lead_id, c]) for c in REGISTRY_VALUE_COLUMNS)
               if lead_id in stored.index else None)
        if new == old:
            continue
        if old is not None:
            delete.append(lead_id)
        if new is not None:
            insert.append((lead_id, *new, now))
    return delete, insert


def now_text() -> str:
    return ts_text(pd.Series([pd.Timestamp.now(tz=TIMEZONE)]))[0]
