"""The follow-up of a night: replies recorded, overdue leads escalated, rules applied, mails queued and sent.

``escalate(store, night, …)`` folds every lead reported up to ``night`` with its events and
replies as of the end of that night (``lifecycle.fold``), records the accepted replies as lead
events, asks ``lifecycle.decide`` what is due (reminders, copies to the city and the province,
a disputed lead to the level above both counties, mails to a county a lead was transferred to
or asked to assist, notices) and records only what is new: events by id, mails by (lead,
liaison, role). Decisions and their mails are queued in one transaction; ``delivery.flush``
sends them. ``lead_state`` is then rewritten from the fold, decisions included.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.delivery import MAIL_LEAD_COLUMNS, PURPOSE_ZH, mail_frame, new_mail
from wastetrack.lifecycle import Notice, decide, fold, night_end, reply_events, state_rows
from wastetrack.network import Network
from wastetrack.replies import Q_COLUMNS
from wastetrack.workdays import Workdays


def _mail_id(purpose: str, night: str, liaison: str, notices: list[Notice]) -> str:
    digest = hashlib.sha1("\x1f".join(sorted(f"{n.lead_id}|{n.role}" for n in notices)).encode()).hexdigest()[:8]
    return f"{purpose[0].upper()}-{night}-{liaison}-{digest}"


def escalate(store: Any, night: str, net: Network, params: Params = DEFAULT_PARAMS) -> dict[str, Any]:
    """Decide and queue the follow-up of ``night`` (see the module doc); returns counts by decision."""
    as_of = night_end(night)
    leads = store.read("leads")
    leads = leads[leads["date"] <= night]
    events, feedback = store.read("lead_events"), store.read("feedback")
    states = fold(leads, events, feedback, net, as_of)
    # replies first: they are facts, recorded whether or not anything else follows
    reply_rows = [e for st in states.values() for e in reply_events(st, net)]
    known_events = set(events["event_id"])
    new_replies = [e for e in reply_rows if e["event_id"] not in known_events]
    if new_replies:
        store.add_events(pd.DataFrame(new_replies))
    q = [{"source": f"feedback {st.lead_id} {r.key}", "row": 0, "lead_id": st.lead_id, "liaison_id": r.liaison_id,
          "reason": why, "imported_at": as_of} for st in states.values() for r, why in st.rejected]
    set_aside = store.quarantine_replies(pd.DataFrame(q, columns=list(Q_COLUMNS))) if q else 0
    # decisions
    wd = Workdays(params)
    mail_leads = store.read("mail_leads")
    mailed = {(lid, who, role) for lid, who, roles in zip(mail_leads["lead_id"], mail_leads["liaison_id"],
                                                          mail_leads["role"], strict=True)
              for role in roles.split("|")}
    new_events: list[dict] = []
    notices: dict[tuple[str, str], list[Notice]] = {}
    for st in states.values():
        d = decide(st, night, net, params, wd)
        new_events += [e for e in d.events if e["event_id"] not in known_events]
        for n in d.mails:
            if (n.lead_id, n.liaison, n.role) not in mailed:
                mailed.add((n.lead_id, n.liaison, n.role))
                notices.setdefault((n.liaison, n.purpose), []).append(n)
    mails, carried = [], []
    for (liaison, purpose), items in sorted(notices.items()):
        mail_id = _mail_id(purpose, night, liaison, items)
        ids = list(dict.fromkeys(n.lead_id for n in items))
        subject = f"【{PURPOSE_ZH[purpose]}】{night} {len(ids)} 条线索"
        note = "\n".join(f"{n.lead_id}：{n.note}" for n in items)
        mails.append(new_mail(mail_id, night, purpose, liaison, net, subject, note, as_of))
        roles: dict[str, list[str]] = {}
        for n in items:  # a mail carries a lead once: several roles of it are joined with "|"
            roles.setdefault(n.lead_id, []).append(n.role)
        carried += [{"mail_id": mail_id, "lead_id": lid, "liaison_id": liaison, "role": "|".join(r)}
                    for lid, r in roles.items()]
    if mails or new_events:
        store.enqueue_mails(mail_frame(mails), pd.DataFrame(carried, columns=list(MAIL_LEAD_COLUMNS)),
                            pd.DataFrame(new_events) if new_events else None)
    # lead_state: the fold again, with the decisions just recorded
    events = store.read("lead_events")
    states = fold(leads, events, feedback, net, as_of + pd.Timedelta(microseconds=1))
    store.replace_lead_state(state_rows(states, night, params))
    counts: dict[str, int] = {}
    for e in new_events:
        key = "dispute" if e["ref"] == "dispute" else e["event"]
        counts[key] = counts.get(key, 0) + 1
    phases: dict[str, int] = {}
    for st in states.values():
        phases[st.phase] = phases.get(st.phase, 0) + 1
    return {"night": night, "leads": len(states), "replies_recorded": len(new_replies), "replies_set_aside": set_aside,
            "reminded": counts.get("reminded", 0), "escalated": counts.get("escalated", 0),
            "disputes": counts.get("dispute", 0), "mails_queued": len(mails), "phases": phases}
