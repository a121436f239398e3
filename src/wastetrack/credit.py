"""The carrier credit list (信用联合惩戒): confirmed violations per carrier, a 100-point score, 首违不罚.

A violation is confirmed when the county handling the lead closed its case (``lead_state``
phase ``closed`` with a filed case): a lead not established, or still being handled, costs a
carrier nothing. Over a rolling window (``Params.credit_window_months`` up to the end of the
listed month) each confirmed violation deducts ``credit_points_<kind>`` points (plus
``credit_points_cross_border_extra`` across a provincial border) from
``credit_full_points``. First violation, no penalty: a carrier's first confirmed violation in
the window, of a minor kind (``first_violation_exempt_kinds``) and closed without a fine,
deducts nothing and flags the carrier. A score at or below ``credit_blacklist_points`` puts the
carrier on the blacklist (失信名单); at or below ``credit_watch_points``, on the watch list.

``lead_state`` is what the follow-up left it (``escalate`` runs every night, so on the 1st it
stands at the end of the month before). Carriers are identified by credit code; names come
from ``LANDING/reference/carriers.csv`` when a landing is given.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook

from wastetrack import TIMEZONE
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.xlsx import cell_value, write_frame, write_table

CSV_COLUMNS = ("carrier_id", "carrier_name", "violations_month", "violations_window", "points_deducted", "score",
               "first_violation_no_penalty", "list", "blacklist_at_or_below", "watch_at_or_below", "lead_ids")
ZH_COLUMNS = ("统一社会信用代码", "企业名称", "本月确认违法（起）", "评价期内确认违法（起）", "扣分", "信用分",
              "首违不罚", "名单", "黑名单分数线（≤）", "重点关注分数线（≤）", "线索编号")
LIST_ZH = {"blacklist": "黑名单（失信）", "watch": "重点关注", "normal": "正常"}


def month_bounds(month: str, months_back: int = 1) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of ``months_back`` months ending with ``month``, local time."""
    end = pd.Timestamp(f"{month}-01", tz=TIMEZONE) + pd.DateOffset(months=1)
    return end - pd.DateOffset(months=months_back), end


def kind_points(kind: str, cross_border: bool, params: Params) -> float:
    pts = float(getattr(params, f"credit_points_{kind}", 0.0))
    return pts + (params.credit_points_cross_border_extra if cross_border else 0.0)


