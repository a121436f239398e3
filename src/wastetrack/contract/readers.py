"""Readers for the files of a day's batch (GPS, manifests, reports, feedback) and the night as a whole.

``read_night`` is the one entry point of a run: it verifies the batch (all or
nothing), reads the reference directory and every batch file, and returns the
typed frames of ``wastetrack.models`` with the rejected rows in a
``Quarantine`` and a ``FileCount`` per file. ``read_context`` reads the
previous day the same way, as context for stitching trips across midnight,
under the night run's policy (absent: none; refused: refused, unless a degraded
night is accepted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from wastetrack.contract.batch import Batch, BatchError, ContractError, read_batch
from wastetrack.contract.columns import (
    RowErrors,
    check_range,
    credit_code_valid,
    parse_bool,
    parse_enum,
    parse_float,
    parse_plate,
    parse_str,
    parse_time,
    to_str_series,
)
from wastetrack.contract.quarantine import Quarantine
from wastetrack.contract.reference import Reference, read_reference
from wastetrack.contract.tables import FileCount, RawTable, duplicates, empty_raw, extras, finish, read_any
from wastetrack.coords import to_wgs84
from wastetrack.models import (
    FEEDBACK_COLUMNS,
    FEEDBACK_STATUSES,
    FEEDBACK_TO_ADCODE,
    FEEDBACK_TO_STATUSES,
    FIX_COLUMNS,
    MANIFEST_COLUMNS,
    MANIFEST_STATUSES,
    REPORT_COLUMNS,
    REPORT_SOURCES,
    WASTE_TYPES,
)

log = logging.getLogger(__name__)

GPS_REQUIRED = ("vehicle_id", "ts", "lon", "lat")
MANIFEST_REQUIRED = (
    "manifest_id",
    "vehicle_id",
    "carrier_id",
    "origin_site_id",
    "dest_site_id",
    "waste_type",
    "volume_m3",
    "issued_at",
    "status",
)
REPORT_REQUIRED = ("report_id", "reported_at", "lon", "lat", "source")
FEEDBACK_REQUIRED = ("lead_id", "liaison_id", "at", "status")

# China's bounding box (degrees): a fix outside it is a terminal fault in this feed, not a truck abroad.
CHINA_LON = (72.0, 138.0)
CHINA_LAT = (0.8, 56.0)
MAX_SPEED_KMH = 200.0
MAX_VOLUME_M3 = 100.0


@dataclass
class NightInputs:
    """Everything a night reads, validated: typed frames, the quarantine and per-file counts."""

    date: str
    batch: Batch
    gps: pd.DataFrame
    manifests: pd.DataFrame
    reports: pd.DataFrame
    feedback: pd.DataFrame
    reference: Reference
    quarantine: Quarantine
    counts: list[FileCount]


# ---------------------------------------------------------------- shared checks


def check_lonlat(lon: np.ndarray, lat: np.ndarray, errors: RowErrors) -> None:
    """(0,0), impossible and out-of-China positions are rejected, with the offending pair in the reason."""
    both = ~np.isnan(lon) & ~np.isnan(lat)
    zero = both & (lon == 0) & (lat == 0)
    impossible = both & ~zero & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    outside = (
        both
        & ~zero
        & ~impossible
        & ((lon < CHINA_LON[0]) | (lon > CHINA_LON[1]) | (lat < CHINA_LAT[0]) | (lat > CHINA_LAT[1]))
    )
    errors.flag(zero, "lon/lat (0,0)")
    errors.flag(
        impossible,
        [
            f"lon/lat out of range ({x:g}, {y:g})"
            for x, y in zip(lon[impossible], lat[impossible], strict=True)
        ],
    )
    errors.flag(
        outside,
        [
            f"lon/lat outside China's bounding box ({x:g}, {y:g})"
            for x, y in zip(lon[outside], lat[outside], strict=True)
        ],
    )


def _to_wgs84_where(
    lon: np.ndarray, lat: np.ndarray, ok: np.ndarray, coord_sys: str
) -> tuple[np.ndarray, np.ndarray]:
    """Convert the accepted positions only (GCJ-02 inverse iterates; garbage rows must not slow it)."""
    if coord_sys in ("wgs84", "cgcs2000") or not ok.any():
        return lon, lat
    lon, lat = lon.copy(), lat.copy()
    x, y = to_wgs84(lon[ok], lat[ok], coord_sys)
    lon[ok], lat[ok] = x, y
    return lon, lat


def _rel(batch: Batch, path: str) -> str:
    return f"{batch.date}/{path}"


def _load(batch: Batch, path: str) -> RawTable:
    raw = read_any(batch.dir / path, _rel(batch, path))
    entry = batch.file(path)
    if entry is not None and raw.rows_in != entry["rows"]:
        raise BatchError(
            f"batch {batch.date} refused: {path} row count mismatch"
            f" (declared {entry['rows']}, read {raw.rows_in})"
        )
    return raw


def _model_frame(columns: dict[str, object], model: tuple[str, ...], raw: RawTable) -> pd.DataFrame:
    frame = pd.DataFrame({c: columns[c] for c in model})
    for name, values in extras(raw, model).items():
        frame[name] = values.to_numpy() if len(values) == len(frame) else values
    return frame


# ---------------------------------------------------------------- GPS


@dataclass
class GpsColumns:
    """One GPS table's columns after validation (all rows; ``errors.bad`` marks the rejected ones)."""

    vehicle: pa.ChunkedArray
    ts: pd.Series
    lon: np.ndarray
    lat: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    loaded: pd.arrays.BooleanArray
    tipping: pd.arrays.BooleanArray
    errors: RowErrors


