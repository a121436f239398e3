"""The default store: one SQLite file, created at the latest schema on first use.

Why SQLite: zero set-up for a county office laptop, a CI runner or a notebook, yet
transactional. WAL mode lets a notebook read while the nightly run writes; each
write takes the lock up front (``BEGIN IMMEDIATE``) so two writers queue instead of
failing half-way. All statements are shared with other backends (``base.SQLStore``);
the schema comes from the numbered ``sql/sqlite_NNN_*.sql`` migrations.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from wastetrack import __version__
from wastetrack.store.base import SQLStore
from wastetrack.store.migrations import Migration, check, load
from wastetrack.store.registry import now_text
from wastetrack.store.tables import TABLES
from wastetrack.store.urls import SQLITE, StoreError, StoreNotFound

#: a second writer waits this long for the lock instead of failing at once
BUSY_TIMEOUT_S = 60.0
#: the runner's own table (not a migration: it must exist to know which migrations ran)
SCHEMA_VERSION_DDL = """CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    applied_by TEXT NOT NULL
) STRICT"""
#: files from before versioned migrations set this and had exactly migration 001
LEGACY_NOTE = "PRAGMA user_version (before versioned migrations)"


def connect(path: str | Path, *, create: bool) -> tuple[sqlite3.Connection, Path | str, str]:
    """(connection, path, url) with the store's settings; a missing file is created only if ``create``."""
    memory = str(path) == ":memory:"
    resolved: Path | str = ":memory:" if memory else Path(path).expanduser().resolve()
    url = "sqlite:///:memory:" if memory else f"sqlite:///{resolved}"
    if isinstance(resolved, Path) and not resolved.exists():
        if not create:
            raise StoreNotFound(f"no store at {resolved}")
        resolved.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions, SQLStore's BEGIN/COMMIT are the only ones
    conn = sqlite3.connect(resolved, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
    except sqlite3.DatabaseError as exc:  # e.g. "file is not a database"
        conn.close()
        raise StoreError(f"{url}: {exc}") from None
    return conn, resolved, url


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode, waiting like any other writer when a first open races another.

    Why a loop: switching a new file's journal mode needs an exclusive lock, and SQLite
    answers "database is locked" at once, without its busy handler, while another
    connection is making the same switch. WAL is persistent, so the loop only ever
    spins on a brand-new file.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


def statements(script: str) -> Iterator[str]:
    """The statements of a migration file, one by one (``executescript`` would COMMIT our transaction)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if any(ln.strip() and not ln.strip().startswith("--") for ln in buf.splitlines()):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buf.strip()[:80]!r}")


class SQLiteSchema:
    """``migrations.Schema`` over a SQLite connection."""

    backend = SQLITE

    def __init__(self, conn: sqlite3.Connection, url: str, *, owned: bool = False) -> None:
        self._conn, self.url, self._owned = conn, url, owned

    @classmethod
    def open(cls, path: str) -> SQLiteSchema:
        conn, _, url = connect(path, create=False)
        return cls(conn, url, owned=True)

    def _tables(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def applied(self) -> dict[int, str] | None:
        tables = self._tables()
        if "schema_version" in tables:
            return dict(self._conn.execute("SELECT version, name FROM schema_version"))
        legacy = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if legacy:
            names = {m.number: m.name for m in load(SQLITE)}
            return {n: names.get(n, f"{n:03d}_unknown") for n in range(1, legacy + 1)}
        if tables & set(TABLES):
            raise StoreError(f"{self.url} has wastetrack tables but no schema version: not a store this "
                             "wastetrack wrote; move it away or upgrade it by hand")
        return None

    def apply(self, migrations: Sequence[Migration]) -> list[Migration]:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")  # the write lock, then look again: another process may have been first
        try:
            have = self.applied() or {}
            todo = [m for m in migrations if m.number not in have]
            if todo:
                adopt = "schema_version" not in self._tables()
                cur.execute(SCHEMA_VERSION_DDL)
                rows = [(n, name, now_text(), LEGACY_NOTE) for n, name in have.items()] if adopt else []
                for m in todo:
                    for sql in statements(m.sql):
                        cur.execute(sql)
                    rows.append((m.number, m.name, now_text(), f"wastetrack {__version__}"))
                cur.executemany("INSERT INTO schema_version VALUES (?, ?, ?, ?)", rows)
                cur.execute(f"PRAGMA user_version = {max(r[0] for r in rows):d}")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()
        return todo

    def close(self) -> None:
        if self._owned:
            self._conn.close()


class SQLiteStore(SQLStore):
    """``Store`` in one SQLite file (``":memory:"`` for a throw-away store)."""

    placeholder = "?"

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self._conn, self.path, self.url = connect(path, create=create)
        try:
            check(SQLiteSchema(self._conn, self.url), create=create)
        except BaseException:
            self._conn.close()
            raise

    def _begin(self, cur: sqlite3.Cursor) -> None:
        cur.execute("BEGIN IMMEDIATE")