def confirmed_violations(store: Any, month: str, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Leads whose case was closed within the credit window ending with ``month`` (lead, carrier, kind, …)."""
    start, end = month_bounds(month, params.credit_window_months)
    state = store.read("lead_state")
    closed = state[(state["phase"] == "closed") & state["filed_at"].notna() & state["closed_at"].notna()]
    closed = closed[(closed["closed_at"] >= start) & (closed["closed_at"] < end)]
    if closed.empty:
        return pd.DataFrame(columns=["lead_id", "carrier_id", "kind", "cross_border", "closed_at", "penalty_cny",
                                     "case_no"])
    leads = store.read_ids("leads", "lead_id", closed["lead_id"])
    leads = pd.DataFrame(leads).sort_values(["lead_id", "date"]).drop_duplicates("lead_id", keep="last")
    out = closed[["lead_id", "closed_at", "penalty_cny", "case_no"]].merge(
        leads[["lead_id", "carrier_id", "kind", "cross_border"]], on="lead_id")
    return out[out["carrier_id"].fillna("") != ""].sort_values(["carrier_id", "closed_at", "lead_id"])


def credit_list(store: Any, month: str, params: Params = DEFAULT_PARAMS,
                names: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per carrier with a confirmed violation in the window (``CSV_COLUMNS``), worst score first."""
    v = confirmed_violations(store, month, params)
    m_start, m_end = month_bounds(month)
    rows = []
    for carrier, g in v.groupby("carrier_id", sort=True):
        g = g.sort_values(["closed_at", "lead_id"])
        first = g.iloc[0]
        fine = first["penalty_cny"]
        exempt = first["kind"] in params.first_violation_exempt_kinds and (pd.isna(fine) or float(fine) == 0.0)
        points = [kind_points(k, bool(c) if pd.notna(c) else False, params)
                  for k, c in zip(g["kind"], g["cross_border"], strict=True)]
        if exempt:
            points[0] = 0.0
        deducted = float(sum(points))
        score = max(0.0, params.credit_full_points - deducted)
        listed = ("blacklist" if score <= params.credit_blacklist_points
                  else "watch" if score <= params.credit_watch_points else "normal")
        in_month = ((g["closed_at"] >= m_start) & (g["closed_at"] < m_end)).sum()
        rows.append({"carrier_id": carrier, "carrier_name": (names or {}).get(carrier, ""),
                     "violations_month": int(in_month), "violations_window": len(g), "points_deducted": deducted,
                     "score": score, "first_violation_no_penalty": bool(exempt), "list": listed,
                     "blacklist_at_or_below": params.credit_blacklist_points,
                     "watch_at_or_below": params.credit_watch_points, "lead_ids": " ".join(g["lead_id"])})
    frame = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    return frame.sort_values(["score", "carrier_id"], kind="stable").reset_index(drop=True)


def carrier_names(landing: str | Path | None) -> dict[str, str]:
    if landing is None or not (Path(landing) / "reference" / "carriers.csv").is_file():
        return {}
    from wastetrack.contract.quarantine import Quarantine
    from wastetrack.contract.reference import read_carriers

    c = read_carriers(Path(landing), Quarantine(), [])
    return dict(zip(c["carrier_id"], c["name"], strict=True))


def write_credit_list(store: Any, month: str, out_dir: str | Path, params: Params = DEFAULT_PARAMS,
                      landing: str | Path | None = None) -> dict[str, Any]:
    """``credit-<month>.xlsx`` (Chinese headers, a sheet of the rules) and ``credit-<month>.csv`` (the same
    rows, machine column names, UTF-8 with BOM for Excel) in ``out_dir``."""
    frame = credit_list(store, month, params, carrier_names(landing))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    xlsx, csv_path = out / f"credit-{month}.xlsx", out / f"credit-{month}.csv"
    wb = Workbook()
    ws = wb.active
    ws.title = "信用评价"
    start, end = month_bounds(month, params.credit_window_months)
    people = frame.assign(first_violation_no_penalty=frame["first_violation_no_penalty"].map({True: "是",
                                                                                             False: "否"}),
                          list=frame["list"].map(LIST_ZH))
    people.columns = list(ZH_COLUMNS)
    write_frame(ws, people, title=f"建筑垃圾运输企业信用评价 {month}（评价期 {start:%Y-%m-%d} 至 "
                                  f"{end - pd.Timedelta(days=1):%Y-%m-%d}）")
    rules = wb.create_sheet("评分规则")
    write_table(rules, ("规则", "取值"), [
        ("满分", params.credit_full_points),
        ("偷倒乱倒 扣分", params.credit_points_illegal_dump), ("未按联单消纳 扣分", params.credit_points_diverted),
        ("无联单运输 扣分", params.credit_points_unmanifested), ("轨迹中断 扣分", params.credit_points_track_gap),
        ("举报溯源 扣分", params.credit_points_report_trace),
        ("跨省加扣", params.credit_points_cross_border_extra),
        ("评价期（月）", params.credit_window_months),
        ("首违不罚适用类型", "、".join(params.first_violation_exempt_kinds)),
        ("黑名单分数线（≤）", params.credit_blacklist_points), ("重点关注分数线（≤）", params.credit_watch_points),
        ("确认违法", "主办县区立案并办结的线索（不成立或在办的不计）"),
    ], title="评分规则（wastetrack Params）")
    wb.save(xlsx)
    with csv_path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for r in frame.itertuples(index=False):
            w.writerow(["" if v is None else cell_value(v) for v in r])
    return {"month": month, "carriers": len(frame), "blacklisted": int((frame["list"] == "blacklist").sum()),
            "watched": int((frame["list"] == "watch").sum()),
            "first_violation": int(frame["first_violation_no_penalty"].sum()), "xlsx": str(xlsx),
            "csv": str(csv_path)}
