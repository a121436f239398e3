"""The liaison network's monthly figures: what it found, where waste flowed, how fast it answered.

``write_report(store, "2026-11", out_dir, net)`` writes ``report-2026-11.xlsx`` (one sheet per
section, Chinese headers) and ``report-2026-11.html`` (the same tables with charts as PNG data
URIs: it opens offline, no CDN). Sections:

* leads of the month by county and kind;
* the cross-border flow matrix (origin county → county where it was dumped);
* response and closure times per handling liaison (calendar days, and the share acknowledged
  within ``Params.receipt_due_workdays`` working days);
* overdue and escalated leads;
* 备案清单: per city, the cases it transferred, received by transfer or handled jointly (an
  entrusted investigation, a cross-border case), grouped under the province it files them with.

Figures come from the store as the follow-up left it (``lead_state``, ``lead_events``): on the
1st, the end of the month before.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from openpyxl import Workbook

from wastetrack import TIMEZONE, __version__
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.credit import month_bounds
from wastetrack.liaison_xlsx import KIND_ZH
from wastetrack.lifecycle import PHASE_ZH
from wastetrack.network import Network
from wastetrack.workdays import Workdays
from wastetrack.xlsx import write_table

#: CJK fonts tried for the charts (Debian's fonts-noto-cjk first); DejaVu draws the digits if none is there
CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "DejaVu Sans"]


@dataclass
class Section:
    title: str
    sheet: str
    headers: list[str]
    rows: list[list[Any]]
    chart: str = ""          # data URI of a PNG
    note: str = ""


@dataclass
class Report:
    month: str
    sections: list[Section] = field(default_factory=list)
    figures: list[tuple[str, Any]] = field(default_factory=list)


def _name(net: Network | None, code: str) -> str:
    if not code:
        return "不详"
    return net.place(code) if net else code


def _days(a: Any, b: Any) -> float | None:
    """Days from a to b; None when either is missing or b came first (a reply of an earlier handler: the
    lead changed hands by transfer, dispute or an earlier filing, and the new handler's clock starts anew)."""
    if a is None or b is None or pd.isna(a) or pd.isna(b) or pd.Timestamp(b) < pd.Timestamp(a):
        return None
    return round((pd.Timestamp(b) - pd.Timestamp(a)).total_seconds() / 86400.0, 1)


def _short(net: Network | None, code: str) -> str:
    """A county's own name (浦东新区), for chart labels."""
    return (net.namer.names.get(code, "") if net else "") or _name(net, code)


def _mean(values: Sequence[float | None]) -> float | str:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 1) if vals else "—"


