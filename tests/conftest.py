"""PostGIS fixtures: a real server, and a fresh, empty schema for every test that asks.

``scripts/test.sh`` runs ``scripts/postgis.sh`` first (installs and starts PostGIS, creates
the ``wastetrack`` role and the ``wastetrack_test`` database) and exports its URL as
``WASTETRACK_TEST_PG``. Isolation: one database, one schema per test (``wt_<random>``,
dropped afterwards), selected through the URL's ``search_path`` — creating a schema is
milliseconds, so every test starts from an empty store without sharing state, and
engineers running the suite at the same time never meet.

A test that needs PostGIS and cannot reach it FAILS (never skips): a green run must mean
the PostGIS backend was tested. Deselect deliberately with ``-m "not postgis"``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

PG_ENV = "WASTETRACK_TEST_PG"
#: what scripts/postgis.sh prints; used when the variable is unset (e.g. pytest run by hand)
DEFAULT_PG = "postgresql://wastetrack@127.0.0.1:5432/wastetrack_test"


def with_search_path(url: str, *schemas: str) -> str:
    """``url`` whose connections use ``schemas`` (the first is where tables are created)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={','.join(schemas)}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(scope="session")
def pg_server() -> tuple[str, str]:
    """(base URL, schema holding PostGIS) of the test database; fails the test if unusable."""
    url = os.environ.get(PG_ENV) or DEFAULT_PG
    problem = None
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                               "WHERE extname = 'postgis'").fetchone()
    except Exception as exc:  # psycopg missing, server down, no such database or role
        problem = f"{type(exc).__name__}: {exc}".strip()
    if problem is not None:
        pytest.fail(f"PostGIS test database unreachable at {url} ({PG_ENV}): {problem}\n"
                    f"run `bash scripts/postgis.sh` (scripts/test.sh does) or set {PG_ENV}", pytrace=False)
    if row is None:
        pytest.fail(f"{url}: the postgis extension is not installed; run `bash scripts/postgis.sh`",
                    pytrace=False)
    return url, row[0]


@pytest.fixture
def pg_url(pg_server: tuple[str, str]) -> Iterator[str]:
    """The URL of an empty store: a new schema in the test database, dropped after the test."""
    import psycopg

    base, postgis_schema = pg_server
    schema = f"wt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(base, schema, postgis_schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
