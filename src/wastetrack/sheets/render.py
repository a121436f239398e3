"""Lead sheets (线索单): one self-contained Chinese HTML page per lead, and index pages.

A liaison officer must be able to open a case from the sheet alone: the
agreement between the provinces says a lead states WHEN, WHO is suspected, the
FACTS and the EVIDENCE, and who must act. Sheets are opened on government
networks without internet and are printed on A4, so a page loads nothing: CSS
is inline, the map is an inline SVG drawn from the data (``svgmap``), fonts are
the reader's own, and a Content-Security-Policy forbids any fetch or script in
case something slipped through.

Everything that comes from inputs — ids, names, and above all the free text of
public dumping reports — is HTML-escaped where it is written; report
descriptions are shown as plain text (``white-space: pre-wrap``), marked as
unverified, and truncated when very long.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import shapely

from wastetrack import __version__
from wastetrack.coords import haversine_m, wgs84_to_bd09, wgs84_to_gcj02
from wastetrack.sheets.labels import (
    EVIDENCE_LABELS,
    FEEDBACK_STATUS_HINTS,
    FEEDBACK_STATUS_LABELS,
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
    fmt_clock,
    fmt_datetime,
    fmt_distance,
    fmt_minutes,
    fmt_number,
    fmt_span,
    fmt_span_short,
    is_missing,
    label,
    score_level,
    sensor_label,
    text,
)
from wastetrack.sheets.svgmap import FONT, clean_track, render_map_svg, silent_segments

log = logging.getLogger(__name__)

#: Longest report description shown in full; public free text can be pages long (or a flood).
MAX_DESCRIPTION_CHARS = 600
#: Rows of the key-track-point table: enough to follow the haul, few enough for one printed page.
MAX_TRACK_ROWS = 24
#: The close-up map is added when the overview is wider than this (the stop is then only a few pixels).
CLOSEUP_WHEN_WIDER_M = 2_500.0
CLOSEUP_EXTENT_M = 1_200.0


def normalise_plate(plate: object) -> str:
    """沪A·D1234 = 沪AD1234 = 沪A D1234: the contract's vehicle id rule."""
    return re.sub(r"[\s·•.\u00b7\u2022\u30fb]", "", text(plate)).upper()


def _records_by(
    frame: pd.DataFrame | None, key: str, norm: Callable[[object], str] = text
) -> dict[str, dict]:
    """{id: row dict} for look-ups by id; later rows win, as in a re-issued reference file."""
    if frame is None or len(frame) == 0 or key not in frame.columns:
        return {}
    keys = [norm(k) for k in frame[key].tolist()]
    return dict(zip(keys, frame.to_dict("records"), strict=True))


def boundary_place_namer(boundaries: pd.DataFrame | None) -> Callable[[object], str]:
    """place_name(adcode) → "江苏省苏州市昆山市" from the boundaries table (province, city, county names).

    GB/T 2260 codes nest by prefix, so the chain is read from the code itself;
    repeated names (上海市/上海市) and placeholders (市辖区) are dropped. A code not
    in the table is shown as the code, never as an empty string.
    """
    names: dict[str, str] = {}
    if boundaries is not None and len(boundaries) and {"adcode", "name"} <= set(boundaries.columns):
        names = {text(a): text(n) for a, n in zip(boundaries["adcode"], boundaries["name"], strict=True)}

    def place_name(adcode: object) -> str:
        code = text(adcode)
        if not code:
            return "地点不详"
        chain = [code]
        if code.isdigit() and len(code) >= 6:
            chain = [code[:2] + "0000", code[:4] + "00", code[:6], code]
        parts: list[str] = []
        for c in dict.fromkeys(chain):
            n = names.get(c, "")
            if (
                n
                and n not in parts
                and n not in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划")
            ):
                parts.append(n)
        if not parts:
            return f"行政区划代码 {code}"
        if code[:6] not in names:  # only a parent is known: say which code it was
            return f"{''.join(parts)}（区划代码 {code}）"
        return "".join(parts)

    return place_name


