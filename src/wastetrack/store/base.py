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

from wastetrack.models import (
    FEEDBACK_COLUMNS,
    FEEDBACK_STATUSES,
    FEEDBACK_TO_ADCODE,
    FEEDBACK_TO_STATUSES,
    require_columns,
)
from wastetrack.store.codec import (
    check_date,
    check_table,
    decode_rows,
    encode_column,
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

    def replace_encoded_night(self, date: str, encoded: Mapping[str, list[tuple]]) -> None:
        """``replace_night`` with the rows already encoded (``codec.encode_night``): the same transaction."""
        ...

    def leads_reported_before(self, date: str, lead_ids: Iterable[str]) -> set[str]:
        """The ids among ``lead_ids`` already stored for a date earlier than ``date``."""
        ...

    def apply_feedback(self, feedback: pd.DataFrame) -> int:
        """Store new liaison replies and bring ``lead_registry`` up to date; returns rows added."""
        ...

    def read_ids(self, table: str, column: str, ids: Iterable[str], date: str | None = None) -> pd.DataFrame:
        """The rows of ``table`` whose ``column`` is one of ``ids`` (same dtypes as ``read``),
        only the night ``date``'s when given."""
        ...

    def read_in_boxes(self, table: str, date: str, boxes: Sequence[tuple[float, float, float, float]]) -> pd.DataFrame:
        """The night's rows of ``table`` (one with ``lon``/``lat``: stays, leads) inside any of ``boxes``
        (WGS-84 ``(min_lon, min_lat, max_lon, max_lat)``, edges included), key order, as ``read`` gives them.

        The filter runs in the database: a delta night stores millions of stays, and a late report
        wants the few around it (``trace.StoreHistory``), not all of them decoded in Python.
        """
        ...

    # -- the liaison loop (migration 003; see delivery.py, replies.py, escalation.py)
    def enqueue_mails(self, mails: pd.DataFrame, mail_leads: pd.DataFrame,
                      events: pd.DataFrame | None = None) -> int:
        """Add 'pending' mails (``TABLES["mails"]``), what they carry and the events that decided them,
        in one transaction (a decision and its mail are recorded together or not at all).
        Mails already stored (by ``mail_id``) are left as they are; returns the mails added."""
        ...

    def mail_sent(self, mail_id: str, sent_at: Any, events: pd.DataFrame | None = None) -> None:
        """Mark a mail accepted by the server (attempts + 1) and record its events, in one transaction."""
        ...

    def mail_failed(self, mail_id: str, error: str) -> None:
        """Mark a mail not sent (attempts + 1, the one-line ``error``): the next run sends it."""
        ...

    def add_events(self, events: pd.DataFrame) -> int:
        """Record lead events not recorded yet (by ``event_id``); returns how many were new."""
        ...

    def replace_lead_state(self, state: pd.DataFrame) -> None:
        """Replace the ``lead_state`` rows of the leads in ``state`` (derived by ``lifecycle``)."""
        ...

    def import_replies(self, file_row: Mapping[str, Any], feedback: pd.DataFrame,
                       quarantine: pd.DataFrame) -> int:
        """Store one reply file's accepted replies (as feedback), its quarantined rows and the file itself,
        in one transaction; returns the replies added. A file already imported (by ``sha256``) adds nothing."""
        ...

    def quarantine_replies(self, quarantine: pd.DataFrame) -> int:
        """Record replies set aside (``TABLES["reply_quarantine"]``) not recorded yet; returns how many."""
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


def _feedback_rows(feedback: pd.DataFrame) -> list[tuple]:
    """Checked and encoded feedback rows; a v1 frame (without ``to_adcode``) is welcome."""
    require_columns(feedback, FEEDBACK_COLUMNS, "feedback")
    if feedback.empty:
        return []
    if feedback[list(FEEDBACK_KEY)].isna().any().any():
        raise ValueError(f"feedback: {list(FEEDBACK_KEY)} must all be present in every row")
    if bad := sorted(set(feedback["status"]) - set(FEEDBACK_STATUSES)):
        raise ValueError(f"feedback: unknown status {bad}; one of {FEEDBACK_STATUSES}")
    if FEEDBACK_TO_ADCODE not in feedback:
        feedback = feedback.assign(**{FEEDBACK_TO_ADCODE: None})
    to = feedback[FEEDBACK_TO_ADCODE].astype(object).where(feedback[FEEDBACK_TO_ADCODE].notna(), "")
    if (feedback["status"].isin(FEEDBACK_TO_STATUSES) & (to.astype(str).str.strip() == "")).any():
        raise ValueError(f"feedback: {'/'.join(FEEDBACK_TO_STATUSES)} need {FEEDBACK_TO_ADCODE}")
    return encode_frame(feedback, "feedback")


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

    def _select_in(self, cur: Any, table: str, column: str, ids: Sequence[str],
                   date: str | None = None) -> pd.DataFrame:
        on_date = "" if date is None else f" AND date = {self.placeholder}"
        parts = [self._select(cur, table, f"WHERE {_q(column)} IN ({self._marks(len(c))}){on_date}",
                              (*c, *(() if date is None else (date,))))
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
        self.replace_encoded_night(date, encode_night(date, stays, hauls, leads, run, tracks, state))

    def replace_encoded_night(self, date: str, encoded: Mapping[str, list[tuple]]) -> None:
        check_date(date)
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
        rows = _feedback_rows(feedback)
        if not rows:
            return 0
        ids = sorted({r[0] for r in rows})
        with self._transaction() as cur:
            added = self._insert_new(cur, "feedback", rows)
            self._refresh_registry(cur, ids)
            known = set(self._select_in(cur, "lead_registry", "lead_id", ids)["lead_id"])
        if unknown := sorted(set(ids) - known):
            log.warning("feedback for %d unknown lead(s), stored but not applied: %s",
                        len(unknown), unknown[:10])
        return added

    # -- the liaison loop
    def enqueue_mails(self, mails: pd.DataFrame, mail_leads: pd.DataFrame,
                      events: pd.DataFrame | None = None) -> int:
        mail_rows = encode_frame(mails, "mails")
        lead_rows = encode_frame(mail_leads, "mail_leads")
        event_rows = encode_frame(events, "lead_events") if events is not None and len(events) else []
        if stray := sorted({r[0] for r in lead_rows} - {r[0] for r in mail_rows}):
            raise ValueError(f"mail_leads: mail ids not among the mails: {stray[:5]}")
        if not mail_rows and not event_rows:
            return 0
        with self._transaction() as cur:
            added = self._insert_new(cur, "mails", mail_rows) if mail_rows else 0
            if lead_rows:
                self._insert_new(cur, "mail_leads", lead_rows)
            if event_rows:
                self._insert_new(cur, "lead_events", event_rows)
        return added

    def mail_sent(self, mail_id: str, sent_at: Any, events: pd.DataFrame | None = None) -> None:
        when = encode_column(pd.Series([sent_at], dtype=object), "ts", "mails.sent_at")[0]
        event_rows = encode_frame(events, "lead_events") if events is not None and len(events) else []
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(f"UPDATE mails SET status = 'sent', attempts = attempts + 1, sent_at = {p}, error = NULL "
                        f"WHERE mail_id = {p}", (when, mail_id))
            if cur.rowcount != 1:
                raise ValueError(f"mails: no mail {mail_id!r}")
            if event_rows:
                self._insert_new(cur, "lead_events", event_rows)

    def mail_failed(self, mail_id: str, error: str) -> None:
        p = self.placeholder
        line = (str(error).strip().splitlines() or ["failed"])[0][:500]
        with self._transaction() as cur:
            cur.execute(f"UPDATE mails SET status = 'failed', attempts = attempts + 1, error = {p} "
                        f"WHERE mail_id = {p} AND status <> 'sent'", (line, mail_id))

    def add_events(self, events: pd.DataFrame) -> int:
        rows = encode_frame(events, "lead_events")
        if not rows:
            return 0
        with self._transaction() as cur:
            return self._insert_new(cur, "lead_events", rows)

    def replace_lead_state(self, state: pd.DataFrame) -> None:
        rows = encode_frame(state, "lead_state")
        ids = sorted({r[0] for r in rows})
        if len(ids) != len(rows):
            raise ValueError("lead_state: one row per lead")
        if not rows:
            return
        with self._transaction() as cur:
            for part in chunks(ids, IN_CHUNK):
                cur.execute(f"DELETE FROM lead_state WHERE lead_id IN ({self._marks(len(part))})", tuple(part))
            self._insert(cur, "lead_state", rows)

    def import_replies(self, file_row: Mapping[str, Any], feedback: pd.DataFrame,
                       quarantine: pd.DataFrame) -> int:
        file_rows = encode_frame(pd.DataFrame([dict(file_row)]), "reply_files")
        reply_rows = _feedback_rows(feedback)
        q_rows = encode_frame(quarantine, "reply_quarantine")
        with self._transaction() as cur:
            cur.execute(f"SELECT 1 FROM reply_files WHERE sha256 = {self.placeholder}", (file_rows[0][0],))
            if cur.fetchone() is not None:
                return 0
            self._insert(cur, "reply_files", file_rows)
            if q_rows:
                self._insert_new(cur, "reply_quarantine", q_rows)
            added = self._insert_new(cur, "feedback", reply_rows) if reply_rows else 0
            if reply_rows:
                self._refresh_registry(cur, {r[0] for r in reply_rows})
        return added

    def quarantine_replies(self, quarantine: pd.DataFrame) -> int:
        rows = encode_frame(quarantine, "reply_quarantine")
        if not rows:
            return 0
        with self._transaction() as cur:
            return self._insert_new(cur, "reply_quarantine", rows)

    def read_ids(self, table: str, column: str, ids: Iterable[str], date: str | None = None) -> pd.DataFrame:
        """The rows of ``table`` whose ``column`` is one of ``ids`` (key order), e.g. leads by lead_id."""
        check_table(table, date)
        if column not in TABLES[table]:
            raise ValueError(f"{table} has no column {column!r}")
        with self._cursor() as cur:
            return self._select_in(cur, table, column, sorted(set(map(str, ids))), date)

    def _box_clause(self) -> str:
        """One box of ``read_in_boxes`` as SQL (4 placeholders: min lon, min lat, max lon, max lat)."""
        m = self.placeholder
        return f"(lon >= {m} AND lat >= {m} AND lon <= {m} AND lat <= {m})"

    def read_in_boxes(self, table: str, date: str, boxes: Sequence[tuple[float, float, float, float]]) -> pd.DataFrame:
        check_table(table, date)
        if not {"lon", "lat"} <= set(TABLES[table]):
            raise ValueError(f"{table} has no lon/lat columns")
        boxes = [tuple(float(v) for v in b) for b in boxes]
        if any(len(b) != 4 for b in boxes):
            raise ValueError("a box is (min_lon, min_lat, max_lon, max_lat)")
        parts = []
        with self._cursor() as cur:
            for part in chunks(boxes, IN_CHUNK // 4):
                where = f"WHERE date = {self.placeholder} AND ({' OR '.join([self._box_clause()] * len(part))})"
                parts.append(self._select(cur, table, where, (date, *(v for b in part for v in b))))
        full = [p for p in parts if len(p)]
        if not full:
            return parts[0] if parts else decode_rows([], table)
        out = pd.concat(full, ignore_index=True) if len(full) > 1 else full[0]
        if len(full) > 1:  # a row in boxes of two chunks comes twice
            keys = list(KEYS[table])
            out = out.drop_duplicates(keys).sort_values(keys, kind="stable", ignore_index=True)
        return out

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
