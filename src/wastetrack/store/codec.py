"""Frames ↔ the plain values every DB-API driver binds, by the kinds in ``tables.TABLES``.

Encoding happens before a transaction starts (a bad value never takes the write lock);
decoding gives the project's dtypes whatever the backend: tz-aware Asia/Shanghai
timestamps, nullable booleans and integers, Python lists/dicts for JSON, GeoDataFrames
(EPSG:4326) for ``GEO_TABLES``.

Timestamps are stored as ISO 8601 text in local time with the offset
(``2026-11-20T23:41:07+08:00``, ``.ffffff`` only when the fraction is non-zero).
Within one offset that text sorts chronologically ('+' sorts before '.', so
``…07+08:00`` < ``…07.5+08:00``), it is readable in any SQL shell, and PostgreSQL
casts it straight into ``timestamptz``. Precision is the microsecond, like
PostgreSQL; finer digits are truncated.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wastetrack import TIMEZONE
from wastetrack.models import HAUL_COLUMNS, LEAD_COLUMNS, PLACE_COLUMNS, STAY_COLUMNS, require_columns
from wastetrack.store.tables import (
    CRS,
    DATE_RE,
    GEO_TABLES,
    NIGHT_TABLES,
    STATE_KEYS,
    TABLES,
    TRACK_COLUMNS,
)
from wastetrack.values import jsonable

# --- encoding: frames → values every DB-API driver binds ------------------------------------------

def check_date(date: str) -> str:
    """A run date is the local calendar day 'YYYY-MM-DD'; anything else is a caller bug."""
    if not isinstance(date, str) or not DATE_RE.match(date):
        raise ValueError(f"date must be 'YYYY-MM-DD', got {date!r}")
    dt.date.fromisoformat(date)  # rejects 2026-02-30
    return date


def to_local_ts(values: pd.Series) -> pd.Series:
    """Any time column (tz-aware, naive = local per the contract, ISO text) → tz-aware Asia/Shanghai."""
    s = pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(TIMEZONE)
    if not pd.api.types.is_datetime64_dtype(s.dtype):
        s = s.astype(object).where(s.notna(), None)
        try:
            s = pd.to_datetime(s, format="ISO8601")
        except (ValueError, TypeError):  # mixed offsets, or naive mixed with aware: one by one (rare)
            s = pd.Series([_local_scalar(v) for v in s], index=s.index, dtype=f"datetime64[us, {TIMEZONE}]")
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_convert(TIMEZONE)
    return s.dt.tz_localize(TIMEZONE)


def _local_scalar(value: Any) -> pd.Timestamp:
    if value is None:
        return pd.NaT
    t = pd.Timestamp(value)
    return t.tz_localize(TIMEZONE) if t.tzinfo is None else t.tz_convert(TIMEZONE)


def _bool_values(values: pd.Series) -> np.ndarray:
    """True/False/None objects; accepts bool, numpy bool, 0/1 and missing values, mixed."""
    if values.dtype != object:
        return pd.array(values, dtype="boolean").to_numpy(dtype=object, na_value=None)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out[i] = None
        elif isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, float, np.integer)) and v in (0, 1)):
            out[i] = bool(v)
        else:
            raise TypeError(f"expected booleans, got {v!r}")
    return out


def ts_text(values: pd.Series) -> list[str | None]:
    """Vectorised ISO 8601 with offset, local time; None for NaT (see the module docstring)."""
    local = to_local_ts(values)
    naive = local.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    utc = local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    valid = local.notna().to_numpy()
    offset_min = np.where(valid, (naive - utc).astype("timedelta64[m]").astype("int64"), 0)
    whole = (naive - naive.astype("datetime64[s]")) == np.timedelta64(0, "us")
    text = np.where(whole, np.datetime_as_string(naive, unit="s"), np.datetime_as_string(naive, unit="us"))
    offsets = {m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
               for m in np.unique(offset_min)}
    out = pd.Series(text, dtype=object) + pd.Series(offset_min).map(offsets).to_numpy()
    return out.where(valid, None).tolist()


def dumps(value: Any) -> str | None:
    """JSON text (UTF-8 Chinese kept readable) or None for a missing value."""
    value = jsonable(value)
    return None if value is None else json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)


def encode_column(values: pd.Series, kind: str, where: str) -> list[Any]:
    """One column → Python values (str/float/int/bool/None). ``where`` names it in errors."""
    try:
        if kind == "ts":
            return ts_text(values)
        missing = pd.Series(values).isna().to_numpy() if kind != "json" else None
        if kind == "text":
            if values.dtype == object:  # a str-dtype column needs no look
                bad = [v for v in values[~missing] if not isinstance(v, str)][:3]
                if bad:
                    raise TypeError(f"expected strings, got {bad!r}")
            out = values.to_numpy(dtype=object, copy=True)
        elif kind == "real":
            num = pd.to_numeric(values, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
            missing = ~np.isfinite(num)
            out = num.astype(object)
        elif kind == "int":
            num = pd.to_numeric(values, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
            whole = np.where(missing, 0.0, num)
            if (whole % 1 != 0).any():
                raise TypeError("expected whole numbers")
            out = whole.astype("int64").astype(object)
        elif kind == "bool":
            out = _bool_values(values)
        elif kind == "json":
            return [dumps(v) for v in values]
        elif kind == "wkt":
            return _linestring_wkt(values)
        else:  # pragma: no cover - TABLES only uses the kinds above
            raise AssertionError(kind)
    except (TypeError, ValueError) as exc:
        raise (TypeError if isinstance(exc, TypeError) else ValueError)(f"{where}: {exc}") from exc
    out[missing] = None
    return out.tolist()


def _linestring_wkt(values: pd.Series) -> list[str]:
    """WKT text, checked here so both backends refuse the same tracks before any write.

    PostGIS would reject a non-LineString in its geometry(LineString, 4326) column only
    mid-transaction, and SQLite keeps text: so every value must parse, be a non-empty
    LineString and lie within WGS-84 degrees (a metric or swapped-up track fails here).
    """
    text = values.to_numpy(dtype=object)
    if pd.isna(values).any() or not all(isinstance(v, str) for v in text):
        raise TypeError("expected LINESTRING WKT text in every row")
    try:
        geoms = shapely.from_wkt(text, on_invalid="raise")
    except shapely.errors.GEOSException as exc:
        raise ValueError(f"not WKT: {exc}") from exc
    bad = (shapely.get_type_id(geoms) != shapely.GeometryType.LINESTRING) | shapely.is_empty(geoms)
    if bad.any():
        raise ValueError(f"expected non-empty LINESTRINGs, got {text[bad][0][:60]!r}")
    bounds = shapely.bounds(geoms).reshape(-1, 4)
    lon, lat = bounds[:, [0, 2]], bounds[:, [1, 3]]
    if not (np.isfinite(bounds).all() and (np.abs(lon) <= 180).all() and (np.abs(lat) <= 90).all()):
        raise ValueError("coordinates must be WGS-84 lon/lat degrees")
    return text.tolist()


def encode_frame(frame: pd.DataFrame, table: str, date: str | None = None) -> list[tuple]:
    """Rows for ``INSERT INTO table`` in ``TABLES[table]`` order; the night tables get ``date``."""
    spec = TABLES[table]
    cols = [c for c in spec if not (c == "date" and table in NIGHT_TABLES)]
    frame = frame.reset_index(drop=True)
    data = [encode_column(frame[c], spec[c], f"{table}.{c}") for c in cols]
    if table in NIGHT_TABLES:
        data.insert(0, [date] * len(frame))
    return list(zip(*data, strict=True))


def with_lon_lat(frame: pd.DataFrame) -> pd.DataFrame:
    """Accept a GeoDataFrame of points without lon/lat columns (the geometry is then the truth)."""
    if ("lon" not in frame or "lat" not in frame) and isinstance(frame, gpd.GeoDataFrame):
        geom = frame.geometry.to_crs(CRS) if frame.crs is not None else frame.geometry
        frame = pd.DataFrame(frame).assign(lon=geom.x.to_numpy(), lat=geom.y.to_numpy())
    return frame


def encode_state(date: str, state: Mapping[str, Any]) -> tuple:
    """The ``night_state`` row: the ``STATE_KEYS`` as columns (queryable) and the whole mapping as JSON."""
    if not isinstance(state, Mapping):
        raise TypeError(f"night_state: expected a mapping, got {type(state).__name__}")
    for key, kind in STATE_KEYS.items():
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value):
            raise ValueError(f"night_state.{key}: expected {kind.__name__}, got {value!r}")
    created = encode_column(pd.Series([state["created_at"]], dtype=object), "ts", "night_state.created_at")[0]
    return (date, state["uri"], int(state["vehicles"]), int(state["fixes"]), created, dumps(dict(state)))


def encode_run(date: str, run: Mapping[str, Any]) -> tuple:
    """The ``runs`` row; ``run_json`` keeps run.json whole, the other columns are for queries."""
    if run.get("date", date) != date:
        raise ValueError(f"run.date {run.get('date')!r} is not the night being stored ({date})")
    if not run.get("status"):
        raise ValueError("run needs a 'status'")

    def text(key: str) -> str | None:
        return None if run.get(key) is None else str(run[key])

    return (date, str(run["status"]),
            *ts_text(pd.Series([run.get("started_at"), run.get("finished_at")], dtype=object)),
            text("version"), dumps(dict(run)), text("run_id"), text("out_version"))


def encode_night(date: str, stays: pd.DataFrame, hauls: pd.DataFrame, leads: pd.DataFrame,
                 run: Mapping[str, Any], tracks: pd.DataFrame | None,
                 state: Mapping[str, Any] | None) -> dict[str, list[tuple]]:
    """Every row ``replace_night`` writes, by table, checked and encoded before any lock is taken."""
    return {**encode_night_rows(date, stays, hauls, leads, tracks, state), "runs": [encode_run(date, run)]}


def encode_night_rows(date: str, stays: pd.DataFrame, hauls: pd.DataFrame, leads: pd.DataFrame,
                      tracks: pd.DataFrame | None, state: Mapping[str, Any] | None) -> dict[str, list[tuple]]:
    """The night's rows without its run (``NIGHT_TABLES``): they are known once the merge is done, so a
    night run encodes them while the sheets render; the run's row (timings, outputs) comes last."""
    stays, leads = with_lon_lat(stays), with_lon_lat(leads)
    require_columns(stays, (*STAY_COLUMNS, *PLACE_COLUMNS), "stays")
    require_columns(hauls, HAUL_COLUMNS, "hauls")
    require_columns(leads, (*LEAD_COLUMNS, "lon", "lat"), "leads")
    if "evidence" not in leads:
        leads = leads.assign(evidence=None)
    encoded = {"stays": encode_frame(stays, "stays", date),
               "hauls": encode_frame(hauls, "hauls", date),
               "leads": encode_frame(leads, "leads", date),
               "lead_tracks": [],
               "night_state": [] if state is None else [encode_state(date, state)]}
    if tracks is not None:
        require_columns(tracks, TRACK_COLUMNS, "lead_tracks")
        if stray := sorted(set(tracks["lead_id"]) - {r[1] for r in encoded["leads"]}):
            raise ValueError(f"lead_tracks: lead ids not among the night's leads: {stray[:5]}")
        encoded["lead_tracks"] = encode_frame(tracks, "lead_tracks", date)
    return encoded


