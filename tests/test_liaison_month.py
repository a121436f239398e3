"""A month of the liaison loop (November 2026) on the simulator's liaison network, on both store backends.

Eight leads of the night of 2 November, each with a script of replies: on time, late, missing, a
cross-border dispute, a transfer, two counties filing the same lead, an entrusted investigation (one
answered, one not), and a reply from a liaison the lead never reached. Every night: that day's replies
arrive (feedback rows, or the returned XLSX sheet), the night is followed up (``escalation.escalate``)
and the mails go out through a real SMTP server at 07:00 the next morning. Then the store, the mails,
the sheets' history, the credit list and the monthly report are checked against what the agreement
says should have happened.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from liaison_fixtures import (  # noqa: F401  (fixtures `store`, `empty_url`)
    TZ,
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
    write_sheets,
)
from wastetrack.config import Params
from wastetrack.credit import credit_list, write_credit_list
from wastetrack.delivery import deliver, flush
from wastetrack.escalation import escalate
from wastetrack.lifecycle import history_for
from wastetrack.mail import smtp_settings
from wastetrack.monthly import write_report
from wastetrack.replies import import_reply_file
from wastetrack.store.base import Store

NIGHT = "2026-11-02"  # a Monday: delivered Tuesday 07:00, receipt due Thursday 5 Nov
CA, CE, CF, CG = "91310118MA1AAAAA01", "91330402MA1EEEEE05", "91310117MA1FFFFF06", "91330421MA1GGGGG07"
SPECS = [
    {"lead_id": "A-ontime", "county": "310118", "origin": "310118", "carrier": CA},
    {"lead_id": "B-late", "county": "310117", "origin": "310117"},
    {"lead_id": "C-missing", "county": "310114", "origin": "310114"},
    {"lead_id": "D-dispute", "county": "320583", "origin": "310118"},
    {"lead_id": "E-transfer", "county": "330402", "origin": "330402", "carrier": CE, "kind": "track_gap"},
    {"lead_id": "F-twofile", "county": "320506", "origin": "310117", "carrier": CF},
    {"lead_id": "G-assist", "county": "330421", "origin": "330421", "carrier": CG},
    {"lead_id": "H-stranger", "county": "310118", "origin": "310118"},
]
QINGPU, SONGJIANG, JIADING = "LN-310118-01", "LN-310117-01", "LN-310114-01"
KUNSHAN, WUZHONG, NANHU, HAINING, JIASHAN, TONGXIANG = ("LN-320583-01", "LN-320506-01", "LN-330402-01",
                                                        "LN-330481-01", "LN-330421-01", "LN-330483-01")
SH_CITY, SH_PROV, JS_PROV, ZJ_PROV, HUQIU = "LN-310100-01", "LN-310000-01", "LN-320000-01", "LN-330000-01", \
    "LN-320505-01"

#: (lead, liaison, local time, status, case_no, penalty, note, to_adcode) by the feedback route
FEEDBACK = [
    ("B-late", SONGJIANG, "2026-11-06 10:00", "received", "", None, "", ""),
    ("B-late", SONGJIANG, "2026-11-10 16:00", "not_established", "", None, "现场为合法回填", ""),
    ("D-dispute", KUNSHAN, "2026-11-03 09:00", "received", "", None, "", ""),
    ("D-dispute", KUNSHAN, "2026-11-09 11:00", "not_established", "", None, "非本地车辆所为", ""),
    ("D-dispute", QINGPU, "2026-11-10 15:00", "not_established", "", None, "来源工地未出土", ""),
    ("D-dispute", SH_PROV, "2026-11-16 10:00", "case_filed", "沪绿容罚〔2026〕7号", None, "省级立案", ""),
    ("E-transfer", NANHU, "2026-11-04 09:30", "transferred", "", None, "倾倒点属海宁", "330481"),
    ("E-transfer", HAINING, "2026-11-05 10:00", "received", "", None, "", ""),
    ("E-transfer", HAINING, "2026-11-09 10:00", "case_filed", "海综执罚〔2026〕3号", None, "", ""),
    ("E-transfer", HAINING, "2026-11-25 10:00", "closed", "", 0.0, "首次违法，责令改正", ""),
    ("F-twofile", SONGJIANG, "2026-11-03 15:00", "case_filed", "沪松城罚〔2026〕9号", None, "", ""),
    ("F-twofile", WUZHONG, "2026-11-03 16:00", "received", "", None, "", ""),
    ("F-twofile", WUZHONG, "2026-11-04 09:00", "case_filed", "吴综执罚〔2026〕2号", None, "", ""),
    ("F-twofile", WUZHONG, "2026-11-12 09:00", "closed", "", 10000.0, "", ""),   # not its case: set aside
    ("F-twofile", SONGJIANG, "2026-11-18 09:00", "closed", "", 50000.0, "", ""),
    ("G-assist", JIASHAN, "2026-11-03 09:00", "received", "", None, "", ""),
    ("G-assist", JIASHAN, "2026-11-04 09:00", "assist_requested", "", None, "请核查车辆停放点", "330483"),
    ("G-assist", JIASHAN, "2026-11-05 09:00", "assist_requested", "", None, "请调取卡口记录", "330481"),
    ("G-assist", TONGXIANG, "2026-11-10 09:00", "assist_replied", "", None,
     "经核查，该车 11 月 2 日 23 时在本县工地装载。<script>alert(1)</script>", "330421"),
    ("G-assist", JIASHAN, "2026-11-12 09:00", "case_filed", "善综执罚〔2026〕5号", None, "", ""),
    ("H-stranger", HUQIU, "2026-11-04 09:00", "case_filed", "虎综执罚〔2026〕1号", None, "", ""),  # never routed
    ("H-stranger", QINGPU, "2026-11-03 09:00", "received", "", None, "", ""),
]
#: replies that come back in Qingpu's returned spreadsheet (its mail's 回复表), on the day given
SHEET_DAY = "2026-11-04"
SHEET = [  # (lead, liaison, status label, time, case_no, penalty, note)
    ("A-ontime", QINGPU, "已签收", "2026-11-04 09:00", "", None, ""),
    ("A-ontime", QINGPU, "已立案", "2026-11-04 11:00", "沪青城罚〔2026〕1号", None, "<b>当场查获</b>"),
    ("E-transfer", QINGPU, "已签收", "2026-11-04 09:00", "", None, ""),    # not routed to Qingpu
    ("H-stranger", QINGPU, "办完了", "2026-11-04 09:00", "", None, ""),    # no such status
]
LATER = [("A-ontime", QINGPU, "2026-11-20 10:00", "closed", "", 20000.0, "已罚款", "")]


def nights() -> list[str]:
    d, out = date(2026, 11, 2), []
    while d <= date(2026, 11, 30):
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def feedback_of(rows: list[tuple]) -> pd.DataFrame:
    f = pd.DataFrame(rows, columns=["lead_id", "liaison_id", "at", "status", "case_no", "penalty_cny", "note",
                                    "to_adcode"])
    f["at"] = pd.to_datetime(f["at"]).dt.tz_localize(TZ)
    f["to_adcode"] = f["to_adcode"].replace("", None)
    return f


def fill_sheet(mail_xlsx: bytes, rows: list[tuple], path: Path) -> Path:
    """What Qingpu's liaison does: fills the reply sheet it was mailed and sends it back."""
    wb = load_workbook(io.BytesIO(mail_xlsx))
    ws = wb["回复表"]
    r = 2
    for lead, who, status, at, case_no, pen, note in rows:
        for c, v in enumerate((lead, who, status, at, case_no or None, pen, None, note or None), start=1):
            ws.cell(row=r, column=c, value=v)
        r += 1
    wb.save(path)
    return path


