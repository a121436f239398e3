"""Streaming ingestion: GPS parts in, vehicle shards (compact Parquet) out, each part hashed on the way.

A delta night is ~10^8 fixes; holding it as one pandas frame costs 60–85 GB.
So each GPS part is read in Arrow record batches (CSV, csv.gz and Parquet
alike), every batch is validated by the same column parsers as the in-memory
reader (``contract.readers.parse_gps``: a row is accepted or quarantined for the
same reason either way), and its accepted rows are appended to one Parquet file
per shard, in compact types: the vehicle as its stable integer key, time as
int64 microseconds (UTC), coordinates as float64 WGS-84, speed and heading as
float32, sensors as int8 (-1 unknown). About 44 bytes a fix instead of ~700.

The batch's promise (``batch.json``: rows and SHA-256 per file) is checked
while streaming — the bytes are hashed as the parser consumes them, or, for
Parquet (read by random access), in a thread beside the reader — and a part
that breaks it raises ``BatchError`` after its stream ends. Nothing is
published from a refused batch: shards are scratch files of the run.

Each part is independent, so parts are ingested in parallel (a process pool,
or Airflow mapped tasks) and each shard's worker later reads its files from
every part.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from wastetrack.contract.batch import BatchError, ContractError
from wastetrack.contract.quarantine import Quarantine
from wastetrack.contract.readers import parse_gps
from wastetrack.contract.tables import RawTable, _clean_names, _csv_header
from wastetrack.partition import shard_of, vehicle_keys

#: Arrow record batch size: ~32 MB of CSV text, a few hundred thousand fixes
CSV_BLOCK_BYTES = 32 * 1024 * 1024
PARQUET_BATCH_ROWS = 400_000
_READ_CHUNK = 4 * 1024 * 1024

#: The shard files' schema: everything a per-vehicle stage needs, and the fix's lineage.
SHARD_SCHEMA = pa.schema(
    [
        ("vkey", pa.int64()),  # partition.vehicle_key of the normalised plate
        ("ts", pa.int64()),  # microseconds since the epoch, UTC
        ("lon", pa.float64()),  # WGS-84
        ("lat", pa.float64()),
        ("speed_kmh", pa.float32()),
        ("heading", pa.float32()),
        ("loaded", pa.int8()),  # 1 loaded, 0 empty, -1 unknown
        ("tipping", pa.int8()),
        ("src", pa.int16()),  # index of the input file in the night's file list
        ("row", pa.int64()),  # record number in that file (1-based, header excluded)
    ]
)
#: lz4, and dictionary pages only for the vehicle key: dictionary-encoding times and coordinates (the
#: default) is wasted work — 3.5× slower to write and 6× slower to read, measured on 2 M fixes
SHARD_WRITE_OPTIONS: dict = {"compression": "lz4", "use_dictionary": ["vkey"]}


@dataclass
class PartSpec:
    """One input file to ingest: where it is, what batch.json promised, and how to read it."""

    path: str  # absolute path of the file
    rel: str  # path relative to LANDING, as quarantine and run.json name it
    rows: int  # declared rows
    sha256: str  # declared hash
    src: int  # index in the night's source list
    timezone: str
    coord_sys: str
    tag: str  # file stem of this part's shard files: "p000", "ctx-p003"
    keep_since_us: int | None = None  # context parts: drop fixes before this (still counted)
    report_counts: bool = True  # context parts were counted on their own night
    kind: str = "gps"  # "gps": a contract GPS part; "state": a carried tail in the shard schema
    floors: str = ""  # Parquet (vkey, floor_us): fixes older than their vehicle's floor are only traced
    default_floor_us: int | None = None  # the floor of vehicles not in ``floors``


@dataclass
class PartResult:
    """What ingesting one part produced (a small JSON next to the shards)."""

    tag: str
    rel: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    rows_written: int
    sha256: str
    report_counts: bool
    plates: dict[str, str] = field(default_factory=dict)  # str(vkey) → plate
    fixes_by_shard: list[int] = field(default_factory=list)
    quarantine_file: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> PartResult:
        return cls(**json.loads(text))


class _HashingReader(io.RawIOBase):
    """A raw file that hashes every byte the CSV parser (or the gzip decoder) pulls through it."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
        n = self._fh.readinto(buf)
        if n:
            self.digest.update(memoryview(buf)[:n])
        return n

    def finish(self) -> str:
        """Hash whatever the parser did not pull (a trailing blank line), close, return the digest.

        The parser's stream closes this object when it is done; the file itself stays
        open until here so no byte escapes the hash.
        """
        with self._fh:
            while chunk := self._fh.read(_READ_CHUNK):
                self.digest.update(chunk)
        return self.digest.hexdigest()


