"""Rejected input rows, kept with their reason and original values, never silently dropped.

Rows in = rows accepted + rows quarantined for every input file (run.json
reports it), and a producer fixing its feed needs the row number and the raw
values, so each rejected row is kept as (file, row, reason, raw JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from wastetrack.values import jsonable

QUARANTINE_COLUMNS = ("file", "row", "reason", "raw")
_UNSAFE = re.compile(r"[^0-9A-Za-z._\-\u4e00-\u9fff]+")


def raw_json(rows: pd.DataFrame) -> list[str]:
    """One JSON object per row of the original values.

    pandas' C JSON writer does the bulk (a broken feed can have millions of bad
    rows); the per-value Python path is only a fallback for exotic objects.
    """
    if len(rows) == 0:
        return []
    rows = rows.copy()
    rows.columns = [str(c) for c in rows.columns]
    if rows.columns.is_unique:
        try:
            text = rows.to_json(
                orient="records", lines=True, force_ascii=False, date_format="iso", default_handler=str
            )
            lines = text.rstrip("\n").split("\n")
            if len(lines) == len(rows):
                return lines
        except (TypeError, ValueError, OverflowError):
            pass
    return [
        json.dumps({str(k): jsonable(v) for k, v in rec.items()}, ensure_ascii=False)
        for rec in rows.to_dict(orient="records")
    ]


def safe_name(file: str) -> str:
    """'2026-11-20/gps/part-000.csv' → '2026-11-20__gps__part-000.csv.csv' (one flat dir, no collisions)."""
    return _UNSAFE.sub("_", file.replace("/", "__")) + ".csv"


class Quarantine:
    """Collects rejected rows of all files of a night; ``write`` puts them under ``quarantine/``."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(self, file: str, rows: pd.DataFrame, row_numbers: Sequence[int], reasons: Sequence[str]) -> None:
        """Record rejected ``rows`` of ``file`` (path relative to LANDING) with 1-based record numbers."""
        n = len(rows)
        if len(row_numbers) != n or len(reasons) != n:
            raise ValueError("rows, row_numbers and reasons must have the same length")
        if n == 0:
            return
        self._parts.append(
            pd.DataFrame(
                {
                    "file": pd.array([file] * n, dtype="str"),
                    "row": np.asarray(row_numbers, dtype=np.int64),
                    "reason": pd.array(list(reasons), dtype="str"),
                    "raw": pd.array(raw_json(rows), dtype="str"),
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        """All rejected rows: columns file, row, reason, raw; in the order files were read."""
        if not self._parts:
            return pd.DataFrame(
                {
                    "file": pd.Series(dtype="str"),
                    "row": pd.Series(dtype="int64"),
                    "reason": pd.Series(dtype="str"),
                    "raw": pd.Series(dtype="str"),
                }
            )
        return pd.concat(self._parts, ignore_index=True)

    def counts(self) -> dict[str, int]:
        """Rejected rows per file."""
        f = self.frame()
        return {str(k): int(v) for k, v in f.groupby("file", sort=False).size().items()}

    def reason_counts(self) -> pd.DataFrame:
        """(file, reason kind, n) with the value part of reasons stripped: for run.json and reports."""
        f = self.frame()
        kinds = (
            f["reason"]
            .str.split("; ")
            .explode()
            .str.replace(r"\s*'[^']*'", "", regex=True)
            .str.replace(r"\s*\((?!0,0\))[^)]*\)$", "", regex=True)
        )
        out = pd.DataFrame({"file": f["file"].reindex(kinds.index), "reason": kinds})
        return out.groupby(["file", "reason"], sort=True).size().rename("n").reset_index()

    def write(self, out_dir: Path) -> list[Path]:
        """Write one CSV per input file under ``out_dir/quarantine/`` (``out_dir`` = OUT/<date>).

        If ``out_dir`` already is a directory named ``quarantine`` it is used as is.
        The directory is always created (an empty one says "nothing rejected").
        Written atomically per file (tmp + rename) so a crashed run leaves no half file.
        """
        out_dir = Path(out_dir)
        qdir = out_dir if out_dir.name == "quarantine" else out_dir / "quarantine"
        qdir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        frame = self.frame()
        for file, part in frame.groupby("file", sort=True):
            target = qdir / safe_name(str(file))
            tmp = target.with_name(target.name + ".tmp")
            part.sort_values("row", kind="stable").to_csv(tmp, index=False, encoding="utf-8")
            tmp.replace(target)
            written.append(target)
        return written

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)