def run_month(store: Store, smtp: SmtpServer, tmp_path: Path) -> dict:
    net, server, out = network(), smtp_settings(smtp.url), tmp_path / "out"
    leads = lead_rows(NIGHT, SPECS)
    store_night(store, NIGHT, leads)
    write_sheets(out, NIGHT, leads)
    fb = feedback_of(FEEDBACK)
    later = feedback_of(LATER)
    summaries, sheet_result = {}, None
    for night in nights():
        morning = pd.Timestamp(night, tz=TZ) + pd.Timedelta(days=1, hours=7)
        day = fb[fb["at"].dt.strftime("%Y-%m-%d") == night]
        if len(day):
            store.apply_feedback(day)  # feedback.csv of the batch, as the nightly run applies it
        if night == SHEET_DAY:
            qingpu = next(m for m in by_recipient(smtp.inbox.messages)[net.email(QINGPU)]
                          if m["Subject"].startswith("【线索单】"))
            xlsx = next(d for n, d in attachments(qingpu).items() if n.endswith(".xlsx"))
            path = fill_sheet(xlsx, SHEET, tmp_path / "qingpu-reply.xlsx")
            sheet_result = import_reply_file(store, path, net, now=morning)
            assert import_reply_file(store, path, net, now=morning)["status"] == "already imported"
        if night == "2026-11-20":
            store.apply_feedback(later)
        if night == NIGHT:
            deliver(store, out, NIGHT, net, server, now=morning)
        summaries[night] = escalate(store, night, net)
        flush(store, out, net, server, now=morning)
    return {"store": store, "smtp": smtp, "leads": leads, "summaries": summaries, "sheet": sheet_result,
            "out": out, "tmp": tmp_path}


