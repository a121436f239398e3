"""Readers for ``LANDING/reference/``: sites, vehicles, carriers, liaisons (and where boundaries are).

Reference files are small (thousands of rows) but everything downstream keys on
them, so they get the same row-level validation and quarantine as the batch:
a site with a broken fence or a carrier with a mistyped credit code is set
aside with its reason instead of silently matching nothing. Site fences are
normalised to WGS-84 polygons here once: GCJ-02/BD-09 vertices are converted
vertex-wise, and a Point + ``radius_m`` becomes a circle buffered in the metric
CRS (degrees are not metres), so geofencing only ever sees polygons.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from shapely.geometry import shape

from wastetrack.contract.batch import ContractError
from wastetrack.contract.columns import (
    RowErrors,
    check_range,
    parse_adcode,
    parse_bool,
    parse_credit_code,
    parse_date,
    parse_enum,
    parse_float,
    parse_plate,
    parse_str,
    shown,
    to_str_series,
)
from wastetrack.contract.quarantine import Quarantine
from wastetrack.contract.tables import FileCount, RawTable, duplicates, extras, finish, read_csv_strings
from wastetrack.coords import COORD_SYSTEMS, METRIC_CRS, WGS84_CRS, to_wgs84
from wastetrack.models import (
    CARRIER_COLUMNS,
    LIAISON_COLUMNS,
    RECEIVER_KINDS,
    SITE_COLUMNS,
    VEHICLE_COLUMNS,
    WASTE_TYPES,
)

SITE_KINDS = ("construction", *RECEIVER_KINDS)
LIAISON_LEVELS = ("province", "city", "county", "town")
LIAISON_ROLES = ("primary", "backup")
SITE_REQUIRED = ("site_id", "kind", "name")
VEHICLE_REQUIRED = (
    "vehicle_id",
    "carrier_id",
    "terminal_id",
    "capacity_m3",
    "registered_adcode",
    "permit_valid_to",
)
CARRIER_REQUIRED = ("carrier_id", "name", "county_adcode", "contact_phone")
LIAISON_REQUIRED = ("liaison_id", "level", "adcode", "unit", "name", "email", "phone", "role", "active")

_CHINA_BOX = (72.0, 0.8, 138.0, 56.0)
_ACCEPTS_SPLIT = re.compile(r"[,;，；、\s]+")


@dataclass
class Reference:
    """The reference directory, validated. ``boundaries_path`` is None when the shipped default applies."""

    sites: gpd.GeoDataFrame
    vehicles: pd.DataFrame
    carriers: pd.DataFrame
    liaisons: pd.DataFrame
    boundaries_path: Path | None


def _ref_file(landing: Path, name: str) -> tuple[Path, str]:
    path = landing / "reference" / name
    rel = f"reference/{name}"
    if not path.is_file():
        raise ContractError(f"{rel}: not found (the reference directory must hold it)")
    return path, rel


# ---------------------------------------------------------------- sites


def _cell(v: object) -> str | None:
    """A GeoJSON property as text for the string table: lists/objects as JSON, booleans lower-case."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _parse_accepts(values: list[object], kinds: np.ndarray, errors: RowErrors) -> list[list[str]]:
    """Per-site list of waste types (few thousand sites: a Python loop is fine here)."""
    out: list[list[str]] = []
    bad_rows: list[int] = []
    reasons: list[str] = []
    for i, v in enumerate(values):
        items: list[str] = []
        problem = ""
        if v is None or v == "":
            items = []
        elif isinstance(v, str):
            items = [s for s in _ACCEPTS_SPLIT.split(v.strip().lower()) if s]
        elif isinstance(v, list):
            items = [str(x).strip().lower() for x in v if x is not None and str(x).strip()]
        else:
            problem = f"accepts: {shown([v])[0]} is not a list of waste types"
        unknown = [x for x in items if x not in WASTE_TYPES]
        if unknown and not problem:
            problem = f"accepts: {', '.join(shown(unknown))} not one of {'/'.join(WASTE_TYPES)}"
        if not problem and not items and kinds[i] in RECEIVER_KINDS:
            problem = "accepts: required for a receiving site"
        if problem:
            bad_rows.append(i)
            reasons.append(problem)
        out.append(list(dict.fromkeys(items)))
    mask = np.zeros(len(values), dtype=bool)
    mask[bad_rows] = True
    errors.flag(mask, reasons)
    return out


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """Repair an invalid fence and keep only its polygonal part (None if nothing of area remains)."""
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom if geom.area > 0 else None
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if merged.area > 0 else None