def _hash_file(path: Path, out: dict) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)  # releases the GIL: runs beside the Parquet decoder
    out["sha256"] = digest.hexdigest()


def _record_numbers(valid_idx: np.ndarray, malformed: np.ndarray) -> np.ndarray:
    """1-based record numbers of valid records (1-based among valid ones) around malformed records.

    ``malformed`` are the record numbers of rows the CSV parser set aside, sorted.
    Before malformed record ``m_i`` lie ``m_i - 1 - i`` valid ones, so valid
    record ``j`` is record ``j + #{i: m_i - 1 - i < j}``.
    """
    if malformed.size == 0:
        return valid_idx
    before = malformed - 1 - np.arange(malformed.size)
    return valid_idx + np.searchsorted(before, valid_idx, side="left")


def _csv_stream(path: Path, rel: str) -> tuple[Iterator[tuple[pa.RecordBatch, np.ndarray]], _HashingReader, list]:
    """Record batches of a CSV/csv.gz with all columns as strings, and their record numbers.

    Single-threaded per file on purpose: parts run in parallel processes, and only
    the single-threaded parser reports the record numbers of malformed rows.
    """
    names = _csv_header(path, rel)
    raw = _HashingReader(path)
    buffered = io.BufferedReader(raw, buffer_size=_READ_CHUNK)
    stream = pa.PythonFile(buffered, mode="r")
    if path.name.endswith(".gz"):
        stream = pa.CompressedInputStream(stream, "gzip")
    malformed: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        number = -1 if row.number is None else row.number - 1  # pyarrow counts the header as row 1
        malformed.append((number, f"malformed record: {row.actual_columns} fields, expected "
                                  f"{row.expected_columns}", str(row.text)))
        return "skip"

    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, use_threads=False, block_size=CSV_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raw.close()
        raise ContractError(f"{rel}: cannot read as UTF-8 CSV ({exc})") from exc

    def batches() -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        seen = 0
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (pa.ArrowInvalid, OSError, EOFError) as exc:
                    raise ContractError(f"{rel}: cannot read as UTF-8 CSV ({exc})") from exc
                bad = np.array(sorted(m[0] for m in malformed), dtype=np.int64)
                idx = np.arange(seen + 1, seen + batch.num_rows + 1, dtype=np.int64)
                seen += batch.num_rows
                yield batch, _record_numbers(idx, bad)
        finally:
            reader.close()

    return batches(), raw, malformed


def _parquet_stream(path: Path, rel: str) -> tuple[Iterator[tuple[pa.RecordBatch, np.ndarray]], int]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ContractError(f"{rel}: cannot read Parquet ({exc})") from exc
    names = _clean_names(pf.schema_arrow.names, rel)

    def batches() -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        seen = 0
        try:
            for b in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                b = pa.RecordBatch.from_arrays(b.columns, names=names)
                idx = np.arange(seen + 1, seen + b.num_rows + 1, dtype=np.int64)
                seen += b.num_rows
                yield b, idx
        except ContractError:
            raise
        except Exception as exc:
            raise ContractError(f"{rel}: cannot read Parquet ({exc})") from exc

    return batches(), pf.metadata.num_rows


def _int8(values: pd.arrays.BooleanArray) -> np.ndarray:
    out = np.where(np.asarray(values.isna()), -1, np.asarray(values.fillna(False), dtype=np.int8))
    return out.astype(np.int8)


#: rows a shard's writer collects before it writes them as one row group: a delta night streams 400 k-row
#: batches over ~40 shards, and writing each 10 k-row slice as its own row group cost more than the rows
#: (a row group per call, its dictionary and statistics; and as many again to read back)
SHARD_ROW_GROUP = 131_072