def parse_gps(raw: RawTable, timezone: str, coord_sys: str) -> GpsColumns:
    """Validate a GPS table (a whole part, or one record batch of a streamed part) column by column.

    The one place GPS rows are judged: the in-memory reader and the streaming
    ingestion (``wastetrack.ingest``) both call it, so a row is accepted or
    quarantined for the same reason whichever way the night is read.
    """
    raw.require(GPS_REQUIRED)
    errors = RowErrors(raw.table.num_rows)
    vehicle = parse_plate(raw.column("vehicle_id"), "vehicle_id", errors)
    ts = parse_time(raw.column("ts"), "ts", errors, timezone, required=True, allow_epoch_ms=True)
    lon = parse_float(raw.column("lon"), "lon", errors, required=True)
    lat = parse_float(raw.column("lat"), "lat", errors, required=True)
    check_lonlat(lon, lat, errors)
    speed = parse_float(raw.column("speed_kmh"), "speed_kmh", errors, required=False)
    check_range(speed, "speed_kmh", errors, 0.0, MAX_SPEED_KMH)
    heading = parse_float(raw.column("heading"), "heading", errors, required=False)
    check_range(heading, "heading", errors, 0.0, 360.0)
    loaded = parse_bool(raw.column("loaded"), "loaded", errors)
    tipping = parse_bool(raw.column("tipping"), "tipping", errors)
    lon, lat = _to_wgs84_where(lon, lat, ~errors.bad, coord_sys)
    return GpsColumns(vehicle, ts, lon, lat, speed, heading, loaded, tipping, errors)


