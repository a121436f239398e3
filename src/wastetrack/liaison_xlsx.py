"""The spreadsheet each liaison gets with its leads, and reading back the reply sheet it returns.

Why a spreadsheet: county offices answer in Excel/WPS, offline, and forward files; a reply
form in the same workbook as the leads, pre-filled with the lead and liaison ids and a
drop-down of the Chinese statuses, is what they can fill in without a system to log into.
Sheets: ``线索清单`` (the leads), ``回复表`` (one row per lead to fill in and send back),
``填写说明`` (how). ``read_replies`` accepts the status as its Chinese label or its code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.datavalidation import DataValidation

from wastetrack import TIMEZONE
from wastetrack.lifecycle import STATUS_ZH, role_zh
from wastetrack.xlsx import write_table

LEADS_SHEET, REPLY_SHEET, HELP_SHEET = "线索清单", "回复表", "填写说明"
KIND_ZH = {"illegal_dump": "偷倒乱倒", "diverted": "未按联单消纳", "unmanifested": "无联单运输",
           "track_gap": "轨迹中断", "report_trace": "举报溯源"}
LEAD_HEADERS = ("线索编号", "线索类型", "本单位角色", "发生时间", "发生地", "来源地", "跨省", "车辆号牌",
                "运输企业统一社会信用代码", "评分", "线索单文件", "签收期限", "核查结论期限")
#: reply sheet: header → field
REPLY_FIELDS = {"线索编号": "lead_id", "联络员编号": "liaison_id", "状态": "status", "回复时间": "at",
                "立案编号": "case_no", "罚款金额（元）": "penalty_cny", "移送/协查县区代码": "to_adcode",
                "说明": "note"}
STATUS_OF = {**{v: k for k, v in STATUS_ZH.items()}, **{k: k for k in STATUS_ZH}}


@dataclass
class WorkbookLead:
    """One row of a liaison's workbook (values already in Chinese where they are for people)."""

    lead_id: str
    kind: str
    role: str
    start: Any
    place: str
    origin: str
    cross_border: bool
    vehicle_id: str
    carrier_id: str
    score: float | None
    sheet: str
    receipt_due: str
    verdict_due: str


def write_liaison_workbook(path: str | Path, liaison_id: str, liaison_label: str, night: str,
                           leads: Sequence[WorkbookLead], note: str = "") -> Path:
    """The liaison's workbook (see the module doc); returns its path."""
    wb = Workbook()
    ws = wb.active
    ws.title = LEADS_SHEET
    title = f"{night} 线索清单 — {liaison_label}" + (f"（{note}）" if note else "")
    write_table(ws, LEAD_HEADERS, (
        (x.lead_id, KIND_ZH.get(x.kind, x.kind), role_zh(x.role), _local(x.start),
         x.place, x.origin, "是" if x.cross_border else "否", x.vehicle_id, x.carrier_id,
         None if x.score is None else round(float(x.score), 2), x.sheet, x.receipt_due, x.verdict_due)
        for x in leads), title=title)
    rs = wb.create_sheet(REPLY_SHEET)
    header_row = write_table(rs, list(REPLY_FIELDS), ((x.lead_id, liaison_id, None, None, None, None, None, None)
                                                      for x in leads))
    statuses = ",".join(STATUS_ZH.values())
    dv = DataValidation(type="list", formula1=f'"{statuses}"', allow_blank=True,
                        error="请从列表中选择状态", errorTitle="状态")
    rs.add_data_validation(dv)
    dv.add(f"C{header_row + 1}:C{header_row + max(len(leads), 1) + 200}")
    for col, width in (("C", 14), ("D", 20), ("E", 24), ("H", 50)):
        rs.column_dimensions[col].width = width
    hs = wb.create_sheet(HELP_SHEET)
    write_table(hs, ("状态", "代码", "何时填写", "需要填写"), HELP_ROWS, title="回复表填写说明")
    hs.cell(row=len(HELP_ROWS) + 5, column=1,
            value="每条线索一行；同一线索有新进展时在下方另起一行。回复时间留空则以导入时间为准。"
                  "填好后将本文件原样回复至发件邮箱。")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


HELP_ROWS = (
    ("已签收", "received", "收到线索后", "—"),
    ("已立案", "case_filed", "核查属实并立案", "立案编号"),
    ("不成立", "not_established", "核查不属实", "说明：不成立的理由"),
    ("已办结", "closed", "案件办结", "罚款金额（元），无处罚填 0"),
    ("移送", "transferred", "不属本辖区管辖", "移送/协查县区代码：有管辖权的县区代码"),
    ("委托调查取证", "assist_requested", "请其他县区协助核查", "移送/协查县区代码：被委托县区代码；说明：委托事项"),
    ("协查回复", "assist_replied", "答复其他县区的委托", "移送/协查县区代码：委托方县区代码；说明：书面回复"),
)


def _local(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    t = pd.Timestamp(value)
    return (t.tz_convert(TIMEZONE) if t.tzinfo else t).tz_localize(None).to_pydatetime()


@dataclass
class ReplyRow:
    row: int                       # the spreadsheet's row number
    values: dict[str, Any]         # field → cell value (raw)


def read_replies(path: str | Path) -> list[ReplyRow]:
    """The filled rows of the ``回复表`` sheet (rows whose status is empty are not replies: skipped).

    Raises ValueError (one line) when the file is not such a workbook: not XLSX, no reply sheet,
    headers missing.
    """
    try:
        wb = load_workbook(Path(path), read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException…
        raise ValueError(f"{Path(path).name}: not an XLSX workbook ({type(exc).__name__})") from None
    try:
        if REPLY_SHEET not in wb.sheetnames:
            raise ValueError(f"{Path(path).name}: no sheet {REPLY_SHEET!r} (sheets: {', '.join(wb.sheetnames)})")
        rows = list(wb[REPLY_SHEET].iter_rows(values_only=True))
    finally:
        wb.close()
    header_at = next((i for i, r in enumerate(rows) if r and "线索编号" in [str(c).strip() for c in r if c]), None)
    if header_at is None:
        raise ValueError(f"{Path(path).name}: {REPLY_SHEET} has no header row with 线索编号")
    header = [str(c).strip() if c is not None else "" for c in rows[header_at]]
    missing = [h for h in ("线索编号", "联络员编号", "状态") if h not in header]
    if missing:
        raise ValueError(f"{Path(path).name}: {REPLY_SHEET} lacks column(s) {', '.join(missing)}")
    cols = {REPLY_FIELDS[h]: j for j, h in enumerate(header) if h in REPLY_FIELDS}
    out = []
    for i, r in enumerate(rows[header_at + 1:], start=header_at + 2):
        vals = {f: (r[j] if j < len(r) else None) for f, j in cols.items()}
        if vals.get("status") in (None, ""):
            continue
        out.append(ReplyRow(i, vals))
    return out
