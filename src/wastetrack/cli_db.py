"""``wastetrack db status|upgrade --store URL``: look at and migrate a store's schema.

Why a command of its own: opening a store whose schema is older than the code is refused
(the nightly run must never migrate a shared database as a side effect), so upgrading is
a deliberate step an operator runs, once per release, and can check first with ``status``.
The store URL comes from ``--store`` or ``$WASTETRACK_STORE`` (credentials never on a
command line you would paste into a ticket: prefer the environment). Expected failures
(unreachable server, no store, a schema newer than this wastetrack, a failing migration)
print one line without the password and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

STORE_ENV = "WASTETRACK_STORE"


def add_db_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``db`` with ``status`` and ``upgrade`` to the top-level subparsers."""
    db = subparsers.add_parser("db", help="the store's schema: status, upgrade")
    sub = db.add_subparsers(dest="db_command", required=True)
    for name, func, text in (
        ("status", cmd_status, "show the schema version of a store and the migrations it lacks"),
        ("upgrade", cmd_upgrade, "apply the pending migrations (each in a transaction; safe to re-run)"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--store", help=f"store URL or SQLite file (default: env {STORE_ENV})")
        p.set_defaults(func=func)
    return db


def _store_url(args: argparse.Namespace) -> str:
    url = args.store or os.environ.get(STORE_ENV)
    if not url:
        raise ValueError(f"no store given: use --store URL or set {STORE_ENV}")
    return url


def _fail(exc: BaseException) -> int:
    from wastetrack.store.urls import mask_secrets

    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    print(f"wastetrack db: {mask_secrets(lines[0])}", file=sys.stderr)
    return 2


def _expected_errors() -> tuple[type[BaseException], ...]:
    """What a user can cause and fix: reported in one line. Anything else is a bug (traceback, exit 1)."""
    from wastetrack.store.urls import StoreError

    errors: tuple[type[BaseException], ...] = (StoreError, OSError, ValueError)
    try:
        import psycopg
    except ImportError:
        return errors
    return (*errors, psycopg.Error)  # e.g. a migration refused by the server (permissions)


def cmd_status(args: argparse.Namespace) -> int:
    from wastetrack.store import migrations

    try:
        st = migrations.status(_store_url(args))
    except _expected_errors() as exc:
        return _fail(exc)
    print(f"store:   {st['url']} ({st['backend']})")
    print(f"version: {st['current']} (latest {st['latest']})")
    print(f"applied: {', '.join(st['applied']) or '-'}")
    print(f"pending: {', '.join(st['pending']) or '-'}")
    if st["current"] > st["latest"]:
        print("this store is newer than this wastetrack: upgrade wastetrack")
    elif st["pending"]:
        print(f"run: wastetrack db upgrade --store {st['url']}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from wastetrack.store import mask_url, migrations

    try:
        url = _store_url(args)
        done = migrations.upgrade(url)
    except _expected_errors() as exc:
        return _fail(exc)
    for name in done:
        print(f"applied {name}")
    print(f"{mask_url(url)}: up to date" + ("" if done else " (nothing to apply)"))
    return 0
