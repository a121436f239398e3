"""The store's liaison-loop tables (migration 003) on both backends: the outbox, lead events, lead state,
reply files and quarantine; and the upgrade of a version-2 store that already holds replies."""

from __future__ import annotations

import pandas as pd
import pytest

from liaison_fixtures import empty_url_fixture, store_fixture  # noqa: F401  (fixtures `empty_url`, `store`)
from test_store import D2, TZ, raw_execute, write_night
from wastetrack.store import migrations, open_store
from wastetrack.store.base import Store

AT = pd.Timestamp("2026-11-21 07:00", tz=TZ)


def mail(mail_id: str, liaison: str = "LN-1", **kw: object) -> dict:
    return {"mail_id": mail_id, "date": D2, "purpose": "leads", "liaison_id": liaison, "email": "a@b.cn",
            "subject": "【线索单】", "body_note": None, "status": "pending", "attempts": 0, "created_at": AT,
            "sent_at": None, "error": None, "message_id": f"<{mail_id}@wastetrack>", **kw}


def event(event_id: str, lead: str = "L-1", **kw: object) -> dict:
    return {"event_id": event_id, "lead_id": lead, "at": AT, "event": "delivered", "liaison_id": "LN-1",
            "adcode": "", "detail": "已发送", "source": "mail", "ref": "M-1", **kw}


def test_outbox_round_trip_and_idempotence(store: Store) -> None:
    carried = pd.DataFrame([{"mail_id": "M-1", "lead_id": "L-1", "liaison_id": "LN-1", "role": "primary"},
                            {"mail_id": "M-1", "lead_id": "L-2", "liaison_id": "LN-1", "role": "cc"}])
    assert store.enqueue_mails(pd.DataFrame([mail("M-1")]), carried) == 1
    assert store.enqueue_mails(pd.DataFrame([mail("M-1")]), carried) == 0  # queued once
    with pytest.raises(ValueError, match="not among the mails"):
        store.enqueue_mails(pd.DataFrame([mail("M-2")]), carried)
    store.mail_failed("M-1", "mail server down\nsecond line")
    m = store.read("mails").iloc[0]
    assert (m["status"], m["attempts"], m["error"]) == ("failed", 1, "mail server down")
    sent_at = AT + pd.Timedelta(minutes=5)
    store.mail_sent("M-1", sent_at, pd.DataFrame([event("E-1"), event("E-2", "L-2")]))
    m = store.read("mails").iloc[0]
    assert (m["status"], m["attempts"], m["sent_at"]) == ("sent", 2, sent_at) and pd.isna(m["error"])
    store.mail_failed("M-1", "late failure")  # a sent mail stays sent
    assert store.read("mails").iloc[0]["status"] == "sent"
    with pytest.raises(ValueError, match="no mail"):
        store.mail_sent("M-404", sent_at)
    assert store.read("lead_events")["event_id"].tolist() == ["E-1", "E-2"]
    assert store.add_events(pd.DataFrame([event("E-1"), event("E-3", detail="提级：<b>")])) == 1
    assert store.read_ids("mail_leads", "lead_id", ["L-2"])["role"].tolist() == ["cc"]
    assert store.read("mails", D2)["mail_id"].tolist() == ["M-1"]


def test_lead_state_is_replaced_per_lead(store: Store) -> None:
    def row(lead: str, phase: str) -> dict:
        return {"lead_id": lead, "phase": phase, "handler_liaison_id": "LN-1", "handler_adcode": "", "case_no": None,
                "penalty_cny": None, "delivered_at": AT, "received_at": None, "verdict_at": None, "filed_at": None,
                "closed_at": None, "due_date": "2026-11-24", "overdue": False, "escalation": 0,
                "state": {"routed": {"LN-1": "primary"}}, "updated_at": AT}

    store.replace_lead_state(pd.DataFrame([row("L-1", "delivered"), row("L-2", "delivered")]))
    store.replace_lead_state(pd.DataFrame([row("L-1", "received")]))
    got = store.read("lead_state").set_index("lead_id")
    assert got["phase"].to_dict() == {"L-1": "received", "L-2": "delivered"}
    assert got.loc["L-1", "state"] == {"routed": {"LN-1": "primary"}} and not got.loc["L-1", "overdue"]
    with pytest.raises(ValueError, match="one row per lead"):
        store.replace_lead_state(pd.DataFrame([row("L-3", "new"), row("L-3", "new")]))


def test_a_reply_file_is_imported_once(store: Store) -> None:
    write_night(store, D2, ["L-1"])
    reply = pd.DataFrame([{"lead_id": "L-1", "liaison_id": "LN-320583-01", "at": AT, "status": "transferred",
                           "case_no": None, "penalty_cny": None, "note": "移送", "to_adcode": "320585"}])
    q = pd.DataFrame([{"source": "r.xlsx#abc", "row": 3, "lead_id": "L-1", "liaison_id": "LN-9",
                       "reason": "未送达", "imported_at": AT}])
    file_row = {"sha256": "abc", "file_name": "r.xlsx", "imported_at": AT, "rows_total": 2, "rows_accepted": 1,
                "rows_quarantined": 1}
    assert store.import_replies(file_row, reply, q) == 1
    assert store.import_replies(file_row, reply, q) == 0
    fb = store.read("feedback")
    assert fb["to_adcode"].tolist() == ["320585"] and len(store.read("reply_quarantine")) == 1
    assert store.read("lead_registry").set_index("lead_id").loc["L-1", "status"] == "transferred"
    assert store.quarantine_replies(q) == 0
    with pytest.raises(ValueError, match="need to_adcode"):
        store.apply_feedback(reply.assign(to_adcode=None, at=AT + pd.Timedelta(hours=1)))


def test_an_entrusted_investigation_does_not_change_the_registry_status(store: Store) -> None:
    write_night(store, D2, ["L-1"])
    rows = pd.DataFrame([
        {"lead_id": "L-1", "liaison_id": "LN-1", "at": AT, "status": "received", "case_no": None,
         "penalty_cny": None, "note": None, "to_adcode": None},
        {"lead_id": "L-1", "liaison_id": "LN-1", "at": AT + pd.Timedelta(hours=1), "status": "assist_requested",
         "case_no": None, "penalty_cny": None, "note": "请协查", "to_adcode": "320585"}])
    assert store.apply_feedback(rows) == 2
    assert store.read("lead_registry").set_index("lead_id").loc["L-1", "status"] == "received"


def test_a_version_2_store_with_replies_is_upgraded(empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = migrations.parse(migrations.resolve(empty_url))[0]
    first_two = migrations.load(backend)[:2]
    monkeypatch.setattr(migrations, "load", lambda b: first_two)
    open_store(empty_url).close()
    raw_execute(empty_url, "INSERT INTO feedback (lead_id, liaison_id, at, status, case_no, penalty_cny, note) "
                           "VALUES ('L-old', 'LN-1', '2026-11-21T09:00:00+08:00', 'received', NULL, NULL, '已收到')")
    monkeypatch.undo()
    assert migrations.upgrade(empty_url) == ["003_liaison_loop"]
    with open_store(empty_url) as s:
        fb = s.read("feedback")
        assert fb["note"].tolist() == ["已收到"] and fb["to_adcode"].isna().all()
        v1 = fb.drop(columns="to_adcode").assign(at=fb["at"] + pd.Timedelta(hours=1), status="case_filed")
        assert s.apply_feedback(v1) == 1  # a v1 frame (no to_adcode) still goes in
        assert s.read("mails").empty and s.read("lead_events").empty
