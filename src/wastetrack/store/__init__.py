"""Where the nights' stays, hauls, leads, tracks, runs and the liaisons' feedback are kept.

Use::

    from wastetrack.store import open_store, read_table

    with open_store("demo/wastetrack.db") as store:           # or "postgresql://wt@db/wastetrack"
        store.replace_night("2026-11-20", stays, hauls, leads, run, tracks=tracks, state=state)
        leads = store.read("leads", date="2026-11-20")         # GeoDataFrame, EPSG:4326

    read_table("demo/wastetrack.db", "lead_registry")          # one line in a notebook

The interface is ``base.Store``; backends: one SQLite file (the default, zero set-up) and
PostGIS (psycopg 3), with the same behaviour and the same tests (tests/test_store.py). The
schema is versioned (``migrations``: ``wastetrack db status|upgrade --store URL``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wastetrack.store.base import TABLES, SQLStore, Store
from wastetrack.store.sqlite import SQLiteStore
from wastetrack.store.urls import (
    DEFAULT_PATH,
    ENV_VAR,
    POSTGIS,
    SchemaVersionError,
    StoreError,
    StoreNotFound,
    mask_url,
    parse,
    resolve,
)

__all__ = ["DEFAULT_PATH", "ENV_VAR", "TABLES", "SQLStore", "SQLiteStore", "SchemaVersionError", "Store",
           "StoreError", "StoreNotFound", "mask_url", "open_store", "read_table"]


def open_store(url: str | Path | None = None, *, create: bool = True) -> Store:
    """Open the store at ``url``; an empty one is created at the latest schema unless ``create=False``.

    ``url``: None (→ ``$WASTETRACK_STORE``, else ``./wastetrack.db``), a file path,
    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``:memory:``, or
    ``postgresql://user@host:5432/db`` (also ``postgres://``, ``postgis://``; libpq parameters
    such as ``?options=-csearch_path%3Dwastetrack,public`` pass through).
    Raises ``StoreNotFound`` (a FileNotFoundError) without ``create`` where there is no store,
    ``SchemaVersionError`` when the schema is older ("run wastetrack db upgrade") or newer
    than this wastetrack, ``StoreError`` when the server cannot be reached. Messages never
    contain a password.
    """
    backend, target = parse(resolve(url))
    if backend == POSTGIS:
        from wastetrack.store.postgis import PostGISStore  # psycopg is optional for SQLite users

        return PostGISStore(target, create=create)
    return SQLiteStore(target, create=create)


def read_table(url: str | Path | None, table: str, date: str | None = None) -> pd.DataFrame:
    """One table of an existing store, for notebooks: ``read_table("demo/wastetrack.db", "leads")``."""
    with open_store(url, create=False) as store:
        return store.read(table, date)
