"""The PostGIS store (psycopg 3): the same ``Store`` as SQLite, for a shared server.

Why these choices:

* Geometry columns (SRID 4326, GiST-indexed) are GENERATED from the lon/lat columns (and
  the tracks' WKT), so they can never disagree with the values the pipeline wrote and the
  shared SQL and codec stay backend-neutral; analysts get spatial SQL for free.
* Bulk writes use ``COPY … FROM STDIN`` (``cursor.copy``): a night of 100k+ stays in one
  stream instead of a round trip per row. Inserting "only new rows" (feedback) copies
  into a temporary table and then ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
* Every write transaction first takes an advisory lock per schema: writers queue exactly
  as SQLite's ``BEGIN IMMEDIATE`` makes them, so the two backends behave the same under
  concurrency (two runs of one night cannot interleave their delete and insert).
* Tables live in the first schema of the connection's ``search_path`` (set it in the URL:
  ``?options=-csearch_path%3Dwastetrack,public``); PostGIS must be on the search_path.
* ``url`` is masked: the password is only ever handed to libpq.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import pandas as pd

from wastetrack import __version__
from wastetrack.store.base import SQLStore, _q, check_table
from wastetrack.store.codec import decode_frame
from wastetrack.store.migrations import Migration, check
from wastetrack.store.tables import CRS, GEO_TABLES, KEYS, TABLES
from wastetrack.store.urls import POSTGIS, StoreError, mask_secrets, mask_url

#: seconds libpq waits for the server unless the URL says otherwise
CONNECT_TIMEOUT_S = 10
SCHEMA_VERSION_DDL = """CREATE TABLE IF NOT EXISTS schema_version (
    version    integer NOT NULL PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL
)"""
#: one lock per schema, shared by migrations and night writes (classid 0x5754 = "WT")
LOCK_SQL = "SELECT pg_advisory_xact_lock(22356, hashtext(current_schema()))"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return mask_secrets(text[0] if text else type(exc).__name__)


def connect(url: str) -> Any:
    """An autocommit psycopg connection (``BEGIN``/``COMMIT`` are explicit), or a one-line StoreError."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise StoreError("the PostGIS store needs psycopg 3: pip install 'wastetrack[postgis]'") from None
    try:
        given = conninfo_to_dict(url)
        extra = {k: v for k, v in (("connect_timeout", CONNECT_TIMEOUT_S), ("application_name", "wastetrack"))
                 if k not in given}
        return psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:  # `from None`: the chained error could repeat the URL unmasked
        raise StoreError(f"cannot connect to {mask_url(url)}: {_first_line(exc)}") from None


