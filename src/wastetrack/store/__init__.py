"""Where the nights' stays, hauls, leads, runs and the liaisons' feedback are kept.

Use::

    from wastetrack.store import open_store, read_table

    with open_store("demo/wastetrack.db") as store:           # or "sqlite:///demo/wastetrack.db"
        store.replace_night("2026-11-20", stays, hauls, leads, run)
        leads = store.read("leads", date="2026-11-20")         # GeoDataFrame, EPSG:4326

    read_table("demo/wastetrack.db", "lead_registry")          # one line in a notebook

The interface is ``base.Store``; the SQLite file is the default backend. A PostGIS
backend (psycopg 3) will answer ``postgresql://`` URLs with the same behaviour and
the same tests (tests/test_store.py); ``open_store`` already routes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from wastetrack.store.base import TABLES, SQLStore, Store
from wastetrack.store.sqlite import SQLiteStore

__all__ = ["DEFAULT_PATH", "ENV_VAR", "TABLES", "SQLStore", "SQLiteStore", "Store", "open_store",
           "read_table"]

#: used when no url is given and $WASTETRACK_STORE is unset (relative to the working directory)
DEFAULT_PATH = "wastetrack.db"
ENV_VAR = "WASTETRACK_STORE"


def open_store(url: str | Path | None = None, *, create: bool = True) -> Store:
    """Open (creating on first use unless ``create=False``) the store at ``url``.

    ``url``: None (→ ``$WASTETRACK_STORE``, else ``./wastetrack.db``), a file path,
    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``:memory:``, or
    ``postgresql://…`` (not yet implemented).
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or DEFAULT_PATH
    if isinstance(url, Path):
        return SQLiteStore(url, create=create)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return SQLiteStore(url, create=create)
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError(f"sqlite URL must be sqlite:///path, got {url!r}")
        return SQLiteStore(rest[1:] or ":memory:", create=create)
    if scheme in ("postgresql", "postgres", "postgis"):
        raise NotImplementedError(
            "PostGIS backend: not implemented yet; see sql/README.md (psycopg 3, a SQLStore subclass)")
    raise ValueError(f"unknown store URL scheme {scheme!r} in {url!r}")


def read_table(url: str | Path | None, table: str, date: str | None = None) -> pd.DataFrame:
    """One table of an existing store, for notebooks: ``read_table("demo/wastetrack.db", "leads")``."""
    with open_store(url, create=False) as store:
        return store.read(table, date)