def events_of(store: Store, lead: str) -> pd.DataFrame:
    e = store.read("lead_events")
    return e[e["lead_id"] == lead].sort_values("at")


def check_the_lifecycle(month: dict) -> None:
    store, smtp = month["store"], month["smtp"]
    net = network()
    state = store.read("lead_state").set_index("lead_id")
    assert state["phase"].to_dict() == {
        "A-ontime": "closed", "B-late": "not_established", "C-missing": "delivered", "D-dispute": "case_filed",
        "E-transfer": "closed", "F-twofile": "closed", "G-assist": "case_filed", "H-stranger": "received"}

    # on time: never reminded
    a = events_of(store, "A-ontime")
    assert not a["event"].isin(["reminded", "escalated"]).any()
    assert list(a.loc[a["source"] == "reply", "event"]) == ["received", "case_filed", "closed"]
    assert state.loc["A-ontime", "case_no"] == "沪青城罚〔2026〕1号" and state.loc["A-ontime", "penalty_cny"] == 20000

    # late: one reminder (receipt due Thu 5 Nov), the reply on Fri 6 Nov stopped the ladder before the city
    b = events_of(store, "B-late")
    assert list(b.loc[b["event"].isin(["reminded", "escalated"]), "event"]) == ["reminded"]
    assert b.loc[b["event"] == "reminded", "at"].iloc[0] == pd.Timestamp("2026-11-06", tz=TZ)

    # missing: reminder, then the city (Mon 9 Nov), then the province (Wed 11 Nov); nothing more
    c = events_of(store, "C-missing")
    ladder = c[c["event"].isin(["reminded", "escalated"])]
    assert list(zip(ladder["event"], ladder["liaison_id"], ladder["at"].dt.strftime("%m-%d"), strict=True)) == [
        ("reminded", JIADING, "11-06"), ("escalated", SH_CITY, "11-10"), ("escalated", SH_PROV, "11-12")]
    assert bool(state.loc["C-missing", "overdue"]) and state.loc["C-missing", "escalation"] == 3

    # dispute: Kunshan and Qingpu both not established → both provinces (no level above them but theirs)
    d = events_of(store, "D-dispute")
    dispute = d[d["ref"] == "dispute"]
    assert sorted(dispute["liaison_id"]) == [SH_PROV, JS_PROV]
    assert set(dispute["at"].dt.strftime("%m-%d")) == {"11-11"}
    assert state.loc["D-dispute", "handler_liaison_id"] == SH_PROV  # the referee's filing keeps it

    # transfer: Haining becomes the handler; Nanhu hears of the filing and the closure
    assert state.loc["E-transfer", "handler_liaison_id"] == HAINING
    mails = store.read("mails")
    notices = store.read("mail_leads").merge(mails[["mail_id", "purpose", "status"]], on="mail_id")
    e = notices[notices["lead_id"] == "E-transfer"]
    assert set(e.loc[e["purpose"] == "transfer", "liaison_id"]) == {HAINING}
    assert sorted(e.loc[e["purpose"] == "notice", "role"]) == ["notice:report_back:case_filed",
                                                               "notice:report_back:closed"]
    assert set(e.loc[e["purpose"] == "notice", "liaison_id"]) == {NANHU}

    # two filings: Songjiang filed first and keeps it; Wuzhong is told, and its closing is set aside
    assert state.loc["F-twofile", "handler_liaison_id"] == SONGJIANG
    assert state.loc["F-twofile", "case_no"] == "沪松城罚〔2026〕9号" and state.loc["F-twofile", "penalty_cny"] == 50000
    f = notices[(notices["lead_id"] == "F-twofile") & (notices["purpose"] == "notice")]
    assert list(f["liaison_id"]) == [WUZHONG] and f["role"].iloc[0] == f"notice:first_filed:{SONGJIANG}"
    q = store.read("reply_quarantine")
    assert (q["lead_id"] == "F-twofile").sum() == 1
    assert "谁先予立案" in q.loc[q["lead_id"] == "F-twofile", "reason"].iloc[0]

    # entrusted investigation: Tongxiang's written reply goes to Jiashan; Haining's silence climbs the ladder
    g = notices[notices["lead_id"] == "G-assist"]
    assert set(g.loc[g["purpose"] == "assist", "liaison_id"]) == {TONGXIANG, HAINING}
    assert list(g.loc[g["purpose"] == "notice", "liaison_id"]) == [JIASHAN]
    gl = events_of(store, "G-assist")
    gl = gl[gl["event"].isin(["reminded", "escalated"])]
    assert list(zip(gl["event"], gl["liaison_id"], strict=True)) == [("reminded", HAINING), ("escalated", ZJ_PROV)]
    assert all(r.startswith("assist2:") for r in gl["ref"])

    # a reply from a liaison the lead never reached is set aside, never applied
    assert (q["lead_id"] == "H-stranger").any() and pd.isna(state.loc["H-stranger", "case_no"])

    # every mail went out, once; nobody got a lead not routed (or escalated, transferred, entrusted) to it
    assert set(mails["status"]) == {"sent"}
    assert len(smtp.inbox.messages) == len(mails)
    allowed = {(r.lead_id, r.liaison_id) for r in notices.itertuples()}
    for msg in smtp.inbox.messages:
        mail_id = msg["X-Wastetrack-Mail"]
        carried = notices[notices["mail_id"] == mail_id]
        assert len(carried) and {(r.lead_id, r.liaison_id) for r in carried.itertuples()} <= allowed
        assert net.email(carried["liaison_id"].iloc[0]) == msg["To"]
    # the assist reply is passed on escaped, never as markup
    jiashan = [html_body(m) for m in by_recipient(smtp.inbox.messages)[net.email(JIASHAN)]
               if m["Subject"].startswith("【通报】")]
    assert jiashan and "&lt;script&gt;" in jiashan[0] and "<script>" not in jiashan[0]