def build_report(store: Any, month: str, net: Network | None = None, params: Params = DEFAULT_PARAMS) -> Report:
    start, end = month_bounds(month)
    rep = Report(month)
    leads = store.read("leads")
    leads = pd.DataFrame(leads).drop(columns="geometry", errors="ignore")
    leads = leads.sort_values(["lead_id", "date"]).drop_duplicates("lead_id", keep="first")
    leads = leads[(leads["date"] >= start.strftime("%Y-%m-%d")) & (leads["date"] < end.strftime("%Y-%m-%d"))]
    state = store.read("lead_state").set_index("lead_id")
    events = store.read("lead_events")
    month_events = events[(events["at"] >= start) & (events["at"] < end)]
    kinds = [k for k in KIND_ZH if k in set(leads["kind"])] or list(KIND_ZH)

    # 1. leads by county and kind
    rows = []
    for county, g in leads.groupby("county_adcode", sort=True):
        counts = g["kind"].value_counts()
        rows.append([_name(net, county), county, *[int(counts.get(k, 0)) for k in kinds], len(g),
                     int(g["cross_border"].fillna(False).astype(bool).sum())])
    rows.sort(key=lambda r: (-r[-2], r[1]))
    by_prov = leads.assign(prov=leads["province_adcode"].fillna("")).groupby(["prov", "kind"]).size().unstack(
        fill_value=0) if len(leads) else pd.DataFrame()
    rep.sections.append(Section("一、线索按县区和类型", "线索按县区和类型",
                                ["县区", "区划代码", *[KIND_ZH[k] for k in kinds], "合计", "其中跨省"], rows,
                                _stacked_bar(by_prov, net, "各省线索（按类型）")))
    # 2. cross-border flow matrix
    flow = leads[(leads["origin_county_adcode"].fillna("") != "")
                 & (leads["origin_county_adcode"] != leads["county_adcode"])]
    matrix = pd.crosstab(flow["origin_county_adcode"], flow["county_adcode"]) if len(flow) else pd.DataFrame()
    mrows = [[_name(net, o), *[int(v) for v in matrix.loc[o]], int(matrix.loc[o].sum())] for o in matrix.index]
    rep.sections.append(Section("二、跨界流向矩阵（来源县区 → 倾倒县区）", "跨界流向矩阵",
                                ["来源县区 \\ 倾倒县区", *[_name(net, c) for c in matrix.columns], "合计"], mrows,
                                _heatmap(matrix, net), "仅计来源县区与倾倒县区不同的线索。"))
    # 3. response and closure times per handling liaison
    wd = Workdays(params)
    st = state.reindex(leads["lead_id"]) if len(state) else pd.DataFrame(columns=state.columns)
    rrows = []
    for handler, g in st.dropna(subset=["handler_liaison_id"]).groupby("handler_liaison_id", sort=True):
        recv = [_days(a, b) for a, b in zip(g["delivered_at"], g["received_at"], strict=True)]
        verd = [_days(a, b) for a, b in zip(g["delivered_at"], g["verdict_at"], strict=True)]
        clos = [_days(a, b) for a, b in zip(g["filed_at"], g["closed_at"], strict=True)]
        on_time = [wd.between(pd.Timestamp(a).date(), pd.Timestamp(b).date()) <= params.receipt_due_workdays
                   for a, b in zip(g["delivered_at"], g["received_at"], strict=True) if _days(a, b) is not None]
        delivered = int(g["delivered_at"].notna().sum())
        rrows.append([net.label(handler) if net else handler, handler, len(g), delivered,
                      sum(v is not None for v in recv), _mean(recv),
                      f"{100 * sum(on_time) / len(on_time):.0f}%" if on_time else "—",
                      sum(v is not None for v in verd), _mean(verd), sum(v is not None for v in clos), _mean(clos)])
    rep.sections.append(Section("三、联络员响应与办结时效", "响应与办结时效",
                                ["主办联络员", "编号", "主办线索", "已送达", "已签收", "签收平均用时（天）",
                                 "按时签收率", "已出结论", "结论平均用时（天）", "已办结", "办结平均用时（天）"], rrows,
                                _bars([(r[1], r[5]) for r in rrows if isinstance(r[5], float)],
                                      "签收平均用时（天）"),
                                f"用时自送达主办起算；按时 = {params.receipt_due_workdays} 个工作日内签收。"))
    # 4. overdue and escalated leads
    ladder = month_events[month_events["event"].isin(["reminded", "escalated"])]
    flagged = set(ladder["lead_id"]) | set(state.index[state["overdue"].fillna(False).astype(bool)])
    orows = []
    all_leads = store.read_ids("leads", "lead_id", flagged) if flagged else leads.iloc[:0]
    place = dict(zip(all_leads["lead_id"], all_leads["county_adcode"], strict=True))
    for lid in sorted(flagged):
        s = state.loc[lid] if lid in state.index else None
        mine = ladder[ladder["lead_id"] == lid]
        handler = s["handler_liaison_id"] if s is not None else ""
        orows.append([lid, _name(net, place.get(lid, "")), (net.label(handler) if net else handler) or "—",
                      PHASE_ZH.get(s["phase"], s["phase"]) if s is not None else "—",
                      s["due_date"] if s is not None and isinstance(s["due_date"], str) and s["due_date"] else "—",
                      "是" if s is not None and bool(s["overdue"]) else "否",
                      int((mine["event"] == "reminded").sum()), int((mine["event"] == "escalated").sum()),
                      mine["detail"].iloc[-1] if len(mine) else ""])
    rep.sections.append(Section("四、逾期与提级线索", "逾期与提级", ["线索编号", "发生地", "当前主办", "阶段",
                                                         "当前期限", "仍逾期", "本月催办", "本月提级", "最近一次"],
                                orows))
    # 5. filing with the province (备案)
    frows = _filings(events, month_events, state, leads, net)
    rep.sections.append(Section("五、备案清单（各市报省）", "备案清单",
                                ["省", "市", "线索编号", "类别", "本市县区", "对方县区", "立案编号", "阶段", "时间"],
                                frows, note="各市本月移送、接收移送及联合办理（委托调查取证、跨省办理）的案件，"
                                            "报所属省级联络员备案。"))
    escalated = len(set(ladder["lead_id"]))
    rep.figures = [("本月线索", len(leads)), ("跨省线索", int(leads["cross_border"].fillna(False).astype(bool).sum())),
                   ("已送达", int(st["delivered_at"].notna().sum()) if len(st) else 0),
                   ("已立案", int(st["filed_at"].notna().sum()) if len(st) else 0),
                   ("已办结", int((st["phase"] == "closed").sum()) if len(st) else 0),
                   ("逾期/提级", len(flagged)), ("本月提级督办", escalated)]
    return rep


