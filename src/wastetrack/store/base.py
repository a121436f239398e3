"""The storage interface and the SQL every backend shares.

Why this split: the pipeline, the CLI and the notebooks talk to ``Store`` only, and
every backend (SQLite, PostGIS) must behave identically, proven by one test suite.
So the parts where backends could drift apart live once, beside this module:

* ``tables.TABLES``: each table's columns and their logical kind (text, ts, real, int,
  bool, json, wkt) — the single description both backends' migrations translate;
* ``codec``: frames → plain Python values any DB-API driver binds, and rows → frames
  with the project's dtypes (tz-aware Asia/Shanghai timestamps, nullable booleans,
  Python lists/dicts, GeoDataFrames);
* ``registry.derive_registry``: what ``lead_registry`` must contain, computed from the
  stored leads and feedback (so re-runs and late feedback can never leave it stale);
* ``SQLStore`` (here): the transactions and statements, in portable SQL over a DB-API
  connection. A backend supplies the connection, its migrations and its placeholder
  (and may replace the bulk insert: PostgreSQL uses COPY).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from wastetrack.models import FEEDBACK_COLUMNS, FEEDBACK_STATUSES, require_columns
from wastetrack.store.codec import (
    check_date,
    check_table,
    decode_rows,
    encode_frame,
    encode_night,
    loads_json,
)
from wastetrack.store.registry import derive_registry, now_text, registry_changes
from wastetrack.store.tables import (
    CHUNK_ROWS,
    FEEDBACK_KEY,
    GEO_TABLES,
    IN_CHUNK,
    KEYS,
    NIGHT_TABLES,
    STATE_KEYS,
    TABLES,
    TRACK_COLUMNS,
)

__all__ = ["GEO_TABLES", "KEYS", "NIGHT_TABLES", "STATE_KEYS", "TABLES", "TRACK_COLUMNS", "SQLStore", "Store",
           "check_table"]

log = logging.getLogger(__name__)


# --- the interface -----------------------------------------------------------------------------

@runtime_checkable
class Store(Protocol):
    """Where the nights' results live. One implementation per database; same behaviour."""

    url: str  #: for messages and logs: any password is shown as *** (``urls.mask_url``)

    def replace_night(self, date: str, stays: pd.DataFrame, hauls: pd.DataFrame, leads: pd.DataFrame,
                      run: Mapping[str, Any], *, tracks: pd.DataFrame | None = None,
                      state: Mapping[str, Any] | None = None) -> None:
        """Replace everything stored for ``date`` in one transaction (idempotent, all or nothing).

        ``tracks``: ``TRACK_COLUMNS``, one suspect track (WKT LineString) per lead of the night;
        ``state``: the carry-over state for the next night (``STATE_KEYS`` plus any JSON). A night
        stored without them has none: the previous tracks and state of the date are dropped too.
        """
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
        Point from lon/lat, None where those are missing), and so do lead_tracks (LineString).
        """
        ...

    def dates(self) -> list[str]:
        """Dates with a stored run, ascending."""
        ...

    def state_of(self, date: str) -> dict[str, Any] | None:
        """The carry-over state stored with ``date`` (as given, JSON round-tripped), or None."""
        ...

    def published(self, date: str) -> dict[str, Any] | None:
        """``{"run_id", "out_version", "status"}`` of the run stored for ``date``, or None."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...


def chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


# --- the shared SQL implementation -----------------------------------------------------------------

def _q(name: str) -> str:
    return f'"{name}"'  # quoted: "start" and "end" are reserved words in both dialects


