"""The storage interface and everything about it that does not depend on the database.

Why this split: the pipeline, the CLI and the notebooks talk to ``Store`` only, and
every backend (SQLite now, PostGIS later) must behave identically, proven by one
test suite. So the parts where backends could drift apart live here, once:

* ``TABLES``: each table's columns and their logical kind (text, ts, real, int,
  bool, json) — the single description both DDL files translate;
* ``encode_column`` / ``decode_column``: frames → plain Python values any DB-API
  driver binds, and rows → frames with the project's dtypes (tz-aware
  Asia/Shanghai timestamps, nullable booleans, Python lists/dicts);
* ``derive_registry``: what ``lead_registry`` must contain, computed from the
  stored leads and feedback (so re-runs and late feedback can never leave it stale);
* ``SQLStore``: the transactions and statements, in portable SQL over a DB-API
  connection. A backend supplies the connection, its DDL and its placeholder.

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
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.models import (
    FEEDBACK_COLUMNS,
    FEEDBACK_STATUSES,
    HAUL_COLUMNS,
    LEAD_COLUMNS,
    PLACE_COLUMNS,
    STAY_COLUMNS,
    require_columns,
)

log = logging.getLogger(__name__)

CRS = "EPSG:4326"
#: rows per executemany call: bounds the memory of the encoded rows for ~100k-stay nights
CHUNK_ROWS = 20_000
#: ids per ``IN (…)`` list: far below SQLite's 32766-variable limit and PostgreSQL's 65535
IN_CHUNK = 500

# --- table descriptions ------------------------------------------------------------------------

_KINDS = {
    # stays / PLACE_COLUMNS
    "stay_id": "text", "vehicle_id": "text", "start": "ts", "end": "ts", "duration_s": "real",
    "lon": "real", "lat": "real", "n_fixes": "int", "tipping_any": "bool", "loaded_before": "bool",
    "loaded_after": "bool", "site_id": "text", "site_kind": "text", "county_adcode": "text",
    "city_adcode": "text", "province_adcode": "text",
    # hauls
    "haul_id": "text", "origin_site_id": "text", "origin_stay_id": "text", "depart": "ts",
    "unload_stay_id": "text", "unload_start": "ts", "unload_end": "ts", "unload_lon": "real",
    "unload_lat": "real", "unload_site_id": "text", "unload_county_adcode": "text",
    "unload_province_adcode": "text", "unload_evidence": "text", "gap_start": "ts", "gap_end": "ts",
    "gap_lon": "real", "gap_lat": "real", "gap_max_reach_m": "real", "returned_empty": "bool",
    # leads
    "lead_id": "text", "kind": "text", "cross_border": "bool", "score": "real", "carrier_id": "text",
    "origin_county_adcode": "text", "manifest_id": "text", "report_ids": "json", "candidates": "json",
    "primary_liaison_id": "text", "cc_liaison_ids": "json", "evidence": "json",
    # runs, registry, feedback
    "date": "text", "status": "text", "started_at": "ts", "finished_at": "ts", "version": "text",
    "run_json": "json", "first_date": "text", "last_date": "text", "case_no": "text",
    "penalty_cny": "real", "updated_at": "ts", "liaison_id": "text", "at": "ts", "note": "text",
}


def _spec(columns: Iterable[str]) -> dict[str, str]:
    return {c: _KINDS[c] for c in columns}


#: table → {column: kind}, in stored order. The night tables lead with ``date``.
TABLES: dict[str, dict[str, str]] = {
    "stays": _spec(("date", *STAY_COLUMNS, *PLACE_COLUMNS)),
    "hauls": _spec(("date", *HAUL_COLUMNS)),
    "leads": _spec(("date", *LEAD_COLUMNS, "lon", "lat", "evidence")),
    "runs": _spec(("date", "status", "started_at", "finished_at", "version", "run_json")),
    "lead_registry": _spec(("lead_id", "kind", "vehicle_id", "first_date", "last_date", "status",
                            "case_no", "penalty_cny", "updated_at")),
    "feedback": _spec(FEEDBACK_COLUMNS),
}
#: primary keys, which are also the order ``read`` returns rows in
KEYS: dict[str, tuple[str, ...]] = {
    "stays": ("date", "stay_id"), "hauls": ("date", "haul_id"), "leads": ("date", "lead_id"),
    "runs": ("date",), "lead_registry": ("lead_id",),
    "feedback": ("lead_id", "liaison_id", "at", "status"),
}
NIGHT_TABLES = ("stays", "hauls", "leads")
GEO_TABLES = ("stays", "leads")
FEEDBACK_KEY = KEYS["feedback"]
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- the interface -----------------------------------------------------------------------------

@runtime_checkable
class Store(Protocol):
    """Where the nights' results live. One implementation per database; same behaviour."""

    url: str

    def replace_night(self, date: str, stays: pd.DataFrame, hauls: pd.DataFrame, leads: pd.DataFrame,
                      run: Mapping[str, Any]) -> None:
        """Replace everything stored for ``date`` in one transaction (idempotent, all or nothing)."""
        ...

    def leads_reported_before(self, date: str, lead_ids: Iterable[str]) -> set[str]:
        """The ids among ``lead_ids`` already stored for a date earlier than ``date``."""
        ...

    def apply_feedback(self, feedback: pd.DataFrame) -> int:
        """Store new liaison replies and bring ``lead_registry`` up to date; returns rows added."""
        ...

    def read(self, table: str, date: str | None = None) -> pd.DataFrame:
        """One table (or one night of it), rows in primary-key order, with the project's dtypes.

        text → str, times → datetime64[us, Asia/Shanghai], int → Int64, bool → boolean (NA kept),
        JSON columns → Python lists/dicts; stays and leads come as GeoDataFrames (EPSG:4326,
        Point from lon/lat, None where those are missing).
        """
        ...

    def dates(self) -> list[str]:
        """Dates with a stored run, ascending."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...


# --- encoding: frames → values every DB-API driver binds ------------------------------------------

def check_date(date: str) -> str:
    """A run date is the local calendar day 'YYYY-MM-DD'; anything else is a caller bug."""
    if not isinstance(date, str) or not _DATE_RE.match(date):
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


def _ts_text(values: pd.Series) -> list[str | None]:
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


def _jsonable(value: Any) -> Any:
    """Plain JSON values from what pipeline frames hold (numpy scalars/arrays, Timestamps, NaN)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series)):
        return [_jsonable(v) for v in (sorted(value) if isinstance(value, set) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN and PostgreSQL jsonb rejects it
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def dumps(value: Any) -> str | None:
    """JSON text (UTF-8 Chinese kept readable) or None for a missing value."""
    value = _jsonable(value)
    return None if value is None else json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)


def encode_column(values: pd.Series, kind: str, where: str) -> list[Any]:
    """One column → Python values (str/float/int/bool/None). ``where`` names it in errors."""
    try:
        if kind == "ts":
            return _ts_text(values)
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
        else:  # pragma: no cover - TABLES only uses the kinds above
            raise AssertionError(kind)
    except (TypeError, ValueError) as exc:
        raise (TypeError if isinstance(exc, TypeError) else ValueError)(f"{where}: {exc}") from exc
    out[missing] = None
    return out.tolist()


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


# --- decoding: rows → frames with the project's dtypes -------------------------------------------

def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # psycopg hands jsonb back parsed


def decode_column(values: Sequence[Any], kind: str) -> pd.Series:
    if kind == "text":
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
        return pd.Series([_loads(v) for v in values], dtype=object)
    raise AssertionError(kind)  # pragma: no cover


def decode_rows(rows: Sequence[Sequence[Any]], table: str) -> pd.DataFrame:
    """Rows in ``TABLES[table]`` order → DataFrame (GeoDataFrame, EPSG:4326, for stays and leads)."""
    spec = TABLES[table]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(spec)
    frame = pd.DataFrame({c: decode_column(v, k) for (c, k), v in zip(spec.items(), columns, strict=True)})
    if table not in GEO_TABLES:
        return frame
    lon, lat = frame["lon"].to_numpy(), frame["lat"].to_numpy()
    points = gpd.points_from_xy(lon, lat)
    points[np.isnan(lon) | np.isnan(lat)] = None
    return gpd.GeoDataFrame(frame, geometry=points, crs=CRS)


# --- lead_registry: derived from stored leads and feedback ----------------------------------------

REGISTRY_VALUE_COLUMNS = ("kind", "vehicle_id", "first_date", "last_date", "status", "case_no",
                          "penalty_cny")


def derive_registry(lead_rows: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """What ``lead_registry`` holds for the leads in ``lead_rows``, indexed by lead_id.

    ``lead_rows``: lead_id, date, kind, vehicle_id (every stored night of these leads);
    ``feedback``: their stored feedback rows (``at`` decoded). Deriving instead of patching
    means a re-run that drops or re-dates a lead, or feedback that arrives out of order,
    still leaves the registry exactly right. Rules: first/last date over the nights; kind
    and vehicle from the latest night; status from the latest reply (ties broken by the
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
    fb = feedback[feedback["lead_id"].isin(reg.index)]
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
    return _ts_text(pd.Series([pd.Timestamp.now(tz=TIMEZONE)]))[0]


def chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


# --- the shared SQL implementation -----------------------------------------------------------------

def _q(name: str) -> str:
    return f'"{name}"'  # quoted: "start" and "end" are reserved words in both dialects


class SQLStore:
    """``Store`` over a DB-API connection in autocommit mode, with portable SQL only.

    A backend subclass opens ``self._conn`` (autocommit, so ``BEGIN``/``COMMIT`` below are
    the only transaction boundaries), creates its schema, sets ``url`` and, if its driver
    is not qmark-style, ``placeholder`` (psycopg: ``%s``). It may override ``_begin``
    (SQLite takes the write lock up front) or ``_insert`` (PostgreSQL: COPY).
    """

    url: str
    placeholder = "?"
    _conn: Any

    # -- plumbing
    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN")

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        self._begin(cur)
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    def _marks(self, n: int) -> str:
        return ", ".join([self.placeholder] * n)

    def _insert(self, cur: Any, table: str, rows: list[tuple]) -> None:
        cols = TABLES[table]
        sql = f"INSERT INTO {table} ({', '.join(map(_q, cols))}) VALUES ({self._marks(len(cols))})"
        for part in chunks(rows, CHUNK_ROWS):
            cur.executemany(sql, part)

    def _select(self, cur: Any, table: str, where: str = "", params: Sequence[Any] = ()) -> pd.DataFrame:
        cols = ", ".join(map(_q, TABLES[table]))
        order = ", ".join(map(_q, KEYS[table]))
        cur.execute(f"SELECT {cols} FROM {table} {where} ORDER BY {order}", tuple(params))
        return decode_rows(cur.fetchall(), table)

    def _select_in(self, cur: Any, table: str, column: str, ids: Sequence[str]) -> pd.DataFrame:
        parts = [self._select(cur, table, f"WHERE {_q(column)} IN ({self._marks(len(c))})", c)
                 for c in chunks(list(ids), IN_CHUNK)]
        return pd.concat(parts, ignore_index=True) if parts else decode_rows([], table)

    def _refresh_registry(self, cur: Any, lead_ids: Iterable[str]) -> None:
        """Re-derive the registry rows of ``lead_ids`` from the stored leads and feedback."""
        ids = sorted(set(lead_ids))
        if not ids:
            return
        leads = self._select_in(cur, "leads", "lead_id", ids)
        feedback = self._select_in(cur, "feedback", "lead_id", ids)
        stored = self._select_in(cur, "lead_registry", "lead_id", ids)
        derived = derive_registry(pd.DataFrame(leads[["lead_id", "date", "kind", "vehicle_id"]]), feedback)
        delete, insert = registry_changes(derived, stored, ids, now_text())
        for part in chunks(delete, IN_CHUNK):
            cur.execute(f"DELETE FROM lead_registry WHERE lead_id IN ({self._marks(len(part))})", tuple(part))
        if insert:
            self._insert(cur, "lead_registry", insert)

    # -- Store
    def replace_night(self, date: str, stays: pd.DataFrame, hauls: pd.DataFrame, leads: pd.DataFrame,
                      run: Mapping[str, Any]) -> None:
        """Delete the night's stays/hauls/leads/run, insert the new ones, refresh the registry.

        One transaction: a failure anywhere (bad value, duplicate id, disk full) rolls back
        to the previous content of the night. Frames are encoded before the transaction
        starts, so a type error does not even take the write lock.
        """
        check_date(date)
        if run.get("date", date) != date:
            raise ValueError(f"run.date {run.get('date')!r} is not the night being stored ({date})")
        if not run.get("status"):
            raise ValueError("run needs a 'status'")
        stays, leads = with_lon_lat(stays), with_lon_lat(leads)
        require_columns(stays, (*STAY_COLUMNS, *PLACE_COLUMNS), "stays")
        require_columns(hauls, HAUL_COLUMNS, "hauls")
        require_columns(leads, (*LEAD_COLUMNS, "lon", "lat"), "leads")
        if "evidence" not in leads:
            leads = leads.assign(evidence=None)
        encoded = {
            "stays": encode_frame(stays, "stays", date),
            "hauls": encode_frame(hauls, "hauls", date),
            "leads": encode_frame(leads, "leads", date),
        }
        run_row = (date, str(run["status"]),
                   *_ts_text(pd.Series([run.get("started_at"), run.get("finished_at")], dtype=object)),
                   None if run.get("version") is None else str(run["version"]), dumps(dict(run)))
        with self._transaction() as cur:
            cur.execute(f"SELECT lead_id FROM leads WHERE date = {self.placeholder}", (date,))
            old_ids = {r[0] for r in cur.fetchall()}
            for table in (*NIGHT_TABLES, "runs"):  # children first: they reference runs(date)
                cur.execute(f"DELETE FROM {table} WHERE date = {self.placeholder}", (date,))
            self._insert(cur, "runs", [run_row])
            for table in NIGHT_TABLES:
                self._insert(cur, table, encoded[table])
            self._refresh_registry(cur, old_ids | {r[1] for r in encoded["leads"]})

    def leads_reported_before(self, date: str, lead_ids: Iterable[str]) -> set[str]:
        check_date(date)
        ids = sorted({str(i) for i in lead_ids})
        found: set[str] = set()
        cur = self._conn.cursor()
        try:
            for part in chunks(ids, IN_CHUNK):
                cur.execute(f"SELECT lead_id FROM lead_registry WHERE first_date < {self.placeholder} "
                            f"AND lead_id IN ({self._marks(len(part))})", (date, *part))
                found.update(r[0] for r in cur.fetchall())
        finally:
            cur.close()
        return found

    def apply_feedback(self, feedback: pd.DataFrame) -> int:
        """Insert replies not seen before (key: lead, liaison, at, status); re-derive their leads.

        Replies about a lead the store does not know are kept (they are the liaison's record)
        and logged; they reach the registry if that lead is ever stored.
        """
        require_columns(feedback, FEEDBACK_COLUMNS, "feedback")
        if feedback.empty:
            return 0
        if feedback[list(FEEDBACK_KEY)].isna().any().any():
            raise ValueError(f"feedback: {list(FEEDBACK_KEY)} must all be present in every row")
        if bad := sorted(set(feedback["status"]) - set(FEEDBACK_STATUSES)):
            raise ValueError(f"feedback: unknown status {bad}; one of {FEEDBACK_STATUSES}")
        rows = encode_frame(feedback, "feedback")
        cols = TABLES["feedback"]
        sql = (f"INSERT INTO feedback ({', '.join(map(_q, cols))}) VALUES ({self._marks(len(cols))}) "
               f"ON CONFLICT ({', '.join(map(_q, FEEDBACK_KEY))}) DO NOTHING")
        with self._transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM feedback")
            before = cur.fetchone()[0]
            for part in chunks(rows, CHUNK_ROWS):
                cur.executemany(sql, part)
            cur.execute("SELECT COUNT(*) FROM feedback")
            added = cur.fetchone()[0] - before
            ids = sorted({r[0] for r in rows})
            self._refresh_registry(cur, ids)
            known = set(self._select_in(cur, "lead_registry", "lead_id", ids)["lead_id"])
        if unknown := sorted(set(ids) - known):
            log.warning("feedback for %d unknown lead(s), stored but not applied: %s",
                        len(unknown), unknown[:10])
        return added

    def read(self, table: str, date: str | None = None) -> pd.DataFrame:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; one of {sorted(TABLES)}")
        if date is not None and "date" not in TABLES[table]:
            raise ValueError(f"{table} spans nights; read it whole (date=None)")
        cur = self._conn.cursor()
        try:
            if date is None:
                return self._select(cur, table)
            return self._select(cur, table, f"WHERE date = {self.placeholder}", (check_date(date),))
        finally:
            cur.close()

    def dates(self) -> list[str]:
        cur = self._conn.cursor()
        try:
            cur.execute("SELECT date FROM runs ORDER BY date")
            return [r[0] for r in cur.fetchall()]
        finally:
            cur.close()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