class PostGISSchema:
    """``migrations.Schema`` over a psycopg connection."""

    backend = POSTGIS

    def __init__(self, conn: Any, url: str, *, owned: bool = False) -> None:
        self._conn, self.url, self._owned = conn, url, owned

    @classmethod
    def open(cls, url: str) -> PostGISSchema:
        return cls(connect(url), mask_url(url), owned=True)

    def _tables(self, cur: Any) -> set[str]:
        cur.execute("SELECT current_schema()")
        if cur.fetchone()[0] is None:
            raise StoreError(f"{self.url}: no schema of its search_path exists; create it or fix the "
                             "search_path (options=-csearch_path%3Dschema,public)")
        cur.execute("SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                    "AND relkind IN ('r', 'p')")
        return {r[0] for r in cur.fetchall()}

    def _applied(self, cur: Any) -> dict[int, str] | None:
        tables = self._tables(cur)
        if "schema_version" in tables:
            cur.execute("SELECT version, name FROM schema_version")
            return dict(cur.fetchall())
        if tables & set(TABLES):
            raise StoreError(f"{self.url} has wastetrack tables but no schema_version: not a store this "
                             "wastetrack wrote")
        return None

    def applied(self) -> dict[int, str] | None:
        with self._conn.cursor() as cur:
            return self._applied(cur)

    def _require_postgis(self, cur: Any) -> None:
        """Install PostGIS if this role may; otherwise say exactly what a superuser must do."""
        import psycopg

        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
        if cur.fetchone() is None:
            try:
                with self._conn.transaction():  # a savepoint: a refusal must not abort the migration's
                    cur.execute("CREATE EXTENSION postgis")
            except psycopg.errors.InsufficientPrivilege:
                raise StoreError(f"{self.url}: PostGIS is not installed in this database and this role may "
                                 "not install it; as a superuser run: CREATE EXTENSION postgis") from None
        cur.execute("SELECT to_regtype('geometry') IS NOT NULL, "
                    "(SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'postgis')")
        visible, where = cur.fetchone()
        if not visible:
            raise StoreError(f"{self.url}: PostGIS is installed in schema {where!r}, which is not on the "
                             f"search_path; add it (options=-csearch_path%3Dyour_schema,{where})")

    def apply(self, migrations: Sequence[Migration]) -> list[Migration]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(LOCK_SQL)  # then look again: another process may have been first
            have = self._applied(cur) or {}
            todo = [m for m in migrations if m.number not in have]
            if todo:
                self._require_postgis(cur)
                cur.execute(SCHEMA_VERSION_DDL)
                for m in todo:
                    cur.execute(m.sql)  # no parameters: psycopg sends the whole file, several statements
                    cur.execute("INSERT INTO schema_version (version, name, applied_by) VALUES (%s, %s, %s)",
                                (m.number, m.name, f"wastetrack {__version__}"))
        return todo

    def close(self) -> None:
        if self._owned:
            self._conn.close()


class PostGISStore(SQLStore):
    """``Store`` in a PostgreSQL database with PostGIS (``postgresql://user@host:5432/db``)."""

    placeholder = "%s"

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = mask_url(url)
        self._conn = connect(url)
        try:
            check(PostGISSchema(self._conn, self.url), create=create)
        except BaseException:
            self._conn.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(LOCK_SQL)
            yield cur

    def _column(self, name: str, kind: str) -> str:
        # Times leave the server as ISO text in UTC, whatever the session's DateStyle and TimeZone:
        # parsing 200k of them vectorised is several times cheaper than building datetime objects.
        if kind == "ts":
            return f"""to_char({_q(name)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS {_q(name)}"""
        return _q(name)

    def _copy(self, cur: Any, table: str, rows: list[tuple], into: str | None = None) -> None:
        """Stream ``rows`` (``TABLES[table]`` order) into ``into`` (default: the table) with COPY."""
        cols = ", ".join(map(_q, TABLES[table]))
        with cur.copy(f"COPY {into or table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _insert(self, cur: Any, table: str, rows: list[tuple]) -> None:
        self._copy(cur, table, rows)

    def _insert_new(self, cur: Any, table: str, rows: list[tuple]) -> int:
        cols = ", ".join(map(_q, TABLES[table]))
        staging = f"wastetrack_incoming_{table}"
        cur.execute(f"CREATE TEMPORARY TABLE {staging} (LIKE {table}) ON COMMIT DROP")
        self._copy(cur, table, rows, into=staging)
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} "
                    f"ON CONFLICT ({', '.join(map(_q, KEYS[table]))}) DO NOTHING")
        return int(cur.rowcount)

    def _box_clause(self) -> str:
        # the point's own geometry against the box: the GiST index answers it (lon/lat BETWEEN would scan)
        return "(geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326))"

    def read(self, table: str, date: str | None = None) -> pd.DataFrame:
        """As ``SQLStore.read``; the geometry tables come through ``geopandas.read_postgis``."""
        check_table(table, date)
        if table not in GEO_TABLES:
            return super().read(table, date)
        sql = (f"SELECT {self._columns(table)}, geom AS geometry FROM {table} "
               f"{'' if date is None else 'WHERE date = %s'} ORDER BY {', '.join(map(_q, KEYS[table]))}")
        with warnings.catch_warnings():
            # pandas warns about any DB-API connection but sqlite3; psycopg works (and is tested here)
            warnings.filterwarnings("ignore", message=".*SQLAlchemy", category=UserWarning)
            frame = gpd.read_postgis(sql, self._conn, geom_col="geometry", crs=CRS,
                                     params=None if date is None else (date,))
        return decode_frame(frame, table)
