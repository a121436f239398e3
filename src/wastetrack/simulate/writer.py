"""Landing-directory writer: the contract's files, byte-for-byte reproducible.

Every file is written from already-sorted frames with fixed formatting; gzip
members carry mtime 0 and no file name, Parquet files are written from explicit
Arrow schemas (no pandas metadata), so one seed gives identical bytes on every
run. ``batch.json`` lists each data file with its record count and the SHA-256
of the bytes as stored, and is written last with ``complete: true``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from wastetrack import TIMEZONE
from wastetrack.coords import from_wgs84
from wastetrack.simulate.geography import Site

BOM = "\ufeff"


def csv_bytes(frame: pd.DataFrame, bom: bool = False) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return ((BOM if bom else "") + buf.getvalue()).encode("utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_csv(path: Path, frame: pd.DataFrame, bom: bool = False, gz: bool = False) -> int:
    data = csv_bytes(frame, bom)
    if gz:
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as g:
            g.write(data)
        data = buf.getvalue()
    write_bytes(path, data)
    return len(frame)


def write_parquet(path: Path, table: pa.Table) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy", use_dictionary=False)
    return table.num_rows


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_batch_json(day_dir: Path, day: str, files: list[tuple[str, int]]) -> None:
    entries = [{"path": rel, "rows": int(rows), "sha256": sha256(day_dir / rel)} for rel, rows in files]
    doc = {
        "date": day,
        "timezone": TIMEZONE,
        "coord_sys": {"gps": "wgs84", "reports": "gcj02"},
        "files": entries,
        "complete": True,
    }
    write_bytes(
        day_dir / "batch.json", (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    )


def _ring_gcj(ring: list[tuple[float, float]]) -> list[list[float]]:
    lon, lat = from_wgs84(np.array([p[0] for p in ring]), np.array([p[1] for p in ring]), "gcj02")
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


def site_feature(s: Site) -> dict:
    props: dict = {"site_id": s.site_id, "kind": s.kind, "name": s.name}
    if s.write_county:
        props["county_adcode"] = s.county_adcode
    if s.kind == "construction":
        props.update({"builder": s.builder, "contractor": s.contractor, "permit_no": s.permit_no})
    else:
        props.update(
            {
                "accepts": list(s.accepts),
                "valid_from": s.valid_from.isoformat() if s.valid_from else None,
                "valid_to": s.valid_to.isoformat() if s.valid_to else None,
                "permit_no": s.permit_no,
            }
        )
    if s.shape == "polygon":
        geom = {"type": "Polygon", "coordinates": [_ring_gcj(s.ring)]}
    else:
        lon, lat = from_wgs84(np.array([s.lon]), np.array([s.lat]), "gcj02")
        geom = {"type": "Point", "coordinates": [round(float(lon[0]), 7), round(float(lat[0]), 7)]}
        props["radius_m"] = s.radius_m
    return {"type": "Feature", "properties": props, "geometry": geom}


def write_sites(path: Path, sites: list[Site]) -> int:
    doc = {"type": "FeatureCollection", "coord_sys": "gcj02", "features": [site_feature(s) for s in sites]}
    write_bytes(path, (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return len(sites)


GPS_SCHEMA_NATIVE = pa.schema(
    [
        ("vehicle_id", pa.string()),
        ("ts", pa.timestamp("ms", tz=TIMEZONE)),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("speed_kmh", pa.float64()),
        ("heading", pa.int64()),
        ("loaded", pa.bool_()),
        ("tipping", pa.bool_()),
    ]
)
GPS_SCHEMA_EPOCH = pa.schema(
    [
        ("vehicle_id", pa.string()),
        ("ts", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
    ]
)


def parquet_native(frame: pd.DataFrame) -> pa.Table:
    """ts as a native tz-aware timestamp; loaded/tipping nullable booleans."""
    ts = pa.array(frame["t"].to_numpy(dtype="int64") * 1000, type=pa.int64()).cast(
        pa.timestamp("ms", tz=TIMEZONE)
    )
    sensors = frame["sensors"].to_numpy(dtype=bool)
    return pa.table(
        {
            "vehicle_id": pa.array(frame["plate"].tolist(), pa.string()),
            "ts": ts,
            "lon": pa.array(frame["lon"].round(6).to_numpy()),
            "lat": pa.array(frame["lat"].round(6).to_numpy()),
            "speed_kmh": pa.array(frame["speed_kmh"].round(1).to_numpy()),
            "heading": pa.array(frame["heading"].to_numpy(dtype="int64")),
            "loaded": pa.array(frame["loaded"].to_numpy(dtype=bool), mask=~sensors),
            "tipping": pa.array(frame["tipping"].to_numpy(dtype=bool), mask=~sensors),
        },
        schema=GPS_SCHEMA_NATIVE,
    )


def parquet_epoch(frame: pd.DataFrame) -> pa.Table:
    """The lean platform: vehicle, epoch-millisecond ts, lon, lat only."""
    return pa.table(
        {
            "vehicle_id": pa.array(frame["plate"].tolist(), pa.string()),
            "ts": pa.array(frame["t"].to_numpy(dtype="int64") * 1000, type=pa.int64()),
            "lon": pa.array(frame["lon"].round(6).to_numpy()),
            "lat": pa.array(frame["lat"].round(6).to_numpy()),
        },
        schema=GPS_SCHEMA_EPOCH,
    )
