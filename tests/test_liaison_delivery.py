"""Delivery through a real SMTP server (aiosmtpd on 127.0.0.1), on both store backends.

Every liaison gets exactly the leads routed to it (primary and copies), in one mail, once; a second
run sends nothing; with the server down the command fails in one line and the next run delivers
everything, nothing twice; a refused recipient does not hold up the others; ``--resend`` sends again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from liaison_fixtures import (  # noqa: F401  (fixtures `store`, `empty_url`)
    SmtpServer,
    attachments,
    by_recipient,
    empty_url_fixture,
    html_body,
    lead_rows,
    network,
    smtp_fixture,
    store_fixture,
    store_night,
    workbook_leads,
    write_sheets,
)
from wastetrack.cli import main
from wastetrack.sheets import sheet_filename
from wastetrack.store.base import Store

NIGHT = "2026-11-20"
SPECS = [
    {"lead_id": "L-1", "county": "320583", "origin": "310118"},                   # cross-border: both provinces copied
    {"lead_id": "L-2", "county": "320583", "origin": "320583"},
    {"lead_id": "L-3", "county": "310118", "origin": "320506", "carrier": "91320506MA1XYZ0001"},
    {"lead_id": "L-4", "county": "320509", "origin": "320509"},                   # no county liaison: the city acts
    {"lead_id": "L-5", "county": "330402", "origin": "330421", "kind": "track_gap"},
]


@pytest.fixture
def night(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer) -> dict:
    landing = tmp_path / "landing"
    (landing / "reference").mkdir(parents=True)
    liaisons = network().liaisons.assign(active=lambda f: f["active"].map({True: "true", False: "false"}))
    liaisons.to_csv(landing / "reference" / "liaisons.csv", index=False)
    leads = lead_rows(NIGHT, SPECS)
    store_night(store, NIGHT, leads)
    out = tmp_path / "out"
    write_sheets(out, NIGHT, leads)
    monkeypatch.setenv("WASTETRACK_SMTP", smtp.url)
    monkeypatch.delenv("WASTETRACK_STORE", raising=False)
    args = ["deliver", "--out", str(out), "--date", NIGHT, "--landing", str(landing), "--store", store.url]
    return {"leads": leads, "args": args, "out": out}


def expected(leads: pd.DataFrame) -> dict[str, set[str]]:
    """e-mail address → the lead ids routed to that liaison (primary or copy)."""
    net = network()
    want: dict[str, set[str]] = {}
    for r in leads.itertuples():
        for lid in {r.primary_liaison_id, *r.cc_liaison_ids}:
            want.setdefault(net.email(lid), set()).add(r.lead_id)
    return want


def received(messages: list) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for to, msgs in by_recipient(messages).items():
        assert len(msgs) == 1, f"{to} got {len(msgs)} mails"
        out[to] = set(workbook_leads(msgs[0]))
    return out


def test_each_liaison_gets_exactly_its_leads_once(night: dict, smtp: SmtpServer, store: Store) -> None:
    want = expected(night["leads"])
    assert len(want) >= 8  # primaries, copies to origin/carrier counties, both provinces of cross-border leads
    assert main(night["args"]) == 0
    assert received(smtp.inbox.messages) == want
    every = set(night["leads"]["lead_id"])
    for msg in smtp.inbox.messages:
        mine = set(workbook_leads(msg))
        body = html_body(msg)
        assert all(lid in body for lid in mine)
        assert not any(f">{lid}<" in body for lid in every - mine)  # never a lead not routed to it
        files = attachments(msg)
        assert {sheet_filename(lid) for lid in mine} <= set(files)
        assert not {sheet_filename(lid) for lid in every - mine} & set(files)
        assert msg["Subject"].startswith("【线索单】") and msg["Message-ID"].endswith("@wastetrack>")
    delivered = store.read("lead_events")
    pairs = {(r.lead_id, r.liaison_id) for r in delivered.itertuples() if r.event == "delivered"}
    routed = {(r.lead_id, lid) for r in night["leads"].itertuples() for lid in {r.primary_liaison_id,
                                                                                 *r.cc_liaison_ids}}
    assert pairs == routed and len(delivered) == len(routed)

    assert main(night["args"]) == 0  # a second run for the same night sends nothing new
    assert len(smtp.inbox.messages) == len(want)


def test_server_down_fails_in_one_line_and_the_next_run_delivers_everything(
        night: dict, smtp: SmtpServer, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    smtp.stop()
    assert main(night["args"]) == 3
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "left queued for the next run" in err and f"127.0.0.1:{smtp.port}" in err
    mails = store.read("mails")
    assert set(mails["status"]) == {"failed"} and mails["error"].str.contains("unreachable").all()
    assert store.read("lead_events").empty

    smtp.start()
    assert main(night["args"]) == 0
    assert received(smtp.inbox.messages) == expected(night["leads"])
    assert set(store.read("mails")["status"]) == {"sent"}
    assert main(night["args"]) == 0
    assert len(smtp.inbox.messages) == len(expected(night["leads"]))


def test_a_refused_recipient_does_not_hold_up_the_others(night: dict, smtp: SmtpServer, store: Store,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    want = expected(night["leads"])
    refused = network().email(night["leads"].iloc[0]["primary_liaison_id"])
    smtp.inbox.refuse = {refused}
    assert main(night["args"]) == 3
    assert "1 mail(s) not sent" in capsys.readouterr().err
    assert received(smtp.inbox.messages) == {k: v for k, v in want.items() if k != refused}
    smtp.inbox.refuse = set()
    assert main(night["args"]) == 0
    assert received(smtp.inbox.messages) == want  # the refused one now, and nobody twice


def test_resend_sends_again_on_purpose(night: dict, smtp: SmtpServer) -> None:
    assert main(night["args"]) == 0
    n = len(smtp.inbox.messages)
    assert main([*night["args"], "--resend"]) == 0
    assert len(smtp.inbox.messages) == 2 * n
    again = smtp.inbox.messages[n:]
    assert all(m["Subject"].endswith("（重发）") for m in again)
    assert received(again) == expected(night["leads"])


def test_credentials_are_never_shown(night: dict, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    closed = SmtpServer()  # a port nobody listens on
    monkeypatch.setenv("WASTETRACK_SMTP", f"smtps://wt:s3cr3t-pw@127.0.0.1:{closed.port}")
    assert main(night["args"]) == 3
    err = capsys.readouterr().err
    assert "s3cr3t-pw" not in err and "smtps://wt:***@127.0.0.1" in err


def test_no_mail_server_configured_is_one_line(night: dict, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASTETRACK_SMTP")
    assert main(night["args"]) == 3
    assert "set WASTETRACK_SMTP" in capsys.readouterr().err
