"""The 事实 list of a lead sheet: short sentences, each with the claims it makes, built only from data.

A liaison who finds one false fact on a sheet stops trusting all of them, so
every sentence here says only what a record says, and each carries its claims
in machine-readable form (``Fact.claims``) so a test — or an auditor — can
check it against leads.geojson, the store and the landing files:

``vehicle_id``
    the plate the sentence is about.
``times``
    {name: ISO time} the sentence states (start, end, depart, gap_start, gap_end,
    observed_from, observed_to, candidate_at).
``sites`` / ``adcodes``
    {role: id} for the places it names (unload, origin, manifest_dest,
    nearest_receiver / event_county, origin_county, event_province, origin_province).
``manifest_id`` / ``no_manifest`` / ``manifest_unverified``
    the manifest it asserts belongs to the haul; or that the run matched none
    (with ``vehicle_manifests``: [[id, status], ...] of the vehicle on
    ``manifest_days``); or that it was not checked. Never "no manifest" unless
    the data says so.
``loaded_before`` / ``loaded_after`` / ``tipping``
    sensor readings it states (None = stated as "no data").
``gap``
    [start, end] of the silence it states.
``figures``
    ids of the drawn map elements it refers to (``"fig1:reach-circle"``): a
    sentence refers to a figure element only when that element was drawn.
``minutes`` / ``distances_m``
    the figures it states, before rounding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from wastetrack.sheets.context import SheetContext, normalise_plate
from wastetrack.sheets.labels import (
    KIND_LABELS,
    MANIFEST_STATUS_LABELS,
    RECEIVER_PROBLEM_LABELS,
    SITE_KIND_LABELS,
    UNLOAD_EVIDENCE_LABELS,
    WASTE_TYPE_LABELS,
    as_bool,
    as_dict,
    as_float,
    as_list,
    as_local_ts,
    fmt_clock,
    fmt_distance,
    fmt_minutes,
    fmt_number,
    is_missing,
    label,
    sensor_label,
    text,
)
from wastetrack.sheets.track import LeadTimes, lead_times


@dataclass(frozen=True)
class Fact:
    """One sentence of the 事实 list and the claims it makes (see the module docstring for the keys)."""

    text: str
    topic: str
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text

    def claims_json(self) -> str:
        """The claims as compact JSON (written into the sheet as ``data-claims``)."""
        return json.dumps(self.claims, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def iso(ts: pd.Timestamp | None) -> str | None:
    """Local ISO time to the second, the form claims use."""
    return None if ts is None else ts.isoformat(timespec="seconds")


def site_name(ctx: SheetContext, site_id: object) -> str:
    """「name」 plus the id, as people and platforms each know sites by one of them."""
    sid = text(site_id)
    if not sid:
        return "—"
    site = ctx.site(sid)
    name = text(site.get("name")) if site else ""
    return f"「{name}」（{sid}）" if name else f"{sid}（未在场所名录中）"


def site_kind(ctx: SheetContext, site_id: object) -> str:
    site = ctx.site(site_id)
    return label(SITE_KIND_LABELS, site.get("kind")) if site else ""


def _date_of(ts: pd.Timestamp | None) -> pd.Timestamp | None:
    return None if ts is None else pd.Timestamp(ts.date())


def permit_valid_on(site: Mapping[str, Any], day: pd.Timestamp | None) -> bool | None:
    """Both days inclusive, compared with the local date (the contract's rule); None when unknown."""
    if day is None:
        return None
    vf, vt = site.get("valid_from"), site.get("valid_to")
    try:
        f = None if is_missing(vf) else pd.Timestamp(str(vf)[:10])
        t = None if is_missing(vt) else pd.Timestamp(str(vt)[:10])
    except ValueError:
        return None
    if f is None and t is None:
        return None
    return (f is None or day >= f) and (t is None or day <= t)


def day_text(value: object) -> str:
    ts = as_local_ts(value)
    return ts.strftime("%Y-%m-%d") if ts is not None else "—"


# ------------------------------------------------------------------------------------------------ manifest
@dataclass(frozen=True)
class ManifestView:
    """What the data says about the haul's manifest; the facts and section 三 both render this one view.

    ``state``: ``matched`` (the lead names a manifest), ``none_matched`` (the run
    looked and matched none), ``no_haul`` (report trace: no haul of the candidate
    covers the report), ``unverified`` (report trace without the haul look-up).
    """

    state: str
    manifest_id: str
    record: dict | None
    haul_id: str
    vehicle_manifests: list[dict]
    days: list[str]


def manifest_view(lead: Mapping[str, Any], ctx: SheetContext, times: LeadTimes | None = None) -> ManifestView:
    """Decide what may be said about the manifest from the lead alone (see ``ManifestView``).

    A report trace's ``manifest_id`` is meaningful only when the detector looked
    up the candidate's haul (``evidence.haul_id`` present); otherwise an empty id
    means "not checked", never "none". The vehicle's manifests of the days the
    haul touched are listed whenever no manifest is named, so a liaison can check.
    """
    times = times or lead_times(lead)
    ev = as_dict(lead.get("evidence"))
    kind = text(lead.get("kind"))
    mid = text(lead.get("manifest_id"))
    haul = text(ev.get("haul_id")) or text(lead.get("haul_id"))
    if mid:
        state = "matched"
    elif kind == "report_trace" and "haul_id" not in ev:
        state = "unverified"  # the candidate's haul was not looked up: nothing is known about a manifest
    elif kind == "report_trace" and not haul:
        state = "no_haul"
    else:
        state = "none_matched"
    days = sorted({ts.strftime("%Y-%m-%d") for ts in (times.depart, times.start, times.end) if ts is not None})
    vid = text(lead.get("vehicle_id"))
    listed = ctx.vehicle_manifests(vid, set(days)) if vid and state != "matched" else []
    return ManifestView(state, mid, ctx.manifest(mid) if mid else None, haul, listed, days)


def days_text(days: list[str]) -> str:
    """11月19日 / 11月19日至11月20日."""
    if not days:
        return "当日"
    parts = [f"{int(d[5:7])}月{int(d[8:10])}日" for d in (days[0], days[-1])]
    return parts[0] if days[0] == days[-1] else f"{parts[0]}至{parts[1]}"


def _status_counts(records: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        key = label(MANIFEST_STATUS_LABELS, r.get("status"), "状态不详")
        counts[key] = counts.get(key, 0) + 1
    return "、".join(f"{k} {n} 张" for k, n in counts.items())


def _manifest_facts(lead: Mapping[str, Any], ctx: SheetContext, mv: ManifestView, ev: dict) -> list[Fact]:
    kind = text(lead.get("kind"))
    plate = text(lead.get("vehicle_id"), "涉嫌车辆")
    unload_id = text(ev.get("unload_site_id"))
    listed = [[text(r.get("manifest_id")), text(r.get("status"))] for r in mv.vehicle_manifests]
    base = {"vehicle_id": text(lead.get("vehicle_id"))}
    if mv.state == "matched":
        m = mv.record or {}
        waste = text(ev.get("waste_type")) or text(m.get("waste_type"))
        volume = as_float(ev.get("volume_m3"))
        if volume is None:
            volume = as_float(m.get("volume_m3"))
        dest_id = text(ev.get("manifest_dest_site_id")) or text(m.get("dest_site_id"))
        status = text(m.get("status")) or text(ev.get("manifest_status"))
        who = f"首选车辆该趟运输（运次 {mv.haul_id}）的" if kind == "report_trace" and mv.haul_id else ""
        s = f"{who}电子联单 {mv.manifest_id}"
        if status:
            s += f"（{label(MANIFEST_STATUS_LABELS, status)}）"
        if not mv.record:
            s += "，联单系统中未查到该联单详情"
        if dest_id:
            s += f"，申报去向为{site_name(ctx, dest_id)}"
        if waste or volume is not None:
            s += f"，{label(WASTE_TYPE_LABELS, waste, '类别不详')} {fmt_number(volume, 1, '方')}"
        sites = {"manifest_dest": dest_id} if dest_id else {}
        if kind == "diverted" and unload_id and unload_id != dest_id:
            s += f"；实际卸载于{site_name(ctx, unload_id)}，与联单不符"
            sites["unload"] = unload_id
        claims = {**base, "manifest_id": mv.manifest_id, "sites": sites}
        if status:
            claims["manifest_status"] = status
        if mv.haul_id:
            claims["haul_id"] = mv.haul_id
        return [Fact(s + "。", "manifest", claims)]
    when = days_text(mv.days)
    if mv.vehicle_manifests:
        others = (
            f"本夜数据中该车{when}的电子联单 {len(listed)} 张（{_status_counts(mv.vehicle_manifests)}），"
            "见“来源工地与电子联单”中的联单表，请核查"
        )
    else:
        others = f"本夜数据中无该车{when}的电子联单"
    listing = {"vehicle_manifests": listed, "manifest_days": mv.days}
    if mv.state == "none_matched":
        trip = "首选车辆该趟运输" if kind == "report_trace" else "本趟运输"
        haul = f"（运次 {mv.haul_id}）" if mv.haul_id else ""
        claims = {**base, "no_manifest": True, **listing}
        if mv.haul_id:
            claims["haul_id"] = mv.haul_id
        return [Fact(f"{trip}{haul}未匹配到电子联单；{others}。", "manifest", claims)]
    if mv.state == "no_haul":
        return [
            Fact(
                f"未找到首选车辆在举报时段内的运次，电子联单未核实；{others}。",
                "manifest",
                {**base, "manifest_unverified": True, "haul_id": "", **listing},
            )
        ]
    return [
        Fact(
            f"电子联单：未核实（本线索由举报溯源得出，未与{plate}的运次比对）；{others}。",
            "manifest",
            {**base, "manifest_unverified": True, **listing},
        )
    ]


def receiver_facts(
    ctx: SheetContext, site_id: str, ev: Mapping[str, Any], waste: str, day: pd.Timestamp | None
) -> list[Fact]:
    """Why the receiving site may not take this load: the detector's findings, else checked here."""
    site = ctx.site(site_id) or {}
    problems = [text(p) for p in as_list(ev.get("diverted_because")) + as_list(ev.get("receiver_problems"))]
    if not problems and site:
        accepts = [str(a) for a in as_list(site.get("accepts"))]
        if waste and accepts and waste not in accepts:
            problems.append("not_accepted")
        if permit_valid_on(site, day) is False:
            problems.append("permit_invalid")
    name = site_name(ctx, site_id)
    out = []
    claims = {"sites": {"unload": site_id}}
    for p in dict.fromkeys(problems):
        if p == "not_accepted":
            accepts = "、".join(label(WASTE_TYPE_LABELS, a) for a in as_list(site.get("accepts"))) or "—"
            out.append(
                Fact(
                    f"{name}核准接收{accepts}，不接收{label(WASTE_TYPE_LABELS, waste, '此类垃圾')}。",
                    "receiver",
                    {**claims, "problem": p, "waste_type": waste},
                )
            )
        elif p == "permit_invalid":
            out.append(
                Fact(
                    f"{name}处置核准有效期为 {day_text(site.get('valid_from'))} 至 "
                    f"{day_text(site.get('valid_to'))}，卸载当日不在有效期内。",
                    "receiver",
                    {**claims, "problem": p},
                )
            )
        elif p == "not_a_receiver":
            out.append(Fact(f"{name}不是核准消纳场所。", "receiver", {**claims, "problem": p}))
        elif p and p != "wrong_receiver":  # wrong_receiver is said with the manifest
            out.append(Fact(f"{name}：{label(RECEIVER_PROBLEM_LABELS, p)}。", "receiver", {**claims, "problem": p}))
    return out


# ------------------------------------------------------------------------------------------------ all facts
#: why a track gap's point is where it is (``evidence.placement.method``, ``wastetrack.gaps``): an officer
#: searching the ground needs to know whether the point is where the truck stopped or only a likeliest place
_PLACED_BY: dict[str, str] = {
    "stood_going_dark": "（车辆在该处减速停靠后定位中断）",
    "went_dark_here": "（车辆在该处定位中断；驾驶员常在到达倾倒点时关闭终端，须结合可达范围排查）",
    "stood_there": "（定位中断前后车辆均停在该处）",
    "known_spot": "（可达范围内有举报或以往发现的倾倒点）",
    "course_and_time": "（按中断时长、车速与进出方向推算的最可能位置）",
}


def _sensor_word(value: object, unknown: str = "无数据") -> str:
    return sensor_label(value, "重车", "空车", unknown)


def _bool_claim(value: object) -> bool | None:
    return as_bool(value)


def lead_facts(
    lead: Mapping[str, Any],
    ctx: SheetContext,
    figures: Mapping[str, str] | None = None,
    *,
    times: LeadTimes | None = None,
) -> list[Fact]:
    """The 事实 list: short sentences built from the evidence, each with its claims (``Fact``).

    Only what the data says: a missing sensor reads "无数据", never "否"; a
    manifest never looked up reads "未核实", never "无联单". ``figures`` maps the
    map elements that were drawn (``"reach-circle"``) to their figure ("图1");
    a sentence points to a figure element only when it is in there.
    """
    figures = figures or {}
    ev = as_dict(lead.get("evidence"))
    kind = text(lead.get("kind"))
    times = times or lead_times(lead)
    start, end, ref = times.start, times.end, times.start
    vid = text(lead.get("vehicle_id"))
    plate = vid or "涉嫌车辆"
    county = text(lead.get("county_adcode"))
    place = ctx.place(county)
    facts: list[Fact] = []

    unload_id = text(ev.get("unload_site_id"))
    dwell = as_float(ev.get("dwell_min"))
    if dwell is None and start is not None and end is not None and kind != "track_gap":
        dwell = (end - start).total_seconds() / 60.0
    if kind in ("illegal_dump", "diverted", "unmanifested") or (kind not in KIND_LABELS and start is not None):
        if unload_id:
            where = f"{site_kind(ctx, unload_id) or '场所'}{site_name(ctx, unload_id)}"
            places: dict[str, Any] = {"sites": {"unload": unload_id}}
        else:
            noun = "一处非核准消纳场所的地点" if kind == "illegal_dump" else ""
            where = f"{place}{noun}"
            places = {"adcodes": {"event_county": county}}
        when = f"{fmt_clock(start, ref)} 至 {fmt_clock(end, ref)}" if start and end else fmt_clock(start or end)
        facts.append(
            Fact(
                f"{plate} 于 {when} 在{where}停留 {fmt_minutes(dwell)}。",
                "stay",
                {
                    "vehicle_id": vid,
                    "times": {k: iso(v) for k, v in (("start", start), ("end", end)) if v is not None},
                    "minutes": {"dwell": dwell} if dwell is not None else {},
                    **places,
                },
            )
        )
    lb, la = ev.get("loaded_before"), ev.get("loaded_after")
    sensor_keys = [k for k in ("tipping", "loaded_before", "loaded_after") if k in ev]
    if sensor_keys and kind not in ("track_gap", "report_trace"):
        if all(is_missing(ev.get(k)) for k in sensor_keys):
            facts.append(
                Fact(
                    "该车无举升、载重传感器数据。",
                    "sensors",
                    {"tipping": None, "loaded_before": None, "loaded_after": None},
                )
            )
        else:
            if not is_missing(ev.get("tipping")):
                facts.append(
                    Fact(
                        "停留期间"
                        + sensor_label(ev.get("tipping"), "举升传感器触发（车厢举升卸料）。", "举升传感器未触发。"),
                        "sensors",
                        {"tipping": _bool_claim(ev.get("tipping"))},
                    )
                )
            if not (is_missing(lb) and is_missing(la)):
                facts.append(
                    Fact(
                        f"载重传感器：到达时{_sensor_word(lb)}，离开时{_sensor_word(la)}。",
                        "sensors",
                        {"loaded_before": _bool_claim(lb), "loaded_after": _bool_claim(la)},
                    )
                )
    if text(ev.get("unload_evidence")) and kind not in ("track_gap", "report_trace"):
        facts.append(
            Fact(
                f"卸载判定依据：{label(UNLOAD_EVIDENCE_LABELS, ev.get('unload_evidence'))}。",
                "unload_evidence",
                {"unload_evidence": text(ev.get("unload_evidence"))},
            )
        )
    nr_id, nr_m = text(ev.get("nearest_receiver_id")), as_float(ev.get("nearest_receiver_m"))
    if nr_id and kind in ("illegal_dump", "track_gap"):
        facts.append(
            Fact(
                f"距最近的核准消纳场所{site_name(ctx, nr_id)} {fmt_distance(nr_m)}。",
                "nearest_receiver",
                {"sites": {"nearest_receiver": nr_id}, "distances_m": {"nearest_receiver": nr_m}},
            )
        )

    gap = times.gap
    if gap is not None and (kind == "track_gap" or "gap_min" in ev or "gap_start" in ev):
        g0, g1 = gap
        gap_min = (g1 - g0).total_seconds() / 60.0
        s = f"定位终端于 {fmt_clock(g0, ref)} 至 {fmt_clock(g1, ref)} 中断 {fmt_minutes(gap_min)}"
        claims: dict[str, Any] = {"vehicle_id": vid, "gap": [iso(g0), iso(g1)], "minutes": {"gap": gap_min}}
        if not (is_missing(lb) and is_missing(la)):
            s += f"；中断前为{_sensor_word(lb, '载重未知')}，恢复后为{_sensor_word(la, '载重未知')}"
            claims.update(loaded_before=_bool_claim(lb), loaded_after=_bool_claim(la))
        elif "loaded_before" in ev or "loaded_after" in ev:
            s += "；该车无载重传感器数据"
            claims.update(loaded_before=None, loaded_after=None)
        facts.append(Fact(s + "（见关键轨迹点表）。", "gap", claims))
        reach = as_float(ev.get("max_reach_km"))
        if reach is not None:
            fig = figures.get("reach-circle")
            where_drawn = f"（{fig}中以推测卸载点为圆心的虚线圆）" if fig else ""
            facts.append(
                Fact(
                    f"按中断时长推算，中断期间车辆往返最远可达 {fmt_number(reach, 1)} 公里{where_drawn}；"
                    f"推测卸载点位于{place}{_PLACED_BY.get(text((ev.get('placement') or {}).get('method')), '')}。",
                    "reach",
                    {
                        "distances_m": {"max_reach": reach * 1000.0},
                        "figures": [f"{fig_id(fig)}:reach-circle"] if fig else [],
                        "adcodes": {"event_county": county},
                    },
                )
            )

    mv = manifest_view(lead, ctx, times)
    manifest = _manifest_facts(lead, ctx, mv, ev)
    waste = text(ev.get("waste_type")) or (text(mv.record.get("waste_type")) if mv.record else "")
    if unload_id and kind in ("diverted", "unmanifested"):
        manifest.extend(receiver_facts(ctx, unload_id, ev, waste, _date_of(end or start)))
    origin, cross = _origin_facts(lead, ctx, times, ref)
    reports = _report_facts(lead, ctx, ev, ref)
    if kind == "report_trace":  # the report and its candidates first: that is what the lead is about
        facts.extend(reports + origin + manifest + cross)
    else:
        facts.extend(manifest + origin + cross + reports)
    facts.extend(_vehicle_facts(lead, ctx, times))
    return facts


def fig_id(fig: str) -> str:
    """ "图1" → "fig1": the figure part of a claim id."""
    return "fig" + "".join(c for c in fig if c.isdigit())


def _origin_facts(
    lead: Mapping[str, Any], ctx: SheetContext, times: LeadTimes, ref: pd.Timestamp | None
) -> tuple[list[Fact], list[Fact]]:
    """Where the load came from, and (for a cross-border lead) the two provinces."""
    out: list[Fact] = []
    cross: list[Fact] = []
    kind = text(lead.get("kind"))
    origin_id = text(lead.get("origin_site_id"))
    left = times.depart
    if origin_id:
        o_county = text(lead.get("origin_county_adcode")) or text((ctx.site(origin_id) or {}).get("county_adcode"))
        where = f"{site_name(ctx, origin_id)}{'（' + ctx.place(o_county) + '）' if o_county else ''}"
        claims: dict[str, Any] = {"sites": {"origin": origin_id}}
        if o_county:
            claims["adcodes"] = {"origin_county": o_county}
        if left is not None:
            claims["times"] = {"depart": iso(left)}
        if kind == "report_trace":
            when = f"，驶离时间 {fmt_clock(left, ref)}" if left is not None else "，驶离时间未核实"
            s = f"首选车辆在举报时段前最后驶离的工地为{where}{when}。"
        else:
            when = f"于 {fmt_clock(left, ref)} " if left is not None else ""
            s = f"来源：本趟运输{when}驶离工地{where}" + ("" if left is not None else "（驶离时间未记录）") + "。"
        out.append(Fact(s, "origin", claims))
    if as_bool(lead.get("cross_border")) is True:
        o_county = text(lead.get("origin_county_adcode"))
        o_prov_code = o_county[:2] + "0000" if o_county else ""
        p_code = text(lead.get("province_adcode")) or (text(lead.get("county_adcode"))[:2] + "0000")
        o_prov = ctx.place(o_prov_code) if o_prov_code else "外省"
        there = "举报地点" if kind == "report_trace" else "卸载地"
        s = f"跨省：装载地在{o_prov}，{there}在{ctx.place(p_code)}"
        mv_id = text(lead.get("manifest_id"))
        manifest = ctx.manifest(mv_id) if mv_id else None
        claims = {"adcodes": {"origin_province": o_prov_code, "event_province": p_code}}
        if manifest:
            filing = text(manifest.get("cross_region_filing"))
            s += f"，联单跨区域转移备案号 {filing}" if filing else "，联单无跨区域转移备案"
            claims["manifest_id"] = mv_id
        cross.append(Fact(s + "。", "cross_border", claims))
    return out, cross


def _report_facts(lead: Mapping[str, Any], ctx: SheetContext, ev: dict, ref: pd.Timestamp | None) -> list[Fact]:
    out: list[Fact] = []
    kind = text(lead.get("kind"))
    dists = as_dict(ev.get("report_distance_m"))
    for rid in as_list(lead.get("report_ids")):
        rid = text(rid)
        rep = ctx.report(rid) or {}
        addr = text(rep.get("address"))
        d = as_float(dists.get(rid))
        s = f"举报 {rid}" + (f"（{addr}）" if addr else "")
        claims: dict[str, Any] = {"report_ids": [rid]}
        if kind == "report_trace":
            w0, w1 = as_local_ts(rep.get("observed_from")), as_local_ts(rep.get("observed_to"))
            if w0 and w1:
                s += f"，反映偷倒时段 {fmt_clock(w0, ref)} 至 {fmt_clock(w1, ref)}"
                claims["times"] = {"observed_from": iso(w0), "observed_to": iso(w1)}
            out.append(Fact(s + "。", "report", claims))
        else:
            if d is not None:
                claims["distances_m"] = {"report": d}
            out.append(
                Fact(
                    s + (f"地点距卸载点 {fmt_distance(d)}" if d is not None else "与本线索时间地点吻合") + "。",
                    "report",
                    claims,
                )
            )
    if kind != "report_trace":
        return out
    details = [c for c in as_list(ev.get("candidates_detail")) if isinstance(c, Mapping)]
    cands = [text(c) for c in as_list(lead.get("candidates"))]
    n = len(cands) or len(details)
    out.append(
        Fact(
            f"比对举报时段内举报点附近的车辆轨迹，共有 {n} 辆候选车辆（见候选车辆表，按可能性排序）。",
            "candidates",
            {"candidates": cands or [text(c.get("vehicle_id")) for c in details]},
        )
    )
    vid = text(lead.get("vehicle_id"))
    if details:
        top = details[0]
        at = as_local_ts(top.get("at"))
        d = as_float(top.get("distance_m"))
        stood = as_bool(ev.get("top_is_stay"))
        dwell = as_float(top.get("dwell_min"))
        how = f"停留 {fmt_minutes(dwell)}" if stood is not False and dwell else "经过"
        top_vid = text(top.get("vehicle_id"), vid)
        claims = {
            "vehicle_id": top_vid,
            "times": {"candidate_at": iso(at)} if at is not None else {},
            "distances_m": {"candidate": d},
            "minutes": {"dwell": dwell} if dwell else {},
        }
        out.append(
            Fact(
                f"首选车辆 {top_vid} 于 {fmt_clock(at, ref)} 在距举报点 {fmt_distance(d)} 处{how}。",
                "candidates",
                claims,
            )
        )
    if "loaded_before" in ev or "loaded_after" in ev:
        lb, la = ev.get("loaded_before"), ev.get("loaded_after")
        if is_missing(lb) and is_missing(la):
            s = "首选车辆无载重传感器数据，在举报点附近停留前后的载重不详"
        else:
            s = f"载重传感器：首选车辆到达举报点附近时为{_sensor_word(lb)}，离开时为{_sensor_word(la)}"
            if as_bool(lb) is True and as_bool(la) is True:
                s += "（停留前后均为重车）"
        facts_claims = {"vehicle_id": vid, "loaded_before": _bool_claim(lb), "loaded_after": _bool_claim(la)}
        out.append(Fact(s + "。", "load_at_report", facts_claims))
    else:
        out.append(
            Fact(
                "首选车辆在举报点附近停留前后的载重状态：未核实（见关键轨迹点表中的传感器记录）。",
                "load_at_report",
                {"vehicle_id": vid, "load_unverified": True},
            )
        )
    return out


def _vehicle_facts(lead: Mapping[str, Any], ctx: SheetContext, times: LeadTimes) -> list[Fact]:
    vid = text(lead.get("vehicle_id"))
    if not vid:
        return []
    vehicle = ctx.vehicle(vid)
    if ctx.vehicles is not None and vehicle is None:
        return [Fact(f"{vid} 不在渣土运输车辆登记名录中。", "vehicle", {"vehicle_id": vid, "registered": False})]
    if not vehicle:
        return []
    permit_to = as_local_ts(vehicle.get("permit_valid_to"))
    day = _date_of(times.end or times.start)
    if permit_to is not None and day is not None and day > pd.Timestamp(permit_to.date()):
        return [
            Fact(
                f"该车准运证有效期至 {permit_to.strftime('%Y-%m-%d')}，事发时已过期。",
                "vehicle",
                {"vehicle_id": normalise_plate(vid), "permit_valid_to": permit_to.strftime("%Y-%m-%d")},
            )
        ]
    return []
