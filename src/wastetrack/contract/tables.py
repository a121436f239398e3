"""Loading a contract file as an Arrow table and turning validated columns into a model frame.

CSV is read by pyarrow with every column as a string (so a bad value in one row
is quarantined, not fatal to the file) and parsed column-wise in
``columns``; Parquet keeps its native types, which the column parsers accept.
``finish`` is the single place where a file's rejected rows go to the
quarantine and its ``FileCount`` is recorded, so rows in = accepted +
quarantined holds by construction for every reader.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from wastetrack.contract.batch import ContractError
from wastetrack.contract.columns import RowErrors
from wastetrack.contract.quarantine import Quarantine

_BLOCK = 32 * 1024 * 1024


@dataclass
class FileCount:
    """Rows of one input file; ``path`` is relative to LANDING ("2026-11-20/gps/part-000.csv")."""

    path: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int


@dataclass
class RawTable:
    """A file as read: the table (CSV: all strings), 1-based record number per row, unsplittable records."""

    rel: str
    table: pa.Table
    rows: np.ndarray
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (record, reason, text)

    @property
    def rows_in(self) -> int:
        return self.table.num_rows + len(self.malformed)

    def column(self, name: str) -> pa.ChunkedArray:
        """The column, or an all-null string column when an optional column is absent."""
        if name in self.table.column_names:
            return self.table.column(name)
        return pa.chunked_array([pa.nulls(self.table.num_rows, pa.string())])

    def require(self, names: Iterable[str]) -> None:
        missing = [c for c in names if c not in self.table.column_names]
        if missing:
            raise ContractError(f"{self.rel}: missing required column(s) {', '.join(missing)}")


def _clean_names(names: Sequence[str], rel: str) -> list[str]:
    clean = [str(n).replace("\ufeff", "").strip() for n in names]
    dupes = sorted({n for n in clean if clean.count(n) > 1})
    if dupes:
        raise ContractError(f"{rel}: duplicate column name(s) {', '.join(dupes)} in the header")
    return clean


def _csv_header(path: Path, rel: str) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:  # type: ignore[operator]
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise ContractError(f"{rel}: cannot read the CSV header ({exc})") from exc
    if not header or all(not h.strip() for h in header):
        raise ContractError(f"{rel}: empty file (no header row)")
    return _clean_names(header, rel)


def _read_csv(path: Path, names: list[str], use_threads: bool) -> tuple[pa.Table, list]:
    bad: list = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=1, use_threads=use_threads, block_size=_BLOCK
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, bad


def read_csv_strings(path: Path, rel: str) -> RawTable:
    """A CSV (or .csv.gz) with every column as string; records with the wrong field count are set aside."""
    names = _csv_header(path, rel)
    try:
        table, bad = _read_csv(path, names, use_threads=True)
        if bad and any(b[0] is None for b in bad):
            # Only the single-threaded reader knows record numbers; rare path (a malformed feed).
            table, bad = _read_csv(path, names, use_threads=False)
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise ContractError(f"{rel}: cannot read as UTF-8 CSV ({exc})") from exc
    n_total = table.num_rows + len(bad)
    rows = np.arange(1, n_total + 1, dtype=np.int64)
    malformed: list[tuple[int, str, str]] = []
    if bad:
        # pyarrow numbers rows from 1 with the header as row 1 → record number = number - 1.
        recs = np.array([b[0] - 1 for b in bad], dtype=np.int64)
        rows = np.setdiff1d(rows, recs)
        if rows.size != table.num_rows:  # blank lines counted by pyarrow: fall back to read order
            rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
        malformed = [
            (int(r), f"malformed record: {b[2]} fields, expected {b[1]}", str(b[3]))
            for r, b in zip(recs, bad, strict=True)
        ]
    return RawTable(rel, table, rows, malformed)


def read_parquet(path: Path, rel: str) -> RawTable:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ContractError(f"{rel}: cannot read Parquet ({exc})") from exc
    table = table.rename_columns(_clean_names(table.column_names, rel))
    return RawTable(rel, table, np.arange(1, table.num_rows + 1, dtype=np.int64))


def read_any(path: Path, rel: str) -> RawTable:
    if path.name.endswith(".parquet"):
        return read_parquet(path, rel)
    return read_csv_strings(path, rel)


def empty_raw(rel: str, columns: Sequence[str]) -> RawTable:
    """A zero-row table with the given columns: absent optional files go through the same parsers."""
    table = pa.table({c: pa.array([], pa.string()) for c in columns})
    return RawTable(rel, table, np.zeros(0, dtype=np.int64))


def extras(raw: RawTable, model_columns: Sequence[str]) -> dict[str, pd.Series]:
    """Input columns the model does not know, preserved (contract: extra columns are never an error)."""
    out: dict[str, pd.Series] = {}
    for name in raw.table.column_names:
        if name in model_columns or name in ("source_file", "source_row"):
            continue
        col = raw.table.column(name)
        out[name] = pd.Series(col.to_pandas()).reset_index(drop=True)
    return out


def finish(
    raw: RawTable,
    errors: RowErrors,
    frame: pd.DataFrame,
    quarantine: Quarantine,
    counts: list,
    source_file: object | None = None,
) -> pd.DataFrame:
    """Quarantine rejected rows, record the FileCount, return the accepted rows with lineage columns."""
    idx, reasons = errors.collected()
    if idx.size:
        rejected = raw.table.take(pa.array(idx)).to_pandas()
        quarantine.add(raw.rel, rejected, raw.rows[idx].tolist(), reasons)
    if raw.malformed:
        quarantine.add(
            raw.rel,
            pd.DataFrame({"record": [m[2] for m in raw.malformed]}),
            [m[0] for m in raw.malformed],
            [m[1] for m in raw.malformed],
        )
    keep = ~errors.bad
    n_keep = int(keep.sum())
    frame = frame.loc[keep].reset_index(drop=True) if n_keep != len(frame) else frame.reset_index(drop=True)
    frame["source_file"] = source_file if source_file is not None else raw.rel
    frame["source_row"] = raw.rows[keep]
    counts.append(FileCount(raw.rel, raw.rows_in, n_keep, raw.rows_in - n_keep))
    return frame


def duplicates(ids: pa.ChunkedArray | np.ndarray | pd.Series, errors: RowErrors, name: str) -> None:
    """Flag every repeat of an id among rows still accepted (keep the first): one record per id."""
    values = pd.Series(
        np.asarray(ids.to_numpy(zero_copy_only=False) if isinstance(ids, pa.ChunkedArray) else ids)
    )
    alive = ~errors.bad
    dup = np.zeros(len(values), dtype=bool)
    dup[alive] = values[alive].duplicated(keep="first").to_numpy()
    errors.flag(dup, f"duplicate {name}")
