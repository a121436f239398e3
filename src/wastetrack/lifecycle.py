"""Each lead's life after the night: delivered, answered, escalated, transferred, settled.

Why a fold and not a status column: a lead's standing depends on the ORDER of what happened
(who was routed the lead when a reply came, who filed a case first, whether the reply came
before its deadline), and replies arrive late and out of order (a returned spreadsheet a week
later). So the state is never patched: ``fold`` replays the lead's stored events (deliveries,
reminders, escalations: ``lead_events``) and the liaisons' replies (``feedback``) in time order,
and ``decide`` says what must happen next. Deciding twice records once (event ids are derived
from what they record), so the follow-up can be re-run or run late without repeating itself.

Phases (``LeadState.phase``)::

    new → delivered → received → case_filed → closed
                              ↘ not_established
    any open phase → transferred (移送: the competent county becomes the handler, then
                                  delivered → received → … again; its results are reported back)
    not_established on both sides of a cross-border lead → disputed (the level above both decides)

Rules of the 2023 delta framework agreement on enforcement collaboration:

* 谁先予立案，谁负责处理 — when two counties file a case on one lead, the earlier filing keeps
  it (it becomes the handler); the other is told (a notice).
* 移送 — ``transferred`` with ``to_adcode``: only the handler may transfer; the competent county's
  liaison becomes the handler; its filing, verdict and closure are reported back to the sender.
* 委托调查取证 — ``assist_requested`` with ``to_adcode`` opens an entrusted investigation with a
  deadline (``Params.assist_due_workdays``), escalated like a lead; ``assist_replied`` (by the
  asked county, ``note`` = the written reply) closes it and the reply is passed to the asker.
* A reply counts only from a liaison the lead was routed to: primary, copies, the rungs it was
  escalated to, the county it was transferred to, a county asked to assist (for its reply).

Deadlines (working days, ``workdays.py``): receipt within ``receipt_due_workdays`` of the
delivery to the handler, a verdict within ``verdict_due_workdays`` of it, closure within
``closure_due_workdays`` of the filing. The follow-up for night N looks at replies up to the end
of N: an obligation whose due date is N or earlier is overdue. The ladder: a reminder to the
handler; ``escalation_step_workdays`` later a copy to the city's liaison; as much later the
province's. Decisions are stamped with the end of the night they were decided for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.network import Network
from wastetrack.workdays import Workdays

PHASES = ("new", "delivered", "received", "case_filed", "not_established", "closed", "transferred", "disputed")
#: phases with nothing left to do
SETTLED = ("not_established", "closed")
STATUS_ZH = {
    "received": "已签收", "case_filed": "已立案", "not_established": "不成立", "closed": "已办结",
    "transferred": "移送", "assist_requested": "委托调查取证", "assist_replied": "协查回复",
}
PHASE_ZH = {
    "new": "待送达", "delivered": "已送达", "received": "已签收", "case_filed": "已立案",
    "not_established": "不成立", "closed": "已办结", "transferred": "已移送", "disputed": "争议提级",
}
OBLIGATION_ZH = {"receipt": "签收", "verdict": "核查结论（立案或不成立）", "closure": "办结",
                 "dispute": "争议裁定", "assist": "协查回复"}
ROLE_ZH = {"primary": "主办", "cc": "抄送", "city": "提级督办（市级）", "province": "提级督办（省级）",
           "transfer": "移送主办", "assist": "委托调查取证", "dispute": "争议裁定", "notice": "通报",
           "reminder": "主办（催办）", "escalation": "提级督办"}


def role_zh(role: str) -> str:
    """Chinese for a mail_leads role ("reminder:receipt:LN-1#1|notice:…" → 主办（催办）; "assist2" → 委托调查取证)."""
    base = str(role).split("|")[0].split(":")[0].rstrip("0123456789")
    return ROLE_ZH.get(base, base)


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    t = pd.Timestamp(value)
    return t.tz_localize(TIMEZONE) if t.tzinfo is None else t.tz_convert(TIMEZONE)


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value).strip()


def night_end(night: str) -> pd.Timestamp:
    """The moment a follow-up for ``night`` looks from: the end of that local day."""
    return pd.Timestamp(night, tz=TIMEZONE) + pd.Timedelta(days=1)


def event_id(*parts: object) -> str:
    """Stable, short id of a decision or a recorded fact (so recording it twice records it once)."""
    return "E-" + hashlib.sha1("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:20]


@dataclass
class Reply:
    lead_id: str
    liaison_id: str
    at: pd.Timestamp
    status: str
    case_no: str = ""
    penalty_cny: float | None = None
    note: str = ""
    to_adcode: str = ""

    @property
    def key(self) -> str:
        return f"{self.liaison_id}|{self.at.isoformat()}|{self.status}"


@dataclass
class Assist:
    """One entrusted investigation (委托调查取证), tracked like a lead: it has a handler and a deadline."""

    n: int
    by: str                      # the asking liaison
    by_adcode: str
    to_adcode: str
    to: str                      # the asked county's liaison
    at: pd.Timestamp
    replied_at: pd.Timestamp | None = None
    reply: str = ""


@dataclass
class LeadState:
    lead_id: str
    night: str
    kind: str
    cross_border: bool
    county_adcode: str
    origin_county_adcode: str
    carrier_id: str
    primary: str
    phase: str = "new"
    handler: str = ""
    handler_since: pd.Timestamp | None = None
    routed: dict[str, str] = field(default_factory=dict)          # liaison → role
    delivered: dict[str, pd.Timestamp] = field(default_factory=dict)  # liaison → first delivery
    received_at: pd.Timestamp | None = None
    verdict_at: pd.Timestamp | None = None
    filed_at: pd.Timestamp | None = None
    closed_at: pd.Timestamp | None = None
    case_no: str = ""
    penalty_cny: float | None = None
    filings: list[tuple[pd.Timestamp, str, str]] = field(default_factory=list)  # (at, liaison, case_no)
    verdicts: dict[str, str] = field(default_factory=dict)       # liaison → its latest verdict
    transferred_from: list[str] = field(default_factory=list)
    assists: list[Assist] = field(default_factory=list)
    referees: list[str] = field(default_factory=list)
    dispute_at: pd.Timestamp | None = None
    rungs: dict[str, int] = field(default_factory=dict)          # obligation key → rungs recorded
    accepted: list[Reply] = field(default_factory=list)
    rejected: list[tuple[Reply, str]] = field(default_factory=list)

    def handler_delivered(self) -> pd.Timestamp | None:
        """When the current handler got the lead (its first delivery since it became the handler)."""
        got = self.delivered.get(self.handler)
        if got is None:
            return None
        return max(got, self.handler_since) if self.handler_since is not None else got

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("accepted")
        d["rejected"] = [{"liaison_id": r.liaison_id, "at": r.at, "status": r.status, "reason": why}
                         for r, why in self.rejected]
        return d


@dataclass
class Obligation:
    """What the handler (or an asked county) owes, and by when."""

    key: str          # e.g. "receipt:LN-320583-01"
    kind: str         # receipt, verdict, closure, dispute, assist
    liaison: str      # who owes it
    due: date


# --- the fold -------------------------------------------------------------------------------------------

def new_state(lead: Mapping[str, Any]) -> LeadState:
    primary = _text(lead.get("primary_liaison_id"))
    cc = lead.get("cc_liaison_ids")
    st = LeadState(
        lead_id=_text(lead["lead_id"]), night=_text(lead.get("date")), kind=_text(lead.get("kind")),
        cross_border=bool(lead.get("cross_border")) if not pd.isna(lead.get("cross_border")) else False,
        county_adcode=_text(lead.get("county_adcode")), origin_county_adcode=_text(lead.get("origin_county_adcode")),
        carrier_id=_text(lead.get("carrier_id")), primary=primary, handler=primary,
    )
    if primary:
        st.routed[primary] = "primary"
    for c in list(cc) if isinstance(cc, (list, tuple)) else []:
        if c and c not in st.routed:
            st.routed[str(c)] = "cc"
    return st


def _apply_event(st: LeadState, ev: Mapping[str, Any]) -> None:
    """A recorded delivery or decision (``lead_events``, source mail/escalate)."""
    kind, who, at, ref = ev["event"], _text(ev.get("liaison_id")), ev["at"], _text(ev.get("ref"))
    if kind == "delivered":
        st.delivered.setdefault(who, at)
        if st.phase == "new" and who == st.handler:
            st.phase = "delivered"
    elif kind in ("reminded", "escalated"):
        obligation, _, rung = ref.partition("#")
        if obligation == "dispute":
            if who and who not in st.referees:
                st.referees.append(who)
            st.routed.setdefault(who, "dispute")
            if st.phase == "not_established":
                st.phase, st.dispute_at = "disputed", at
                st.handler, st.handler_since = st.referees[0], at
            return
        if rung.isdigit():
            st.rungs[obligation] = max(st.rungs.get(obligation, 0), int(rung))
        if kind == "escalated" and who:
            st.routed.setdefault(who, "city" if int(rung or 0) == 2 else "province")


def _reject(st: LeadState, r: Reply, why: str) -> None:
    st.rejected.append((r, why))


def _apply_reply(st: LeadState, r: Reply, net: Network) -> None:
    """One liaison reply, if it may count (see the module doc); else it is set aside with the reason."""
    asked = [a for a in st.assists if a.to == r.liaison_id and a.replied_at is None]
    if r.status == "assist_replied":
        if not asked:
            return _reject(st, r, f"联络员 {r.liaison_id} 没有待回复的委托调查取证"
                                  "（assist_replied 只能由被委托方回复）")
        a = next((a for a in asked if not r.to_adcode or a.by_adcode == r.to_adcode[:6]), asked[0])
        a.replied_at, a.reply = r.at, r.note
        st.accepted.append(r)
        return None
    if r.liaison_id not in st.routed:
        return _reject(st, r, f"线索未送达联络员 {r.liaison_id}（既非主办、抄送，也非提级、移送、协查或争议裁定对象）")
    if r.status == "transferred":
        if r.liaison_id != st.handler:
            return _reject(st, r, f"只有当前主办（{st.handler}）可以移送")
        target = net.resolve(r.to_adcode)
        if not target:
            return _reject(st, r, f"移送对象 {r.to_adcode} 无在岗联络员")
        if target == st.handler:
            return _reject(st, r, f"移送对象 {r.to_adcode} 即当前主办")
        st.transferred_from.append(r.liaison_id)
        st.handler, st.handler_since, st.phase = target, r.at, "transferred"
        st.routed[target] = "transfer"
        st.received_at = st.verdict_at = None
        if target in st.delivered:  # it had the lead already (a copy): it holds it from now
            st.phase = "delivered"
    elif r.status == "assist_requested":
        target = net.resolve(r.to_adcode)
        if not target or target == r.liaison_id:
            return _reject(st, r, f"委托调查取证对象 {r.to_adcode} 无在岗联络员")
        st.assists.append(Assist(len(st.assists) + 1, r.liaison_id, net.adcode(r.liaison_id), r.to_adcode[:6],
                                 target, r.at))
        st.routed.setdefault(target, "assist")
    elif r.status == "received":
        if r.liaison_id == st.handler and st.phase in ("new", "delivered", "transferred"):
            st.phase, st.received_at = "received", r.at
    elif r.status == "case_filed":
        st.filings.append((r.at, r.liaison_id, r.case_no))
        first = min(st.filings, key=lambda f: (f[0], f[1]))
        if first[1] != st.handler:
            st.handler, st.handler_since = first[1], first[0]
        st.filed_at, st.case_no = first[0], first[2] or st.case_no
        st.case_no = next((f[2] for f in sorted(st.filings) if f[1] == first[1] and f[2]), st.case_no)
        st.verdict_at = st.verdict_at or r.at
        st.received_at = st.received_at or r.at
        if r.penalty_cny is not None and r.liaison_id == first[1]:
            st.penalty_cny = r.penalty_cny
        if st.phase != "closed":
            st.phase = "case_filed"
    elif r.status == "not_established":
        st.verdicts[r.liaison_id] = "not_established"
        if r.liaison_id == st.handler and not st.filings:
            st.phase, st.verdict_at = "not_established", r.at
            st.received_at = st.received_at or r.at
    elif r.status == "closed":
        if r.liaison_id != st.handler:
            return _reject(st, r, f"按“谁先予立案，谁负责处理”，本线索由 {st.handler} 办结")
        st.phase, st.closed_at = "closed", r.at
        st.case_no = r.case_no or st.case_no
        if r.penalty_cny is not None:
            st.penalty_cny = r.penalty_cny
        st.verdict_at = st.verdict_at or r.at
        st.received_at = st.received_at or r.at
    st.accepted.append(r)
    return None


def replies_of(feedback: pd.DataFrame) -> list[Reply]:
    """``feedback`` rows as replies (v1 frames without ``to_adcode`` too)."""
    out = []
    for r in feedback.to_dict("records"):
        pen = r.get("penalty_cny")
        out.append(Reply(_text(r["lead_id"]), _text(r["liaison_id"]), _ts(r["at"]), _text(r["status"]),
                         _text(r.get("case_no")), None if pen is None or pd.isna(pen) else float(pen),
                         _text(r.get("note")), _text(r.get("to_adcode"))))
    return out


def fold(leads: pd.DataFrame, events: pd.DataFrame, feedback: pd.DataFrame, net: Network,
         as_of: pd.Timestamp | None = None) -> dict[str, LeadState]:
    """Every lead's state from its recorded events and replies before ``as_of`` (None: all).

    ``leads``: the stored leads (latest night per lead wins); ``events``: ``lead_events``;
    ``feedback``: the stored replies. Events and replies of one moment: recorded events first
    (a reply in the same second as its delivery came after it).
    """
    latest = leads.sort_values(["lead_id", "date"]).drop_duplicates("lead_id", keep="last") if len(leads) else leads
    states = {str(r["lead_id"]): new_state(r) for r in latest.to_dict("records")}
    timeline: dict[str, list[tuple[pd.Timestamp, int, Any]]] = {k: [] for k in states}
    for ev in events.to_dict("records") if len(events) else []:
        lid = str(ev["lead_id"])
        if lid in timeline and ev["event"] in ("delivered", "reminded", "escalated"):
            ev = {**ev, "at": _ts(ev["at"])}
            timeline[lid].append((ev["at"], 0, ev))
    for r in replies_of(feedback) if len(feedback) else []:
        if r.lead_id in timeline:
            timeline[r.lead_id].append((r.at, 1, r))
    for lid, items in timeline.items():
        st = states[lid]
        for at, order, item in sorted(items, key=lambda x: (x[0], x[1], str(getattr(x[2], "key", "")))):
            if as_of is not None and at >= as_of:
                continue
            if order == 0:
                _apply_event(st, item)
            else:
                _apply_reply(st, item, net)
    return states


def unknown_lead_replies(feedback: pd.DataFrame, lead_ids: Iterable[str]) -> pd.DataFrame:
    known = set(lead_ids)
    return feedback[~feedback["lead_id"].isin(known)] if len(feedback) else feedback


# --- deadlines and decisions ----------------------------------------------------------------------------

def obligations(st: LeadState, params: Params, wd: Workdays) -> list[Obligation]:
    """What is owed on this lead now, with due dates (the handler's one obligation, plus open assists)."""
    out: list[Obligation] = []
    got = st.handler_delivered()
    if st.phase in ("delivered", "transferred") and got is not None:
        out.append(Obligation(f"receipt:{st.handler}", "receipt", st.handler,
                              wd.add(got.date(), params.receipt_due_workdays)))
    elif st.phase == "received" and got is not None:
        out.append(Obligation(f"verdict:{st.handler}", "verdict", st.handler,
                              wd.add(got.date(), params.verdict_due_workdays)))
    elif st.phase == "case_filed" and st.filed_at is not None:
        out.append(Obligation(f"closure:{st.handler}", "closure", st.handler,
                              wd.add(st.filed_at.date(), params.closure_due_workdays)))
    elif st.phase == "disputed" and st.dispute_at is not None:
        out.append(Obligation(f"dispute:{st.handler}", "dispute", st.handler,
                              wd.add(st.dispute_at.date(), params.verdict_due_workdays)))
    for a in st.assists if st.phase not in SETTLED else []:  # a settled lead chases no evidence any more
        if a.replied_at is None:
            start = max(st.delivered.get(a.to, a.at), a.at)
            out.append(Obligation(f"assist{a.n}:{a.to}", "assist", a.to,
                                  wd.add(start.date(), params.assist_due_workdays)))
    return out


@dataclass
class Notice:
    """A mail a decision needs: to ``liaison``, about ``lead_id``, as ``role`` (its dedupe key), why ``note``."""

    lead_id: str
    liaison: str
    purpose: str    # reminder, escalation, dispute, transfer, assist, notice
    role: str       # the mail_leads role: "transfer", "assist2", "notice:first_filed", "reminder:receipt:…#1"
    note: str


@dataclass
class Decisions:
    events: list[dict] = field(default_factory=list)
    mails: list[Notice] = field(default_factory=list)


def _event(lead_id: str, at: pd.Timestamp, event: str, liaison: str, detail: str, source: str, ref: str,
           adcode: str = "") -> dict:
    return {"event_id": event_id(lead_id, source, event, ref, liaison), "lead_id": lead_id, "at": at,
            "event": event, "liaison_id": liaison, "adcode": adcode, "detail": detail, "source": source, "ref": ref}


def decide(st: LeadState, night: str, net: Network, params: Params = DEFAULT_PARAMS,
           wd: Workdays | None = None) -> Decisions:
    """What the follow-up for ``night`` must do about one lead: reminders, escalations, the dispute rule,
    mails for new routes (transfer, assist, referees) and notices. May repeat past decisions: the caller
    records only what is new (by event id, and by mail role per lead and liaison)."""
    wd = wd or Workdays(params)
    today = date.fromisoformat(night)
    at = night_end(night)
    out = Decisions()
    lid = st.lead_id
    # the ladder: reminder to whoever owes it, then the city's liaison, then the province's
    for ob in obligations(st, params, wd):
        if today < ob.due:
            continue
        ladder = [ob.liaison, *net.above(ob.liaison)]
        for rung, target in enumerate(ladder, start=1):
            when = wd.add(ob.due, (rung - 1) * params.escalation_step_workdays)
            if today < when:
                break
            what = OBLIGATION_ZH[ob.kind]
            ref = f"{ob.key}#{rung}"
            if rung == 1:
                detail = f"逾期未{what}（应于 {ob.due.isoformat()} 前），已催办 {net.label(target)}"
                out.events.append(_event(lid, at, "reminded", target, detail, "escalate", ref))
                out.mails.append(Notice(lid, target, "reminder", f"reminder:{ref}",
                                        f"线索逾期未{what}（应于 {ob.due.isoformat()} 前），请尽快办理并回复。"))
            else:
                detail = (f"{net.label(ob.liaison)} 逾期未{what}（应于 {ob.due.isoformat()} 前），"
                          f"已提级抄送 {net.label(target)} 督办")
                out.events.append(_event(lid, at, "escalated", target, detail, "escalate", ref, net.adcode(target)))
                out.mails.append(Notice(lid, target, "escalation", f"escalation:{ref}",
                                        f"{net.label(ob.liaison)} 逾期未{what}（应于 {ob.due.isoformat()} 前），"
                                        "请督促办理。"))
    # a dispute: both counties of a cross-border lead say not established, nobody filed
    origin = net.resolve(st.origin_county_adcode)
    if (st.cross_border and st.phase == "not_established" and not st.filings and origin and origin != st.primary
            and st.verdicts.get(st.primary) == "not_established" and st.verdicts.get(origin) == "not_established"
            and not st.referees):
        referees = [r for r in net.common_above([st.county_adcode, st.origin_county_adcode])
                    if r not in (st.primary, origin)]
        for ref_lid in referees:
            detail = (f"{net.label(st.primary)} 与 {net.label(origin)} 均答复不成立，"
                      f"提请上级 {net.label(ref_lid)} 裁定")
            out.events.append(_event(lid, at, "escalated", ref_lid, detail, "escalate", "dispute",
                                     net.adcode(ref_lid)))
            out.mails.append(Notice(lid, ref_lid, "dispute", "dispute",
                                    "跨界线索两地均答复不成立，按协作协议提请上级裁定；可立案，或指定管辖（移送）。"))
    # mails for new routes: the county a lead was transferred to, a county asked to assist
    if st.phase in ("transferred", "delivered") and st.routed.get(st.handler) == "transfer" and st.transferred_from:
        out.mails.append(Notice(lid, st.handler, "transfer", f"transfer:{st.transferred_from[-1]}",
                                f"{net.label(st.transferred_from[-1])} 将本线索移送贵单位主办，请签收并办理，"
                                "立案、办理及办结情况将通报移送方。"))
    for a in st.assists:
        out.mails.append(Notice(lid, a.to, "assist", f"assist{a.n}",
                                f"{net.label(a.by)} 委托贵单位调查取证，请于期限内书面回复（回复表状态填“协查回复”，"
                                "说明栏填写书面回复）。"))
        if a.replied_at is not None:
            out.mails.append(Notice(lid, a.by, "notice", f"notice:assist{a.n}",
                                    f"{net.label(a.to)} 协查回复：{a.reply or '（无文字）'}"))
    # first to file handles: the other filers are told
    filers = list(dict.fromkeys(f[1] for f in sorted(st.filings)))
    for other in filers[1:]:
        out.mails.append(Notice(lid, other, "notice", f"notice:first_filed:{filers[0]}",
                                f"本线索已由 {net.label(filers[0])} 于 {min(st.filings)[0]:%Y-%m-%d %H:%M} 先行立案，"
                                "按“谁先予立案，谁负责处理”由其负责处理；请勿重复立案，相关材料请移交。"))
    # a transfer is reported back: the new handler's filing, verdict, closure
    if st.transferred_from and st.phase in ("case_filed", "not_established", "closed"):
        for sender in dict.fromkeys(st.transferred_from):
            if sender == st.handler:
                continue
            out.mails.append(Notice(lid, sender, "notice", f"notice:report_back:{st.phase}",
                                    f"贵单位移送的线索已由 {net.label(st.handler)} {PHASE_ZH[st.phase]}"
                                    + (f"（立案编号 {st.case_no}）" if st.case_no else "") + "。"))
    return out


# --- rows for the store ---------------------------------------------------------------------------------

def reply_events(st: LeadState, net: Network) -> list[dict]:
    """The accepted replies of a lead as ``lead_events`` rows (for the sheet's 处理记录)."""
    rows = []
    for r in st.accepted:
        parts = []
        if r.case_no:
            parts.append(f"立案编号 {r.case_no}")
        if r.penalty_cny is not None:
            parts.append(f"罚款 {r.penalty_cny:,.0f} 元")
        if r.to_adcode:
            parts.append(("移送至 " if r.status == "transferred" else "委托 " if r.status == "assist_requested"
                          else "回复 ") + net.place(r.to_adcode))
        if r.note:
            parts.append(r.note)
        rows.append(_event(r.lead_id, r.at, r.status, r.liaison_id, "；".join(parts) or STATUS_ZH[r.status],
                           "reply", r.key, r.to_adcode))
    return rows


def state_rows(states: Mapping[str, LeadState], night: str, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """``lead_state`` rows (one per lead) as of the follow-up for ``night``."""
    wd = Workdays(params)
    today = date.fromisoformat(night)
    rows = []
    for st in states.values():
        obs = obligations(st, params, wd)
        main = next((o for o in obs if o.kind != "assist"), obs[0] if obs else None)
        rows.append({
            "lead_id": st.lead_id, "phase": st.phase, "handler_liaison_id": st.handler,
            "handler_adcode": "", "case_no": st.case_no or None, "penalty_cny": st.penalty_cny,
            "delivered_at": st.handler_delivered(), "received_at": st.received_at, "verdict_at": st.verdict_at,
            "filed_at": st.filed_at, "closed_at": st.closed_at,
            "due_date": main.due.isoformat() if main else None,
            "overdue": bool(main and today >= main.due),
            "escalation": st.rungs.get(main.key, 0) if main else 0,
            "state": st.as_json(), "updated_at": night_end(night),
        })
    cols = ["lead_id", "phase", "handler_liaison_id", "handler_adcode", "case_no", "penalty_cny", "delivered_at",
            "received_at", "verdict_at", "filed_at", "closed_at", "due_date", "overdue", "escalation", "state",
            "updated_at"]
    return pd.DataFrame(rows, columns=cols)


def history_for(store: Any, lead_ids: Iterable[str], net: Network | None = None) -> dict[str, list[dict]]:
    """``SheetContext.history`` for these leads from the store: {lead_id: [{at, event, actor, detail}]}.

    Call it where a night's sheets are built (``pipeline.sheet_context``) with the store and the
    night's lead ids; ``net`` turns liaison ids into "name（unit）".
    """
    ids = set(map(str, lead_ids))
    events = store.read("lead_events")
    out: dict[str, list[dict]] = {}
    if events.empty or not ids:
        return out
    events = events[events["lead_id"].isin(ids)].sort_values(["at", "event_id"])
    for r in events.to_dict("records"):
        who = _text(r.get("liaison_id"))
        out.setdefault(r["lead_id"], []).append({
            "at": r["at"], "event": r["event"], "actor": net.label(who) if net and who else (who or "—"),
            "detail": _text(r.get("detail")),
        })
    return out


#: where a night's work directory keeps the sheets' history (see ``write_night_history``)
HISTORY_FILE = "history.json"


def write_night_history(work_dir: str | Path, store: Any, lead_ids: Iterable[str],
                        landing: str | Path | None = None) -> int:
    """Save ``history_for`` the night's leads in its work directory, for the processes that render sheets
    (they have no store). Call it where the night holds the store (``pipeline.merge_step``), and give
    ``read_night_history(work)`` as ``SheetContext(history=…)`` in ``pipeline.sheet_context``. Returns the
    number of leads with a history."""
    net = Network.from_landing(landing) if landing and (Path(landing) / "reference" / "liaisons.csv").is_file() \
        else None
    hist = history_for(store, lead_ids, net)
    plain = {lid: [{**e, "at": pd.Timestamp(e["at"]).isoformat()} for e in events] for lid, events in hist.items()}
    Path(work_dir, HISTORY_FILE).write_text(json.dumps(plain, ensure_ascii=False), encoding="utf-8")
    return len(plain)


def read_night_history(work_dir: str | Path) -> dict[str, list[dict]]:
    """The history ``write_night_history`` saved ({} when there is none)."""
    path = Path(work_dir, HISTORY_FILE)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