def read_sites(landing: Path, quarantine: Quarantine, counts: list[FileCount]) -> gpd.GeoDataFrame:
    """sites.geojson → GeoDataFrame (EPSG:4326) with SITE_COLUMNS, fence polygons, extras, lon/lat."""
    path, rel = _ref_file(landing, "sites.geojson")
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"{rel}: not valid UTF-8 JSON ({exc})") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise ContractError(f"{rel}: not a GeoJSON FeatureCollection")
    coord_sys = str(doc.get("coord_sys") or "wgs84").strip().lower()
    if coord_sys not in (*COORD_SYSTEMS, "cgcs2000"):
        raise ContractError(
            f"{rel}: unknown coord_sys {coord_sys!r} (expected one of {', '.join(COORD_SYSTEMS)})"
        )
    features = [f if isinstance(f, dict) else {} for f in doc["features"]]
    props = [f.get("properties") if isinstance(f.get("properties"), dict) else {} for f in features]
    n = len(features)
    keys: list[str] = list(dict.fromkeys(k for p in props for k in p))
    if n:
        missing = [k for k in SITE_REQUIRED if k not in keys]
        if missing:
            raise ContractError(
                f"{rel}: missing required propert(y/ies) {', '.join(missing)} in every feature"
            )
    columns = {k: pa.array([_cell(p.get(k)) for p in props], pa.string()) for k in keys if k != "geometry"}
    columns["geometry"] = pa.array([_cell(f.get("geometry")) for f in features], pa.string())
    raw = RawTable(
        rel,
        pa.table(columns) if columns else pa.table({"geometry": pa.array([], pa.string())}),
        np.arange(1, n + 1, dtype=np.int64),
    )
    errors = RowErrors(n)

    site_id = parse_str(raw.column("site_id"), "site_id", errors, required=True)
    kind = parse_enum(raw.column("kind"), "kind", SITE_KINDS, errors, required=True)
    kinds = np.asarray(kind.to_numpy(zero_copy_only=False), dtype=object)
    name = parse_str(raw.column("name"), "name", errors, required=True)
    county = parse_adcode(raw.column("county_adcode"), "county_adcode", errors, required=False)
    accepts = _parse_accepts([p.get("accepts") for p in props], kinds, errors)
    permit = parse_str(raw.column("permit_no"), "permit_no", errors, required=False)
    valid_from = parse_date(raw.column("valid_from"), "valid_from", errors)
    valid_to = parse_date(raw.column("valid_to"), "valid_to", errors)
    both = np.array(
        [a is not pd.NaT and b is not pd.NaT for a, b in zip(valid_from, valid_to, strict=True)], dtype=bool
    )
    inverted = np.zeros(n, dtype=bool)
    inverted[both] = [a > b for a, b in zip(valid_from[both], valid_to[both], strict=True)]
    errors.flag(inverted, "valid_from after valid_to")
    radius = parse_float(raw.column("radius_m"), "radius_m", errors, required=False)
    check_range(radius, "radius_m", errors, 0.0, 50_000.0, lo_open=True)
    builder = parse_str(raw.column("builder"), "builder", errors, required=False)
    contractor = parse_str(raw.column("contractor"), "contractor", errors, required=False)

    # Geometry: parse (per site), then convert and buffer as arrays.
    geoms = np.full(n, None, dtype=object)
    geom_bad: list[tuple[int, str]] = []
    for i, f in enumerate(features):
        g = f.get("geometry")
        if not g:
            geom_bad.append((i, "geometry: missing"))
            continue
        try:
            geom = shape(g)
        except Exception as exc:  # shapely raises several types for malformed GeoJSON
            geom_bad.append((i, f"geometry: cannot read ({exc})"))
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon", "Point") or geom.is_empty:
            geom_bad.append((i, f"geometry: {geom.geom_type} is not a Polygon, MultiPolygon or Point"))
            continue
        geoms[i] = geom
    mask = np.zeros(n, dtype=bool)
    mask[[i for i, _ in geom_bad]] = True
    errors.flag(mask, [r for _, r in geom_bad])
    have = np.array([g is not None for g in geoms], dtype=bool)
    is_point = have & np.array([g is not None and g.geom_type == "Point" for g in geoms], dtype=bool)
    errors.flag(is_point & np.isnan(radius), "radius_m: required for a Point site")
    if have.any():
        bounds = shapely.bounds(geoms[have].astype(object))
        outside = np.zeros(n, dtype=bool)
        box = _CHINA_BOX
        outside[have] = (
            (bounds[:, 0] < box[0])
            | (bounds[:, 1] < box[1])
            | (bounds[:, 2] > box[2])
            | (bounds[:, 3] > box[3])
        )
        errors.flag(outside, "geometry: outside China's bounding box")

    fence = np.full(n, None, dtype=object)
    ok = have & ~errors.bad
    if ok.any():

        def convert(xy: np.ndarray) -> np.ndarray:
            x, y = to_wgs84(xy[:, 0], xy[:, 1], coord_sys)
            return np.column_stack([x, y])

        wgs = shapely.transform(geoms[ok].astype(object), convert)
        fence[ok] = wgs
        pts = ok & is_point
        if pts.any():
            circles = (
                gpd.GeoSeries(list(fence[pts]), crs=WGS84_CRS)
                .to_crs(METRIC_CRS)
                .buffer(radius[pts], quad_segs=16)
                .to_crs(WGS84_CRS)
            )
            fence[pts] = circles.to_numpy()
        unusable = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(ok & ~is_point):
            fixed = _polygonal(fence[i])
            if fixed is None:
                unusable[i] = True
            fence[i] = fixed
        errors.flag(unusable, "geometry: polygon has no area (even after repair)")

    duplicates(site_id, errors, "site_id")
    frame = pd.DataFrame(
        {
            "site_id": to_str_series(site_id),
            "kind": to_str_series(kind),
            "name": to_str_series(name),
            "county_adcode": to_str_series(county),
            "accepts": pd.Series(accepts, dtype=object),
            "permit_no": to_str_series(permit),
            "valid_from": pd.Series(valid_from, dtype=object),
            "valid_to": pd.Series(valid_to, dtype=object),
            "radius_m": radius,
            "builder": to_str_series(builder),
            "contractor": to_str_series(contractor),
            "geometry": pd.Series(fence, dtype=object),
        }
    )
    for key, values in extras(raw, (*SITE_COLUMNS, "accepts")).items():
        frame[key] = values.to_numpy()
    frame = finish(raw, errors, frame, quarantine, counts)
    sites = gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84_CRS)
    rep = shapely.point_on_surface(sites.geometry.to_numpy()) if len(sites) else np.empty(0, dtype=object)
    sites["lon"] = shapely.get_x(rep) if len(sites) else np.zeros(0)
    sites["lat"] = shapely.get_y(rep) if len(sites) else np.zeros(0)
    lineage = ["source_file", "source_row"]
    ordered = [
        *SITE_COLUMNS,
        *[c for c in sites.columns if c not in SITE_COLUMNS and c not in lineage],
        *lineage,
    ]
    return sites[ordered]