def check_the_returned_spreadsheet(month: dict) -> None:
    res = month["sheet"]
    assert res["status"] == "imported" and res["accepted"] == 2 and res["quarantined"] == 2
    problems = dict(res["problems"])
    assert "未送达" in problems[4] and "无法识别" in problems[5]
    q = month["store"].read("reply_quarantine")
    from_file = q[q["source"].str.startswith("qingpu-reply.xlsx#")]
    assert sorted(from_file["row"]) == [4, 5] and set(from_file["lead_id"]) == {"E-transfer", "H-stranger"}
    fb = month["store"].read("feedback")
    filed = fb[(fb["lead_id"] == "A-ontime") & (fb["status"] == "case_filed")]
    assert filed["note"].iloc[0] == "<b>当场查获</b>" and filed["case_no"].iloc[0] == "沪青城罚〔2026〕1号"


def check_the_sheet_history(month: dict) -> None:
    hist = history_for(month["store"], ["C-missing", "E-transfer"], network())
    c = [(h["event"], h["actor"]) for h in hist["C-missing"]]
    assert c[0][0] == "delivered" and ("reminded", network().label(JIADING)) in c
    assert [e for e, _ in c].count("escalated") == 2
    e = [h["event"] for h in hist["E-transfer"]]
    assert e.index("transferred") < e.index("case_filed") < e.index("closed")
    assert all(h["detail"] for h in hist["E-transfer"])
    # the sheets render it as 处理记录
    from wastetrack.sheets import SheetContext, render_sheet

    lead = month["leads"].set_index("lead_id").loc["E-transfer"].to_dict() | {"lead_id": "E-transfer"}
    html = render_sheet(lead, None, SheetContext(date=NIGHT, history=hist))
    assert "处理记录" in html and "已移送" in html and "已办结" in html


