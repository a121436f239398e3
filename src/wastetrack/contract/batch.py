"""batch.json: the producer's promise that a day is complete, and its verification.

A batch is processed all or nothing (contract: "it never half-processes a
batch"), so ``read_batch`` refuses — with one clear sentence naming the file —
a batch that is not complete, lists a file that is missing or whose bytes or
record count differ from what was declared, or holds a data file it does not
list. Hashing and record counting share one pass over the bytes; records are
counted RFC 4180-style (a newline inside quotes does not end a record) with
numpy, so verifying ~10 GB of GPS does not parse it twice.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow.parquet as pq

from wastetrack import TIMEZONE
from wastetrack.coords import COORD_SYSTEMS

_CHUNK = 16 * 1024 * 1024
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")


class ContractError(Exception):
    """An input cannot be read as the contract says; the message names the file (and row) and why."""


class BatchError(ContractError):
    """The batch as a whole is refused: not complete, a file missing, or rows/sha256 not as declared."""


@dataclass(frozen=True)
class Batch:
    """A verified (or merely parsed, with ``verify=False``) ``batch.json``.

    ``files`` are the dicts of ``batch.json`` (``path`` relative to the batch
    directory, ``rows``, ``sha256``); ``coord_sys`` maps a file kind
    (``gps``, ``reports``) to its declared coordinate system.
    """

    date: str
    timezone: str
    coord_sys: dict[str, str]
    files: list[dict]
    dir: Path
    complete: bool

    def file(self, path: str) -> dict | None:
        """The entry for ``path`` (relative to the batch dir), or None when the batch does not list it."""
        for entry in self.files:
            if entry["path"] == path:
                return entry
        return None

    def gps_files(self) -> list[dict]:
        """GPS parts in path order (part-000, part-001, …)."""
        return sorted((f for f in self.files if f["path"].startswith("gps/")), key=lambda f: f["path"])

    def coord_sys_of(self, kind: str) -> str:
        return (self.coord_sys.get(kind) or "wgs84").strip().lower()


def _is_data_file(name: str) -> bool:
    return name.endswith(DATA_SUFFIXES)


def _refuse(date: str, why: str) -> BatchError:
    return BatchError(f"batch {date} refused: {why}")


def read_batch(landing: Path, date: str, verify: bool = True) -> Batch:
    """Parse ``LANDING/<date>/batch.json``; with ``verify`` refuse a batch that is not exactly as declared."""
    landing = Path(landing)
    bdir = landing / date
    manifest = bdir / "batch.json"
    if not manifest.is_file():
        raise _refuse(date, f"{date}/batch.json not found (no batch for this day yet)")
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(date, f"{date}/batch.json is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise _refuse(date, f"{date}/batch.json is not a JSON object")
    if str(raw.get("date", "")) != date:
        raise _refuse(
            date, f"{date}/batch.json declares date {raw.get('date')!r}, not the directory's {date}"
        )
    files = raw.get("files")
    if not isinstance(files, list):
        raise _refuse(date, f"{date}/batch.json has no 'files' list")
    clean: list[dict] = []
    seen: set[str] = set()
    for i, entry in enumerate(files):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise _refuse(date, f"{date}/batch.json files[{i}] has no path")
        rel = PurePosixPath(entry["path"].strip())
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise _refuse(
                date, f"{date}/batch.json files[{i}] path {entry['path']!r} leaves the batch directory"
            )
        path = rel.as_posix()
        if path in seen:
            raise _refuse(date, f"{path} listed twice in batch.json")
        seen.add(path)
        rows = entry.get("rows")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise _refuse(date, f"{path}: declared rows {rows!r} is not a non-negative integer")
        sha = entry.get("sha256")
        if not isinstance(sha, str) or len(sha.strip()) != 64:
            raise _refuse(date, f"{path}: declared sha256 {sha!r} is not a SHA-256 hex digest")
        clean.append({**entry, "path": path, "rows": rows, "sha256": sha.strip().lower()})
    coord_sys = raw.get("coord_sys") or {}
    if not isinstance(coord_sys, dict):
        raise _refuse(date, f"{date}/batch.json coord_sys is not an object")
    unknown = {
        k: v for k, v in coord_sys.items() if str(v).strip().lower() not in (*COORD_SYSTEMS, "cgcs2000")
    }
    if unknown:
        raise _refuse(date, f"{date}/batch.json coord_sys {unknown} not one of {', '.join(COORD_SYSTEMS)}")
    batch = Batch(
        date=date,
        timezone=str(raw.get("timezone") or TIMEZONE),
        coord_sys={str(k): str(v).strip().lower() for k, v in coord_sys.items()},
        files=clean,
        dir=bdir,
        complete=raw.get("complete") is True,
    )
    if verify:
        verify_batch(batch)
    return batch


def check_structure(batch: Batch) -> None:
    """The cheap half of verification (no hashing): complete, every listed file there, nothing unlisted.

    The streaming ingestion hashes and counts the GPS parts as it reads them, so a
    night checks this first and refuses a batch that cannot be right before it
    reads a single row.
    """
    date = batch.date
    if not batch.complete:
        raise _refuse(date, "complete is false — waiting for the producer")
    listed = {f["path"] for f in batch.files}
    present = sorted(
        p.relative_to(batch.dir).as_posix()
        for p in batch.dir.rglob("*")
        if p.is_file() and _is_data_file(p.name) and not p.name.startswith(".")
    )
    unlisted = [p for p in present if p not in listed]
    if unlisted:
        raise _refuse(
            date, f"{', '.join(unlisted)} present in the batch directory but not listed in batch.json"
        )
    for entry in batch.files:
        path = entry["path"]
        full = batch.dir / path
        if not full.is_file():
            raise _refuse(date, f"{path} listed in batch.json but missing")
        if not _is_data_file(full.name):
            raise _refuse(date, f"{path}: not a .csv, .csv.gz or .parquet file")


def verify_file(batch: Batch, entry: dict) -> None:
    """Refuse unless one listed file's bytes and records are exactly as declared."""
    sha, rows = hash_and_count(batch.dir / entry["path"])
    if sha != entry["sha256"]:
        raise _refuse(batch.date, f"{entry['path']} sha256 mismatch (declared {entry['sha256']}, found {sha})")
    if rows != entry["rows"]:
        raise _refuse(batch.date, f"{entry['path']} row count mismatch (declared {entry['rows']}, found {rows})")


