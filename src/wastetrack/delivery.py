"""Mailing leads to liaisons: the night's delivery, and the outbox every liaison mail goes through.

Why an outbox: "nothing lost, nothing twice" across a mail server that is down, a run that
crashes and a follow-up that is re-run. A mail is first written to the store as ``pending``
(``mails`` + ``mail_leads``), in the same transaction as the decision that needs it; ``flush``
then sends every unsent mail, oldest first, and only the server's acceptance marks it ``sent``
(and records a ``delivered`` lead event per lead). A mail the server did not take stays unsent
with its error and goes out with the next run. The one window left — the server accepted but
the process died before the store was updated — resends that mail under the same Message-ID,
which mail systems use to drop the copy.

Who gets what: each liaison the night's leads are routed to (primary 主办, copies 抄送) gets one
mail with exactly those leads, their sheets (``OUT/<date>/sheets/``) and an XLSX with a reply
sheet. A (lead, liaison, role) already mailed is never queued again, unless ``resend``.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.liaison_xlsx import KIND_ZH, WorkbookLead, write_liaison_workbook
from wastetrack.lifecycle import history_for, role_zh
from wastetrack.mail import Mailer, MailError, RecipientRefused, SmtpSettings
from wastetrack.network import Network
from wastetrack.workdays import Workdays

log = logging.getLogger(__name__)

MAIL_COLUMNS = ("mail_id", "date", "purpose", "liaison_id", "email", "subject", "body_note", "status", "attempts",
                "created_at", "sent_at", "error", "message_id")
MAIL_LEAD_COLUMNS = ("mail_id", "lead_id", "liaison_id", "role")
PURPOSE_ZH = {"leads": "线索单", "reminder": "催办", "escalation": "提级督办", "dispute": "争议裁定",
              "transfer": "移送", "assist": "委托调查取证", "notice": "通报"}
XLSX_MIME = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class DeliveryError(RuntimeError):
    """Some mails could not be sent (they stay queued for the next run); one line, no password."""


@dataclass
class FlushResult:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    leftover_dates: list[str] = field(default_factory=list)   # other nights' mails sent by this run

    def summary(self) -> dict[str, Any]:
        return {"sent": len(self.sent), "failed": len(self.failed), "errors": [e for _, e in self.failed][:5],
                "leftover_dates": self.leftover_dates}


def now_local() -> pd.Timestamp:
    return pd.Timestamp.now(tz=TIMEZONE).floor("s")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]", "_", text)


def mail_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(MAIL_COLUMNS))


def new_mail(mail_id: str, date: str, purpose: str, liaison: str, net: Network, subject: str, note: str,
             now: pd.Timestamp) -> dict:
    return {"mail_id": mail_id, "date": date, "purpose": purpose, "liaison_id": liaison,
            "email": net.email(liaison), "subject": subject, "body_note": note or None, "status": "pending",
            "attempts": 0, "created_at": now, "sent_at": None, "error": None,
            "message_id": f"<{_safe(mail_id)}@wastetrack>"}


# --- queueing the night's delivery -------------------------------------------------------------------------

def queue_night(store: Any, date: str, net: Network, *, resend: bool = False,
                now: pd.Timestamp | None = None) -> int:
    """Queue one mail per liaison with the night's leads not yet mailed to it (all of them with ``resend``).

    Returns the mails queued. Only the stored routing is used: a liaison gets exactly the leads
    whose ``primary_liaison_id`` or ``cc_liaison_ids`` name it.
    """
    now = now or now_local()
    leads = store.read("leads", date)
    wanted: dict[str, list[tuple[str, str]]] = {}
    for r in leads.to_dict("records"):
        if r["primary_liaison_id"]:
            wanted.setdefault(r["primary_liaison_id"], []).append((r["lead_id"], "primary"))
        for c in r["cc_liaison_ids"] or []:
            if c and c != r["primary_liaison_id"]:
                wanted.setdefault(c, []).append((r["lead_id"], "cc"))
    mails, mail_leads = store.read("mails"), store.read("mail_leads")
    night_mails = mails[(mails["purpose"] == "leads") & (mails["date"] == date)]
    done = set()
    if not resend and len(mail_leads):
        ml = mail_leads[mail_leads["role"].isin(("primary", "cc"))]
        done = set(zip(ml["lead_id"], ml["liaison_id"], strict=True))
    rows, carried = [], []
    for liaison in sorted(wanted):
        todo = [(lid, role) for lid, role in wanted[liaison] if (lid, liaison) not in done]
        if not todo:
            continue
        seq = int((night_mails["liaison_id"] == liaison).sum()) + 1
        mail_id = f"M-{date}-{liaison}-{seq}"
        n_primary = sum(role == "primary" for _, role in todo)
        subject = (f"【线索单】{date} {net.place(net.adcode(liaison)) if net.adcode(liaison) else ''} "
                   f"{len(todo)} 条线索（主办 {n_primary}，抄送 {len(todo) - n_primary}）"
                   + ("（重发）" if resend else ""))
        note = "重发：本邮件为再次发送。" if resend else ""
        rows.append(new_mail(mail_id, date, "leads", liaison, net, subject, note, now))
        carried += [{"mail_id": mail_id, "lead_id": lid, "liaison_id": liaison, "role": role} for lid, role in todo]
    if rows:
        store.enqueue_mails(mail_frame(rows), pd.DataFrame(carried, columns=list(MAIL_LEAD_COLUMNS)))
    return len(rows)


# --- composing and sending ---------------------------------------------------------------------------------

@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("wastetrack", "liaison_templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _fmt(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    t = pd.Timestamp(value)
    return (t.tz_convert(TIMEZONE) if t.tzinfo else t).strftime("%Y-%m-%d %H:%M")


@dataclass
class Composer:
    """Builds the message of one queued mail: body, sheets, workbook."""

    store: Any
    out: Path
    net: Network
    params: Params = DEFAULT_PARAMS
    sender: str = "wastetrack@localhost"

    def compose(self, mail: dict, carried: pd.DataFrame, leads: pd.DataFrame, now: pd.Timestamp,
                tmp: Path) -> EmailMessage:
        from wastetrack.sheets import sheet_filename

        liaison = mail["liaison_id"]
        rec = self.net.record(liaison) or {}
        wd = Workdays(self.params)
        receipt_due = wd.add(now.date(), self.params.receipt_due_workdays).isoformat()
        verdict_due = wd.add(now.date(), self.params.verdict_due_workdays).isoformat()
        by_id = {r["lead_id"]: r for r in leads.to_dict("records")}
        rows, wb_rows, files, missing = [], [], [], []
        for c in carried.to_dict("records"):
            lead = by_id.get(c["lead_id"])
            if lead is None:
                continue
            role = c["role"].split("|")[0].split(":")[0]
            owes = role in ("primary", "transfer")
            sheet = self.out / str(lead["date"]) / "sheets" / sheet_filename(lead["lead_id"])
            if sheet.is_file():
                files.append(sheet)
            else:
                missing.append(str(lead["lead_id"]))
            rows.append({"lead_id": lead["lead_id"], "kind_zh": KIND_ZH.get(lead["kind"], lead["kind"]),
                         "role_zh": role_zh(role), "start": _fmt(lead["start"]),
                         "place": self.net.place(lead["county_adcode"]), "vehicle_id": lead["vehicle_id"] or "—",
                         "score": f"{lead['score']:.2f}" if pd.notna(lead["score"]) else "—",
                         "receipt_due": receipt_due if owes else "—", "verdict_due": verdict_due if owes else "—"})
            wb_rows.append(WorkbookLead(
                lead["lead_id"], lead["kind"], role, lead["start"], self.net.place(lead["county_adcode"]),
                self.net.place(lead["origin_county_adcode"]) if lead["origin_county_adcode"] else "不详",
                bool(lead["cross_border"]) if pd.notna(lead["cross_border"]) else False, lead["vehicle_id"] or "",
                lead["carrier_id"] or "", lead["score"] if pd.notna(lead["score"]) else None,
                sheet.name if sheet.is_file() else "", receipt_due if owes else "", verdict_due if owes else ""))
        purpose = mail["purpose"]
        history: dict[str, list[dict]] = {}
        if purpose != "leads":
            for lid, events in history_for(self.store, [r["lead_id"] for r in rows], self.net).items():
                history[lid] = [{**e, "at": _fmt(e["at"]), "event": _event_zh(e["event"])} for e in events]
        xlsx_name = f"线索回复表-{_safe(mail['mail_id'])}.xlsx"
        xlsx = write_liaison_workbook(tmp / xlsx_name, liaison, self.net.label(liaison), mail["date"], wb_rows,
                                      PURPOSE_ZH.get(purpose, purpose))
        intro = (f"现将 {mail['date']} 夜间发现的 {len(rows)} 条建筑垃圾线索送达贵单位，请按分工核查处置。"
                 if purpose == "leads" else f"{PURPOSE_ZH.get(purpose, purpose)}：涉及以下 {len(rows)} 条线索。")
        html = _env().get_template("mail.html.j2").render(
            subject=mail["subject"], liaison_name=rec.get("name") or liaison, liaison_unit=rec.get("unit") or "",
            intro=intro, note=mail.get("body_note") or "", leads=rows, deadlines=purpose in ("leads", "transfer"),
            history=history, attachments=[f.name for f in files] + [xlsx.name], missing=missing,
            receipt_days=self.params.receipt_due_workdays, verdict_days=self.params.verdict_due_workdays,
            mail_id=mail["mail_id"])
        msg = EmailMessage()
        msg["Subject"] = mail["subject"]
        msg["From"] = self.sender
        msg["To"] = mail["email"]
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = mail["message_id"]
        msg["X-Wastetrack-Mail"] = mail["mail_id"]
        msg.set_content(f"{mail['subject']}\n\n请用支持 HTML 的邮件客户端查看本邮件；线索单与回复表见附件。\n"
                        f"邮件编号 {mail['mail_id']}")
        msg.add_alternative(html, subtype="html")
        for f in files:
            msg.add_attachment(f.read_bytes(), maintype="text", subtype="html", filename=f.name)
        msg.add_attachment(xlsx.read_bytes(), maintype=XLSX_MIME[0], subtype=XLSX_MIME[1], filename=xlsx.name)
        return msg


def _event_zh(event: str) -> str:
    from wastetrack.sheets.labels import HISTORY_EVENT_LABELS

    return HISTORY_EVENT_LABELS.get(event, event)


def delivered_events(mail: dict, carried: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """The ``delivered`` lead events of a sent mail (one per lead it carried)."""
    from wastetrack.lifecycle import event_id

    rows = []
    for c in carried.to_dict("records"):
        detail = f"{PURPOSE_ZH.get(mail['purpose'], mail['purpose'])}邮件（{role_zh(c['role'])}）已发送至 " \
                 f"{mail['email']}，邮件编号 {mail['mail_id']}"
        rows.append({"event_id": event_id(c["lead_id"], "mail", mail["mail_id"], c["liaison_id"]),
                     "lead_id": c["lead_id"], "at": at, "event": "delivered", "liaison_id": c["liaison_id"],
                     "adcode": "", "detail": detail, "source": "mail", "ref": mail["mail_id"]})
    return pd.DataFrame(rows)


def flush(store: Any, out: str | Path, net: Network, smtp: SmtpSettings, *, params: Params = DEFAULT_PARAMS,
          now: Any = None, dates: Iterable[str] | None = None) -> FlushResult:
    """Send every unsent mail (oldest first), one SMTP session. A mail the server refuses is marked failed
    and the others still go; a server that is down or drops the session stops the run. Either way the
    unsent mails stay queued; ``DeliveryError`` (one line) says how many. ``now``: a fixed clock
    (replays, tests), else the real time of each send."""
    res = FlushResult()
    mails = store.read("mails")
    unsent = mails[mails["status"] != "sent"].sort_values(["created_at", "mail_id"])
    if unsent.empty:
        return res
    carried_all = store.read_ids("mail_leads", "mail_id", unsent["mail_id"])
    leads = store.read_ids("leads", "lead_id", carried_all["lead_id"])
    leads = leads.sort_values(["lead_id", "date"]).drop_duplicates("lead_id", keep="last")
    composer = Composer(store, Path(out), net, params, smtp.sender)
    focus = set(dates or [])
    clock = (lambda: pd.Timestamp(now).tz_convert(TIMEZONE) if pd.Timestamp(now).tzinfo
             else pd.Timestamp(now).tz_localize(TIMEZONE)) if now is not None else now_local
    no_address = unsent[unsent["email"].fillna("").str.strip() == ""]
    for mail in no_address.to_dict("records"):
        err = f"liaison {mail['liaison_id']} has no e-mail address in liaisons.csv"
        store.mail_failed(mail["mail_id"], err)
        res.failed.append((mail["mail_id"], err))
    unsent = unsent[~unsent["mail_id"].isin(no_address["mail_id"])]
    if unsent.empty:
        raise DeliveryError(_failure_line(res))
    try:
        with Mailer(smtp) as mailer, tempfile.TemporaryDirectory(prefix="wastetrack-mail-") as tmp:
            for mail in unsent.to_dict("records"):
                carried = carried_all[carried_all["mail_id"] == mail["mail_id"]]
                msg = composer.compose(mail, carried, leads, clock(), Path(tmp))
                try:
                    mailer.send(msg)
                except RecipientRefused as exc:
                    store.mail_failed(mail["mail_id"], str(exc))
                    res.failed.append((mail["mail_id"], str(exc)))
                    continue
                except MailError as exc:
                    store.mail_failed(mail["mail_id"], str(exc))
                    res.failed.append((mail["mail_id"], str(exc)))
                    raise
                at = clock()
                store.mail_sent(mail["mail_id"], at, delivered_events(mail, carried, at))
                res.sent.append(mail["mail_id"])
                if focus and mail["date"] not in focus and mail["date"] not in res.leftover_dates:
                    res.leftover_dates.append(mail["date"])
    except MailError as exc:
        # the server is down or dropped the session: every mail not sent keeps the reason, and stays queued
        tried = {m for m, _ in res.failed}
        for mail_id in unsent["mail_id"]:
            if mail_id not in res.sent and mail_id not in tried:
                store.mail_failed(mail_id, str(exc))
        raise DeliveryError(f"{exc}; {len(res.sent)} mail(s) sent, {len(unsent) - len(res.sent)} left queued "
                            "for the next run") from None
    if res.failed:
        raise DeliveryError(_failure_line(res))
    return res


def _failure_line(res: FlushResult) -> str:
    return (f"{len(res.failed)} mail(s) not sent, left queued for the next run: {res.failed[0][1]}"
            + (f" (and {len(res.failed) - 1} more)" if len(res.failed) > 1 else "")
            + f"; {len(res.sent)} sent")


def deliver(store: Any, out: str | Path, date: str, net: Network, smtp: SmtpSettings, *, resend: bool = False,
            params: Params = DEFAULT_PARAMS, now: Any = None) -> dict[str, Any]:
    """The night's delivery: queue what is new for ``date`` (everything with ``resend``), then send every
    unsent mail (other nights' left-overs too). Returns a summary; DeliveryError if anything stays unsent."""
    stamp = None if now is None else pd.Timestamp(now)
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize(TIMEZONE)
    queued = queue_night(store, date, net, resend=resend, now=stamp)
    res = flush(store, out, net, smtp, params=params, now=stamp, dates=[date])
    return {"date": date, "queued": queued, **res.summary()}
