"""The default store: one SQLite file, created with its schema on first use.

Why SQLite: zero set-up for a county office laptop, a CI runner or a notebook, yet
transactional. WAL mode lets a notebook read while the nightly run writes; each
write takes the lock up front (``BEGIN IMMEDIATE``) so two writers queue instead of
failing half-way. All statements are shared with other backends (``base.SQLStore``).
"""

from __future__ import annotations

import sqlite3
from importlib.resources import files
from pathlib import Path

from wastetrack.store.base import SQLStore

SCHEMA_VERSION = 1
#: a second writer waits this long for the lock instead of failing at once
BUSY_TIMEOUT_S = 60.0


def schema_sql() -> str:
    return files("wastetrack.store").joinpath("sql/sqlite.sql").read_text(encoding="utf-8")


class SQLiteStore(SQLStore):
    """``Store`` in one SQLite file (``":memory:"`` for a throw-away store)."""

    placeholder = "?"

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        memory = str(path) == ":memory:"
        self.path = Path(path) if memory else Path(path).expanduser().resolve()
        if not memory and not self.path.exists():
            if not create:
                raise FileNotFoundError(f"no store at {self.path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = "sqlite:///:memory:" if memory else f"sqlite:///{self.path}"
        # isolation_level=None: no implicit transactions, SQLStore's BEGIN/COMMIT are the only ones
        self._conn = sqlite3.connect(str(path) if memory else self.path, timeout=BUSY_TIMEOUT_S,
                                     isolation_level=None)
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.url} has schema version {version}; this wastetrack knows "
                                   f"{SCHEMA_VERSION}: upgrade wastetrack")
            if version < SCHEMA_VERSION:
                # one transaction: a crash while creating leaves no half schema
                self._conn.executescript(f"BEGIN IMMEDIATE;\n{schema_sql()}\nCOMMIT;")
        except BaseException:
            self._conn.close()
            raise

    def _begin(self, cur: sqlite3.Cursor) -> None:
        cur.execute("BEGIN IMMEDIATE")
