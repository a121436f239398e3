"""Fleet multiplier: a big landing directory from a small simulated one, for benchmarks.

Simulating 30,000 trucks truck by truck would take longer than the night it
benchmarks. A real delta night is, to the pipeline, many fleets like the
simulated one working at once. So ``replicate`` copies every GPS part of a
simulated landing ``factor`` times, each copy under new plates (a copy's plate
keeps the province and letter, with a 6-character tail no simulated plate has),
new terminal ids and new manifest ids; reports are kept once (a real night has
hundreds, not hundreds of thousands), which also puts many candidate trucks
next to each report — the worst case of report tracing. Parts are written in the
base part's format (CSV, csv.gz, Parquet; the times stay in their mixed
formats) or all as Parquet, at most ``rows_per_part`` rows each, with a fresh
``batch.json`` (rows and SHA-256).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from wastetrack.contract.batch import hash_and_count
from wastetrack.contract.columns import _normalise_plate_arrow
from wastetrack.contract.tables import _csv_header

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, O: as on plates
ROWS_PER_PART = 5_000_000


def copy_plate(plate: str, copy: int, index: int) -> str:
    """The plate of vehicle ``index`` in copy ``copy`` (≥ 1): same province and letter, a 6-char tail."""
    if len(plate) < 2:
        return plate
    k = copy * 1_000_000 + index
    tail = []
    for _ in range(6):
        k, r = divmod(k, len(_ALPHABET))
        tail.append(_ALPHABET[r])
    return plate[:2] + "".join(reversed(tail))


def _read_csv_strings(path: Path) -> pa.Table:
    """Every column as the exact text it had (malformed records are dropped: copies of them add nothing)."""
    names = _csv_header(path, str(path))
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda r: "skip"),
    )


def _read(path: Path) -> pa.Table:
    return pq.read_table(path) if path.name.endswith(".parquet") else _read_csv_strings(path)


class PlateBook:
    """Normalised base plates → index, so every copy of a vehicle gets the same new plate in every file."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def column_for_copy(self, column: pa.ChunkedArray, copy: int) -> pa.Array:
        col = column.cast(pa.string()) if column.type != pa.string() else column
        enc = pc.dictionary_encode(col).combine_chunks()
        norm = _normalise_plate_arrow(pa.chunked_array([enc.dictionary])).to_pylist()
        new = []
        for raw, n in zip(enc.dictionary.to_pylist(), norm, strict=True):
            if copy == 0 or not n or len(n) < 7:
                new.append(raw)  # the base fleet keeps its spellings; garbage stays garbage
                continue
            i = self.index.setdefault(n, len(self.index))
            new.append(copy_plate(n, copy, i))
        return pc.take(pa.array(new, pa.string()), enc.indices)


def _copies(table: pa.Table, plates: PlateBook, first: int, last: int) -> Iterator[pa.Table]:
    for c in range(first, last):
        yield table.set_column(table.schema.get_field_index("vehicle_id"), "vehicle_id",
                               plates.column_for_copy(table.column("vehicle_id"), c))


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
        return
    if fmt == "csv.gz":
        with gzip.open(path, "wb", compresslevel=1) as fh:
            pacsv.write_csv(table, fh)
        return
    pacsv.write_csv(table, path)


def _fmt(name: str) -> str:
    return "csv.gz" if name.endswith(".csv.gz") else ("parquet" if name.endswith(".parquet") else "csv")


def replicate(base: Path, out: Path, factor: int, parquet_only: bool = False,
              rows_per_part: int = ROWS_PER_PART) -> dict[str, int]:
    """Write ``out`` = ``base`` with its fleet ×``factor``; returns fixes (rows) written per day."""
    base, out = Path(base), Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base / "reference", out / "reference")
    plates = PlateBook()
    days = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name != "reference")
    rows_by_day: dict[str, int] = {}
    for day in days:
        src, dst = base / day, out / day
        dst.mkdir(parents=True)
        meta = json.loads((src / "batch.json").read_text(encoding="utf-8"))
        n_out = 0
        rows = 0
        for f in sorted(meta["files"], key=lambda f: f["path"]):
            if not f["path"].startswith("gps/"):
                continue
            table = _read(src / f["path"])
            fmt = "parquet" if parquet_only else _fmt(f["path"])
            per_file = max(rows_per_part // max(table.num_rows, 1), 1)
            for first in range(0, factor, per_file):
                last = min(first + per_file, factor)
                part = pa.concat_tables(list(_copies(table, plates, first, last)))
                _write(part, dst / "gps" / f"part-{n_out:04d}.{fmt}", fmt)
                n_out += 1
                rows += part.num_rows
        rows_by_day[day] = rows
        _replicate_manifests(src, dst, plates, factor)
        for name in ("reports.csv", "feedback.csv"):
            if (src / name).exists():
                shutil.copy2(src / name, dst / name)
        files = []
        for p in sorted(dst.rglob("*")):
            if p.is_file() and p.name != "batch.json":
                sha, n = hash_and_count(p)
                files.append({"path": p.relative_to(dst).as_posix(), "rows": n, "sha256": sha})
        meta["files"] = files
        (dst / "batch.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    _replicate_vehicles(base, out, plates, factor)
    return rows_by_day


def _replicate_manifests(src: Path, dst: Path, plates: PlateBook, factor: int) -> None:
    table = _read_csv_strings(src / "manifests.csv")
    parts = []
    for c in range(factor):
        t = next(_copies(table, plates, c, c + 1))
        if c:
            ids = pc.binary_join_element_wise(t.column("manifest_id"), pa.scalar(f"X{c:04d}"), "-")
            t = t.set_column(t.schema.get_field_index("manifest_id"), "manifest_id", ids)
        parts.append(t)
    pacsv.write_csv(pa.concat_tables(parts), dst / "manifests.csv")


def _replicate_vehicles(base: Path, out: Path, plates: PlateBook, factor: int) -> None:
    table = _read_csv_strings(base / "reference" / "vehicles.csv")
    parts = [table]
    for c in range(1, factor):
        t = next(_copies(table, plates, c, c + 1))
        term = pc.binary_join_element_wise(pa.scalar(f"9{c:04d}"), t.column("terminal_id"), "")
        parts.append(t.set_column(t.schema.get_field_index("terminal_id"), "terminal_id", term))
    pacsv.write_csv(pa.concat_tables(parts), out / "reference" / "vehicles.csv")