class SQLStore:
    """``Store`` over a DB-API connection in autocommit mode, with portable SQL only.

    A backend subclass opens ``self._conn`` (autocommit, so ``BEGIN``/``COMMIT`` below are
    the only transaction boundaries), brings its schema to the latest migration, sets
    ``url`` (masked: never a password) and, if its driver is not qmark-style,
    ``placeholder`` (psycopg: ``%s``). It may override ``_transaction`` (SQLite takes the
    write lock up front, PostgreSQL an advisory lock), ``_insert`` and ``_insert_new``
    (PostgreSQL: COPY).
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

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def _marks(self, n: int) -> str:
        return ", ".join([self.placeholder] * n)

    def _insert(self, cur: Any, table: str, rows: list[tuple]) -> None:
        """Insert ``rows`` (``TABLES[table]`` order) inside the caller's transaction."""
        cols = TABLES[table]
        sql = f"INSERT INTO {table} ({', '.join(map(_q, cols))}) VALUES ({self._marks(len(cols))})"
        for part in chunks(rows, CHUNK_ROWS):
            cur.executemany(sql, part)

    def _insert_new(self, cur: Any, table: str, rows: list[tuple]) -> int:
        """Insert the rows whose primary key is not stored yet (nor repeated earlier in ``rows``).

        Returns how many were added. Counting before and after is exact because every write
        transaction holds the store's write lock.
        """
        cols = TABLES[table]
        sql = (f"INSERT INTO {table} ({', '.join(map(_q, cols))}) VALUES ({self._marks(len(cols))}) "
               f"ON CONFLICT ({', '.join(map(_q, KEYS[table]))}) DO NOTHING")
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        before = cur.fetchone()[0]
        for part in chunks(rows, CHUNK_ROWS):
            cur.executemany(sql, part)
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cur.fetchone()[0] - before)

    def _column(self, name: str, kind: str) -> str:
        """The SELECT expression for a column (PostgreSQL sends times as UTC text: see postgis.py)."""
        return _q(name)

    def _columns(self, table: str) -> str:
        return ", ".join(self._column(c, k) for c, k in TABLES[table].items())

    def _select(self, cur: Any, table: str, where: str = "", params: Sequence[Any] = ()) -> pd.DataFrame:
        cols = self._columns(table)
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

    def _one(self, sql: str, params: Sequence[Any]) -> tuple | None:
        with self._cursor() as cur:
            cur.execute(sql, tuple(params))
            return cur.fetchone()

    # -- Store
    def replace_night(self, date: str, stays: pd.DataFrame, hauls: pd.DataFrame, leads: pd.DataFrame,
                      run: Mapping[str, Any], *, tracks: pd.DataFrame | None = None,
                      state: Mapping[str, Any] | None = None) -> None:
        """Delete the night's rows in every night table and its run, insert the new ones, refresh
        the registry.

        One transaction: a failure anywhere (bad value, duplicate id, disk full) rolls back
        to the previous content of the night, its tracks and carry-over state included. Frames
        are encoded before the transaction starts, so a type error does not even take the lock.
        """
        check_date(date)
        encoded = encode_night(date, stays, hauls, leads, run, tracks, state)
        with self._transaction() as cur:
            cur.execute(f"SELECT lead_id FROM leads WHERE date = {self.placeholder}", (date,))
            old_ids = {r[0] for r in cur.fetchall()}
            for table in (*reversed(NIGHT_TABLES), "runs"):  # children first: they reference runs(date)
                cur.execute(f"DELETE FROM {table} WHERE date = {self.placeholder}", (date,))
            self._insert(cur, "runs", encoded["runs"])
            for table in NIGHT_TABLES:
                if encoded[table]:
                    self._insert(cur, table, encoded[table])
            self._refresh_registry(cur, old_ids | {r[1] for r in encoded["leads"]})

    def leads_reported_before(self, date: str, lead_ids: Iterable[str]) -> set[str]:
        check_date(date)
        ids = sorted({str(i) for i in lead_ids})
        found: set[str] = set()
        with self._cursor() as cur:
            for part in chunks(ids, IN_CHUNK):
                cur.execute(f"SELECT lead_id FROM lead_registry WHERE first_date < {self.placeholder} "
                            f"AND lead_id IN ({self._marks(len(part))})", (date, *part))
                found.update(r[0] for r in cur.fetchall())
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
        ids = sorted({r[0] for r in rows})
        with self._transaction() as cur:
            added = self._insert_new(cur, "feedback", rows)
            self._refresh_registry(cur, ids)
            known = set(self._select_in(cur, "lead_registry", "lead_id", ids)["lead_id"])
        if unknown := sorted(set(ids) - known):
            log.warning("feedback for %d unknown lead(s), stored but not applied: %s",
                        len(unknown), unknown[:10])
        return added

    def read(self, table: str, date: str | None = None) -> pd.DataFrame:
        check_table(table, date)
        with self._cursor() as cur:
            if date is None:
                return self._select(cur, table)
            return self._select(cur, table, f"WHERE date = {self.placeholder}", (date,))

    def dates(self) -> list[str]:
        with self._cursor() as cur:
            cur.execute("SELECT date FROM runs ORDER BY date")
            return [r[0] for r in cur.fetchall()]

    def state_of(self, date: str) -> dict[str, Any] | None:
        row = self._one(f"SELECT state FROM night_state WHERE date = {self.placeholder}", (check_date(date),))
        return None if row is None else loads_json(row[0])

    def published(self, date: str) -> dict[str, Any] | None:
        row = self._one(f"SELECT run_id, out_version, status FROM runs WHERE date = {self.placeholder}",
                        (check_date(date),))
        return None if row is None else dict(zip(("run_id", "out_version", "status"), row, strict=True))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