def check_table(table: str, date: str | None) -> None:
    """``read``'s arguments: a known table (never SQL from the caller) and a night only where one exists."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; one of {sorted(TABLES)}")
    if date is not None:
        if "date" not in TABLES[table]:
            raise ValueError(f"{table} spans nights; read it whole (date=None)")
        check_date(date)


# --- decoding: rows → frames with the project's dtypes -------------------------------------------

def loads_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # psycopg hands jsonb back parsed


def decode_column(values: Sequence[Any], kind: str) -> pd.Series:
    if kind in ("text", "wkt"):
        return pd.Series(values, dtype="str")
    if kind == "ts":
        parsed = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True)
        return parsed.dt.tz_convert(TIMEZONE).astype(f"datetime64[us, {TIMEZONE}]")
    if kind == "real":
        return pd.Series(values, dtype=object).astype("float64")
    if kind == "int":
        return pd.Series(values, dtype=object).astype("Int64")
    if kind == "bool":
        return pd.Series([None if v is None else bool(v) for v in values], dtype="boolean")
    if kind == "json":
        return pd.Series([loads_json(v) for v in values], dtype=object)
    raise AssertionError(kind)  # pragma: no cover


def decode_rows(rows: Sequence[Sequence[Any]], table: str) -> pd.DataFrame:
    """Rows in ``TABLES[table]`` order → DataFrame (GeoDataFrame, EPSG:4326, for ``GEO_TABLES``)."""
    spec = TABLES[table]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(spec)
    frame = pd.DataFrame({c: decode_column(v, k) for (c, k), v in zip(spec.items(), columns, strict=True)})
    if table not in GEO_TABLES:
        return frame
    if "wkt" in spec:
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries.from_wkt(frame["wkt"].to_numpy(dtype=object)),
                                crs=CRS)
    lon, lat = frame["lon"].to_numpy(), frame["lat"].to_numpy()
    points = gpd.points_from_xy(lon, lat)
    points[np.isnan(lon) | np.isnan(lat)] = None
    return gpd.GeoDataFrame(frame, geometry=points, crs=CRS)


def _decode_series(col: pd.Series, kind: str) -> pd.Series:
    """``decode_column`` for a column pandas already typed: the cheap cast when its dtype is already
    the right family (100k+ rows), else the values one by one, exactly as from a cursor."""
    if kind == "ts" and isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert(TIMEZONE).astype(f"datetime64[us, {TIMEZONE}]")
    if kind == "real" and pd.api.types.is_float_dtype(col.dtype):
        return col.astype("float64")
    if kind == "int" and (pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_float_dtype(col.dtype)):
        return col.astype("Int64")
    if kind == "bool" and pd.api.types.is_bool_dtype(col.dtype):
        return col.astype("boolean")
    return decode_column(col.astype(object).where(col.notna(), None).tolist(), kind)


def decode_frame(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A frame read by another route (``geopandas.read_postgis``) → exactly what ``decode_rows`` gives.

    Every column is re-decoded from its values, so the driver's and pandas' own type guesses
    (float for an int column with NULLs, UTC datetimes, numpy bools) never reach the caller;
    a geometry column is kept as it is.
    """
    out = pd.DataFrame({c: _decode_series(frame[c].reset_index(drop=True), k) for c, k in TABLES[table].items()})
    if isinstance(frame, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, geometry=frame.geometry.reset_index(drop=True).rename("geometry"),
                                crs=frame.crs)
    return out
