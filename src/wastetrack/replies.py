"""Liaisons' replies: the returned XLSX reply sheets, and which replies may count.

Replies arrive two ways: ``feedback.csv`` in a batch (applied by the nightly run, as the
contract says) and the ``回复表`` sheet of the workbook each liaison was mailed
(``wastetrack replies import FILE.xlsx``). Either way a reply counts only from a liaison the
lead was routed to (or escalated, transferred, or — for ``assist_replied`` — entrusted to):
``lifecycle.fold`` decides, in time order. From a file, anything else is quarantined with the
reason, the file and the row (``reply_quarantine``), and never stored as feedback.

Idempotent: a file is imported once (by its SHA-256), and a reply already stored — same lead,
liaison, status, case number, fine, county and note — is not stored again, whatever its time
(a liaison re-sending an edited sheet repeats the rows it had already sent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.liaison_xlsx import STATUS_OF, read_replies
from wastetrack.lifecycle import fold, reply_events
from wastetrack.models import FEEDBACK_COLUMNS, FEEDBACK_TO_STATUSES
from wastetrack.network import Network

Q_COLUMNS = ("source", "row", "lead_id", "liaison_id", "reason", "imported_at")
REPLY_COLUMNS = (*FEEDBACK_COLUMNS, "to_adcode")
_ADCODE = re.compile(r"^\d{6}$")


class ReplyFileError(ValueError):
    """The file is not a reply workbook (one line naming the file)."""


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # an adcode typed as a number
    return str(v).strip()


def _time(v: Any, default: pd.Timestamp) -> pd.Timestamp | None:
    if v is None or v == "":
        return default
    try:
        t = pd.Timestamp(v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else str(v).strip())
    except (ValueError, TypeError):
        return None
    if pd.isna(t):
        return None
    return t.tz_localize(TIMEZONE) if t.tzinfo is None else t.tz_convert(TIMEZONE)


def _same(r: dict) -> tuple:
    pen = r.get("penalty_cny")
    return (r["lead_id"], r["liaison_id"], r["status"], _text(r.get("case_no")),
            None if pen is None or pd.isna(pen) else round(float(pen), 2), _text(r.get("to_adcode")),
            _text(r.get("note")))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_reply_file(store: Any, path: str | Path, net: Network, *, now: Any = None) -> dict[str, Any]:
    """Import one returned workbook; returns ``{"file", "status", "accepted", "quarantined", "duplicates",
    "problems": [(row, reason)]}``. ReplyFileError when it is not a reply workbook."""
    path = Path(path)
    now = pd.Timestamp(now if now is not None else pd.Timestamp.now(tz=TIMEZONE)).floor("s")
    now = now.tz_localize(TIMEZONE) if now.tzinfo is None else now.tz_convert(TIMEZONE)
    sha = sha256_of(path)
    summary: dict[str, Any] = {"file": path.name, "sha256": sha, "accepted": 0, "quarantined": 0, "duplicates": 0,
                               "problems": []}
    if len(store.read_ids("reply_files", "sha256", [sha])):
        return {**summary, "status": "already imported"}
    try:
        rows = read_replies(path)
    except ValueError as exc:
        raise ReplyFileError(str(exc)) from None
    source = f"{path.name}#{sha[:12]}"
    ids = {_text(r.values.get("lead_id")) for r in rows}
    leads = store.read_ids("leads", "lead_id", ids)
    known = set(leads["lead_id"])
    feedback = store.read_ids("feedback", "lead_id", ids)
    stored = {_same(r) for r in feedback.to_dict("records")}
    candidates: list[dict] = []
    problems: list[tuple[int, str, str, str]] = []   # (row, lead, liaison, reason)
    for r in rows:
        v = r.values
        lead, who = _text(v.get("lead_id")), _text(v.get("liaison_id"))
        status = STATUS_OF.get(_text(v.get("status")).lower()) or STATUS_OF.get(_text(v.get("status")))
        at = _time(v.get("at"), now)
        pen_raw = v.get("penalty_cny")
        why = ""
        try:
            pen = None if pen_raw in (None, "") else float(str(pen_raw).replace(",", ""))
        except ValueError:
            pen, why = None, f"罚款金额 {pen_raw!r} 不是数字"
        to = _text(v.get("to_adcode"))
        if not lead:
            why = "线索编号为空"
        elif lead not in known:
            why = f"线索 {lead} 不存在（或尚未入库）"
        elif not who:
            why = "联络员编号为空"
        elif net.record(who) is None:
            why = f"联络员 {who} 不在联络员名录中"
        elif status is None:
            why = (f"状态 {_text(v.get('status'))!r} 无法识别"
                   "（应为已签收、已立案、不成立、已办结、移送、委托调查取证、协查回复）")
        elif at is None:
            why = f"回复时间 {v.get('at')!r} 无法识别（应为 2026-11-21 09:30）"
        elif pen is not None and pen < 0:
            why = "罚款金额不能为负"
        elif status in FEEDBACK_TO_STATUSES and not _ADCODE.match(to):
            why = f"状态 {status} 需要填写 6 位县区代码（移送/协查县区代码），实为 {to!r}"
        if why:
            problems.append((r.row, lead, who, why))
            continue
        cand = {"lead_id": lead, "liaison_id": who, "at": at, "status": status, "case_no": _text(v.get("case_no")),
                "penalty_cny": pen, "note": _text(v.get("note")), "to_adcode": to or None, "_row": r.row}
        if _same(cand) in stored:
            summary["duplicates"] += 1
            continue
        stored.add(_same(cand))
        candidates.append(cand)
    # who may reply: decided by the lead's history with these replies in it, in time order
    cand_frame = pd.DataFrame(candidates, columns=[*REPLY_COLUMNS, "_row"])
    if len(cand_frame):
        events = store.read_ids("lead_events", "lead_id", ids)
        both = pd.concat([feedback.assign(_row=0), cand_frame], ignore_index=True) if len(feedback) else cand_frame
        states = fold(leads, events, both, net)
        refused = {(r.lead_id, r.key): why for st in states.values() for r, why in st.rejected}
        keep = []
        for c in candidates:
            key = (c["lead_id"], f"{c['liaison_id']}|{c['at'].isoformat()}|{c['status']}")
            if key in refused:
                problems.append((c["_row"], c["lead_id"], c["liaison_id"], refused[key]))
            else:
                keep.append(c)
        cand_frame = pd.DataFrame(keep, columns=[*REPLY_COLUMNS, "_row"])
    quarantine = pd.DataFrame([{"source": source, "row": row, "lead_id": lead or None, "liaison_id": who or None,
                                "reason": why, "imported_at": now} for row, lead, who, why in sorted(problems)],
                              columns=list(Q_COLUMNS))
    file_row = {"sha256": sha, "file_name": path.name, "imported_at": now, "rows_total": len(rows),
                "rows_accepted": len(cand_frame), "rows_quarantined": len(quarantine)}
    store.import_replies(file_row, cand_frame.drop(columns="_row"), quarantine)
    if len(cand_frame):
        sync_replies(store, net, set(cand_frame["lead_id"]))
    summary.update(status="imported", accepted=len(cand_frame), quarantined=len(quarantine),
                   problems=[(row, why) for row, _, _, why in sorted(problems)])
    return summary


def sync_replies(store: Any, net: Network, lead_ids: set[str] | None = None,
                 as_of: pd.Timestamp | None = None) -> dict[str, int]:
    """Record the accepted replies of these leads (all: None) as lead events, and set aside with the reason
    any stored reply that may not count (e.g. a feedback.csv row from a liaison the lead never reached)."""
    if lead_ids is None:
        leads, events, feedback = store.read("leads"), store.read("lead_events"), store.read("feedback")
    else:
        leads = store.read_ids("leads", "lead_id", lead_ids)
        events = store.read_ids("lead_events", "lead_id", lead_ids)
        feedback = store.read_ids("feedback", "lead_id", lead_ids)
    states = fold(leads, events, feedback, net, as_of)
    rows = [e for st in states.values() for e in reply_events(st, net)]
    added = store.add_events(pd.DataFrame(rows)) if rows else 0
    now = pd.Timestamp.now(tz=TIMEZONE).floor("s")
    q = [{"source": f"feedback {st.lead_id} {r.key}", "row": 0, "lead_id": st.lead_id, "liaison_id": r.liaison_id,
          "reason": why, "imported_at": now} for st in states.values() for r, why in st.rejected]
    set_aside = store.quarantine_replies(pd.DataFrame(q, columns=list(Q_COLUMNS))) if q else 0
    return {"reply_events": added, "set_aside": set_aside}
