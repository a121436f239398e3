"""Shared pieces of the liaison-loop tests: a real SMTP server on 127.0.0.1, the simulator's liaison
network, leads routed through it and written to a store, and reading back what was mailed."""

from __future__ import annotations

import email
import email.policy
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from openpyxl import load_workbook

from wastetrack import TIMEZONE
from wastetrack.boundaries import load_boundaries
from wastetrack.network import Network
from wastetrack.routing import route_leads
from wastetrack.simulate.liaisons import make_liaisons
from wastetrack.store import open_store
from wastetrack.store.base import Store

TZ = TIMEZONE  # the project's one time zone constant

#: backend → the URL of an EMPTY store for one test (PostGIS: a fresh schema, see conftest.py)
BACKENDS = {
    "sqlite": (lambda request, tmp: str(tmp / "wastetrack.db"), []),
    "postgis": (lambda request, tmp: request.getfixturevalue("pg_url"), [pytest.mark.postgis]),
}


@pytest.fixture(name="empty_url", params=[pytest.param(name, marks=marks) for name, (_, marks) in BACKENDS.items()])
def empty_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, on each backend (import ``empty_url_fixture`` to use ``empty_url``)."""
    return BACKENDS[request.param][0](request, tmp_path)


@pytest.fixture(name="store")
def store_fixture(empty_url: str) -> Iterator[Store]:
    """A store on each backend (import ``store_fixture`` to use ``store``)."""
    with open_store(empty_url) as s:
        yield s


# --- a real SMTP server ---------------------------------------------------------------------------------------

@dataclass
class Inbox:
    """What the server accepted; ``refuse`` holds addresses it answers 550 for."""

    messages: list[Message] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content,
                                                      policy=email.policy.default))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._ctl: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._ctl = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._ctl.start()

    def stop(self) -> None:
        if self._ctl is not None:
            self._ctl.stop()
            self._ctl = None


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (import ``smtp_fixture`` to use ``smtp``)."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- what a liaison received ------------------------------------------------------------------------------------

def attachments(msg: Message) -> dict[str, bytes]:
    return {p.get_filename(): p.get_payload(decode=True) for p in msg.walk() if p.get_filename()}


def html_body(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/html" and not p.get_filename())
    return part.get_payload(decode=True).decode("utf-8")


def workbook_leads(msg: Message) -> list[str]:
    """The lead ids of the reply sheet attached to a mail."""
    (_name, data), = [(n, d) for n, d in attachments(msg).items() if n.endswith(".xlsx")]
    wb = load_workbook(io.BytesIO(data), read_only=True)
    rows = list(wb["回复表"].iter_rows(values_only=True))
    assert rows[0][:3] == ("线索编号", "联络员编号", "状态"), rows[0]
    return [r[0] for r in rows[1:] if r[0]]


def by_recipient(messages: list[Message]) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for m in messages:
        out.setdefault(m["To"], []).append(m)
    return out


# --- the simulator's liaison network and leads routed through it ---------------------------------------------------

@cache
def _boundaries() -> pd.DataFrame:
    return pd.DataFrame(load_boundaries().drop(columns="geometry"))


@cache
def network() -> Network:
    liaisons, _ = make_liaisons(np.random.default_rng(7))
    liaisons = liaisons.assign(active=liaisons["active"] == "true")
    return Network(liaisons, _boundaries())


def lead_rows(date: str, specs: list[dict[str, Any]]) -> pd.DataFrame:
    """Leads of one night, routed by ``routing.route_leads`` over the simulator's network.

    ``specs``: lead_id, county (where it happened), origin (county it came from), carrier, kind.
    """
    n = len(specs)
    frame = pd.DataFrame({
        "lead_id": [s["lead_id"] for s in specs],
        "kind": [s.get("kind", "illegal_dump") for s in specs],
        "cross_border": [s["county"][:2] != s.get("origin", s["county"])[:2] for s in specs],
        "score": np.linspace(0.6, 0.9, n),
        "vehicle_id": [s.get("vehicle", "沪AD1234") for s in specs],
        "carrier_id": [s.get("carrier", "91310118MA1JL0XX3P") for s in specs],
        "start": pd.Series([pd.Timestamp(f"{date} 22:31", tz=TZ)] * n),
        "end": pd.Series([pd.Timestamp(f"{date} 22:45", tz=TZ)] * n),
        "county_adcode": [s["county"] for s in specs],
        "province_adcode": [s["county"][:2] + "0000" for s in specs],
        "origin_site_id": ["SITE-1"] * n,
        "origin_county_adcode": [s.get("origin", s["county"]) for s in specs],
        "manifest_id": [""] * n,
        "report_ids": [[] for _ in specs],
        "candidates": [None] * n,
        "primary_liaison_id": [""] * n,
        "cc_liaison_ids": [[] for _ in specs],
        "lon": np.full(n, 121.0), "lat": np.full(n, 31.0),
    })
    carriers = pd.DataFrame({"carrier_id": frame["carrier_id"], "county_adcode": frame["origin_county_adcode"]})
    return route_leads(frame, network().directory, carriers)


def store_night(store: Store, date: str, leads: pd.DataFrame) -> None:
    """Write a night with only leads (stays and hauls are not what the loop reads)."""
    from wastetrack.models import HAUL_COLUMNS, PLACE_COLUMNS, STAY_COLUMNS

    stays = pd.DataFrame({c: pd.Series(dtype=object) for c in (*STAY_COLUMNS, *PLACE_COLUMNS)})
    hauls = pd.DataFrame({c: pd.Series(dtype=object) for c in HAUL_COLUMNS})
    store.replace_night(date, stays, hauls, leads, {"date": date, "status": "ok"})


def write_sheets(out: Path, date: str, leads: pd.DataFrame) -> None:
    """Stand-ins for the night's lead sheets (the loop attaches whatever the night wrote)."""
    from wastetrack.sheets import sheet_filename

    d = out / date / "sheets"
    d.mkdir(parents=True, exist_ok=True)
    for lid in leads["lead_id"]:
        (d / sheet_filename(lid)).write_text(f"<html><body>线索单 {lid}</body></html>", encoding="utf-8")