# ---------------------------------------------------------------- CSV reference files


def _model(cols: dict[str, object], model: tuple[str, ...], raw: RawTable) -> pd.DataFrame:
    frame = pd.DataFrame({c: cols[c] for c in model})
    for key, values in extras(raw, model).items():
        frame[key] = values.to_numpy()
    return frame


def read_vehicles(landing: Path, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    """vehicles.csv → VEHICLE_COLUMNS; vehicle_id is the normalised plate, one row per vehicle."""
    path, rel = _ref_file(landing, "vehicles.csv")
    raw = read_csv_strings(path, rel)
    raw.require(VEHICLE_REQUIRED)
    errors = RowErrors(raw.table.num_rows)
    vehicle = parse_plate(raw.column("vehicle_id"), "vehicle_id", errors)
    carrier = parse_credit_code(raw.column("carrier_id"), "carrier_id", errors)
    # terminal_id: column required, value not (a truck without a fitted terminal is still registered).
    terminal = parse_str(raw.column("terminal_id"), "terminal_id", errors, required=False)
    capacity = parse_float(raw.column("capacity_m3"), "capacity_m3", errors, required=True)
    check_range(capacity, "capacity_m3", errors, 0.0, None, lo_open=True)
    adcode = parse_adcode(raw.column("registered_adcode"), "registered_adcode", errors, required=True)
    permit_to = parse_date(raw.column("permit_valid_to"), "permit_valid_to", errors)
    duplicates(vehicle, errors, "vehicle_id")
    cols = {
        "vehicle_id": to_str_series(vehicle),
        "carrier_id": to_str_series(carrier),
        "terminal_id": to_str_series(terminal),
        "capacity_m3": capacity,
        "registered_adcode": to_str_series(adcode),
        "permit_valid_to": pd.Series(permit_to, dtype=object),
    }
    return finish(raw, errors, _model(cols, VEHICLE_COLUMNS, raw), quarantine, counts)


def read_carriers(landing: Path, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    """carriers.csv → CARRIER_COLUMNS; carrier_id must carry a valid GB 32100 check character."""
    path, rel = _ref_file(landing, "carriers.csv")
    raw = read_csv_strings(path, rel)
    raw.require(CARRIER_REQUIRED)
    errors = RowErrors(raw.table.num_rows)
    carrier = parse_credit_code(raw.column("carrier_id"), "carrier_id", errors)
    cols = {
        "carrier_id": to_str_series(carrier),
        "name": to_str_series(parse_str(raw.column("name"), "name", errors, required=True)),
        "county_adcode": to_str_series(
            parse_adcode(raw.column("county_adcode"), "county_adcode", errors, True)
        ),
        "contact_phone": to_str_series(
            parse_str(raw.column("contact_phone"), "contact_phone", errors, False)
        ),
    }
    duplicates(carrier, errors, "carrier_id")
    return finish(raw, errors, _model(cols, CARRIER_COLUMNS, raw), quarantine, counts)


def read_liaisons(landing: Path, quarantine: Quarantine, counts: list[FileCount]) -> pd.DataFrame:
    """liaisons.csv → LIAISON_COLUMNS; ``active`` is a plain bool, town adcodes may have 9 digits."""
    path, rel = _ref_file(landing, "liaisons.csv")
    raw = read_csv_strings(path, rel)
    raw.require(LIAISON_REQUIRED)
    errors = RowErrors(raw.table.num_rows)
    liaison = parse_str(raw.column("liaison_id"), "liaison_id", errors, required=True)
    active = parse_bool(raw.column("active"), "active", errors, required=True)
    cols = {
        "liaison_id": to_str_series(liaison),
        "level": to_str_series(parse_enum(raw.column("level"), "level", LIAISON_LEVELS, errors, True)),
        "adcode": to_str_series(parse_adcode(raw.column("adcode"), "adcode", errors, True, allow_town=True)),
        "unit": to_str_series(parse_str(raw.column("unit"), "unit", errors, required=True)),
        "name": to_str_series(parse_str(raw.column("name"), "name", errors, required=True)),
        "email": to_str_series(parse_str(raw.column("email"), "email", errors, required=False)),
        "phone": to_str_series(parse_str(raw.column("phone"), "phone", errors, required=False)),
        "role": to_str_series(parse_enum(raw.column("role"), "role", LIAISON_ROLES, errors, True)),
        "active": active,
    }
    duplicates(liaison, errors, "liaison_id")
    frame = finish(raw, errors, _model(cols, LIAISON_COLUMNS, raw), quarantine, counts)
    frame["active"] = frame["active"].astype(bool)
    return frame


def read_reference(landing: Path, quarantine: Quarantine, counts: list[FileCount]) -> Reference:
    """All of ``LANDING/reference`` (boundaries.gpkg is only located; the boundaries module reads it)."""
    landing = Path(landing)
    sites = read_sites(landing, quarantine, counts)
    vehicles = read_vehicles(landing, quarantine, counts)
    carriers = read_carriers(landing, quarantine, counts)
    liaisons = read_liaisons(landing, quarantine, counts)
    boundaries = landing / "reference" / "boundaries.gpkg"
    return Reference(sites, vehicles, carriers, liaisons, boundaries if boundaries.is_file() else None)