def check_the_credit_list(month: dict) -> None:
    store = month["store"]
    frame = credit_list(store, "2026-11").set_index("carrier_id")
    assert set(frame.index) == {CA, CE, CF}  # D and G are still being handled, B was not established
    assert frame.loc[CA, ["points_deducted", "score", "list"]].tolist() == [20.0, 80.0, "watch"]
    assert bool(frame.loc[CE, "first_violation_no_penalty"]) and frame.loc[CE, "score"] == 100.0
    assert frame.loc[CF, "points_deducted"] == 25.0  # cross-border extra
    strict = credit_list(store, "2026-11", Params(credit_blacklist_points=80.0)).set_index("carrier_id")
    assert strict.loc[CA, "list"] == "blacklist"
    assert credit_list(store, "2026-10").empty  # closed in November: not in October's window
    res = write_credit_list(store, "2026-11", month["tmp"] / "credit")
    wb = load_workbook(res["xlsx"])
    assert wb["信用评价"]["A3"].value == "统一社会信用代码" and res["first_violation"] == 1
    text = Path(res["csv"]).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("carrier_id,") and CE in text


def check_the_monthly_report(month: dict) -> None:
    res = write_report(month["store"], "2026-11", month["tmp"] / "report", network())
    # B, C, G's second assist and H (no verdict in 15 working days) went overdue, D was disputed; A never
    assert res["leads"] == 8 and res["escalated"] == 5
    html = Path(res["html"]).read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    wb = load_workbook(res["xlsx"])
    assert wb.sheetnames[:2] == ["概览", "线索按县区和类型"]
    filings = [r for r in wb["备案清单"].iter_rows(min_row=4, values_only=True)]
    kinds = {r[3] for r in filings}
    assert {"移送（移出）", "移送（接收）", "联合办理（委托调查取证）", "联合办理（跨省立案）"} <= kinds
    overdue = [r[0] for r in wb["逾期与提级"].iter_rows(min_row=4, values_only=True)]
    assert {"B-late", "C-missing", "G-assist"} <= set(overdue)



@pytest.mark.slow
def test_a_month_of_the_loop(store: Store, smtp: SmtpServer, tmp_path: Path) -> None:
    """One month per backend (about 15 s), then every check on what it left."""
    month = run_month(store, smtp, tmp_path)
    check_the_lifecycle(month)
    check_the_returned_spreadsheet(month)
    check_the_sheet_history(month)
    check_the_credit_list(month)
    check_the_monthly_report(month)
