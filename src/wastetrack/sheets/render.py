"""Lead sheets (线索单): one self-contained Chinese HTML page per lead, and index pages.

A liaison officer must be able to open a case from the sheet alone: the
agreement between the provinces says a lead states WHEN, WHO is suspected, the
FACTS and the EVIDENCE, and who must act. Sheets are opened on government
networks without internet and are printed on A4, so a page loads nothing: CSS
is inline, the map is an inline SVG drawn from the data (``svgmap``), fonts are
the reader's own, and a Content-Security-Policy forbids any fetch or script in
case something slipped through.

The layout lives in Jinja2 templates (``templates/*.html.j2`` and
``sheet.css``) so a province can adapt it without touching Python: put files of
the same names in a directory and point ``SheetContext.template_dir`` (or the
environment variable ``WASTETRACK_SHEET_TEMPLATES``) at it. Python builds a
plain model of each page (``build_sheet``); the templates only lay it out.
Autoescape is on and undefined names are errors, so everything that comes from
inputs — ids, names, and above all the free text of public dumping reports — is
escaped; the maps are the only markup passed through, and they are drawn by our
code with every text escaped.

For the pipeline: ``write_lead_pages`` writes the pages of any subset of the
night's leads (so several processes can each take a chunk), and
``write_index_pages`` the index and liaison pages; ``write_sheets`` does both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd
import shapely
from markupsafe import Markup

from wastetrack.coords import wgs84_to_bd09, wgs84_to_gcj02
from wastetrack.sheets.context import SheetContext, boundary_place_namer, normalise_plate
from wastetrack.sheets.facts import Fact, ManifestView, lead_facts, manifest_view, site_name
from wastetrack.sheets.labels import (
    EVIDENCE_LABELS,
    FEEDBACK_STATUS_HINTS,
    FEEDBACK_STATUS_LABELS,
    HISTORY_EVENT_LABELS,
    KIND_EXPLANATIONS,
    KIND_LABELS,
    LIAISON_LEVEL_LABELS,
    MANIFEST_STATUS_LABELS,
    RECEIVER_PROBLEM_LABELS,
    REPORT_SOURCE_LABELS,
    SCORE_PART_LABELS,
    SITE_KIND_LABELS,
    TIMEZONE,
    UNLOAD_EVIDENCE_LABELS,
    WASTE_TYPE_LABELS,
    as_bool,
    as_dict,
    as_float,
    as_list,
    as_local_ts,
    cn_numeral,
    fmt_clock,
    fmt_datetime,
    fmt_distance,
    fmt_minutes,
    fmt_number,
    fmt_span,
    fmt_span_short,
    label,
    score_level,
    sensor_label,
    text,
)
from wastetrack.sheets.svgmap import MapResult, draw_map
from wastetrack.sheets.track import KeyPoint, Track, clean_track, key_points, lead_times

log = logging.getLogger(__name__)

#: Longest report description shown in full; public free text can be pages long (or a flood).
MAX_DESCRIPTION_CHARS = 600
#: The close-up map is added when the overview is wider than this (the stop is then only a few pixels).
CLOSEUP_WHEN_WIDER_M = 2_500.0
CLOSEUP_EXTENT_M = 1_200.0
#: Forbid every fetch and every script: the page must work, and be safe, on an offline network.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
#: Index and manifest names a lead page may never take.
MANIFEST_NAME = "sheets.json"
_RESERVED_STEMS = ("index", "sheets")
TEMPLATES_ENV = "WASTETRACK_SHEET_TEMPLATES"


# ------------------------------------------------------------------------------------------------ templates
@lru_cache(maxsize=8)
def _environment(template_dir: str | None) -> jinja2.Environment:
    """One compiled template set per process (and per override directory): compiling costs ~50 ms."""
    loaders: list[jinja2.BaseLoader] = []
    if template_dir:
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(jinja2.PackageLoader("wastetrack.sheets", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates do not change during a night: no stat() per page
    )
    env.filters["cn"] = cn_numeral
    return env


def template_env(ctx: SheetContext | None = None) -> jinja2.Environment:
    """The template environment for ``ctx`` (its ``template_dir``, else $WASTETRACK_SHEET_TEMPLATES)."""
    override = getattr(ctx, "template_dir", None) or os.environ.get(TEMPLATES_ENV) or None
    return _environment(str(override) if override else None)


def _render(ctx: SheetContext, name: str, **values: Any) -> str:
    return template_env(ctx).get_template(name).render(csp=Markup(CSP), night_note=text(ctx.night_note), **values)


# ------------------------------------------------------------------------------------------------ file names
def sheet_filename(lead_id: object) -> str:
    """A file name safe on every OS, decided by the id alone (chunks written in parallel agree on it).

    Ids that needed changing, or that would take an index page's name, get a
    short hash so two leads never share a file.
    """
    raw = text(lead_id, "lead")
    safe = re.sub(r"[^\w.\-]", "_", raw).strip("._") or "lead"
    reserved = safe.lower() in _RESERVED_STEMS or safe.lower().startswith("liaison-")
    if safe != raw or reserved:
        safe = f"{'lead-' if reserved else ''}{safe[:80]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return f"{safe}.html"


def liaison_filename(liaison_id: object) -> str:
    raw = text(liaison_id, "liaison")
    safe = re.sub(r"[^\w.\-]", "_", raw).strip("._") or "liaison"
    if safe != raw:
        safe = f"{safe[:80]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return f"liaison-{safe}.html"


def _href(filename: str) -> str:
    return quote(filename)


# ------------------------------------------------------------------------------------------------ the model
@dataclass
class SheetModel:
    """Everything one sheet shows, as plain values; the template lays it out, tests read it.

    ``facts`` are ``Fact`` objects (text and claims); ``figures`` hold the maps
    (``svg`` is markup drawn by ``svgmap``) with the roles of what they show;
    ``track_points`` are the key-track-point rows with their ``role``.
    """

    lead_id: str
    kind: str
    kind_label: str
    cross_border: bool
    score_text: str
    score_level: str
    batch_date: str
    explanation: str
    reason: str
    score_parts: list[tuple[str, str]]
    time_span: str
    place: str
    county_adcode: str
    coords: dict[str, tuple[str, str]] | None
    vehicle_title: str
    plate: str
    vehicle_rows: list[tuple[str, str]]
    carrier_rows: list[tuple[str, str]]
    origin_title: str
    origin_rows: list[tuple[str, str]] | None
    manifest: dict[str, Any]
    facts: list[Fact]
    figures: list[dict[str, Any]]
    track_points: list[dict[str, Any]]
    key_points: list[KeyPoint]
    candidates: list[dict[str, str]]
    raw_evidence: list[tuple[str, str]]
    reports: list[dict[str, Any]]
    history: list[dict[str, str]]
    primary_liaison: dict[str, Any] | None
    cc_liaisons: list[dict[str, Any]]
    statuses: list[tuple[str, str, str]]
    version: str
    generated: str
    maps: list[MapResult] = field(default_factory=list)


def _signed(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f}"


def _sites_at(ctx: SheetContext, lon: np.ndarray, lat: np.ndarray) -> list[str]:
    """Name and kind of the site fence each point lies in ("" outside all): one STRtree query."""
    out = [""] * len(lon)
    geo = ctx.geo()
    if geo.site_tree is None or len(lon) == 0:
        return out
    pairs = geo.site_tree.query(shapely.points(lon, lat), predicate="within")
    for i, j in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        if not out[i]:
            kind = SITE_KIND_LABELS.get(geo.site_kinds[j], geo.site_kinds[j])
            name = str(geo.site_names[j])
            out[i] = name if name.endswith(kind) else f"{name}（{kind}）"
    return out


def _vehicle_rows(ctx: SheetContext, vid: str) -> list[tuple[str, str]]:
    vehicle = ctx.vehicle(vid) if vid else None
    if vehicle:
        return [
            ("终端号", text(vehicle.get("terminal_id"), "—")),
            ("核定容积", fmt_number(as_float(vehicle.get("capacity_m3")), 1, "立方米")),
            ("注册地", ctx.place(vehicle.get("registered_adcode"))),
            ("准运证有效期至", _day(vehicle.get("permit_valid_to"), "未登记")),
        ]
    if vid:
        return [("车辆登记", "未在渣土运输车辆名录中找到该车")]
    return []


def _day(value: object, empty: str = "—") -> str:
    ts = as_local_ts(value)
    return ts.strftime("%Y-%m-%d") if ts is not None else empty


def _carrier_rows(ctx: SheetContext, lead: Mapping[str, Any], vid: str) -> list[tuple[str, str]]:
    vehicle = ctx.vehicle(vid) if vid else None
    cid = text(lead.get("carrier_id")) or (text(vehicle.get("carrier_id")) if vehicle else "")
    carrier = ctx.carrier(cid) if cid else None
    rows = [
        ("企业名称", text(carrier.get("name"), "未知") if carrier else "未知"),
        ("统一社会信用代码", cid or "未知"),
    ]
    if carrier:
        rows += [
            ("所在地", ctx.place(carrier.get("county_adcode"))),
            ("联系电话", text(carrier.get("contact_phone"), "—")),
        ]
    return rows


def _origin_rows(lead: Mapping[str, Any], ctx: SheetContext, depart: pd.Timestamp | None) -> list | None:
    origin_id = text(lead.get("origin_site_id"))
    if not origin_id:
        return None
    site = ctx.site(origin_id) or {}
    county = text(lead.get("origin_county_adcode")) or text(site.get("county_adcode"))
    return [
        ("工地名称", text(site.get("name"), "未在名录中")),
        ("工地编号", origin_id),
        ("建设单位", text(site.get("builder"), "—")),
        ("施工单位", text(site.get("contractor"), "—")),
        ("所在地", ctx.place(county) if county else "—"),
        ("排放核准", text(site.get("permit_no"), "—")),
        ("驶离时间", fmt_datetime(depart, seconds=True) if depart is not None else "未核实"),
    ]


def _manifest_model(mv: ManifestView, ctx: SheetContext, kind: str, plate: str) -> dict[str, Any]:
    from wastetrack.sheets.facts import days_text

    rows = None
    if mv.record:
        m = mv.record
        rows = [
            ("联单编号", mv.manifest_id),
            ("状态", label(MANIFEST_STATUS_LABELS, m.get("status"))),
            ("申报去向", site_name(ctx, m.get("dest_site_id"))),
            ("垃圾类别", label(WASTE_TYPE_LABELS, m.get("waste_type"))),
            ("申报方量", fmt_number(as_float(m.get("volume_m3")), 1, "立方米")),
            ("开单时间", fmt_datetime(as_local_ts(m.get("issued_at")))),
            ("出场时间", _dt_or(m.get("departed_at"), "无出场记录")),
            ("进场时间", _dt_or(m.get("received_at"), "无进场记录")),
            ("跨区域转移备案", text(m.get("cross_region_filing"), "无")),
        ]
    listed = [
        {
            "manifest_id": text(r.get("manifest_id")),
            "status": text(r.get("status")),
            "status_label": label(MANIFEST_STATUS_LABELS, r.get("status")),
            "issued": fmt_datetime(r.get("_issued")),
            "departed": _dt_or(r.get("departed_at"), "—"),
            "received": _dt_or(r.get("received_at"), "—"),
            "origin": text(r.get("origin_site_id"), "—"),
            "dest": text(r.get("dest_site_id"), "—"),
        }
        for r in mv.vehicle_manifests
    ]
    trip = "首选车辆该趟运输" if kind == "report_trace" else "本趟运输"
    haul = f"（运次 {mv.haul_id}）" if mv.haul_id else ""
    summary = {
        "none_matched": f"{trip}{haul}未匹配到电子联单，请核查下表中该车的联单。",
        "no_haul": "未找到首选车辆在举报时段内的运次，电子联单未比对。",
        "unverified": f"本线索由举报溯源得出，未与{plate or '该车'}的运次比对，是否有联单未核实。",
    }.get(mv.state, "")
    return {
        "state": mv.state,
        "manifest_id": mv.manifest_id,
        "rows": rows,
        "listed": listed,
        "days_text": days_text(mv.days),
        "summary": summary,
    }


def _dt_or(value: object, empty: str) -> str:
    ts = as_local_ts(value)
    return fmt_datetime(ts) if ts is not None else empty


def _point_rows(points: list[KeyPoint], ref: pd.Timestamp | None) -> list[dict[str, Any]]:
    state = {1: "重车", 0: "空车", -1: "—"}
    tip = {1: "举升", 0: "—", -1: "—"}
    rows = []
    for p in points:
        has_xy = p.lon == p.lon and p.lat == p.lat
        rows.append(
            {
                "time": fmt_clock(p.ts, ref, seconds=True),
                "iso": p.ts.isoformat(timespec="seconds"),
                "role": p.role,
                "note": p.note,
                "site": p.site,
                "lon": f"{p.lon:.6f}" if has_xy else "—",
                "lat": f"{p.lat:.6f}" if has_xy else "—",
                "speed": fmt_number(p.speed_kmh if p.speed_kmh == p.speed_kmh else None, 0),
                "load": state.get(p.loaded, "—"),
                "tip": tip.get(p.tipping, "—"),
                "dist": fmt_distance(p.dist_m if p.dist_m == p.dist_m else None),
                "cls": "lead-gap" if "gap-" in p.role else "",
            }
        )
    return rows


def _candidates(lead: Mapping[str, Any], ctx: SheetContext, ev: dict, ref: pd.Timestamp | None) -> list[dict]:
    details = [c for c in as_list(ev.get("candidates_detail")) if isinstance(c, Mapping)]
    by_vid = {normalise_plate(c.get("vehicle_id")): c for c in details}
    ids = [text(c) for c in as_list(lead.get("candidates"))] or [text(c.get("vehicle_id")) for c in details]
    rows = []
    for vid in ids:
        d = by_vid.get(normalise_plate(vid), {})
        vehicle = ctx.vehicle(vid) or {}
        carrier = ctx.carrier(vehicle.get("carrier_id")) or {}
        rows.append(
            {
                "vehicle_id": vid,
                "carrier": text(carrier.get("name")),
                "at": fmt_clock(as_local_ts(d.get("at")), ref),
                "distance": fmt_distance(as_float(d.get("distance_m"))),
                "dwell": fmt_minutes(as_float(d.get("dwell_min"))),
            }
        )
    return rows


def _raw_evidence(ev: dict, ctx: SheetContext) -> list[tuple[str, str]]:
    """Every evidence value the detector recorded, so nothing the score rests on is hidden."""
    skip = {"score_parts", "candidates_detail", "report_distance_m", "reason"}
    rows = []
    for key, value in ev.items():
        if key in skip:
            continue
        name = EVIDENCE_LABELS.get(key, key)
        if key.endswith("site_id") or key == "nearest_receiver_id":
            shown = site_name(ctx, value)
        elif key in ("loaded_before", "loaded_after"):
            shown = sensor_label(value, "重车", "空车", "无数据")
        elif key in ("tipping", "top_is_stay"):
            shown = sensor_label(value, "是", "否", "无数据")
        elif key == "waste_type":
            shown = label(WASTE_TYPE_LABELS, value)
        elif key == "unload_evidence":
            shown = label(UNLOAD_EVIDENCE_LABELS, value)
        elif key == "manifest_status":
            shown = label(MANIFEST_STATUS_LABELS, value)
        elif key in ("diverted_because", "receiver_problems"):
            shown = "；".join(label(RECEIVER_PROBLEM_LABELS, v) for v in as_list(value)) or "—"
        elif key in ("depart", "origin_stay_end", "gap_start", "gap_end") or key.endswith("_at"):
            shown = fmt_datetime(as_local_ts(value), seconds=True)
        elif isinstance(value, bool | np.bool_):
            shown = "是" if value else "否"
        elif isinstance(value, float | int | np.integer | np.floating):
            shown = fmt_number(float(value), 2)
        elif isinstance(value, Mapping | list | tuple | np.ndarray):
            shown = json.dumps(
                value if not isinstance(value, np.ndarray) else value.tolist(), ensure_ascii=False, default=str
            )
        else:
            shown = text(value, "—")
        rows.append((name, shown))
    return rows


def _reports(lead: Mapping[str, Any], ctx: SheetContext, ev: dict) -> list[dict[str, Any]]:
    dists = as_dict(ev.get("report_distance_m"))
    out = []
    for rid in (text(r) for r in as_list(lead.get("report_ids"))):
        rep = ctx.report(rid)
        if rep is None:
            out.append({"report_id": rid, "found": False})
            continue
        w0, w1 = as_local_ts(rep.get("observed_from")), as_local_ts(rep.get("observed_to"))
        lon, lat = as_float(rep.get("lon")), as_float(rep.get("lat"))
        unit = text(rep.get("reporting_unit"))
        rows = [
            ("举报时间", fmt_datetime(as_local_ts(rep.get("reported_at")))),
            ("来源", label(REPORT_SOURCE_LABELS, rep.get("source")) + (f"（{unit}）" if unit else "")),
            ("地址", text(rep.get("address"), "—")),
            ("发现时段", f"{fmt_datetime(w0)} 至 {fmt_datetime(w1)}" if w0 and w1 else "不详"),
            ("垃圾类别", label(WASTE_TYPE_LABELS, rep.get("waste_type"), "不详")),
            ("估计方量", fmt_number(as_float(rep.get("volume_m3_est")), 1, "立方米")),
        ]
        if lon is not None and lat is not None:
            rows.append(("坐标 WGS-84", f"{lon:.6f},{lat:.6f}"))
        d = as_float(dists.get(rid))
        if d is not None:
            rows.append(("距事件点", fmt_distance(d)))
        desc = text(rep.get("description"))
        out.append(
            {
                "report_id": rid,
                "found": True,
                "rows": rows,
                "description": desc[:MAX_DESCRIPTION_CHARS],
                "truncated": len(desc) > MAX_DESCRIPTION_CHARS,
                "total_chars": len(desc),
            }
        )
    return out


def _liaison(ctx: SheetContext, lid: str) -> dict[str, Any]:
    li = ctx.liaison(lid)
    if li is None:
        return {"found": False, "liaison_id": lid}
    return {
        "found": True,
        "liaison_id": lid,
        "level": label(LIAISON_LEVEL_LABELS, li.get("level")),
        "unit": text(li.get("unit"), "—"),
        "name": text(li.get("name"), "—"),
        "phone": text(li.get("phone"), "—"),
        "email": text(li.get("email"), "—"),
    }


def _history(ctx: SheetContext, lead_id: str) -> list[dict[str, str]]:
    rows = []
    for e in ctx.history_of(lead_id):
        if not isinstance(e, Mapping):
            continue
        at = as_local_ts(e.get("at"))
        rows.append(
            {
                "at": fmt_datetime(at) if at is not None else text(e.get("at"), "—"),
                "sort": at.timestamp() if at is not None else float("inf"),
                "event": text(e.get("event")),
                "event_label": label(HISTORY_EVENT_LABELS, e.get("event")),
                "actor": text(e.get("actor"), "—"),
                "detail": text(e.get("detail"), "—"),
            }
        )
    rows.sort(key=lambda r: r["sort"])
    return rows


def build_sheet(lead: Mapping[str, Any], track: pd.DataFrame | Track | None, ctx: SheetContext) -> SheetModel:
    """The model of one lead sheet: maps first (the facts may point only to what they drew), then the rest."""
    lead = dict(lead)
    tr = clean_track(track)  # once: both maps and the table read the same cleaned fixes
    ev = as_dict(lead.get("evidence"))
    kind = text(lead.get("kind"))
    lead_id = text(lead.get("lead_id"))
    times = lead_times(lead)
    ref = times.start
    vid = text(lead.get("vehicle_id"))

    overview = draw_map(lead, tr, ctx, 680, 500, times=times)
    maps = [overview]
    figures = [
        {
            "number": 1,
            "svg": Markup(overview.svg),
            "caption": "证据图：事件前后车辆轨迹、场所围栏与行政区界（北向上，图例与比例尺见图下）",
            "cls": "overview",
            "roles": sorted(overview.roles),
        }
    ]
    if overview.width_m > CLOSEUP_WHEN_WIDER_M:
        closeup = draw_map(lead, tr, ctx, 680, 400, extent_m=CLOSEUP_EXTENT_M, times=times)
        maps.append(closeup)
        figures.append(
            {
                "number": 2,
                "svg": Markup(closeup.svg),
                "caption": f"事件点近景（图幅宽约 {fmt_distance(CLOSEUP_EXTENT_M)}）",
                "cls": "closeup",
                "roles": sorted(closeup.roles),
            }
        )
    drawn: dict[str, str] = {}
    for fig, m in zip(figures, maps, strict=True):
        for role in m.roles:
            drawn.setdefault(role, f"图{fig['number']}")
    facts = lead_facts(lead, ctx, drawn, times=times)
    points = key_points(tr, lead, times, lambda lon, lat: _sites_at(ctx, lon, lat))

    score = as_float(lead.get("score"))
    parts = as_dict(ev.get("score_parts"))
    score_parts = [
        (label(SCORE_PART_LABELS, k), _signed(as_float(v)))
        for k, v in sorted(parts.items(), key=lambda kv: -(as_float(kv[1]) or 0.0))
    ]
    lon, lat = as_float(lead.get("lon")), as_float(lead.get("lat"))
    coords = None
    if lon is not None and lat is not None:
        glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
        blon, blat = (float(v) for v in wgs84_to_bd09(lon, lat))
        coords = {
            "wgs": (f"{lon:.6f}", f"{lat:.6f}"),
            "gcj": (f"{glon:.6f}", f"{glat:.6f}"),
            "bd": (f"{blon:.6f}", f"{blat:.6f}"),
        }
    primary = text(lead.get("primary_liaison_id"))
    cc = [c for c in dict.fromkeys(text(c) for c in as_list(lead.get("cc_liaison_ids"))) if c and c != primary]
    gen = as_local_ts(ctx.generated_at if ctx.generated_at is not None else pd.Timestamp.now(tz=TIMEZONE))
    is_trace = kind == "report_trace"
    return SheetModel(
        lead_id=lead_id,
        kind=kind,
        kind_label=label(KIND_LABELS, kind, "线索"),
        cross_border=as_bool(lead.get("cross_border")) is True,
        score_text=fmt_number(score, 2),
        score_level=score_level(score),
        batch_date=text(ctx.date),
        explanation=KIND_EXPLANATIONS.get(kind, ""),
        reason=text(ev.get("reason")),
        score_parts=score_parts,
        time_span=fmt_span(times.start, times.end),
        place=ctx.place(lead.get("county_adcode")),
        county_adcode=text(lead.get("county_adcode")),
        coords=coords,
        vehicle_title="首选嫌疑车辆" if is_trace else "涉嫌车辆",
        plate=vid,
        vehicle_rows=_vehicle_rows(ctx, vid),
        carrier_rows=_carrier_rows(ctx, lead, vid),
        origin_title="该车此前最后驶离的工地" if is_trace else "来源工地",
        origin_rows=_origin_rows(lead, ctx, times.depart),
        manifest=_manifest_model(manifest_view(lead, ctx, times), ctx, kind, vid),
        facts=facts,
        figures=figures,
        track_points=_point_rows(points, ref),
        key_points=points,
        candidates=_candidates(lead, ctx, ev, ref) if is_trace else [],
        raw_evidence=_raw_evidence(ev, ctx),
        reports=_reports(lead, ctx, ev),
        history=_history(ctx, lead_id),
        primary_liaison=_liaison(ctx, primary) if primary else None,
        cc_liaisons=[_liaison(ctx, c) for c in cc],
        statuses=[(k, v, FEEDBACK_STATUS_HINTS.get(k, "")) for k, v in FEEDBACK_STATUS_LABELS.items()],
        version=text(ctx.version),
        generated=fmt_datetime(gen, seconds=True),
        maps=maps,
    )


def render_sheet_model(model: SheetModel, ctx: SheetContext) -> str:
    title = f"线索单 {model.lead_id} {model.kind_label}"
    return _render(ctx, "sheet.html.j2", title=title, s=model)


def render_sheet(lead: Mapping[str, Any], track: pd.DataFrame | Track | None, ctx: SheetContext) -> str:
    """One lead sheet as a complete, self-contained HTML document (Chinese, print-ready on A4)."""
    return render_sheet_model(build_sheet(lead, track, ctx), ctx)


def key_track_points(
    track: pd.DataFrame | Track | None, lead: Mapping[str, Any], ctx: SheetContext | None = None
) -> pd.DataFrame:
    """The key-track-point table as a DataFrame (ts, role, note, lon, lat, speed_kmh, loaded_s, tipping_s,
    dist_m, site): for notebooks and tests; sheets use ``track.key_points`` directly."""
    sites_at = (lambda lon, lat: _sites_at(ctx, lon, lat)) if ctx is not None else None
    pts = key_points(clean_track(track), lead, lead_times(lead), sites_at)
    cols = ["ts", "role", "note", "lon", "lat", "speed_kmh", "loaded_s", "tipping_s", "dist_m", "site"]
    return pd.DataFrame(
        [(p.ts, p.role, p.note, p.lon, p.lat, p.speed_kmh, p.loaded, p.tipping, p.dist_m, p.site) for p in pts],
        columns=cols,
    )


# ------------------------------------------------------------------------------------------------ indexes
def _sorted_leads(leads: pd.DataFrame) -> pd.DataFrame:
    """Highest score first; ties by id so the order is the same on every run."""
    if len(leads) == 0:
        return leads
    order = pd.DataFrame(
        {
            "score": pd.to_numeric(leads["score"], errors="coerce").fillna(-1.0).to_numpy()
            if "score" in leads
            else np.zeros(len(leads)),
            "lead_id": leads["lead_id"].astype(str).to_numpy(),
        }
    )
    idx = order.sort_values(["score", "lead_id"], ascending=[False, True], kind="stable").index
    return leads.iloc[idx.to_numpy()]


def _index_rows(leads: pd.DataFrame, ctx: SheetContext) -> list[dict[str, Any]]:
    rows = []
    for lead in _sorted_leads(leads).to_dict("records") if len(leads) else []:
        lid = text(lead.get("lead_id"))
        start, end = as_local_ts(lead.get("start")), as_local_ts(lead.get("end"))
        score = as_float(lead.get("score"))
        vid = text(lead.get("vehicle_id"))
        cid = text(lead.get("carrier_id")) or text((ctx.vehicle(vid) or {}).get("carrier_id"))
        if start is not None and end is not None:
            t0 = f"{start.month}月{start.day}日 {start:%H:%M}"
            t1 = end.strftime("%H:%M") if end.date() == start.date() else f"{end.month}月{end.day}日 {end:%H:%M}"
        else:
            t0, t1 = fmt_span_short(start, end), ""
        rows.append(
            {
                "lead_id": lid,
                "href": _href(sheet_filename(lid)),
                "kind": text(lead.get("kind")),
                "kind_label": label(KIND_LABELS, lead.get("kind")),
                "cross_border": as_bool(lead.get("cross_border")) is True,
                "score_text": fmt_number(score, 2),
                "score_level": score_level(score),
                "time_start": t0,
                "time_end": t1,
                "place": ctx.place(lead.get("county_adcode")),
                "vehicle_id": vid,
                "carrier_name": text((ctx.carrier(cid) or {}).get("name")),
            }
        )
    return rows


def render_index(
    leads: pd.DataFrame,
    ctx: SheetContext,
    files: Mapping[str, str] | None = None,
    liaison_files: Mapping[str, str] | None = None,
    *,
    rows: list[dict[str, Any]] | None = None,
) -> str:
    """index.html: every lead of the night, highest score first, with links to the liaison pages.

    ``files`` is accepted for compatibility (page names follow ``sheet_filename``);
    ``rows`` are the night's index rows when the caller has them already.
    """
    rows = _index_rows(leads, ctx) if rows is None else rows
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    summary = "，".join(f"{label(KIND_LABELS, k)} {n} 条" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    liaisons = []
    for lid, fname in sorted((liaison_files or {}).items()):
        li = ctx.liaison(lid) or {}
        liaisons.append(
            {"liaison_id": lid, "href": _href(fname), "unit": text(li.get("unit")), "name": text(li.get("name"))}
        )
    return _render(
        ctx,
        "index.html.j2",
        title=f"线索汇总 {ctx.date}",
        date=text(ctx.date),
        rows=rows,
        summary=summary,
        liaisons=liaisons,
    )


def render_liaison_index(
    liaison_id: str,
    primary: pd.DataFrame | list[dict[str, Any]],
    cc: pd.DataFrame | list[dict[str, Any]],
    ctx: SheetContext,
    files: Mapping[str, str] | None = None,
) -> str:
    """One liaison's page: leads to act on (主办) first, then leads copied for information (抄送).

    ``primary`` and ``cc`` are lead frames, or index rows already built (``write_index_pages``).
    """
    li = ctx.liaison(liaison_id) or {}
    who = f"{text(li.get('unit'))} {text(li.get('name'))}".strip() or liaison_id
    return _render(
        ctx,
        "liaison.html.j2",
        title=f"联络员线索清单 {liaison_id} {ctx.date}",
        who=who,
        liaison_id=liaison_id,
        level=label(LIAISON_LEVEL_LABELS, li.get("level"), ""),
        date=text(ctx.date),
        primary=primary if isinstance(primary, list) else _index_rows(primary, ctx),
        cc=cc if isinstance(cc, list) else _index_rows(cc, ctx),
    )


def liaison_assignments(leads: pd.DataFrame) -> pd.DataFrame:
    """(liaison_id, lead_id, role) rows: 主办 for the primary, 抄送 for each cc (primary wins if both)."""
    if len(leads) == 0:
        return pd.DataFrame(columns=["liaison_id", "lead_id", "role"])
    prim = pd.DataFrame(
        {
            "liaison_id": leads.get("primary_liaison_id", pd.Series("", index=leads.index)),
            "lead_id": leads["lead_id"],
            "role": "primary",
        }
    )
    cc_col = leads.get("cc_liaison_ids", pd.Series([[]] * len(leads), index=leads.index))
    cc = pd.DataFrame({"liaison_id": cc_col.map(as_list), "lead_id": leads["lead_id"], "role": "cc"})
    cc = cc.explode("liaison_id")
    both = pd.concat([prim, cc], ignore_index=True)
    both["liaison_id"] = both["liaison_id"].map(text)
    both["lead_id"] = both["lead_id"].map(text)
    both = both[both["liaison_id"] != ""]
    both["rank"] = (both["role"] == "cc").astype(int)
    both = both.sort_values(["liaison_id", "lead_id", "rank"], kind="stable")
    return both.drop_duplicates(["liaison_id", "lead_id"]).drop(columns="rank").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ writing
def _write_atomic(path: Path, content: str) -> None:
    """Write to a temporary name in the same directory, then rename: a reader never sees half a page,
    and processes writing different pages of one directory never share a temporary file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _unique_records(leads: pd.DataFrame) -> list[dict]:
    if len(leads) == 0:
        return []
    out, seen = [], set()
    for lead in leads.to_dict("records"):
        lid = text(lead.get("lead_id"))
        if lid in seen:
            log.warning("duplicate lead_id %r: only its first row gets a sheet", lid)
            continue
        seen.add(lid)
        out.append(lead)
    return out


