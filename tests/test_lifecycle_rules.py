"""The liaison loop's rules in isolation: working days, the network's levels, the SMTP URL, the fold's
rules on hand-made replies, and feedback.csv v1.1 (``to_adcode``) through the contract reader."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from contract_fixtures import DAY, batch_json, copy_landing, reseal, write_batch_json
from liaison_fixtures import TZ, lead_rows, network
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.contract import read_night
from wastetrack.lifecycle import decide, fold, obligations
from wastetrack.mail import MailError, smtp_settings
from wastetrack.workdays import Workdays


def test_working_days_skip_weekends_holidays_and_count_swapped_weekends() -> None:
    wd = Workdays(DEFAULT_PARAMS)
    assert wd.add(date(2026, 11, 20), 2) == date(2026, 11, 24)  # Friday + 2 → Tuesday
    assert wd.add(date(2026, 11, 21), 1) == date(2026, 11, 23)  # from a Saturday
    assert wd.between(date(2026, 11, 20), date(2026, 11, 24)) == 2 and wd.between(date(2026, 11, 24),
                                                                                   date(2026, 11, 20)) == 0
    cal = Workdays(Params(holidays=("2026-10-01", "2026-10-02"), extra_workdays=("2026-10-10",)))
    assert cal.add(date(2026, 9, 30), 1) == date(2026, 10, 5)
    assert cal.add(date(2026, 10, 9), 1) == date(2026, 10, 10)  # a Saturday worked (调休)
    assert Params(**{**DEFAULT_PARAMS.as_dict(), "holidays": ["2026-10-01"]}).holidays == ("2026-10-01",)


def test_network_levels() -> None:
    net = network()
    assert net.above("LN-320583-01") == ["LN-320500-01", "LN-320000-01"]  # county → city → province
    assert net.above("LN-320500-01") == ["LN-320000-01"]                  # a city acting for a county
    assert net.above("LN-320000-01") == []
    assert net.common_above(["320583", "320506"]) == ["LN-320500-01"]     # same city
    assert net.common_above(["320583", "321102"]) == ["LN-320000-01"]     # same province
    assert net.common_above(["320583", "310118"]) == ["LN-310000-01", "LN-320000-01"]
    assert net.label("LN-nobody") == "LN-nobody" and "（" in net.label("LN-320583-01")


def test_smtp_urls_and_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    s = smtp_settings("smtps://wt:p%40ss@mail.example:465?from=wt@gov.example")
    assert (s.host, s.port, s.tls, s.user, s.password, s.sender) == ("mail.example", 465, True, "wt", "p@ss",
                                                                       "wt@gov.example")
    assert "p%40ss" not in repr(s) and "***" in s.url
    assert smtp_settings("smtp://127.0.0.1:2525?starttls=1").starttls
    monkeypatch.delenv("WASTETRACK_SMTP", raising=False)
    with pytest.raises(MailError, match="WASTETRACK_SMTP"):
        smtp_settings()
    with pytest.raises(MailError, match="use smtp://"):
        smtp_settings("http://wt:secret@mail.example")


def _replies(*rows: tuple) -> pd.DataFrame:
    f = pd.DataFrame(rows, columns=["lead_id", "liaison_id", "at", "status", "case_no", "penalty_cny", "note",
                                    "to_adcode"])
    f["at"] = pd.to_datetime(f["at"]).dt.tz_localize(TZ)
    return f


EMPTY_EVENTS = pd.DataFrame(columns=["event_id", "lead_id", "at", "event", "liaison_id", "adcode", "detail",
                                     "source", "ref"])


def test_first_to_file_keeps_the_lead_and_a_transfer_needs_the_handler() -> None:
    net = network()
    leads = lead_rows("2026-11-02", [{"lead_id": "X", "county": "320506", "origin": "310117"}]).assign(
        date="2026-11-02")
    st = fold(leads, EMPTY_EVENTS, _replies(
        ("X", "LN-320506-01", "2026-11-04 09:00", "case_filed", "B-1", None, "", None),
        ("X", "LN-310117-01", "2026-11-03 09:00", "case_filed", "A-1", None, "", None),   # earlier, arrives later
        ("X", "LN-320506-01", "2026-11-05 09:00", "transferred", "", None, "", "320583"),  # not the handler now
        ("X", "LN-320583-01", "2026-11-05 10:00", "received", "", None, "", None),         # never routed
    ), net)["X"]
    assert (st.handler, st.case_no, st.phase) == ("LN-310117-01", "A-1", "case_filed")
    reasons = [why for _, why in st.rejected]
    assert len(reasons) == 2 and "只有当前主办" in reasons[0] and "未送达" in reasons[1]
    d = decide(st, "2026-11-05", net)
    assert [(n.liaison, n.role) for n in d.mails] == [("LN-320506-01", "notice:first_filed:LN-310117-01")]


def test_an_undelivered_lead_owes_nothing_and_a_delivered_one_its_receipt() -> None:
    net = network()
    leads = lead_rows("2026-11-02", [{"lead_id": "Y", "county": "310118"}]).assign(date="2026-11-02")
    st = fold(leads, EMPTY_EVENTS, _replies(), net)["Y"]
    assert st.phase == "new" and obligations(st, DEFAULT_PARAMS, Workdays(DEFAULT_PARAMS)) == []
    delivered = pd.DataFrame([{"event_id": "E", "lead_id": "Y", "at": pd.Timestamp("2026-11-03 07:00", tz=TZ),
                               "event": "delivered", "liaison_id": "LN-310118-01", "adcode": "", "detail": "",
                               "source": "mail", "ref": "M"}])
    st = fold(leads, delivered, _replies(), net)["Y"]
    (ob,) = obligations(st, DEFAULT_PARAMS, Workdays(DEFAULT_PARAMS))
    assert (ob.kind, ob.due) == ("receipt", date(2026, 11, 5))
    assert decide(st, "2026-11-04", net).events == []
    assert [e["event"] for e in decide(st, "2026-11-05", net).events] == ["reminded"]
    assert [e["liaison_id"] for e in decide(st, "2026-11-09", net).events] == ["LN-310118-01", "LN-310100-01"]
    assert [e["event"] for e in decide(st, "2026-11-11", net).events] == ["reminded", "escalated", "escalated"]


def test_feedback_v11_to_adcode_is_read_and_required_where_it_matters(tmp_path) -> None:
    landing = copy_landing(tmp_path)
    (landing / DAY / "feedback.csv").write_text(
        "lead_id,liaison_id,at,status,case_no,penalty_cny,note,to_adcode\n"
        "L-1,LN-310118-01,2026-11-20T09:00:00+08:00,transferred,,,不属本辖区,320583\n"
        "L-2,LN-310118-01,2026-11-20T10:00:00+08:00,assist_requested,,,请协查,\n"
        "L-3,LN-310118-01,2026-11-20T11:00:00+08:00,received,,,,\n",
        encoding="utf-8",
    )
    doc = batch_json(landing)
    doc["files"].append({"path": "feedback.csv", "rows": 0, "sha256": "0" * 64})
    write_batch_json(landing, doc)
    reseal(landing)
    night = read_night(landing, DAY)
    fb = night.feedback.set_index("lead_id")
    assert list(fb.index) == ["L-1", "L-3"] and fb.loc["L-1", "to_adcode"] == "320583"
    q = night.quarantine.frame()
    q = q[q["file"] == f"{DAY}/feedback.csv"].set_index("row")
    assert list(q.index) == [2] and q.loc[2, "reason"].startswith("to_adcode: missing")