def verify_batch(batch: Batch) -> None:
    """Refuse (BatchError) unless the batch is complete and every file is exactly as declared."""
    date = batch.date
    check_structure(batch)
    for entry in batch.files:
        path = entry["path"]
        full = batch.dir / path
        sha, rows = hash_and_count(full)
        if sha != entry["sha256"]:
            raise _refuse(date, f"{path} sha256 mismatch (declared {entry['sha256']}, found {sha})")
        if rows != entry["rows"]:
            raise _refuse(date, f"{path} row count mismatch (declared {entry['rows']}, found {rows})")


# ---------------------------------------------------------------- hashing and record counting


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def hash_and_count(path: Path) -> tuple[str, int]:
    """(sha256 of the stored bytes, number of records): Parquet rows, or CSV records excluding the header."""
    name = path.name
    if name.endswith(".parquet"):
        digest = hashlib.sha256()
        for chunk in _read_chunks(path):
            digest.update(chunk)
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:  # pyarrow raises several types for a corrupt footer
            raise ContractError(f"{path}: not a readable Parquet file ({exc})") from exc
        return digest.hexdigest(), int(rows)
    if name.endswith(".gz"):
        digest = hashlib.sha256()
        for chunk in _read_chunks(path):
            digest.update(chunk)
        try:
            with gzip.open(path, "rb") as fh:
                rows = count_csv_records(iter(lambda: fh.read(_CHUNK), b""))
        except (OSError, EOFError) as exc:
            raise ContractError(f"{path}: not a readable gzip file ({exc})") from exc
        return digest.hexdigest(), rows
    digest = hashlib.sha256()

    def tee() -> Iterator[bytes]:
        for chunk in _read_chunks(path):
            digest.update(chunk)
            yield chunk

    rows = count_csv_records(tee())
    return digest.hexdigest(), rows


def count_csv_records(chunks: Iterable[bytes]) -> int:
    """Records of an RFC 4180 CSV (header excluded) from its bytes, as pyarrow would read them.

    A newline ends a record only outside quotes; quote parity is a running
    cumsum (an escaped quote ``""`` flips it twice). Blank lines (also a lone
    ``\\r``) are not records, as in pyarrow's default ``ignore_empty_lines``.
    """
    parity = 0  # quotes seen so far, mod 2
    since_last = 0  # bytes since the last record end
    last_byte = 10
    records = 0
    for chunk in chunks:
        if not chunk:
            continue
        arr = np.frombuffer(chunk, dtype=np.uint8)
        newline = arr == 10
        if parity == 0 and b'"' not in chunk:
            n_quotes = 0
            ends = np.flatnonzero(newline)
        else:
            # uint8 cumsum wraps at 256 but keeps the parity bit, at 1/8 of the memory of int64.
            quotes = np.cumsum(arr == 34, dtype=np.uint8)
            n_quotes = int(quotes[-1])
            ends = np.flatnonzero(newline & (((quotes + parity) & 1) == 0))
        if ends.size:
            starts = np.empty_like(ends)
            starts[0] = -1
            starts[1:] = ends[:-1]
            seg_len = ends - starts - 1
            seg_len[0] += since_last
            prev = np.empty(ends.size, dtype=np.int64)
            prev[1:] = arr[np.maximum(ends[1:] - 1, 0)]
            prev[0] = arr[ends[0] - 1] if ends[0] > 0 else last_byte
            blank = (seg_len == 0) | ((seg_len == 1) & (prev == 13))
            records += int((~blank).sum())
            since_last = arr.size - ends[-1] - 1
        else:
            since_last += arr.size
        parity = (n_quotes + parity) & 1
        last_byte = int(arr[-1])
    if since_last > 1 or (since_last == 1 and last_byte != 13):
        records += 1
    return max(records - 1, 0)