class ShardWriters:
    """One Parquet writer per shard, opened on the first row that shard receives; rows are buffered per
    shard up to ``SHARD_ROW_GROUP`` (bounded: shards × row group × ~50 B, about 0.3 GB at 40 shards)."""

    def __init__(self, shard_dir: Path, tag: str, n_shards: int) -> None:
        self.shard_dir, self.tag, self.n_shards = shard_dir, tag, n_shards
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._pending: dict[int, list[pa.Table]] = {}
        self._pending_rows = np.zeros(n_shards, dtype=np.int64)
        self.counts = np.zeros(n_shards, dtype=np.int64)

    def path(self, shard: int) -> Path:
        return self.shard_dir / f"{shard:04d}" / f"{self.tag}.parquet"

    def write(self, table: pa.Table, shards: np.ndarray) -> None:
        if table.num_rows == 0:
            return
        order = np.argsort(shards, kind="stable")
        sorted_shards = shards[order]
        bounds = np.flatnonzero(np.r_[True, sorted_shards[1:] != sorted_shards[:-1], True])
        table = table.take(pa.array(order))
        for a, b in itertools.pairwise(bounds):
            k = int(sorted_shards[a])
            self._pending.setdefault(k, []).append(table.slice(a, b - a))
            self._pending_rows[k] += b - a
            self.counts[k] += b - a
            if self._pending_rows[k] >= SHARD_ROW_GROUP:
                self._flush(k)

    def _flush(self, k: int) -> None:
        parts = self._pending.pop(k, [])
        self._pending_rows[k] = 0
        if not parts:
            return
        w = self._writers.get(k)
        if w is None:
            p = self.path(k)
            p.parent.mkdir(parents=True, exist_ok=True)
            w = self._writers[k] = pq.ParquetWriter(p, SHARD_SCHEMA, **SHARD_WRITE_OPTIONS)
        w.write_table(pa.concat_tables(parts).combine_chunks())  # one row group (< the 1 Mi-row default)

    def close(self) -> None:
        try:
            for k in sorted(self._pending):
                self._flush(k)
        finally:
            for w in self._writers.values():
                w.close()
            self._writers.clear()


def ingest_state_file(spec: PartSpec, n_shards: int, shard_dir: Path) -> PartResult:
    """Re-partition one carried tail file (already validated, in the shard schema) into tonight's shards.

    The previous night may have used another shard count, so its tails are split
    again by vehicle key; they are Parquet in compact types, so this is a fast scan.
    """
    writers = ShardWriters(shard_dir, spec.tag, n_shards)
    rows = 0
    try:
        pf = pq.ParquetFile(spec.path)
        for b in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            table = pa.Table.from_batches([b]).cast(SHARD_SCHEMA)
            rows += table.num_rows
            writers.write(table, shard_of(table.column("vkey").to_numpy(), n_shards))
    except OSError as exc:
        raise ContractError(f"carried state file {spec.path} unreadable ({exc})") from exc
    finally:
        writers.close()
    return PartResult(tag=spec.tag, rel=spec.rel, rows_in=rows, rows_accepted=rows, rows_quarantined=0,
                      rows_written=rows, sha256="", report_counts=False, fixes_by_shard=writers.counts.tolist())


def ingest(spec: PartSpec, n_shards: int, shard_dir: Path, quarantine_dir: Path) -> PartResult:
    """Ingest one input of the night, whatever its kind."""
    if spec.kind == "state":
        return ingest_state_file(spec, n_shards, shard_dir)
    return ingest_part(spec, n_shards, shard_dir, quarantine_dir)


_FLOORS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def detect_floor(spec: PartSpec, keys: np.ndarray) -> np.ndarray | None:
    """Per row, the time before which a fix cannot be stitched to the carried state (late re-uploads).

    A fix of yesterday morning re-uploaded today lands far before what the
    previous night carried for its vehicle; joined to tonight's track it would
    make a haul across a day-long hole. Such rows are kept for tracing reports
    only. None when the plan sets no floor.
    """
    if spec.default_floor_us is None:
        return None
    if not spec.floors:
        return np.full(keys.size, spec.default_floor_us, dtype=np.int64)
    if spec.floors not in _FLOORS:
        t = pq.read_table(spec.floors)
        order = np.argsort(t.column("vkey").to_numpy())
        _FLOORS.clear()
        _FLOORS[spec.floors] = (t.column("vkey").to_numpy()[order], t.column("floor_us").to_numpy()[order])
    vk, fl = _FLOORS[spec.floors]
    # looked up per distinct vehicle of the batch (a few thousand), not per row (400 k binary searches)
    codes, uniq = pd.factorize(keys)
    uniq = np.asarray(uniq, dtype=keys.dtype)
    i = np.minimum(np.searchsorted(vk, uniq), max(len(vk) - 1, 0))
    hit = (vk[i] == uniq) if len(vk) else np.zeros(uniq.size, bool)
    per_vehicle = np.where(hit, fl[i] if len(vk) else 0, spec.default_floor_us).astype(np.int64)
    return per_vehicle[codes]


