"""Store URLs: which backend one names, and how to show one without its password.

Credentials reach wastetrack only through ``--store``, ``$WASTETRACK_STORE`` or an
Airflow connection, and must never come back out in a log line, run.json or an error
message. So every message and every ``Store.url`` goes through ``mask_url`` /
``mask_secrets``; the unmasked URL is only handed to the driver.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SQLITE, POSTGIS = "sqlite", "postgis"
#: URL schemes served by the PostGIS backend ("postgis://" is ours; libpq only knows the first two)
PG_SCHEMES = ("postgresql", "postgres", "postgis")
ENV_VAR = "WASTETRACK_STORE"
#: used when no url is given and $WASTETRACK_STORE is unset (relative to the working directory)
DEFAULT_PATH = "wastetrack.db"

# scheme://user:PASSWORD@host — greedy up to the last '@' of the word, so a password containing '@'
# is hidden whole (at worst a little more is hidden, never less)
_USERINFO_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^\s]+(?=@)", re.IGNORECASE)
# password=… as a URL query parameter or a libpq keyword (quoted or not)
_PASSWORD_PARAM = re.compile(r"(?P<head>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", re.IGNORECASE)


class StoreError(RuntimeError):
    """The store cannot be used as asked (unreachable, wrong schema version, not a store).

    Its message is one line, safe to show (no password), and says what to do.
    """


class SchemaVersionError(StoreError):
    """The store's schema is older or newer than this wastetrack's migrations."""


class StoreNotFound(StoreError, FileNotFoundError):
    """Opened without ``create`` where no store exists (a FileNotFoundError, as callers expect)."""


def mask_secrets(text: str) -> str:
    """``text`` with every URL password and ``password=`` value replaced by ``***``."""
    text = _USERINFO_PASSWORD.sub(r"\g<head>***", text)
    return _PASSWORD_PARAM.sub(r"\g<head>***", text)


def mask_url(url: str | Path | None) -> str:
    """The store URL as it may be shown: ``postgresql://wt:***@db:5432/wastetrack`` (paths unchanged)."""
    return "" if url is None else mask_secrets(str(url))


def resolve(url: str | Path | None) -> str | Path:
    """The URL to open: ``url``, else ``$WASTETRACK_STORE``, else ``./wastetrack.db``."""
    if url is None or url == "":
        return os.environ.get(ENV_VAR) or DEFAULT_PATH
    return url


def parse(url: str | Path) -> tuple[str, str]:
    """(backend, target): ``("sqlite", path or ":memory:")`` or ``("postgis", libpq URL)``.

    Accepted: a file path, ``sqlite:///relative.db``, ``sqlite:////absolute.db``,
    ``:memory:``, ``postgresql://…`` / ``postgres://…`` / ``postgis://…`` (any libpq URL:
    user, password, host, port, database and parameters such as ``options=-csearch_path%3Dwt``).
    """
    if isinstance(url, Path):
        return SQLITE, str(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return SQLITE, url
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError(f"sqlite URL must be sqlite:///path, got {mask_url(url)!r}")
        return SQLITE, rest[1:] or ":memory:"
    if scheme in PG_SCHEMES:
        return POSTGIS, f"postgresql://{rest}"
    raise ValueError(f"unknown store URL scheme {scheme!r} in {mask_url(url)!r}; "
                     f"use a file path, sqlite:///path or postgresql://…")