def write_lead_pages(
    leads: pd.DataFrame, tracks: Mapping[str, Any] | None, ctx: SheetContext, out_dir: Path | str
) -> list[Path]:
    """Write one sheet per lead of ``leads`` (any subset of the night's leads) into ``out_dir``.

    Each page is decided by its lead alone (its name by ``sheet_filename``), so
    processes may each write a chunk of the night into the same directory.
    Returns the pages written, in the order of ``leads``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for lead in _unique_records(leads):
        lid = text(lead.get("lead_id"))
        path = out_dir / sheet_filename(lid)
        _write_atomic(path, render_sheet(lead, tracks.get(lid) if tracks else None, ctx))
        written.append(path)
    return written


def write_index_pages(leads: pd.DataFrame, ctx: SheetContext, out_dir: Path | str) -> list[Path]:
    """Write ``index.html`` and one ``liaison-<id>.html`` per liaison named on any of the night's leads.

    ``leads`` must be all of the night's leads. Also writes ``sheets.json`` (the
    night's pages) and removes pages a previous run of the same night wrote for
    leads or liaisons that no longer exist, so a re-run gives the same directory.
    Returns the index pages written (index first).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = _unique_records(leads)
    frame = pd.DataFrame(records) if records else pd.DataFrame(columns=["lead_id"])
    assign = liaison_assignments(frame) if len(frame) else liaison_assignments(pd.DataFrame())
    liaison_files = {lid: liaison_filename(lid) for lid in assign["liaison_id"].unique().tolist()}
    rows = _index_rows(frame, ctx) if len(frame) else []  # once: a lead is on the index and several liaison pages
    written = [out_dir / "index.html"]
    _write_atomic(written[0], render_index(frame, ctx, None, liaison_files, rows=rows))
    for lid, group in assign.groupby("liaison_id", sort=True):
        prim_ids = set(group.loc[group["role"] == "primary", "lead_id"])
        cc_ids = set(group.loc[group["role"] == "cc", "lead_id"])
        path = out_dir / liaison_files[str(lid)]
        _write_atomic(
            path,
            render_liaison_index(
                str(lid),
                [r for r in rows if r["lead_id"] in prim_ids],
                [r for r in rows if r["lead_id"] in cc_ids],
                ctx,
            ),
        )
        written.append(path)
    lead_pages = {text(r.get("lead_id")): sheet_filename(r.get("lead_id")) for r in records}
    names = [*lead_pages.values(), *(p.name for p in written)]
    old: list[str] = []
    old_manifest = out_dir / MANIFEST_NAME
    if old_manifest.exists():
        try:
            old = list(json.loads(old_manifest.read_text(encoding="utf-8")).get("files", []))
        except (ValueError, AttributeError):
            old = []
    manifest = {"date": ctx.date, "version": ctx.version, "files": names, "leads": lead_pages}
    _write_atomic(old_manifest, json.dumps(manifest, ensure_ascii=False, indent=1))
    for name in set(old) - set(names):
        stale = out_dir / Path(str(name)).name  # never leave out_dir, whatever an old manifest says
        if stale.suffix == ".html":
            stale.unlink(missing_ok=True)
    return written


def write_sheets(leads: pd.DataFrame, tracks: Mapping[str, Any] | None, ctx: SheetContext, out_dir: Path | str) -> dict:
    """Write every sheet, index.html and the liaison pages (``write_lead_pages`` + ``write_index_pages``).

    Returns {"sheets": n, "indexes": m, "files": [names of the pages, sheets first]}.
    """
    pages = write_lead_pages(leads, tracks, ctx, out_dir)
    indexes = write_index_pages(leads, ctx, out_dir)
    return {"sheets": len(pages), "indexes": len(indexes), "files": [p.name for p in pages + indexes]}


__all__ = [
    "SheetContext",
    "SheetModel",
    "boundary_place_namer",
    "build_sheet",
    "key_track_points",
    "lead_facts",
    "liaison_assignments",
    "render_index",
    "render_liaison_index",
    "render_sheet",
    "sheet_filename",
    "template_env",
    "write_index_pages",
    "write_lead_pages",
    "write_sheets",
]