def ingest_part(spec: PartSpec, n_shards: int, shard_dir: Path, quarantine_dir: Path) -> PartResult:
    """Stream one GPS part into shard files; refuse (BatchError) a part not as batch.json declared it."""
    path = Path(spec.path)
    date = spec.rel.split("/", 1)[0]
    if not path.is_file():
        raise BatchError(f"batch {date} refused: {spec.rel} listed in batch.json but missing")
    quarantine = Quarantine()
    writers = ShardWriters(shard_dir, spec.tag, n_shards)
    trace_writers = ShardWriters(shard_dir, f"t-{spec.tag}", n_shards)
    plates: dict[int, str] = {}
    rows_in = accepted = written = 0
    hashed: dict[str, str] = {}
    hasher: _HashingReader | None = None
    malformed: list = []
    thread: threading.Thread | None = None
    if path.name.endswith(".parquet"):
        stream, _ = _parquet_stream(path, spec.rel)
        thread = threading.Thread(target=_hash_file, args=(path, hashed), daemon=True)
        thread.start()
    else:
        stream, hasher, malformed = _csv_stream(path, spec.rel)
    try:
        for batch, numbers in stream:
            raw = RawTable(spec.rel, pa.Table.from_batches([batch]), numbers)
            g = parse_gps(raw, spec.timezone, spec.coord_sys)
            n = batch.num_rows
            rows_in += n
            idx, reasons = g.errors.collected()
            if idx.size:
                quarantine.add(spec.rel, raw.table.take(pa.array(idx)).to_pandas(), numbers[idx].tolist(), reasons)
            keep = ~g.errors.bad
            accepted += int(keep.sum())
            ts_us = g.ts.array.asi8 if hasattr(g.ts.array, "asi8") else g.ts.to_numpy().astype(np.int64)
            ts_us = np.asarray(ts_us, dtype=np.int64)
            if spec.keep_since_us is not None:
                keep = keep & (ts_us >= spec.keep_since_us)
            sel = np.flatnonzero(keep)
            if sel.size == 0:
                continue
            plate_arr = g.vehicle.take(pa.array(sel))
            keys = vehicle_keys(plate_arr)
            first = np.flatnonzero(~pd.Series(keys).duplicated().to_numpy())  # hashed: no sort of the batch
            for k, i in zip(keys[first].tolist(), first.tolist(), strict=True):
                if k not in plates:
                    plates[k] = plate_arr[i].as_py()
            table = pa.table(
                {
                    "vkey": keys,
                    "ts": ts_us[sel],
                    "lon": g.lon[sel],
                    "lat": g.lat[sel],
                    "speed_kmh": g.speed[sel].astype(np.float32),
                    "heading": g.heading[sel].astype(np.float32),
                    "loaded": _int8(g.loaded[sel]),
                    "tipping": _int8(g.tipping[sel]),
                    "src": np.full(sel.size, spec.src, dtype=np.int16),
                    "row": numbers[sel],
                },
                schema=SHARD_SCHEMA,
            )
            shards = shard_of(keys, n_shards)
            floor = detect_floor(spec, keys)
            if floor is None or not (old := table.column("ts").to_numpy() < floor).any():
                writers.write(table, shards)
            else:
                trace_writers.write(table.filter(pa.array(old)), shards[old])
                writers.write(table.filter(pa.array(~old)), shards[~old])
            written += sel.size
    finally:
        writers.close()
        trace_writers.close()
        if hasher is not None:
            sha = hasher.finish()
        if thread is not None:
            thread.join()
    sha = hashed.get("sha256", "") if thread is not None else sha
    if malformed:
        rows_in += len(malformed)
        quarantine.add(
            spec.rel,
            pd.DataFrame({"record": [m[2] for m in malformed]}),
            [m[0] for m in malformed],
            [m[1] for m in malformed],
        )
    if sha != spec.sha256:
        raise BatchError(f"batch {date} refused: {spec.rel.split('/', 1)[1]} sha256 mismatch "
                         f"(declared {spec.sha256}, found {sha})")
    if rows_in != spec.rows:
        raise BatchError(f"batch {date} refused: {spec.rel.split('/', 1)[1]} row count mismatch "
                         f"(declared {spec.rows}, read {rows_in})")
    qfile = ""
    if len(quarantine):
        quarantine_dir.mkdir(parents=True, exist_ok=True)
        qpath = quarantine_dir / f"{spec.tag}.parquet"
        quarantine.frame().to_parquet(qpath, index=False)
        qfile = str(qpath)
    return PartResult(
        tag=spec.tag,
        rel=spec.rel,
        rows_in=rows_in,
        rows_accepted=accepted,
        rows_quarantined=rows_in - accepted,
        rows_written=written,
        sha256=sha,
        report_counts=spec.report_counts,
        plates={str(k): v for k, v in plates.items()},
        fixes_by_shard=writers.counts.tolist(),
        quarantine_file=qfile,
    )
