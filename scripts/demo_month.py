"""Replay a month of the liaison loop on a demo directory, with liaisons who answer (or not).

    .venv/bin/wastetrack demo --dir demo/month --days 30 --start-date 2026-11-01
    .venv/bin/python scripts/demo_month.py --dir demo/month

Every night of the demo is delivered at 07:00 the next morning through a real SMTP server on
127.0.0.1 (aiosmtpd, in this process); the liaisons' behaviour is scripted with a seeded random
generator — most acknowledge on time, some late, a few never; verdicts, filings, closures with
fines, transfers to the county the waste came from, entrusted investigations, the origin county
answering on cross-border leads (disputes, two filings) — and their answers come back as filled-in
XLSX reply sheets, imported with ``replies.import_reply_file``. Each night is followed up
(``escalation.escalate``) and its mails sent; at the end the month's credit list and report are
written to ``DIR/monthly/`` and a summary is printed. The store is upgraded first if it needs it.
Same demo, same seed: same month.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from aiosmtpd.controller import Controller
from openpyxl import load_workbook

from wastetrack import TIMEZONE
from wastetrack.config import DEFAULT_PARAMS
from wastetrack.credit import write_credit_list
from wastetrack.delivery import deliver, flush
from wastetrack.escalation import escalate
from wastetrack.liaison_xlsx import STATUS_ZH, WorkbookLead, write_liaison_workbook
from wastetrack.mail import smtp_settings
from wastetrack.monthly import write_report
from wastetrack.network import Network
from wastetrack.replies import import_reply_file
from wastetrack.store import migrations, open_store
from wastetrack.workdays import Workdays


class Counting:
    def __init__(self) -> None:
        self.n = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.n += 1
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def at(day: date, hour: int, rng: random.Random) -> pd.Timestamp:
    return pd.Timestamp(day.isoformat(), tz=TIMEZONE) + pd.Timedelta(hours=hour, minutes=rng.randrange(60))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("demo"))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    landing, out = args.dir / "landing", args.dir / "out"
    url = str(out / "wastetrack.db")
    for step in migrations.upgrade(url):
        print(f"store upgraded: {step}")
    net = Network.from_landing(landing)
    wd = Workdays(DEFAULT_PARAMS)
    rng = random.Random(args.seed)
    inbox = Counting()
    port = _port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    smtp = smtp_settings(f"smtp://127.0.0.1:{port}")
    replies: dict[date, list[tuple]] = {}   # day → (lead, liaison, status, time, case_no, fine, note, to)
    planned: set[tuple[str, str, str]] = set()
    stats: Counter[str] = Counter()

    def add(day: date, reply: tuple) -> None:
        replies.setdefault(day, []).append(reply)

    def plan(day: date, lead: dict, who: str, role: str) -> None:
        """What liaison ``who`` will answer about ``lead``, from ``day`` on (its mail came that morning)."""
        key = (lead["lead_id"], who, "assist" if role.startswith("assist") else role)  # a cc may later handle it
        if key in planned:
            return
        planned.add(key)
        lid, r = lead["lead_id"], rng.random()
        if role == "cc":
            origin = net.resolve(lead["origin_county_adcode"])
            if who == origin and lead["cross_border"] and r < 0.35:  # the origin county answers too
                d = wd.add(day, rng.randint(2, 9))
                if rng.random() < 0.4:
                    case_no = f"源罚〔2026〕{rng.randint(1, 999)}号"
                    add(d, (lid, who, "case_filed", at(d, 10, rng), case_no, None, "来源地立案", None))
                else:
                    add(d, (lid, who, "not_established", at(d, 15, rng), "", None, "来源工地无出土记录", None))
            return
        if role.startswith("assist"):
            if r < 0.7:
                d = wd.add(day, rng.randint(2, 12))
                add(d, (lid, who, "assist_replied", at(d, 11, rng), "", None,
                        "经核查，该车当晚在本辖区工地装载，出土记录附后。", lead["county_adcode"][:6]))
            return
        if r < 0.08:
            stats["silent"] += 1
            return
        d = wd.add(day, 1 if r < 0.78 else rng.randint(3, 6))
        add(d, (lid, who, "received", at(d, 9, rng), "", None, "", None))
        origin = lead["origin_county_adcode"]
        other = bool(origin) and origin != lead["county_adcode"] and net.resolve(origin) not in ("", who)
        if role == "primary" and r > 0.93 and other:
            t = wd.add(d, 1)
            add(t, (lid, who, "transferred", at(t, 10, rng), "", None, "经核查属来源地管辖", origin))
            return
        if rng.random() < 0.12 and other:
            t = wd.add(d, 1)
            ask = "请协助核查来源工地出土及车辆装载情况"
            add(t, (lid, who, "assist_requested", at(t, 14, rng), "", None, ask, origin))
        v = wd.add(d, rng.randint(2, 12) if rng.random() < 0.85 else rng.randint(14, 20))
        if rng.random() < 0.65:
            add(v, (lid, who, "case_filed", at(v, 10, rng), f"城管罚〔2026〕{rng.randint(1, 9999)}号", None, "", None))
            c = wd.add(v, rng.randint(3, 12))
            fine = rng.choice([0.0, 5000.0, 20000.0, 50000.0])
            add(c, (lid, who, "closed", at(c, 16, rng), "", fine, "已执行", None))
        else:
            add(v, (lid, who, "not_established", at(v, 15, rng), "", None, "现场核查不属实", None))

    with open_store(url) as store:
        nights = store.dates()
        first, last = date.fromisoformat(nights[0]), date.fromisoformat(nights[-1])
        leads_all = store.read("leads")
        by_id = {r["lead_id"]: r for r in leads_all.to_dict("records")}
        day = first
        while day <= last:
            morning = pd.Timestamp(day.isoformat(), tz=TIMEZONE) + pd.Timedelta(days=1, hours=7)
            if day.isoformat() in nights:
                deliver(store, out, day.isoformat(), net, smtp, now=morning)
            for who, rows in _group(replies.pop(day, [])).items():
                if rng.random() < 0.08:  # a slip: a row about a lead this liaison never got (quarantined)
                    stray = rng.choice(sorted(lid for lid, w, _ in planned if w != who))
                    rows = [*rows, (stray, who, "received", at(day, 9, rng), "", None, "", None)]
                path = out / "replies" / f"{day.isoformat()}-{who}.xlsx"
                wl = [WorkbookLead(r[0], by_id[r[0]]["kind"], "primary", by_id[r[0]]["start"], "", "", False, "", "",
                                   None, "", "", "") for r in rows]
                write_liaison_workbook(path, who, net.label(who), day.isoformat(), wl)
                wb = load_workbook(path)
                ws = wb["回复表"]
                for i, (lid, _, status, when, case_no, fine, note, to) in enumerate(rows, start=2):
                    for col, value in enumerate((lid, who, STATUS_ZH[status], when.strftime("%Y-%m-%d %H:%M"),
                                                 case_no or None, fine, to, note or None), start=1):
                        ws.cell(i, col, value)
                wb.save(path)
                res = import_reply_file(store, path, net, now=morning)
                stats["reply files"] += 1
                stats["replies accepted"] += res["accepted"]
                stats["replies quarantined"] += res["quarantined"]
            escalate(store, day.isoformat(), net)
            flush(store, out, net, smtp, now=morning + pd.Timedelta(minutes=30))
            # who got what this morning: plan their answers
            ml = store.read("mail_leads").merge(store.read("mails")[["mail_id", "sent_at"]], on="mail_id")
            fresh = ml[ml["sent_at"].dt.date == (day + timedelta(days=1))]
            for r in fresh.itertuples():
                role = r.role.split("|")[0].split(":")[0]
                if role in ("primary", "cc", "transfer", "dispute") or role.startswith("assist"):
                    plan(day + timedelta(days=1), by_id[r.lead_id], r.liaison_id,
                         "primary" if role in ("transfer", "dispute") else role)
            day += timedelta(days=1)
        month = nights[-1][:7]
        credit = write_credit_list(store, month, args.dir / "monthly", landing=landing)
        report = write_report(store, month, args.dir / "monthly", net)
        mails = store.read("mails")
        events = store.read("lead_events")
        state = store.read("lead_state")
        q = store.read("reply_quarantine")
    ctl.stop()
    print(f"nights {nights[0]} … {nights[-1]}: {len(leads_all)} leads "
          f"({int(leads_all['cross_border'].fillna(False).astype(bool).sum())} cross-border)")
    print(f"mails: {len(mails)} sent ({dict(Counter(mails['purpose']))}), {inbox.n} received by the server; "
          f"{int((mails['status'] != 'sent').sum())} unsent")
    print(f"replies: {stats['reply files']} files, {stats['replies accepted']} accepted, "
          f"{stats['replies quarantined']} quarantined; {len(q)} set aside in all; {stats['silent']} liaisons silent")
    print(f"events: {dict(Counter(events['event']))}")
    print(f"disputes: {int((events['ref'] == 'dispute').sum())} referee mails; phases at the end: "
          f"{dict(Counter(state['phase']))}")
    print(f"credit {month}: {credit['carriers']} carriers, {credit['watched']} watched, {credit['blacklisted']} "
          f"blacklisted, {credit['first_violation']} first-violation-no-penalty → {credit['xlsx']}")
    print(f"report {month}: {report['leads']} leads, {report['overdue']} overdue/escalated, {report['filings']} "
          f"filing rows → {report['html']}")
    return 0


def _group(rows: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for r in rows:
        out.setdefault(r[1], []).append(r)
    return out


if __name__ == "__main__":
    sys.exit(main())
