"""Small value rules every stage shares: plates, three-state booleans, plain JSON values, local time.

Each rule lives here once. Written three times they drifted apart — three plate
normalisations with different separator sets, JSON writers disagreeing on NaN,
sensor columns where "unknown" quietly became "empty" — and a sheet, a store row
and leads.geojson then disagreed about the same truck.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE

#: Separators platforms put inside plates: middle dots of every flavour, full stop, whitespace (the contract:
#: "the dot · and spaces are not significant"). One list; the vectorised reader builds its Arrow regex from it.
PLATE_SEPARATORS = "·•．.・･‧∙⋅\u3000"
_PLATE_NOISE = re.compile("[\\s" + re.escape(PLATE_SEPARATORS) + "]")


def normalise_plate(value: object) -> str:
    """``沪A·D1234`` = ``沪A D1234`` = ``沪ad１２３４`` → ``沪AD1234`` (NFKC, no separators, upper case)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return _PLATE_NOISE.sub("", unicodedata.normalize("NFKC", str(value))).upper()


def tri_state(values: pd.Series) -> np.ndarray:
    """int8 1 / 0 / -1 (unknown) from a bool-ish column: bool, nullable boolean, 0/1, "true"/"false", None.

    Sensors are missing on many trucks, so unknown must stay unknown, never become "empty".
    """
    if values is None or len(values) == 0:
        return np.zeros(0, dtype=np.int8)
    dtype = values.dtype
    if isinstance(dtype, pd.BooleanDtype):
        return values.array.to_numpy(dtype="int8", na_value=-1)
    if dtype == np.bool_:
        return values.to_numpy().astype(np.int8)
    if pd.api.types.is_numeric_dtype(dtype):
        v = values.to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isnan(v), -1, v != 0).astype(np.int8)
    words = values.astype(object).map(_word)
    return words.to_numpy(dtype=np.int8)


def _word(v: object) -> int:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return -1
    if isinstance(v, (bool, np.bool_)):
        return int(bool(v))
    text = str(v).strip().lower()
    return 1 if text in ("true", "1", "1.0") else 0 if text in ("false", "0", "0.0") else -1


def opt_bool(value: object) -> bool | None:
    """One optional boolean: None when unknown (None, NA, NaN), else its truth."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


def local_seconds(t: pd.Timestamp | dt.datetime) -> str:
    """ISO 8601 in Asia/Shanghai to the second, with its offset: how outputs write a time."""
    ts = pd.Timestamp(t)
    ts = ts.tz_localize(TIMEZONE) if ts.tzinfo is None else ts.tz_convert(TIMEZONE)
    return ts.isoformat(timespec="seconds")


def jsonable(value: Any, time: Callable[[Any], str] | None = None) -> Any:
    """Plain JSON values from what frames hold: numpy scalars and arrays, Timestamps, NaN, NA, sets.

    NaN and ±inf become None (JSON has no NaN and PostgreSQL's jsonb rejects it);
    times are written by ``time`` (default: ISO 8601 as the value carries it).
    """
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, time) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series)):
        return [jsonable(v, time) for v in (sorted(value) if isinstance(value, set) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return time(value) if time is not None else value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