@dataclass
class SheetContext:
    """Reference data a sheet looks ids up in; built once per night and shared by all sheets.

    ``place_name(adcode)`` names a county for people; by default it reads the
    names in ``boundaries``. ``generated_at`` is printed in the footer (default:
    now); pass the run's time to make re-runs byte-identical.
    """

    date: str
    sites: pd.DataFrame | None = None
    vehicles: pd.DataFrame | None = None
    carriers: pd.DataFrame | None = None
    liaisons: pd.DataFrame | None = None
    manifests: pd.DataFrame | None = None
    reports: pd.DataFrame | None = None
    boundaries: pd.DataFrame | None = None
    place_name: Callable[[object], str] | None = None
    generated_at: pd.Timestamp | None = None
    version: str = __version__
    _idx: dict[str, dict[str, dict]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.place_name is None:
            self.place_name = boundary_place_namer(self.boundaries)

    def place(self, adcode: object) -> str:
        assert self.place_name is not None
        return self.place_name(adcode) if text(adcode) else "地点不详"

    def _lookup(
        self, table: str, key: str, value: object, norm: Callable[[object], str] = text
    ) -> dict | None:
        if table not in self._idx:
            self._idx[table] = _records_by(getattr(self, table), key, norm)
        v = norm(value)
        return self._idx[table].get(v) if v else None

    def site(self, site_id: object) -> dict | None:
        return self._lookup("sites", "site_id", site_id)

    def vehicle(self, vehicle_id: object) -> dict | None:
        return self._lookup("vehicles", "vehicle_id", vehicle_id, normalise_plate)

    def carrier(self, carrier_id: object) -> dict | None:
        return self._lookup("carriers", "carrier_id", carrier_id)

    def liaison(self, liaison_id: object) -> dict | None:
        return self._lookup("liaisons", "liaison_id", liaison_id)

    def manifest(self, manifest_id: object) -> dict | None:
        return self._lookup("manifests", "manifest_id", manifest_id)

    def report(self, report_id: object) -> dict | None:
        return self._lookup("reports", "report_id", report_id)


# ------------------------------------------------------------------------------------------------ helpers
def _e(value: object, empty: str = "—") -> str:
    """Escape for HTML text and attributes; every input-derived string goes through here."""
    return html.escape(text(value, empty), quote=True)


def sheet_filename(lead_id: object) -> str:
    """A file name safe on every OS; ids that needed changing get a short hash so two never collide."""
    raw = text(lead_id, "lead")
    safe = re.sub(r"[^\w.\-]", "_", raw).strip("._") or "lead"
    if safe != raw:
        import hashlib

        safe = f"{safe[:80]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return f"{safe}.html"


def liaison_filename(liaison_id: object) -> str:
    return "liaison-" + sheet_filename(liaison_id)


def _href(filename: str) -> str:
    return html.escape(quote(filename), quote=True)


def _site_name(ctx: SheetContext, site_id: object) -> str:
    """「name」 plus the id, as people and platforms each know sites by one of them."""
    sid = text(site_id)
    if not sid:
        return "—"
    site = ctx.site(sid)
    name = text(site.get("name")) if site else ""
    return f"「{name}」（{sid}）" if name else f"{sid}（未在场所名录中）"


def _site_kind(ctx: SheetContext, site_id: object) -> str:
    site = ctx.site(site_id)
    return label(SITE_KIND_LABELS, site.get("kind")) if site else ""


def _kv_table(rows: list[tuple[str, str]], cls: str = "kv") -> str:
    """Two-column table; values are already-escaped HTML."""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="{cls}"><tbody>{body}</tbody></table>'


def _yes_no(value: object) -> str:
    return sensor_label(value, "是", "否", "未知")


def _lead_times(lead: Mapping[str, Any]) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    return as_local_ts(lead.get("start")), as_local_ts(lead.get("end"))


def _date_of(ts: pd.Timestamp | None) -> pd.Timestamp | None:
    return None if ts is None else pd.Timestamp(ts.date())


def _permit_valid_on(site: Mapping[str, Any], day: pd.Timestamp | None) -> bool | None:
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


# ------------------------------------------------------------------------------------------------ facts
def lead_facts(lead: Mapping[str, Any], ctx: SheetContext) -> list[str]:
    """The 事实 list: short plain-text sentences built from the evidence, each checkable on the map/table.

    Only what the data says: a missing sensor reads "无数据", never "否".
    """
    ev = as_dict(lead.get("evidence"))
    kind = text(lead.get("kind"))
    start, end = _lead_times(lead)
    ref = start
    plate = text(lead.get("vehicle_id"), "涉嫌车辆")
    place = ctx.place(lead.get("county_adcode"))
    facts: list[str] = []

    unload_id = text(ev.get("unload_site_id"))
    dwell = as_float(ev.get("dwell_min"))
    if dwell is None and start is not None and end is not None and kind != "track_gap":
        dwell = (end - start).total_seconds() / 60.0
    if kind in ("illegal_dump", "diverted", "unmanifested") or (
        kind not in KIND_LABELS and start is not None
    ):
        where = (
            f"{_site_kind(ctx, unload_id) or '场所'}{_site_name(ctx, unload_id)}"
            if unload_id
            else f"{place}一处无消纳资质的地点"
        )
        when = (
            f"{fmt_clock(start, ref)} 至 {fmt_clock(end, ref)}" if start and end else fmt_clock(start or end)
        )
        facts.append(f"{plate} 于 {when} 在{where}停留 {fmt_minutes(dwell)}。")
    lb, la = ev.get("loaded_before"), ev.get("loaded_after")
    sensor_keys = [k for k in ("tipping", "loaded_before", "loaded_after") if k in ev]
    if sensor_keys and kind != "track_gap":
        if all(is_missing(ev.get(k)) for k in sensor_keys):
            facts.append("该车无举升、载重传感器数据。")
        else:
            if not is_missing(ev.get("tipping")):
                facts.append(
                    "停留期间"
                    + sensor_label(
                        ev.get("tipping"), "举升传感器触发（车厢举升卸料）。", "举升传感器未触发。"
                    )
                )
            if not (is_missing(lb) and is_missing(la)):
                facts.append(
                    f"载重传感器：到达时{sensor_label(lb, '重车', '空车', '无数据')}，"
                    f"离开时{sensor_label(la, '重车', '空车', '无数据')}。"
                )
    if text(ev.get("unload_evidence")) and kind != "track_gap":
        facts.append(f"卸载判定依据：{label(UNLOAD_EVIDENCE_LABELS, ev.get('unload_evidence'))}。")
    nr_id, nr_m = text(ev.get("nearest_receiver_id")), as_float(ev.get("nearest_receiver_m"))
    if nr_id and kind in ("illegal_dump", "track_gap"):
        facts.append(f"距最近的核准消纳场所{_site_name(ctx, nr_id)} {fmt_distance(nr_m)}。")

    if kind == "track_gap" or "gap_min" in ev:
        g0 = as_local_ts(ev.get("gap_start")) or (start if kind == "track_gap" else None)
        g1 = as_local_ts(ev.get("gap_end")) or (end if kind == "track_gap" else None)
        gap_min = as_float(ev.get("gap_min"))
        if gap_min is None and g0 is not None and g1 is not None:
            gap_min = (g1 - g0).total_seconds() / 60.0
        span = f"{fmt_clock(g0, ref)} 至 {fmt_clock(g1, ref)} " if g0 and g1 else ""
        s = f"定位终端于 {span}中断" + (f" {fmt_minutes(gap_min)}" if gap_min is not None else "")
        if not (is_missing(lb) and is_missing(la)):
            s += (
                f"；中断前为{sensor_label(lb, '重车', '空车', '载重未知')}，"
                f"恢复后为{sensor_label(la, '重车', '空车', '载重未知')}"
            )
        facts.append(s + "。")
        reach = as_float(ev.get("max_reach_km"))
        if reach is not None:
            facts.append(
                f"按中断时长和限速推算，中断期间最远可达 {fmt_number(reach, 1)} 公里（图中虚线圆）；"
                f"推测卸载地点位于{place}。"
            )

    # Manifest: what was declared versus what happened.
    mid = text(lead.get("manifest_id"))
    manifest = ctx.manifest(mid) if mid else None
    waste = text(ev.get("waste_type")) or (text(manifest.get("waste_type")) if manifest else "")
    volume = as_float(ev.get("volume_m3"))
    if volume is None and manifest:
        volume = as_float(manifest.get("volume_m3"))
    dest_id = text(ev.get("manifest_dest_site_id")) or (
        text(manifest.get("dest_site_id")) if manifest else ""
    )
    if mid:
        s = f"电子联单 {mid} 申报去向为{_site_name(ctx, dest_id)}" if dest_id else f"电子联单 {mid}"
        if waste or volume is not None:
            s += f"，{label(WASTE_TYPE_LABELS, waste, '类别不详')} {fmt_number(volume, 1, '方')}"
        if kind == "diverted" and unload_id and unload_id != dest_id:
            s += f"；实际卸载于{_site_name(ctx, unload_id)}，与联单不符"
        facts.append(s + "。")
    elif kind in ("unmanifested", "illegal_dump", "track_gap"):
        facts.append("该趟运输未关联到有效电子联单。")
    if unload_id and kind in ("diverted", "unmanifested"):
        facts.extend(_receiver_facts(ctx, unload_id, ev, waste, _date_of(end or start)))

    # Where the load came from.
    origin_id = text(lead.get("origin_site_id"))
    left = as_local_ts(ev.get("depart")) or as_local_ts(ev.get("origin_stay_end"))
    if origin_id:
        o_county = text(lead.get("origin_county_adcode")) or text(
            (ctx.site(origin_id) or {}).get("county_adcode")
        )
        when = f"于 {fmt_clock(left, ref)} " if left is not None else ""
        facts.append(
            f"来源：该车{when}驶离工地{_site_name(ctx, origin_id)}"
            f"{'（' + ctx.place(o_county) + '）' if o_county else ''}后驶往卸载地点。"
        )
    if as_bool(lead.get("cross_border")) is True:
        o_county = text(lead.get("origin_county_adcode"))
        o_prov = ctx.place(o_county[:2] + "0000") if o_county else "外省"
        p_prov = ctx.place(text(lead.get("province_adcode")) or text(lead.get("county_adcode"))[:2] + "0000")
        s = f"跨省：装载地在{o_prov}，卸载地在{p_prov}"
        if manifest:
            filing = text(manifest.get("cross_region_filing"))
            s += f"，联单跨区域转移备案号 {filing}" if filing else "，联单无跨区域转移备案"
        facts.append(s + "。")

    # Reports this lead explains, and the ranked candidates of a report trace.
    dists = as_dict(ev.get("report_distance_m"))
    for rid in as_list(lead.get("report_ids")):
        rep = ctx.report(rid) or {}
        addr = text(rep.get("address"))
        d = as_float(dists.get(str(rid)))
        s = f"举报 {rid}" + (f"（{addr}）" if addr else "")
        if kind == "report_trace":
            w0, w1 = as_local_ts(rep.get("observed_from")), as_local_ts(rep.get("observed_to"))
            window = f"，反映偷倒时段 {fmt_clock(w0, ref)} 至 {fmt_clock(w1, ref)}" if w0 and w1 else ""
            facts.append(s + window + "。")
        else:
            facts.append(
                s + (f"地点距卸载点 {fmt_distance(d)}" if d is not None else "与本线索时间地点吻合") + "。"
            )
    details = [c for c in as_list(ev.get("candidates_detail")) if isinstance(c, Mapping)]
    cands = as_list(lead.get("candidates"))
    if kind == "report_trace":
        n = len(cands) or len(details)
        facts.append(f"比对举报时段内经过举报点附近的车辆轨迹，共有 {n} 辆候选车辆（见下表，按可能性排序）。")
        if details:
            top = details[0]
            facts.append(
                f"首选车辆 {text(top.get('vehicle_id'), plate)} 于 "
                f"{fmt_clock(as_local_ts(top.get('at')), ref)} 在距举报点 "
                f"{fmt_distance(as_float(top.get('distance_m')))} 处停留 "
                f"{fmt_minutes(as_float(top.get('dwell_min')))}。"
            )

    # The vehicle's own papers.
    vid = lead.get("vehicle_id")
    vehicle = ctx.vehicle(vid) if text(vid) else None
    if text(vid) and ctx.vehicles is not None and vehicle is None:
        facts.append(f"{plate} 不在渣土运输车辆登记名录中。")
    if vehicle:
        permit_to = as_local_ts(vehicle.get("permit_valid_to"))
        day = _date_of(end or start)
        if permit_to is not None and day is not None and day > pd.Timestamp(permit_to.date()):
            facts.append(f"该车准运证有效期至 {permit_to.strftime('%Y-%m-%d')}，事发时已过期。")
    return facts


def _receiver_facts(
    ctx: SheetContext, site_id: str, ev: Mapping[str, Any], waste: str, day: pd.Timestamp | None
) -> list[str]:
    """Why the receiving site may not take this load: the detector's findings, else checked here."""
    site = ctx.site(site_id) or {}
    problems = [text(p) for p in as_list(ev.get("diverted_because")) + as_list(ev.get("receiver_problems"))]
    if not problems and site:
        accepts = [str(a) for a in as_list(site.get("accepts"))]
        if waste and accepts and waste not in accepts:
            problems.append("not_accepted")
        if _permit_valid_on(site, day) is False:
            problems.append("permit_invalid")
    name = _site_name(ctx, site_id)
    out = []
    for p in dict.fromkeys(problems):
        if p == "not_accepted":
            accepts = "、".join(label(WASTE_TYPE_LABELS, a) for a in as_list(site.get("accepts"))) or "—"
            out.append(f"{name}核准接收{accepts}，不接收{label(WASTE_TYPE_LABELS, waste, '此类垃圾')}。")
        elif p == "permit_invalid":
            out.append(
                f"{name}处置核准有效期为 {_day_text(site.get('valid_from'))} 至 "
                f"{_day_text(site.get('valid_to'))}，卸载当日不在有效期内。"
            )
        elif p == "not_a_receiver":
            out.append(f"{name}不是核准消纳场所。")
        elif p and p != "wrong_receiver":  # wrong_receiver is said with the manifest
            out.append(f"{name}：{label(RECEIVER_PROBLEM_LABELS, p)}。")
    return out


def _day_text(value: object) -> str:
    ts = as_local_ts(value)
    return ts.strftime("%Y-%m-%d") if ts is not None else "—"


# ------------------------------------------------------------------------------------------------ track table
def key_track_points(
    track: pd.DataFrame | None, lead: Mapping[str, Any], ctx: SheetContext | None = None
) -> pd.DataFrame:
    """The fixes a reader needs, each with why it matters (arrival, tipping, load change, gap, ...).

    Vectorised change detection over the whole track; only the selected rows are
    turned into text. Load state is forward-filled over unknown fixes so a sensor
    dropout is not read as a load change.
    """
    t = clean_track(track)
    cols = ["ts", "note", "lon", "lat", "speed_kmh", "loaded_s", "tipping_s", "dist_m", "site"]
    if len(t) == 0:
        return pd.DataFrame(columns=cols)
    n = len(t)
    pos = np.arange(n)
    ev_lon, ev_lat = as_float(lead.get("lon")), as_float(lead.get("lat"))
    dist = (
        haversine_m(t["lon"].to_numpy(), t["lat"].to_numpy(), ev_lon, ev_lat)
        if ev_lon is not None and ev_lat is not None
        else np.full(n, np.nan)
    )
    known = pd.Series(t["loaded_s"].to_numpy(dtype=float)).replace(-1, np.nan).ffill().to_numpy()
    prev = np.r_[np.nan, known[:-1]]
    tip = t["tipping_s"].to_numpy()
    tip_prev = np.r_[0, tip[:-1]]
    has_ts = bool(t["ts"].notna().all())
    dt = t["ts"].diff().dt.total_seconds().to_numpy() if has_ts else np.full(n, np.nan)
    silent = silent_segments(t)
    gap_after, gap_before = np.r_[silent, False], np.r_[False, silent]
    start, end = _lead_times(lead)
    in_event = np.zeros(n, dtype=bool)
    if has_ts and start is not None and end is not None:
        in_event = ((t["ts"] >= start) & (t["ts"] <= end)).to_numpy()
    first_in = pos == (np.argmax(in_event) if in_event.any() else -1)
    last_in = pos == (n - 1 - np.argmax(in_event[::-1]) if in_event.any() else -1)
    nearest = pos == (int(np.nanargmin(dist)) if np.isfinite(dist).any() else -1)
    masks: list[tuple[str, np.ndarray]] = [  # in priority order
        ("到达事件点", first_in),
        ("离开事件点", last_in),
        ("举升开始", (tip == 1) & (tip_prev != 1)),
        ("举升结束", (tip == 0) & (tip_prev == 1)),
        ("转为空车", (known == 0) & (prev == 1)),
        ("转为重车", (known == 1) & (prev == 0)),
        ("定位中断前最后一点", gap_after),
        ("定位恢复", gap_before),
        ("距事件点最近", nearest & ~in_event),
        ("轨迹起点", pos == 0),
        ("轨迹终点", pos == n - 1),
    ]
    stacked = np.vstack([m for _, m in masks])
    chosen = np.flatnonzero(stacked.any(axis=0))
    if len(chosen) > MAX_TRACK_ROWS:
        first_prio = np.argmax(stacked[:, chosen], axis=0)
        chosen = np.sort(chosen[np.argsort(first_prio, kind="stable")[:MAX_TRACK_ROWS]])
    notes = []
    for i in chosen.tolist():  # a few dozen selected rows, not the track
        words = [name for name, m in masks if m[i]]
        if "定位恢复" in words:
            words[words.index("定位恢复")] = f"定位恢复（中断 {fmt_minutes(dt[i] / 60.0)}）"
        notes.append("、".join(words))
    out = t.iloc[chosen][["ts", "lon", "lat", "speed_kmh", "loaded_s", "tipping_s"]].copy()
    out.insert(1, "note", notes)
    out["dist_m"] = dist[chosen]
    out["site"] = _sites_at(ctx, out["lon"].to_numpy(), out["lat"].to_numpy())
    return out.reset_index(drop=True)[cols]


def _sites_at(ctx: SheetContext | None, lon: np.ndarray, lat: np.ndarray) -> list[str]:
    """Name and kind of the site fence each point lies in ("" outside all): one STRtree query."""
    out = [""] * len(lon)
    sites = getattr(ctx, "sites", None)
    if sites is None or len(sites) == 0 or len(lon) == 0 or not hasattr(sites, "sindex"):
        return out
    pts = shapely.points(lon, lat)
    try:
        pairs = sites.sindex.query(pts, predicate="within")
    except (AttributeError, TypeError, ValueError):
        return out
    names = (
        sites["name"].astype(str).to_numpy() if "name" in sites else sites["site_id"].astype(str).to_numpy()
    )
    kinds = sites["kind"].astype(str).to_numpy() if "kind" in sites else np.full(len(sites), "")
    for i, j in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        kind = SITE_KIND_LABELS.get(kinds[j], kinds[j])
        if not out[i]:
            out[i] = names[j] if names[j].endswith(kind) else f"{names[j]}（{kind}）"
    return out


# ------------------------------------------------------------------------------------------------ sections
def _section(title: str, body: str, cls: str = "") -> str:
    return f'<section class="{cls}"><h2>{html.escape(title)}</h2>{body}</section>'


def _header(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    kind = text(lead.get("kind"))
    ev = as_dict(lead.get("evidence"))
    score = as_float(lead.get("score"))
    cross = as_bool(lead.get("cross_border")) is True
    badges = '<span class="badge cross">跨省</span>' if cross else ""
    explanation = KIND_EXPLANATIONS.get(kind, "")
    reason = text(ev.get("reason"))
    parts = ev.get("score_parts")
    parts = as_dict(parts)
    score_html = (
        f'<span class="score">可信度 <b>{_e(fmt_number(score, 2))}</b>（{_e(score_level(score))}）</span>'
    )
    parts_html = ""
    if parts:
        items = "".join(
            f"<li>{_e(label(SCORE_PART_LABELS, k))} <b>{_e(_signed(as_float(v)))}</b></li>"
            for k, v in sorted(parts.items(), key=lambda kv: -(as_float(kv[1]) or 0.0))
        )
        parts_html = f'<div class="score-parts"><span class="muted">可信度构成：</span><ul>{items}</ul></div>'
    return (
        '<header class="top">'
        f'<div class="doc-type">长三角建筑垃圾跨区域联防联控 · 线索单</div>'
        f"<h1>{_e(label(KIND_LABELS, kind, '线索'))}{badges}</h1>"
        f'<div class="meta">线索编号 <code>{_e(lead.get("lead_id"))}</code>'
        f'<span class="sep">|</span>{score_html}<span class="sep">|</span>批次日期 {_e(ctx.date)}</div>'
        + (f'<p class="explain">{html.escape(explanation)}</p>' if explanation else "")
        + (f'<p class="reason"><b>线索理由：</b>{_e(reason)}</p>' if reason else "")
        + parts_html
        + "</header>"
    )


def _signed(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f}"


def _when_where(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    start, end = _lead_times(lead)
    lon, lat = as_float(lead.get("lon")), as_float(lead.get("lat"))
    rows = [
        ("时间", f"<b>{_e(fmt_span(start, end))}</b>"),
        (
            "地点",
            f"<b>{_e(ctx.place(lead.get('county_adcode')))}</b>"
            f'<span class="muted">（区划代码 {_e(lead.get("county_adcode"))}）</span>',
        ),
    ]
    if lon is not None and lat is not None:
        glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
        blon, blat = (float(v) for v in wgs84_to_bd09(lon, lat))
        rows += [
            (
                "坐标 WGS-84",
                f'<span class="num">经度 {lon:.6f}，纬度 {lat:.6f}</span>'
                '<span class="muted">（卫星定位原始坐标，GPS/北斗设备使用）</span>',
            ),
            (
                "坐标 GCJ-02",
                f'<span class="num"><b>{glon:.6f},{glat:.6f}</b></span>'
                '<span class="muted">（经度,纬度；高德地图、腾讯地图使用此坐标）</span>',
            ),
            (
                "坐标 BD-09",
                f'<span class="num">{blon:.6f},{blat:.6f}</span>'
                '<span class="muted">（经度,纬度；百度地图使用此坐标）</span>',
            ),
        ]
    else:
        rows.append(("坐标", "无定位坐标"))
    return _section("一、时间与地点", _kv_table(rows))


def _who(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    vid = text(lead.get("vehicle_id"))
    vehicle = ctx.vehicle(vid) if vid else None
    rows = [("车牌号", f'<b class="plate">{_e(vid, "未确定")}</b>')]
    if vehicle:
        permit = text(vehicle.get("permit_valid_to"))
        rows += [
            ("终端号", _e(vehicle.get("terminal_id"))),
            ("核定容积", _e(fmt_number(as_float(vehicle.get("capacity_m3")), 1, "立方米"))),
            ("注册地", _e(ctx.place(vehicle.get("registered_adcode")))),
            ("准运证有效期至", _e(permit, "未登记")),
        ]
    elif vid:
        rows.append(("车辆登记", "未在渣土运输车辆名录中找到该车"))
    cid = text(lead.get("carrier_id")) or (text(vehicle.get("carrier_id")) if vehicle else "")
    carrier = ctx.carrier(cid) if cid else None
    crow = [
        ("企业名称", f"<b>{_e(carrier.get('name') if carrier else '', '未知')}</b>"),
        ("统一社会信用代码", f'<span class="num">{_e(cid, "未知")}</span>'),
    ]
    if carrier:
        crow += [
            ("所在地", _e(ctx.place(carrier.get("county_adcode")))),
            ("联系电话", f'<span class="num">{_e(carrier.get("contact_phone"))}</span>'),
        ]
    body = (
        f'<div class="cols"><div><h3>涉嫌车辆</h3>{_kv_table(rows)}</div>'
        f"<div><h3>运输企业</h3>{_kv_table(crow)}</div></div>"
    )
    return _section("二、涉嫌车辆与运输企业", body)


def _origin_manifest(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    ev = as_dict(lead.get("evidence"))
    origin_id = text(lead.get("origin_site_id"))
    if origin_id:
        site = ctx.site(origin_id) or {}
        county = text(lead.get("origin_county_adcode")) or text(site.get("county_adcode"))
        left = as_local_ts(ev.get("depart")) or as_local_ts(ev.get("origin_stay_end"))
        origin = _kv_table(
            [
                ("工地名称", f"<b>{_e(site.get('name'), '未在名录中')}</b>"),
                ("工地编号", _e(origin_id)),
                ("建设单位", _e(site.get("builder"))),
                ("施工单位", _e(site.get("contractor"))),
                ("所在地", _e(ctx.place(county)) if county else "—"),
                ("排放核准", _e(site.get("permit_no"))),
                ("驶离时间", _e(fmt_datetime(left))),
            ]
        )
    else:
        origin = '<p class="muted">未能追溯到来源工地。</p>'
    mid = text(lead.get("manifest_id"))
    manifest = ctx.manifest(mid) if mid else None
    if manifest:
        filing = text(manifest.get("cross_region_filing"))
        mrows = [
            ("联单编号", f"<b>{_e(mid)}</b>"),
            ("状态", _e(label(MANIFEST_STATUS_LABELS, manifest.get("status")))),
            ("申报去向", _e(_site_name(ctx, manifest.get("dest_site_id")))),
            ("垃圾类别", _e(label(WASTE_TYPE_LABELS, manifest.get("waste_type")))),
            ("申报方量", _e(fmt_number(as_float(manifest.get("volume_m3")), 1, "立方米"))),
            ("开单时间", _e(fmt_datetime(as_local_ts(manifest.get("issued_at"))))),
            ("出场时间", _e(fmt_datetime(as_local_ts(manifest.get("departed_at"))), "无出场记录")),
            ("进场时间", _e(fmt_datetime(as_local_ts(manifest.get("received_at"))), "无进场记录")),
            ("跨区域转移备案", _e(filing, "无")),
        ]
        man = _kv_table(mrows)
    elif mid:
        man = f"<p>联单编号 {_e(mid)}（联单系统中未查到该联单详情）</p>"
    else:
        man = '<p class="none-box"><b>无联单</b>：该趟运输未关联到有效电子联单。</p>'
    body = f'<div class="cols"><div><h3>来源工地</h3>{origin}</div><div><h3>电子联单</h3>{man}</div></div>'
    return _section("三、来源工地与电子联单", body)


def _facts(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    facts = lead_facts(lead, ctx)
    if not facts:
        return _section("四、事实", '<p class="muted">无可列出的事实。</p>')
    items = "".join(f"<li>{_e(f)}</li>" for f in facts)
    return _section("四、事实", f'<ol class="facts">{items}</ol>')


def _track_table(lead: Mapping[str, Any], track: pd.DataFrame | None, ctx: SheetContext) -> str:
    pts = key_track_points(track, lead, ctx)
    if len(pts) == 0:
        return '<p class="muted">无该车辆在事件前后的轨迹数据。</p>'
    ref = as_local_ts(lead.get("start"))
    state = {1: "重车", 0: "空车", -1: "—"}
    tip = {1: "举升", 0: "—", -1: "—"}
    rows = "".join(
        f"<tr><td class=num>{_e(fmt_clock(as_local_ts(r.ts), ref, seconds=True))}</td><td>{_e(r.note)}</td>"
        f"<td>{_e(r.site)}</td>"
        f"<td class=num>{r.lon:.6f}</td><td class=num>{r.lat:.6f}</td>"
        f"<td class=num>{_e(fmt_number(as_float(r.speed_kmh), 0))}</td>"
        f"<td>{state[int(r.loaded_s)]}</td><td>{tip[int(r.tipping_s)]}</td>"
        f"<td class=num>{_e(fmt_distance(as_float(r.dist_m)))}</td></tr>"
        for r in pts.itertuples(index=False)
    )
    return (
        '<table class="grid track"><thead><tr><th>时间</th><th>说明</th><th>所在场所</th>'
        "<th>经度</th><th>纬度</th><th>速度 km/h</th><th>载重</th><th>举升</th><th>距事件点</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        '<p class="note muted">坐标为 WGS-84；完整轨迹可向本系统调取。</p>'
    )


def _candidates_table(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    ev = as_dict(lead.get("evidence"))
    details = [c for c in as_list(ev.get("candidates_detail")) if isinstance(c, Mapping)]
    by_vid = {normalise_plate(c.get("vehicle_id")): c for c in details}
    ids = [text(c) for c in as_list(lead.get("candidates"))] or [text(c.get("vehicle_id")) for c in details]
    if not ids:
        return ""
    ref = as_local_ts(lead.get("start"))
    rows = []
    for rank, vid in enumerate(ids, start=1):
        d = by_vid.get(normalise_plate(vid), {})
        vehicle = ctx.vehicle(vid) or {}
        carrier = ctx.carrier(vehicle.get("carrier_id")) or {}
        rows.append(
            f"<tr><td class=num>{rank}</td><td><b>{_e(vid)}</b></td><td>{_e(carrier.get('name'))}</td>"
            f"<td class=num>{_e(fmt_clock(as_local_ts(d.get('at')), ref))}</td>"
            f"<td class=num>{_e(fmt_distance(as_float(d.get('distance_m'))))}</td>"
            f"<td class=num>{_e(fmt_minutes(as_float(d.get('dwell_min'))))}</td></tr>"
        )
    return (
        '<h3>候选车辆（按可能性排序）</h3><table class="grid"><thead><tr><th>序号</th><th>车牌号</th>'
        "<th>运输企业</th><th>时间</th><th>距举报点</th><th>停留</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _raw_evidence(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    """Every evidence value the detector recorded, so nothing the score rests on is hidden."""
    ev = as_dict(lead.get("evidence"))
    skip = {"score_parts", "candidates_detail", "report_distance_m", "reason"}
    rows = []
    for key, value in ev.items():
        if key in skip:
            continue
        name = EVIDENCE_LABELS.get(key, key)
        if key.endswith("site_id") or key == "nearest_receiver_id":
            shown = _site_name(ctx, value)
        elif key in ("tipping", "loaded_before", "loaded_after"):
            shown = _yes_no(value) if key == "tipping" else sensor_label(value, "重车", "空车", "未知")
        elif key == "waste_type":
            shown = label(WASTE_TYPE_LABELS, value)
        elif key == "unload_evidence":
            shown = label(UNLOAD_EVIDENCE_LABELS, value)
        elif key == "manifest_status":
            shown = label(MANIFEST_STATUS_LABELS, value)
        elif key in ("diverted_because", "receiver_problems"):
            shown = "；".join(label(RECEIVER_PROBLEM_LABELS, v) for v in as_list(value)) or "—"
        elif key == "top_is_stay":
            shown = _yes_no(value)
        elif key in ("depart", "origin_stay_end", "gap_start", "gap_end") or key.endswith("_at"):
            shown = fmt_datetime(as_local_ts(value), seconds=True)
        elif isinstance(value, float | int) and not isinstance(value, bool):
            shown = fmt_number(float(value), 2)
        elif isinstance(value, Mapping | list):
            shown = json.dumps(value, ensure_ascii=False, default=str)
        else:
            shown = text(value, "—")
        rows.append((name, _e(shown)))
    if not rows:
        return ""
    return f'<details open class="raw"><summary>检测数据明细</summary>{_kv_table(rows)}</details>'


def _evidence(lead: Mapping[str, Any], track: pd.DataFrame | None, ctx: SheetContext) -> str:
    overview = render_map_svg(lead, track, ctx, 680, 500)
    figs = [
        f'<figure class="map">{overview}<figcaption>图1 证据图：事件前后车辆轨迹、场所围栏与行政区界'
        "（北向上，比例尺见左下）</figcaption></figure>"
    ]
    width_m = _svg_width_m(overview)
    if width_m is not None and width_m > CLOSEUP_WHEN_WIDER_M:
        closeup = render_map_svg(lead, track, ctx, 680, 400, extent_m=CLOSEUP_EXTENT_M)
        figs.append(
            f'<figure class="map closeup">{closeup}<figcaption>图2 事件点近景（图幅宽约 '
            f"{fmt_distance(CLOSEUP_EXTENT_M)}）</figcaption></figure>"
        )
    body = (
        "".join(figs)
        + "<h3>关键轨迹点</h3>"
        + _track_table(lead, track, ctx)
        + _candidates_table(lead, ctx)
        + _raw_evidence(lead, ctx)
    )
    return _section("五、证据", body)


_WIDTH_RE = re.compile(r"图幅宽 ([\d.]+) (米|公里)")


def _svg_width_m(svg: str) -> float | None:
    m = _WIDTH_RE.search(svg)
    if not m:
        return None
    return float(m.group(1)) * (1000.0 if m.group(2) == "公里" else 1.0)


def _reports(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    ids = [text(r) for r in as_list(lead.get("report_ids"))]
    if not ids:
        return ""
    ev = as_dict(lead.get("evidence"))
    dists = as_dict(ev.get("report_distance_m"))
    blocks = []
    for rid in ids:
        rep = ctx.report(rid)
        if rep is None:
            blocks.append(
                f'<div class="report"><h3>举报 {_e(rid)}</h3><p class="muted">举报详情未找到。</p></div>'
            )
            continue
        w0, w1 = as_local_ts(rep.get("observed_from")), as_local_ts(rep.get("observed_to"))
        lon, lat = as_float(rep.get("lon")), as_float(rep.get("lat"))
        rows = [
            ("举报时间", _e(fmt_datetime(as_local_ts(rep.get("reported_at"))))),
            (
                "来源",
                _e(label(REPORT_SOURCE_LABELS, rep.get("source")))
                + (f"（{_e(rep.get('reporting_unit'))}）" if text(rep.get("reporting_unit")) else ""),
            ),
            ("地址", _e(rep.get("address"))),
            ("发现时段", _e(f"{fmt_datetime(w0)} 至 {fmt_datetime(w1)}" if w0 and w1 else "不详")),
            ("垃圾类别", _e(label(WASTE_TYPE_LABELS, rep.get("waste_type"), "不详"))),
            ("估计方量", _e(fmt_number(as_float(rep.get("volume_m3_est")), 1, "立方米"))),
        ]
        if lon is not None and lat is not None:
            rows.append(("坐标 WGS-84", f'<span class="num">{lon:.6f},{lat:.6f}</span>'))
        d = as_float(dists.get(rid))
        if d is not None:
            rows.append(("距事件点", _e(fmt_distance(d))))
        desc = text(rep.get("description"))
        if desc:
            shown = desc if len(desc) <= MAX_DESCRIPTION_CHARS else desc[:MAX_DESCRIPTION_CHARS]
            more = (
                f'<span class="muted">……（原文共 {len(desc)} 字，已截断）</span>'
                if len(desc) > MAX_DESCRIPTION_CHARS
                else ""
            )
            rows.append(
                (
                    "举报内容",
                    f'<div class="untrusted">{html.escape(shown, quote=True)}</div>{more}'
                    '<div class="muted small">以上为举报人原文，未经核实，仅供参考。</div>',
                )
            )
        blocks.append(f'<div class="report"><h3>举报 {_e(rid)}</h3>{_kv_table(rows)}</div>')
    return _section("六、相关举报", "".join(blocks))


def _liaison_row(ctx: SheetContext, lid: object) -> str:
    li = ctx.liaison(lid)
    if li is None:
        return f"<tr><td>{_e(lid)}</td><td colspan=5 class=muted>联络员名录中未找到</td></tr>"
    return (
        f"<tr><td>{_e(label(LIAISON_LEVEL_LABELS, li.get('level')))}</td><td>{_e(li.get('unit'))}</td>"
        f"<td><b>{_e(li.get('name'))}</b></td><td class=num>{_e(li.get('phone'))}</td>"
        f"<td>{_e(li.get('email'))}</td><td class=muted>{_e(lid)}</td></tr>"
    )


def _liaisons(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    head = (
        "<thead><tr><th>层级</th><th>单位</th><th>联络员</th><th>电话</th><th>邮箱</th><th>编号</th>"
        "</tr></thead>"
    )
    primary = text(lead.get("primary_liaison_id"))
    p_html = (
        f'<table class="grid">{head}<tbody>{_liaison_row(ctx, primary)}</tbody></table>'
        if primary
        else '<p class="muted">未确定承办联络员，请上级联络员指定。</p>'
    )
    cc = [text(c) for c in as_list(lead.get("cc_liaison_ids")) if text(c) and text(c) != primary]
    c_html = (
        f'<table class="grid">{head}<tbody>{"".join(_liaison_row(ctx, c) for c in cc)}</tbody></table>'
        if cc
        else '<p class="muted">无。</p>'
    )
    return _section("七、承办与抄送", f"<h3>承办（主办）</h3>{p_html}<h3>抄送（知悉）</h3>{c_html}")


def _footer(lead: Mapping[str, Any], ctx: SheetContext) -> str:
    lead_id = _e(lead.get("lead_id"))
    statuses = "".join(
        f"<li><code>{_e(k)}</code> {_e(v)}：{_e(FEEDBACK_STATUS_HINTS.get(k, ''))}</li>"
        for k, v in FEEDBACK_STATUS_LABELS.items()
    )
    gen = ctx.generated_at if ctx.generated_at is not None else pd.Timestamp.now(tz=TIMEZONE)
    gen = as_local_ts(gen)
    return (
        '<footer class="reply"><h2>办理反馈</h2>'
        f"<p>请承办联络员在联络员平台登记办理情况，或按以下字段回复（每次状态变化回复一行），"
        f"线索编号 <code>{lead_id}</code>：</p>"
        '<pre class="reply-format">lead_id,liaison_id,at,status,case_no,penalty_cny,note\n'
        f"{lead_id},（您的联络员编号）,（回复时间）,received,,,</pre>"
        f'<ul class="statuses">{statuses}</ul>'
        f'<p class="gen muted">本线索单由 wastetrack {_e(ctx.version)} '
        "根据车辆定位、电子联单和举报数据自动生成，"
        f"生成时间 {_e(fmt_datetime(gen, seconds=True))}（北京时间）。线索仅供核查立案参考，"
        "不作为处罚的直接依据；坐标、时间以原始数据为准。</p></footer>"
    )


# ------------------------------------------------------------------------------------------------ pages
CSS = f"""
@page {{ size: A4; margin: 12mm 11mm 13mm; }}
* {{ box-sizing: border-box; }}
html {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ font-family: {FONT}; font-size: 14px; line-height: 1.55; color: #1a1a1a; margin: 0;
  background: #e9ecef; }}
.sheet {{ max-width: 210mm; margin: 14px auto; background: #fff; padding: 12mm 11mm;
  box-shadow: 0 1px 4px rgba(0,0,0,.25); }}
header.top {{ border-bottom: 3px solid #b71c1c; padding-bottom: 6px; margin-bottom: 6px; }}
.doc-type {{ font-size: 13px; color: #666; letter-spacing: .12em; }}
h1 {{ font-size: 25px; margin: 2px 0 4px; color: #b71c1c; }}
h2 {{ font-size: 16px; margin: 16px 0 6px; padding-left: 8px; border-left: 4px solid #b71c1c;
  break-after: avoid; page-break-after: avoid; }}
h3 {{ font-size: 14px; margin: 10px 0 4px; color: #333; break-after: avoid; page-break-after: avoid; }}
.badge {{ display: inline-block; margin-left: 10px; padding: 1px 9px; border-radius: 3px; font-size: 15px;
  vertical-align: 4px; }}
.badge.cross {{ background: #b71c1c; color: #fff; }}
.meta {{ font-size: 14px; }}
.meta .sep {{ color: #bbb; margin: 0 8px; }}
.meta code, code {{ font-family: Consolas, 'DejaVu Sans Mono', monospace; font-size: .95em; }}
.explain {{ margin: 4px 0; color: #444; }}
.reason {{ margin: 6px 0; background: #fff8e1; border: 1px solid #ffe082; padding: 5px 9px; }}
.score-parts ul {{ display: inline; padding: 0; margin: 0; }}
.score-parts li {{ display: inline-block; margin: 0 12px 0 0; font-size: 13px; }}
table {{ border-collapse: collapse; width: 100%; margin: 2px 0; }}
th, td {{ border: 1px solid #cfd4d9; padding: 3px 6px; vertical-align: top; text-align: left; }}
table.kv th {{ width: 8.5em; background: #f3f5f7; font-weight: normal; color: #444; white-space: nowrap; }}
table.grid thead th {{ background: #eef1f4; font-weight: 600; white-space: nowrap; }}
table.track td {{ font-size: 12.5px; padding: 2px 5px; }}
table.track td:first-child {{ white-space: nowrap; }}
table.track td:nth-child(3) {{ font-size: 11.5px; }}
.num {{ font-variant-numeric: tabular-nums; }}
.plate {{ font-size: 17px; letter-spacing: .05em; }}
.cols {{ display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }}
.cols > div {{ min-width: 0; }}
.facts {{ margin: 4px 0; padding-left: 1.6em; }}
.facts li {{ margin: 2px 0; }}
figure.map {{ margin: 6px 0 10px; break-inside: avoid; page-break-inside: avoid; }}
figure.map svg {{ display: block; width: 100%; height: auto; border: 1px solid #bbb; }}
figcaption {{ font-size: 12.5px; color: #555; margin-top: 2px; }}
.none-box {{ border: 1px dashed #b71c1c; color: #b71c1c; padding: 6px 9px; }}
.untrusted {{ white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; background: #f7f7f7;
  border: 1px dashed #999; padding: 4px 7px; font-size: 13px; }}
.report {{ break-inside: avoid; page-break-inside: avoid; margin-bottom: 8px; }}
.muted {{ color: #666; }}
.small, .note {{ font-size: 12px; }}
details.raw summary {{ cursor: pointer; font-weight: 600; margin: 8px 0 4px; }}
footer.reply {{ margin-top: 14px; border-top: 2px solid #b71c1c; padding-top: 4px; }}
.reply-format {{ background: #f3f5f7; padding: 5px 8px; font-size: 12.5px; white-space: pre-wrap;
  overflow-wrap: anywhere; }}
.statuses {{ margin: 4px 0; font-size: 13px; }}
.gen {{ font-size: 12px; }}
nav.top {{ font-size: 13px; margin-bottom: 6px; }}
nav.top a {{ color: #1a5fb4; }}
table.index td, table.index th {{ font-size: 12.5px; padding: 3px 4px; }}
.nw {{ white-space: nowrap; }}
table.index td.kind {{ min-width: 5.5em; }}
table.index td.place {{ min-width: 5.5em; }}
.crossword {{ color: #b71c1c; }}
table.index a {{ color: #1a5fb4; }}
tr.cross td:first-child {{ border-left: 4px solid #b71c1c; }}
@media print {{
  body {{ background: #fff; font-size: 10pt; line-height: 1.45; }}
  th, td {{ padding: 2px 5px; }}
  .sheet {{ margin: 0; padding: 0; max-width: none; box-shadow: none; }}
  .noprint, nav.top {{ display: none; }}
  h2 {{ font-size: 12.5pt; }}
  table, tr, figure, .report {{ break-inside: avoid; page-break-inside: avoid; }}
  thead {{ display: table-header-group; }}
  a {{ color: inherit; text-decoration: none; }}
  figure.map svg {{ width: auto; height: auto; max-width: 100%; max-height: 105mm; margin: 0 auto; }}
  figure.map.closeup svg {{ max-height: 72mm; }}
  details.raw {{ break-inside: avoid; page-break-inside: avoid; }}
  details.raw > summary {{ list-style: none; }}
}}
"""

#: Forbid every fetch and every script: the page must work, and be safe, on an offline network.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f'<body><main class="sheet">{body}</main></body></html>\n'
    )


def render_sheet(lead: Mapping[str, Any], track: pd.DataFrame | None, ctx: SheetContext) -> str:
    """One lead sheet as a complete, self-contained HTML document (Chinese, print-ready on A4)."""
    lead = dict(lead)
    track = clean_track(track)  # once: the maps and the table read the same cleaned fixes
    title = f"线索单 {text(lead.get('lead_id'))} {label(KIND_LABELS, lead.get('kind'), '')}"
    body = "".join(
        [
            '<nav class="top noprint"><a href="index.html">← 返回线索列表</a></nav>',
            _header(lead, ctx),
            _when_where(lead, ctx),
            _who(lead, ctx),
            _origin_manifest(lead, ctx),
            _facts(lead, ctx),
            _evidence(lead, track, ctx),
            _reports(lead, ctx),
            _liaisons(lead, ctx),
            _footer(lead, ctx),
        ]
    )
    return _page(title, body)


def _sorted_leads(leads: pd.DataFrame) -> pd.DataFrame:
    """Highest score first; ties by time then id so the order is the same on every run."""
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


def _index_table(
    rows: list[dict], ctx: SheetContext, files: Mapping[str, str], role: Mapping[str, str] | None
) -> str:
    if not rows:
        return '<p class="muted">无。</p>'
    head = (
        "<th>序号</th>"
        + ("<th>身份</th>" if role is not None else "")
        + "<th>线索编号</th><th>类型</th><th>可信度</th><th>时间</th><th>地点</th><th>车辆</th>"
        "<th>运输企业</th>"
    )
    out = []
    for i, lead in enumerate(rows, start=1):
        lid = text(lead.get("lead_id"))
        start, end = _lead_times(lead)
        score = as_float(lead.get("score"))
        cross = as_bool(lead.get("cross_border")) is True
        cid = text(lead.get("carrier_id")) or text(
            (ctx.vehicle(lead.get("vehicle_id")) or {}).get("carrier_id")
        )
        carrier = ctx.carrier(cid) or {}
        kind = _e(label(KIND_LABELS, lead.get("kind")))
        out.append(
            f'<tr class="{"cross" if cross else ""}"><td class=num>{i}</td>'
            + (f"<td>{_e(role.get(lid, ''))}</td>" if role is not None else "")
            + f'<td class=nw><a href="{_href(files[lid])}">{_e(lid)}</a></td>'
            f"<td class=kind>{kind}{'<br><b class=crossword>跨省</b>' if cross else ''}</td>"
            f'<td class="num nw">{_e(fmt_number(score, 2))}（{_e(score_level(score))}）</td>'
            f"<td class=num>{_index_time(start, end)}</td>"
            f"<td class=place>{_e(ctx.place(lead.get('county_adcode')))}</td>"
            f"<td class=nw><b>{_e(lead.get('vehicle_id'))}</b></td><td>{_e(carrier.get('name'))}</td></tr>"
        )
    return f'<table class="grid index"><thead><tr>{head}</tr></thead><tbody>{"".join(out)}</tbody></table>'


def _index_time(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """Start on one line, end on the next (with its date when the event crossed midnight)."""
    if start is None or end is None:
        return _e(fmt_span_short(start, end))
    tail = end.strftime("%H:%M") if end.date() == start.date() else f"{end.month}月{end.day}日 {end:%H:%M}"
    return (
        f"<span class=nw>{start.month}月{start.day}日 {start:%H:%M}</span><br><span class=nw>至 {tail}</span>"
    )


def render_index(
    leads: pd.DataFrame,
    ctx: SheetContext,
    files: Mapping[str, str],
    liaison_files: Mapping[str, str] | None = None,
) -> str:
    """index.html: every lead of the night, highest score first, with links to the liaison pages."""
    rows = _sorted_leads(leads).to_dict("records")
    counts = pd.Series([text(r.get("kind")) for r in rows]).value_counts() if rows else pd.Series(dtype=int)
    summary = "，".join(f"{label(KIND_LABELS, k)} {n} 条" for k, n in counts.items())
    links = ""
    if liaison_files:
        items = []
        for lid, fname in sorted(liaison_files.items()):
            li = ctx.liaison(lid) or {}
            items.append(
                f'<li><a href="{_href(fname)}">{_e(li.get("unit"), "")} {_e(li.get("name"), "")}'
                f"（{_e(lid)}）</a></li>"
            )
        links = f'<h2>各联络员线索</h2><ul class="liaisons">{"".join(items)}</ul>'
    body = (
        f'<header class="top"><div class="doc-type">长三角建筑垃圾跨区域联防联控</div>'
        f'<h1>线索汇总 {_e(ctx.date)}</h1><div class="meta">共 {len(rows)} 条线索'
        f"{('：' + _e(summary)) if summary else ''}</div></header>"
        f"<h2>线索列表（按可信度排序）</h2>{_index_table(rows, ctx, files, None)}{links}"
    )
    return _page(f"线索汇总 {ctx.date}", body)


def render_liaison_index(
    liaison_id: str, primary: pd.DataFrame, cc: pd.DataFrame, ctx: SheetContext, files: Mapping[str, str]
) -> str:
    """One liaison's page: leads to act on (主办) first, then leads copied for information (抄送)."""
    li = ctx.liaison(liaison_id) or {}
    who = f"{text(li.get('unit'))} {text(li.get('name'))}".strip() or liaison_id
    p_rows = _sorted_leads(primary).to_dict("records")
    c_rows = _sorted_leads(cc).to_dict("records")
    body = (
        '<nav class="top noprint"><a href="index.html">全部线索</a></nav>'
        f'<header class="top"><div class="doc-type">长三角建筑垃圾跨区域联防联控 · 联络员线索清单</div>'
        f'<h1>{_e(who)}</h1><div class="meta">联络员编号 <code>{_e(liaison_id)}</code>'
        f'<span class="sep">|</span>{_e(label(LIAISON_LEVEL_LABELS, li.get("level"), ""))}'
        f'<span class="sep">|</span>批次日期 {_e(ctx.date)}<span class="sep">|</span>'
        f"主办 {len(p_rows)} 条，抄送 {len(c_rows)} 条</div></header>"
        f"<h2>主办线索（请核查办理并反馈）</h2>{_index_table(p_rows, ctx, files, None)}"
        f"<h2>抄送线索（知悉，配合核查）</h2>{_index_table(c_rows, ctx, files, None)}"
    )
    return _page(f"联络员线索清单 {liaison_id} {ctx.date}", body)


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
MANIFEST_NAME = "sheets.json"


def write_sheets(
    leads: pd.DataFrame, tracks: Mapping[str, pd.DataFrame], ctx: SheetContext, out_dir: Path
) -> dict:
    """Write every sheet, index.html and one liaison-<id>.html per liaison named on any lead.

    Like any task of the night it leaves no half result: every page is rendered
    and written to a temporary name first and only then renamed into place;
    pages a previous run of the same night wrote for leads that no longer exist
    are removed (they are listed in ``sheets.json``), so a re-run gives the same
    directory. Returns {"sheets": n, "indexes": m, "files": [...]}.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    leads = leads.reset_index(drop=True) if len(leads) else leads
    records = leads.to_dict("records") if len(leads) else []
    files: dict[str, str] = {}
    used: set[str] = set()
    for lead in records:
        lid = text(lead.get("lead_id"))
        name = sheet_filename(lid)
        if lid in files:
            log.warning("duplicate lead_id %r: only its first row gets a sheet", lid)
            continue
        stem, n = name[:-5], 2
        while name in used or name == "index.html" or name.startswith("liaison-"):
            name = f"{stem}-{n}.html"
            n += 1
        files[lid] = name
        used.add(name)

    staged: list[tuple[Path, Path]] = []

    def stage(name: str, content: str) -> None:
        final = out_dir / name
        tmp = out_dir / f".{name}.tmp-{os.getpid()}"
        tmp.write_text(content, encoding="utf-8")
        staged.append((tmp, final))

    try:
        done: set[str] = set()
        for lead in records:
            lid = text(lead.get("lead_id"))
            if lid in done:
                continue
            done.add(lid)
            stage(files[lid], render_sheet(lead, tracks.get(lid) if tracks else None, ctx))
        assign = liaison_assignments(leads) if len(leads) else liaison_assignments(pd.DataFrame())
        liaison_files = {lid: liaison_filename(lid) for lid in assign["liaison_id"].unique().tolist()}
        stage("index.html", render_index(leads, ctx, files, liaison_files))
        by_id = leads.assign(_lid=leads["lead_id"].map(text)).drop_duplicates("_lid") if len(leads) else leads
        for lid, group in assign.groupby("liaison_id", sort=True):
            prim_ids = set(group.loc[group["role"] == "primary", "lead_id"])
            cc_ids = set(group.loc[group["role"] == "cc", "lead_id"])
            stage(
                liaison_files[str(lid)],
                render_liaison_index(
                    str(lid),
                    by_id[by_id["_lid"].isin(prim_ids)],
                    by_id[by_id["_lid"].isin(cc_ids)],
                    ctx,
                    files,
                ),
            )
        names = [final.name for _, final in staged]
        manifest = {
            "date": ctx.date,
            "version": ctx.version,
            "files": names,
            "leads": {lid: files[lid] for lid in files},
        }
        stage(MANIFEST_NAME, json.dumps(manifest, ensure_ascii=False, indent=1))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise

    old: list[str] = []
    old_manifest = out_dir / MANIFEST_NAME
    if old_manifest.exists():
        try:
            old = list(json.loads(old_manifest.read_text(encoding="utf-8")).get("files", []))
        except (ValueError, AttributeError):
            old = []
    for tmp, final in staged:
        os.replace(tmp, final)
    for name in set(old) - set(names) - {MANIFEST_NAME}:
        stale = out_dir / Path(name).name  # never leave out_dir, whatever an old manifest says
        if stale.suffix == ".html":
            stale.unlink(missing_ok=True)
    n_sheets = len(files)
    return {"sheets": n_sheets, "indexes": 1 + len(liaison_files), "files": names}