def _filings(events: pd.DataFrame, month_events: pd.DataFrame, state: pd.DataFrame, leads: pd.DataFrame,
             net: Network | None) -> list[list[Any]]:
    """备案 rows: for each city, the transfers out and in and the joint cases of the month."""
    rows: list[list[Any]] = []

    def add(county: str, lid: str, what: str, other: str, at: Any) -> None:
        if not county:
            return
        city = net.city_of(county) if net else county[:4] + "00"
        s = state.loc[lid] if lid in state.index else None
        rows.append([_name(net, county[:2] + "0000"), _name(net, city), lid, what, _name(net, county),
                     _name(net, other), (s["case_no"] or "—") if s is not None else "—",
                     PHASE_ZH.get(s["phase"], s["phase"]) if s is not None else "—",
                     pd.Timestamp(at).tz_convert(TIMEZONE).strftime("%Y-%m-%d")])

    for e in month_events.to_dict("records"):
        own = net.adcode(e["liaison_id"]) if net and e["liaison_id"] else ""
        other = e["adcode"] or ""
        if e["event"] == "transferred":
            add(own, e["lead_id"], "移送（移出）", other, e["at"])
            add(other, e["lead_id"], "移送（接收）", own, e["at"])
        elif e["event"] == "assist_requested":
            add(own, e["lead_id"], "联合办理（委托调查取证）", other, e["at"])
            add(other, e["lead_id"], "联合办理（受托调查取证）", own, e["at"])
        elif e["event"] == "case_filed":
            lead = leads[leads["lead_id"] == e["lead_id"]]
            if len(lead) and bool(lead["cross_border"].fillna(False).iloc[0]):
                add(lead["county_adcode"].iloc[0], e["lead_id"], "联合办理（跨省立案）",
                    lead["origin_county_adcode"].iloc[0] or "", e["at"])
                add(lead["origin_county_adcode"].iloc[0] or "", e["lead_id"], "联合办理（跨省立案）",
                    lead["county_adcode"].iloc[0], e["at"])
    rows.sort(key=lambda r: (r[0], r[1], r[8], r[2]))
    return rows


# --- charts: static PNGs as data URIs (no CDN, no script) ---------------------------------------------------

@cache
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    plt.rcParams["font.family"] = [f for f in CJK_FONTS if f in have] or ["DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _png(fig: Any) -> str:
    import warnings

    plt = _pyplot()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a glyph missing from the fonts: drawn as a box, not fatal
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _stacked_bar(table: pd.DataFrame, net: Network | None, title: str) -> str:
    if table.empty:
        return ""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bottom = None
    labels = [_name(net, p) for p in table.index]
    for kind in table.columns:
        vals = table[kind].to_numpy()
        ax.bar(labels, vals, bottom=bottom, label=KIND_ZH.get(kind, kind))
        bottom = vals if bottom is None else bottom + vals
    ax.set_title(title)
    ax.set_ylabel("线索数")
    ax.legend(fontsize=8, ncols=3)
    return _png(fig)


def _heatmap(matrix: pd.DataFrame, net: Network | None, top: int = 12) -> str:
    if matrix.empty:
        return ""
    plt = _pyplot()
    rows = matrix.sum(axis=1).sort_values(ascending=False).index[:top]
    cols = matrix.sum(axis=0).sort_values(ascending=False).index[:top]
    m = matrix.loc[rows, cols]
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(cols), 1.0 + 0.4 * len(rows)))
    im = ax.imshow(m.to_numpy(), cmap="Oranges")
    ax.set_xticks(range(len(cols)), [_short(net, c) for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [_short(net, r) for r in rows], fontsize=8)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if m.iat[i, j]:
                ax.text(j, i, int(m.iat[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xlabel("倾倒县区")
    ax.set_ylabel("来源县区")
    fig.colorbar(im, ax=ax, shrink=0.6)
    return _png(fig)


def _bars(pairs: list[tuple[str, float]], title: str, top: int = 15) -> str:
    if not pairs:
        return ""
    plt = _pyplot()
    pairs = sorted(pairs, key=lambda p: -p[1])[:top]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.3 * len(pairs)))
    ax.barh([p[0] for p in pairs][::-1], [p[1] for p in pairs][::-1], color="#5b9bd5")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("wastetrack", "liaison_templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def write_report(store: Any, month: str, out_dir: str | Path, net: Network | None = None,
                 params: Params = DEFAULT_PARAMS) -> dict[str, Any]:
    """Write ``report-<month>.xlsx`` and ``report-<month>.html`` into ``out_dir``; returns a summary."""
    rep = build_report(store, month, net, params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    xlsx, html = out / f"report-{month}.xlsx", out / f"report-{month}.html"
    wb = Workbook()
    summary = wb.active
    summary.title = "概览"
    write_table(summary, ("指标", "数值"), rep.figures, title=f"建筑垃圾联络员网络月报 {month}")
    for s in rep.sections:
        write_table(wb.create_sheet(s.sheet[:31]), s.headers, s.rows, title=s.title)
    wb.save(xlsx)
    title = f"长三角建筑垃圾联络员网络月报 {month}"
    html.write_text(_env().get_template("report.html.j2").render(
        title=title, figures=rep.figures, sections=rep.sections, version=__version__,
        generated=pd.Timestamp.now(tz=TIMEZONE).strftime("%Y-%m-%d %H:%M")), encoding="utf-8")
    by = {s.sheet: s for s in rep.sections}
    return {"month": month, "leads": dict(rep.figures)["本月线索"], "overdue": len(by["逾期与提级"].rows),
            "escalated": dict(rep.figures)["本月提级督办"], "filings": len(by["备案清单"].rows),
            "xlsx": str(xlsx), "html": str(html)}