def read_gps_part(
    batch: Batch,
    path: str,
    quarantine: Quarantine,
    counts: list[FileCount],
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """One GPS part → FIX_COLUMNS (extras dropped: ~10^8 rows a night, memory matters).

    ``source_file`` is categorical over ``categories`` (all parts of the night)
    so concatenating parts keeps it one byte per fix.
    """
    raw = _load(batch, path)
    g = parse_gps(raw, batch.timezone, batch.coord_sys_of("gps"))
    frame = pd.DataFrame(
        {
            "vehicle_id": to_str_series(g.vehicle),
            "ts": g.ts,
            "lon": g.lon,
            "lat": g.lat,
            "speed_kmh": g.speed,
            "heading": g.heading,
            "loaded": g.loaded,
            "tipping": g.tipping,
        }
    )
    rel = raw.rel
    cats = categories or [rel]
    n_keep = int((~g.errors.bad).sum())
    source = pd.Categorical.from_codes(np.full(n_keep, cats.index(rel), dtype=np.int32), categories=cats)
    frame = finish(raw, g.errors, frame, quarantine, counts, source_file=source)
    return frame[list(FIX_COLUMNS)]


def read_gps(batch: Batch, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    parts = [f["path"] for f in batch.gps_files()]
    cats = [_rel(batch, p) for p in parts]
    if not parts:
        log.warning("batch %s lists no GPS parts", batch.date)
        raw = empty_raw(f"{batch.date}/gps", GPS_REQUIRED)
        frame = pd.DataFrame(
            {
                "vehicle_id": pd.Series(dtype="str"),
                "ts": parse_time(raw.column("ts"), "ts", RowErrors(0), batch.timezone, True),
                "lon": np.zeros(0),
                "lat": np.zeros(0),
                "speed_kmh": np.zeros(0),
                "heading": np.zeros(0),
                "loaded": pd.array([], dtype="boolean"),
                "tipping": pd.array([], dtype="boolean"),
                "source_file": pd.Categorical([], categories=[]),
                "source_row": np.zeros(0, dtype=np.int64),
            }
        )
        return frame[list(FIX_COLUMNS)]
    frames = [read_gps_part(batch, p, quarantine, counts, cats) for p in parts]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


# ---------------------------------------------------------------- manifests


def read_manifests(batch: Batch, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    """manifests.csv → MANIFEST_COLUMNS: ids trimmed, plates normalised, credit codes checked, unique ids."""
    path = "manifests.csv"
    if batch.file(path) is None:
        raise BatchError(f"batch {batch.date} refused: {path} not listed in batch.json")
    raw = _load(batch, path)
    return _parse_manifests(raw, batch.timezone, quarantine, counts)


def _parse_manifests(raw: RawTable, tz: str, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    raw.require(MANIFEST_REQUIRED)
    errors = RowErrors(raw.table.num_rows)
    manifest_id = parse_str(raw.column("manifest_id"), "manifest_id", errors, required=True)
    cols: dict[str, object] = {
        "manifest_id": to_str_series(manifest_id),
        "vehicle_id": to_str_series(parse_plate(raw.column("vehicle_id"), "vehicle_id", errors)),
        # a mistyped check character does not void a manifest: dropping it would turn its haul into a
        # false "unmanifested" lead; the row is kept and flagged (carrier_id_valid), leads say so
        "carrier_id": to_str_series(parse_str(raw.column("carrier_id"), "carrier_id", errors, required=True)),
        "origin_site_id": to_str_series(
            parse_str(raw.column("origin_site_id"), "origin_site_id", errors, True)
        ),
        "dest_site_id": to_str_series(parse_str(raw.column("dest_site_id"), "dest_site_id", errors, True)),
        "waste_type": to_str_series(
            parse_enum(raw.column("waste_type"), "waste_type", WASTE_TYPES, errors, True)
        ),
    }
    volume = parse_float(raw.column("volume_m3"), "volume_m3", errors, required=True)
    check_range(volume, "volume_m3", errors, 0.0, MAX_VOLUME_M3, lo_open=True)
    cols["volume_m3"] = volume
    cols["issued_at"] = parse_time(raw.column("issued_at"), "issued_at", errors, tz, required=True)
    cols["departed_at"] = parse_time(raw.column("departed_at"), "departed_at", errors, tz, required=False)
    cols["received_at"] = parse_time(raw.column("received_at"), "received_at", errors, tz, required=False)
    cols["status"] = to_str_series(
        parse_enum(raw.column("status"), "status", MANIFEST_STATUSES, errors, True)
    )
    filing = parse_str(raw.column("cross_region_filing"), "cross_region_filing", errors, required=False)
    cols["cross_region_filing"] = to_str_series(filing)
    duplicates(manifest_id, errors, "manifest_id")
    frame = _model_frame(cols, MANIFEST_COLUMNS, raw)
    frame["carrier_id_valid"] = credit_code_valid(frame["carrier_id"]).to_numpy()
    return finish(raw, errors, frame, quarantine, counts)


# ---------------------------------------------------------------- reports


def read_reports(batch: Batch, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    """reports.csv → REPORT_COLUMNS with lon/lat converted to WGS-84; absent and unlisted → empty frame."""
    path = "reports.csv"
    if batch.file(path) is None:
        if (batch.dir / path).exists():
            raise BatchError(f"batch {batch.date} refused: {path} present but not listed in batch.json")
        raw = empty_raw(_rel(batch, path), REPORT_COLUMNS)
        return _parse_reports(raw, batch, quarantine, [])
    return _parse_reports(_load(batch, path), batch, quarantine, counts)


def _parse_reports(
    raw: RawTable, batch: Batch, quarantine: Quarantine, counts: list[FileCount]
) -> pd.DataFrame:
    raw.require(REPORT_REQUIRED)
    tz = batch.timezone
    errors = RowErrors(raw.table.num_rows)
    report_id = parse_str(raw.column("report_id"), "report_id", errors, required=True)
    cols: dict[str, object] = {
        "report_id": to_str_series(report_id),
        "reported_at": parse_time(raw.column("reported_at"), "reported_at", errors, tz, required=True),
        "observed_from": parse_time(raw.column("observed_from"), "observed_from", errors, tz, required=False),
        "observed_to": parse_time(raw.column("observed_to"), "observed_to", errors, tz, required=False),
    }
    lon = parse_float(raw.column("lon"), "lon", errors, required=True)
    lat = parse_float(raw.column("lat"), "lat", errors, required=True)
    check_lonlat(lon, lat, errors)
    lon, lat = _to_wgs84_where(lon, lat, ~errors.bad, batch.coord_sys_of("reports"))
    cols["lon"], cols["lat"] = lon, lat
    cols["address"] = to_str_series(parse_str(raw.column("address"), "address", errors, required=False))
    cols["waste_type"] = to_str_series(
        parse_enum(raw.column("waste_type"), "waste_type", WASTE_TYPES, errors, required=False)
    )
    volume = parse_float(raw.column("volume_m3_est"), "volume_m3_est", errors, required=False)
    check_range(volume, "volume_m3_est", errors, 0.0, None, lo_open=True)
    cols["volume_m3_est"] = volume
    cols["source"] = to_str_series(parse_enum(raw.column("source"), "source", REPORT_SOURCES, errors, True))
    cols["reporting_unit"] = to_str_series(
        parse_str(raw.column("reporting_unit"), "reporting_unit", errors, False)
    )
    # description is untrusted free text from the public: kept as data, never interpreted.
    desc = raw.column("description")
    cols["description"] = to_str_series(parse_str(desc, "description", errors, required=False))
    duplicates(report_id, errors, "report_id")
    return finish(raw, errors, _model_frame(cols, REPORT_COLUMNS, raw), quarantine, counts)


# ---------------------------------------------------------------- feedback


def read_feedback(batch: Batch, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    """feedback.csv (optional) → FEEDBACK_COLUMNS; absent → empty frame."""
    path = "feedback.csv"
    if batch.file(path) is None:
        if (batch.dir / path).exists():
            raise BatchError(f"batch {batch.date} refused: {path} present but not listed in batch.json")
        return _parse_feedback(empty_raw(_rel(batch, path), FEEDBACK_COLUMNS), batch.timezone, quarantine, [])
    return _parse_feedback(_load(batch, path), batch.timezone, quarantine, counts)


def _parse_feedback(raw: RawTable, tz: str, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    raw.require(FEEDBACK_REQUIRED)
    errors = RowErrors(raw.table.num_rows)
    cols: dict[str, object] = {
        "lead_id": to_str_series(parse_str(raw.column("lead_id"), "lead_id", errors, required=True)),
        "liaison_id": to_str_series(parse_str(raw.column("liaison_id"), "liaison_id", errors, required=True)),
        "at": parse_time(raw.column("at"), "at", errors, tz, required=True),
        "status": to_str_series(parse_enum(raw.column("status"), "status", FEEDBACK_STATUSES, errors, True)),
        "case_no": to_str_series(parse_str(raw.column("case_no"), "case_no", errors, required=False)),
    }
    penalty = parse_float(raw.column("penalty_cny"), "penalty_cny", errors, required=False)
    check_range(penalty, "penalty_cny", errors, 0.0, None)
    cols["penalty_cny"] = penalty
    cols["note"] = to_str_series(parse_str(raw.column("note"), "note", errors, required=False))
    # v1.1: a transfer or an entrusted investigation names the other county; without it the row is void
    to = to_str_series(parse_str(raw.column(FEEDBACK_TO_ADCODE), FEEDBACK_TO_ADCODE, errors, required=False))
    needs_to = cols["status"].isin(FEEDBACK_TO_STATUSES).to_numpy() & (to == "").to_numpy()
    errors.flag(needs_to, f"{FEEDBACK_TO_ADCODE}: missing (required for {'/'.join(FEEDBACK_TO_STATUSES)})")
    cols[FEEDBACK_TO_ADCODE] = to
    model = (*FEEDBACK_COLUMNS, FEEDBACK_TO_ADCODE)
    return finish(raw, errors, _model_frame(cols, model, raw), quarantine, counts)


# ---------------------------------------------------------------- the night


def read_night(landing: Path, date: str) -> NightInputs:
    """Verify the batch of ``date`` (all or nothing), then read the reference and every batch file."""
    landing = Path(landing)
    batch = read_batch(landing, date, verify=True)
    quarantine = Quarantine()
    counts: list[FileCount] = []
    reference = read_reference(landing, quarantine, counts)
    manifests = read_manifests(batch, quarantine, counts)
    gps = read_gps(batch, quarantine, counts)
    reports = read_reports(batch, quarantine, counts)
    feedback = read_feedback(batch, quarantine, counts)
    log.info(
        "read %s: %d fixes, %d manifests, %d reports, %d feedback; %d rows quarantined",
        date,
        len(gps),
        len(manifests),
        len(reports),
        len(feedback),
        len(quarantine),
    )
    return NightInputs(date, batch, gps, manifests, reports, feedback, reference, quarantine, counts)


def read_context(landing: Path, date: str, without_context: bool = False) -> NightInputs | None:
    """The previous day ``date`` as a night's midnight context, under the night run's one policy.

    Absent → None (a first night). Present but refused → BatchError, as the night
    run refuses (``plan.decide_context``): without it, hauls after midnight lose their
    manifests and events across midnight are lost — unless ``without_context``
    accepts a degraded night (None, and a warning). Notebooks and training call this;
    the night run decides through ``plan.decide_context``, which applies the same rule.
    """
    if not (Path(landing) / date / "batch.json").exists():
        log.info("no context day %s: the night starts without the previous day's tail", date)
        return None
    try:
        return read_night(landing, date)
    except ContractError as exc:
        if not without_context:
            raise BatchError(
                f"the previous day's batch {date} is needed to stitch trips across midnight, and it is refused "
                f"({exc}). Fix it, or accept a degraded night (without_context=True)."
            ) from exc
        log.warning("context day %s not used: %s", date, exc)
        return None
