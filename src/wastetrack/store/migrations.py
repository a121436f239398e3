"""Versioned schema migrations: numbered SQL files per backend, recorded in ``schema_version``.

Why versioned: the store outlives the code. A county office keeps its SQLite file for
years and a PostGIS database is shared by analysts, so a schema change must be an
explicit, repeatable step (``wastetrack db upgrade --store URL``), never a silent
``CREATE TABLE IF NOT EXISTS`` that leaves an old table without its new column.

* Files: ``wastetrack/store/sql/<backend>_<NNN>_<name>.sql`` (package data, flat so the
  ``store/sql/*.sql`` package-data glob ships them). Every step exists for both backends
  under the same number and name; a test holds them together.
* ``schema_version`` (version, name, applied_at, applied_by) lists the applied steps. The
  runner creates it; the migrations never touch it. SQLite also mirrors the version in
  ``PRAGMA user_version``, so a wastetrack older than the migrations refuses a newer file.
* A SQLite file from before migrations (``PRAGMA user_version = 1``, no ``schema_version``)
  counts as having step 001 (its schema is exactly ``sqlite_001_initial.sql``); the first
  upgrade records that.
* Opening a store (``open_store``): an empty one (no wastetrack tables) is created at the
  latest version in one transaction; an older one is refused ("run wastetrack db upgrade");
  a newer one too ("upgrade wastetrack").
* ``upgrade`` applies each pending step in its own transaction, under the store's write
  lock and re-checking what is applied once it holds it, so two upgrades (or an upgrade and
  a first open) racing each other apply every step exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

from wastetrack.store.urls import POSTGIS, SQLITE, SchemaVersionError, StoreNotFound, mask_url, parse, resolve

BACKENDS = (SQLITE, POSTGIS)
_FILE = re.compile(r"^(?P<backend>[a-z]+)_(?P<number>\d{3})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str  #: "002_tracks_state_publication": the number and the file's name without backend
    sql: str


class Schema(Protocol):
    """What the runner needs from a backend; ``sqlite.SQLiteSchema``, ``postgis.PostGISSchema``."""

    backend: str
    url: str  #: masked, for messages

    def applied(self) -> dict[int, str] | None:
        """{number: name} of the applied steps; None if the store has no wastetrack tables at all."""
        ...

    def apply(self, migrations: Sequence[Migration]) -> list[Migration]:
        """Apply the steps not applied yet, in ONE transaction under the write lock; returns those."""
        ...

    def close(self) -> None: ...


@cache
def load(backend: str) -> tuple[Migration, ...]:
    """The backend's migrations in order, read from the package (numbered 1, 2, … without gaps)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    found = []
    for entry in files("wastetrack.store").joinpath("sql").iterdir():
        m = _FILE.match(entry.name)
        if m and m["backend"] == backend:
            found.append(Migration(int(m["number"]), f"{m['number']}_{m['name']}", entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.number)
    if [mig.number for mig in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{backend} migrations must be numbered 1..N: {[mig.name for mig in found]}")
    return tuple(found)


def latest(backend: str) -> int:
    return len(load(backend))


def _pending(applied: dict[int, str], known: Sequence[Migration]) -> list[Migration]:
    return [m for m in known if m.number not in applied]


def verify(applied: dict[int, str], known: Sequence[Migration], url: str) -> None:
    """Refuse a store whose schema is not exactly the code's (one line, saying what to run)."""
    current, last = max(applied, default=0), len(known)
    if current > last:
        raise SchemaVersionError(f"{url} has schema version {current}, newer than this wastetrack knows "
                                 f"({last}): upgrade wastetrack")
    if _pending(applied, known):
        raise SchemaVersionError(f"{url} has schema version {current}, this wastetrack needs {last}: "
                                 f"run `wastetrack db upgrade --store {url}`")


def check(schema: Schema, *, create: bool) -> None:
    """On opening a store: create an empty one at the latest version, refuse any other mismatch."""
    known = load(schema.backend)
    applied = schema.applied()
    if applied is None:
        if not create:
            raise StoreNotFound(f"no wastetrack store at {schema.url}")
        schema.apply(known)  # one transaction: an empty store becomes the latest schema or stays empty
        return
    verify(applied, known, schema.url)


def open_schema(url: str | Path | None) -> Schema:
    """The runner's view of an EXISTING store (SQLite: the file must exist; it is never created)."""
    backend, target = parse(resolve(url))
    if backend == SQLITE:
        from wastetrack.store.sqlite import SQLiteSchema

        return SQLiteSchema.open(target)
    from wastetrack.store.postgis import PostGISSchema

    return PostGISSchema.open(target)


def upgrade(url: str | Path | None) -> list[str]:
    """Apply the pending migrations in order, each in its own transaction; returns their names.

    Safe to run twice (the second run returns ``[]``) and concurrently. An empty database gets
    every step (that is how a PostGIS database is set up before the first night); a SQLite
    path that does not exist is refused rather than created (a typo must not look like success).
    """
    schema = open_schema(url)
    try:
        known = load(schema.backend)
        applied = schema.applied() or {}
        if max(applied, default=0) > len(known):
            verify(applied, known, schema.url)  # raises: newer than the code
        done: list[str] = []
        for step in _pending(applied, known):
            done += [m.name for m in schema.apply([step])]
        return done
    finally:
        schema.close()


def status(url: str | Path | None) -> dict[str, Any]:
    """``{"url", "backend", "current", "latest", "applied", "pending"}`` without changing anything.

    ``current`` is the highest applied step (0 for an empty store), ``applied`` and ``pending``
    are migration names.
    """
    schema = open_schema(url)
    try:
        known = load(schema.backend)
        applied = schema.applied() or {}
        return {
            "url": mask_url(schema.url),
            "backend": schema.backend,
            "current": max(applied, default=0),
            "latest": len(known),
            "applied": [applied[n] for n in sorted(applied)],
            "pending": [m.name for m in _pending(applied, known)],
        }
    finally:
        schema.close()
