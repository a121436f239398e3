"""Small helpers for the XLSX files county offices open (openpyxl): a table sheet with Chinese headers.

One style for every workbook the liaison loop writes (the liaison's leads and reply sheet, the
credit list, the monthly report): bold header row, frozen, filter on, columns sized to their
text (CJK characters count double), values written as plain cells (no formulas: a value from
a reply or a report is data, never something a spreadsheet evaluates).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
MAX_WIDTH = 60


def _width(value: Any) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def cell_value(value: Any) -> Any:
    """A value openpyxl writes as data: text that looks like a formula is kept as text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # local wall time: Excel has no time zones
    if isinstance(value, (list, tuple)):
        return "、".join(map(str, value))
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and len(value) > 1:
        return "'" + value  # never a formula (CSV/XLSX injection)
    if hasattr(value, "item"):
        return value.item()
    return value


def write_table(ws: Worksheet, headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                title: str | None = None, number_formats: dict[int, str] | None = None) -> int:
    """Write ``headers`` and ``rows`` (optionally under a one-line title); returns the header's row number."""
    r0 = 1
    if title:
        ws.cell(row=1, column=1, value=title).font = Font(bold=True, size=13)
        r0 = 3
    widths = [_width(h) for h in headers]
    for j, h in enumerate(headers, start=1):
        c = ws.cell(row=r0, column=j, value=h)
        c.font, c.fill = Font(bold=True), HEADER_FILL
        c.alignment = Alignment(vertical="center", wrap_text=False)
    n = 0
    for i, row in enumerate(rows, start=r0 + 1):
        n += 1
        for j, v in enumerate(row, start=1):
            c = ws.cell(row=i, column=j, value=cell_value(v))
            if isinstance(c.value, dt.datetime):
                c.number_format = "yyyy-mm-dd hh:mm"
            elif number_formats and j in number_formats:
                c.number_format = number_formats[j]
            if j <= len(widths):
                widths[j - 1] = max(widths[j - 1], min(_width(c.value), MAX_WIDTH))
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = max(8, min(w + 2, MAX_WIDTH))
    ws.freeze_panes = ws.cell(row=r0 + 1, column=1)
    if n:
        ws.auto_filter.ref = f"A{r0}:{get_column_letter(len(headers))}{r0 + n}"
    return r0


def write_frame(ws: Worksheet, frame: pd.DataFrame, *, title: str | None = None) -> int:
    """A DataFrame as a table (its column names are the headers: give them in Chinese)."""
    return write_table(ws, [str(c) for c in frame.columns], frame.itertuples(index=False, name=None), title=title)
