"""The reference data a night's sheets look things up in (``SheetContext``), built once and shared.

A night writes thousands of sheets, possibly in several processes, so the
context is cheap to pickle (look-up caches are rebuilt lazily in each process,
never shipped) and every look-up a sheet makes is a dict access or a spatial
index query prepared once per process: no pandas filtering per lead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from wastetrack import __version__
from wastetrack.sheets.labels import TIMEZONE, as_local_ts, text
from wastetrack.values import normalise_plate

#: Names that GB/T 2260 uses as placeholders between a province and its counties: never shown.
_PLACEHOLDER_NAMES = frozenset(("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"))


def _records_by(frame: pd.DataFrame | None, key: str, norm: Callable[[object], str] = text) -> dict[str, dict]:
    """{id: row dict} for look-ups by id; later rows win, as in a re-issued reference file."""
    if frame is None or len(frame) == 0 or key not in frame.columns:
        return {}
    keys = [norm(k) for k in frame[key].tolist()]
    return dict(zip(keys, frame.to_dict("records"), strict=True))


class PlaceNamer:
    """place_name(adcode) → "江苏省苏州市昆山市" from the boundaries table (province, city, county names).

    GB/T 2260 codes nest by prefix, so the chain is read from the code itself;
    repeated names (上海市/上海市) and placeholders (市辖区) are dropped. A code not
    in the table is shown as the code, never as an empty string. A class, not a
    closure, so a context can be pickled to the processes that write sheets.
    """

    def __init__(self, boundaries: pd.DataFrame | None):
        self.names: dict[str, str] = {}
        if boundaries is not None and len(boundaries) and {"adcode", "name"} <= set(boundaries.columns):
            self.names = {text(a): text(n) for a, n in zip(boundaries["adcode"], boundaries["name"], strict=True)}
        self._memo: dict[str, str] = {}

    def __call__(self, adcode: object) -> str:
        code = text(adcode)
        if not code:
            return "地点不详"
        hit = self._memo.get(code)
        if hit is None:
            hit = self._memo[code] = self._name(code)
        return hit

    def _name(self, code: str) -> str:
        chain = [code]
        if code.isdigit() and len(code) >= 6:
            chain = [code[:2] + "0000", code[:4] + "00", code[:6], code]
        parts: list[str] = []
        for c in dict.fromkeys(chain):
            n = self.names.get(c, "")
            if n and n not in parts and n not in _PLACEHOLDER_NAMES:
                parts.append(n)
        if not parts:
            return f"行政区划代码 {code}"
        if code[:6] not in self.names:  # only a parent is known: say which code it was
            return f"{''.join(parts)}（区划代码 {code}）"
        return "".join(parts)


def boundary_place_namer(boundaries: pd.DataFrame | None) -> Callable[[object], str]:
    """A picklable ``place_name(adcode)`` reading the names in ``boundaries`` (see ``PlaceNamer``)."""
    return PlaceNamer(boundaries)


@dataclass
class GeoIndex:
    """Sites and borders prepared once per process for the maps: arrays, STRtrees, border pieces.

    Borders are cut into pieces of at most ``PIECE_VERTICES`` vertices so a map
    clips only the few pieces in its view instead of whole provinces (a
    province has tens of thousands of vertices, a view needs a few hundred),
    and kept at a few levels of detail (``piece_lods``: tolerance in metres,
    pieces). County and province polygons are prepared for fast
    point-in-polygon tests, which place their names on the map.
    """

    site_geoms: np.ndarray
    site_tree: shapely.STRtree | None
    site_ids: np.ndarray
    site_names: np.ndarray
    site_kinds: np.ndarray
    site_radius: np.ndarray
    piece_geoms: np.ndarray
    piece_level: np.ndarray
    piece_tree: shapely.STRtree | None
    piece_lods: list[tuple[float, np.ndarray]]
    area_geoms: np.ndarray
    area_level: np.ndarray
    area_names: np.ndarray
    area_tree: shapely.STRtree | None


PIECE_VERTICES = 64
#: Border pieces are also kept simplified at these tolerances (metres): a 30 km view needs no 10 m detail,
#: and simplifying tens of thousands of vertices for every map would cost more than the rest of the sheet.
LOD_TOLERANCES_M = (4.0, 12.0, 30.0, 60.0)
_M_PER_DEG = np.pi / 180.0 * 6371008.8


def _levels(frame: pd.DataFrame) -> np.ndarray:
    """province/city/county by the 'level' column, or by the adcode pattern when it is absent."""
    codes = frame["adcode"].astype(str).str.strip()
    by_code = np.where(codes.str.endswith("0000"), "province", np.where(codes.str.endswith("00"), "city", "county"))
    if "level" not in frame:
        return by_code
    lv = frame["level"].astype(str).str.strip().str.lower()
    return np.where(lv.isin(["province", "city", "county"]), lv, by_code)


def _border_pieces(geoms: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Border rings of every polygon, cut into LineStrings of at most PIECE_VERTICES vertices."""
    if len(geoms) == 0:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=object)
    parts, part_idx = shapely.get_parts(geoms, return_index=True)
    polys = shapely.get_type_id(parts) == 3
    lines_parts = parts[~polys]
    rings, ring_idx = shapely.get_rings(parts[polys], return_index=True)
    ring_owner = np.r_[part_idx[polys][ring_idx], part_idx[~polys]].astype(int)
    all_lines = np.r_[rings, lines_parts]
    coords, which = shapely.get_coordinates(all_lines, return_index=True)
    if len(coords) == 0:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=object)
    # Piece k of line i covers its vertices [k*(P-1), k*(P-1)+P): consecutive pieces share a vertex.
    starts = np.r_[0, np.flatnonzero(np.diff(which)) + 1]
    ends = np.r_[starts[1:], len(coords)]
    step = PIECE_VERTICES - 1
    n_pieces = np.where(ends - starts >= 2, -(-(ends - starts - 1) // step), 0)
    line_of = np.repeat(np.arange(len(starts)), n_pieces)
    k = np.arange(len(line_of)) - np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces)
    p_start = starts[line_of] + k * step
    p_len = np.minimum(p_start + PIECE_VERTICES, ends[line_of]) - p_start
    first = np.repeat(np.cumsum(p_len) - p_len, p_len)
    vertex = np.repeat(p_start, p_len) + (np.arange(int(p_len.sum())) - first)
    lines = shapely.linestrings(coords[vertex], indices=np.repeat(np.arange(len(p_start)), p_len))
    owner = ring_owner[which[starts[line_of]]]
    return np.asarray(lines, dtype=object), np.asarray(levels[owner], dtype=object)


def _fence_points(geoms: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
    """Point sites the reader did not buffer become their fence: a circle of ``radius_m`` (default 100 m)."""
    is_point = shapely.get_type_id(geoms) == 0
    if not is_point.any():
        return geoms
    geoms = geoms.copy()
    lon, lat = shapely.get_x(geoms[is_point]), shapely.get_y(geoms[is_point])
    r = np.where(np.isnan(radius_m[is_point]), 100.0, radius_m[is_point])
    a = np.linspace(0.0, 2.0 * np.pi, 33)
    k = np.pi / 180.0 * 6371008.8
    dx = np.outer(r, np.cos(a)) / (k * np.cos(np.radians(lat)))[:, None]
    dy = np.outer(r, np.sin(a)) / k
    rings = np.stack([lon[:, None] + dx, lat[:, None] + dy], axis=-1)
    geoms[is_point] = shapely.polygons(rings)
    return geoms


_GEO_CACHE: dict[tuple, GeoIndex] = {}


def _fingerprint(frame: pd.DataFrame | None, key: str) -> tuple:
    """Cheap identity of a reference table: same rows and geometry → same prepared index."""
    if frame is None or len(frame) == 0 or "geometry" not in frame or key not in frame:
        return (0,)
    geoms = np.asarray(frame["geometry"], dtype=object)
    ids = "\x1f".join(frame[key].astype(str).tolist())
    return (
        len(frame),
        hashlib.sha1(ids.encode()).hexdigest(),
        int(shapely.get_num_coordinates(geoms).sum()),
        tuple(np.round(shapely.total_bounds(geoms), 7).tolist()),
    )


def geo_index(sites: pd.DataFrame | None, boundaries: pd.DataFrame | None) -> GeoIndex:
    """``build_geo_index``, cached per process: each chunk of a night may build its own context from the
    same reference data, and preparing the borders (~0.5 s) must not be paid per chunk."""
    key = (_fingerprint(sites, "site_id"), _fingerprint(boundaries, "adcode"))
    hit = _GEO_CACHE.get(key)
    if hit is None:
        if len(_GEO_CACHE) >= 4:
            _GEO_CACHE.clear()
        hit = _GEO_CACHE[key] = build_geo_index(sites, boundaries)
    return hit


def build_geo_index(sites: pd.DataFrame | None, boundaries: pd.DataFrame | None) -> GeoIndex:
    """Prepare the geometry every map needs (see ``GeoIndex``)."""
    if sites is not None and len(sites) and "geometry" in sites:
        s_geoms = np.asarray(sites["geometry"], dtype=object)
        ok = ~shapely.is_missing(s_geoms)
        sites = sites.loc[ok]
        s_geoms = s_geoms[ok]
        n = len(sites)
        site_ids = sites["site_id"].astype(str).to_numpy() if "site_id" in sites else np.full(n, "")
        site_names = sites["name"].astype(str).to_numpy() if "name" in sites else site_ids
        site_kinds = sites["kind"].astype(str).to_numpy() if "kind" in sites else np.full(n, "construction")
        site_radius = (
            pd.to_numeric(sites["radius_m"], errors="coerce").to_numpy(dtype=float)
            if "radius_m" in sites
            else np.full(n, np.nan)
        )
        s_geoms = _fence_points(s_geoms, site_radius)
        site_tree = shapely.STRtree(s_geoms) if n else None
    else:
        s_geoms = np.zeros(0, dtype=object)
        site_ids = site_names = site_kinds = np.zeros(0, dtype=object)
        site_radius = np.zeros(0)
        site_tree = None
    if boundaries is not None and len(boundaries) and {"geometry", "adcode"} <= set(boundaries.columns):
        b_geoms = np.asarray(boundaries["geometry"], dtype=object)
        ok = ~shapely.is_missing(b_geoms)
        b = boundaries.loc[ok]
        b_geoms = b_geoms[ok]
        levels = _levels(b)
        names = b["name"].astype(str).to_numpy() if "name" in b else b["adcode"].astype(str).to_numpy()
        pieces, piece_level = _border_pieces(b_geoms, levels)
        lods = [(tol, shapely.simplify(pieces, tol / _M_PER_DEG, preserve_topology=False)) for tol in LOD_TOLERANCES_M]
        labelled = np.isin(levels, ["county", "province"])
        area_geoms = b_geoms[labelled].copy()
        shapely.prepare(area_geoms)
        area_level, area_names = levels[labelled], names[labelled]
        piece_tree = shapely.STRtree(pieces) if len(pieces) else None
        area_tree = shapely.STRtree(area_geoms) if len(area_geoms) else None
    else:
        pieces = piece_level = area_geoms = area_level = area_names = np.zeros(0, dtype=object)
        piece_tree = area_tree = None
        lods = []
    return GeoIndex(
        site_geoms=s_geoms,
        site_tree=site_tree,
        site_ids=site_ids,
        site_names=site_names,
        site_kinds=site_kinds,
        site_radius=site_radius,
        piece_geoms=pieces,
        piece_level=piece_level,
        piece_tree=piece_tree,
        piece_lods=lods,
        area_geoms=area_geoms,
        area_level=area_level,
        area_names=area_names,
        area_tree=area_tree,
    )


def _local_times(col: pd.Series) -> list[pd.Timestamp | None]:
    """A time column as local timestamps, vectorised when it is already a datetime column (the readers')."""
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        ts = (
            col.dt.tz_convert(TIMEZONE)
            if isinstance(col.dtype, pd.DatetimeTZDtype)
            else col.dt.tz_localize(TIMEZONE, ambiguous="NaT", nonexistent="NaT")
        )
        return [None if v is pd.NaT else v for v in ts.tolist()]
    return [as_local_ts(v) for v in col.tolist()]


def _manifests_by_vehicle(frame: pd.DataFrame | None) -> dict[str, list[dict]]:
    """plate → the vehicle's manifests (dicts with ``_issued`` and ``_days``), oldest first: built once."""
    out: dict[str, list[dict]] = {}
    if frame is None or len(frame) == 0 or not {"vehicle_id", "manifest_id"} <= set(frame.columns):
        return out
    n = len(frame)
    times = {
        c: _local_times(frame[c]) if c in frame.columns else [None] * n
        for c in ("issued_at", "departed_at", "received_at")
    }
    plates = [normalise_plate(v) for v in frame["vehicle_id"].tolist()]
    for i, (rec, plate) in enumerate(zip(frame.to_dict("records"), plates, strict=True)):
        moments = [times[c][i] for c in times]
        days = {m.strftime("%Y-%m-%d") for m in moments if m is not None}
        out.setdefault(plate, []).append({**rec, "_issued": moments[0], "_days": days})
    for recs in out.values():
        recs.sort(
            key=lambda r: (
                r["_issued"] is None,
                r["_issued"].timestamp() if r["_issued"] else 0.0,
                text(r.get("manifest_id")),
            )
        )
    return out


@dataclass
class SheetContext:
    """Reference data a sheet looks ids up in; built once per night and shared by all sheets.

    ``place_name(adcode)`` names a county for people; by default it reads the
    names in ``boundaries``. ``generated_at`` is printed in the footer (default:
    now); pass the run's time to make re-runs byte-identical.

    ``night_note``, when not empty, is shown as a banner on every sheet and
    index page: a liaison must know when the night ran without part of its
    data (for example without the previous day's batch). ``history`` maps a
    lead id to its handling events (dicts with ``at``, ``event``, ``actor``,
    ``detail``), shown as 处理记录. ``template_dir`` overrides the packaged
    templates file by file (a province adapting the layout); the environment
    variable ``WASTETRACK_SHEET_TEMPLATES`` does the same without code.
    """

    date: str
    sites: pd.DataFrame | None = None
    vehicles: pd.DataFrame | None = None
    carriers: pd.DataFrame | None = None
    liaisons: pd.DataFrame | None = None
    manifests: pd.DataFrame | None = None
    reports: pd.DataFrame | None = None
    boundaries: pd.DataFrame | None = None
    place_name: Callable[[object], str] | None = None
    generated_at: pd.Timestamp | None = None
    version: str = __version__
    night_note: str = ""
    history: Mapping[str, list[dict]] = field(default_factory=dict)
    template_dir: str | Path | None = None
    _idx: dict[str, dict[str, dict]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _geo: GeoIndex | None = field(default=None, init=False, repr=False, compare=False)
    _by_vehicle: dict[str, list[dict]] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.place_name is None:
            self.place_name = boundary_place_namer(self.boundaries)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the data, not the caches: each process rebuilds its own indexes lazily."""
        state = dict(self.__dict__)
        state["_idx"], state["_geo"], state["_by_vehicle"] = {}, None, None
        return state

    def place(self, adcode: object) -> str:
        assert self.place_name is not None
        return self.place_name(adcode) if text(adcode) else "地点不详"

    def _lookup(self, table: str, key: str, value: object, norm: Callable[[object], str] = text) -> dict | None:
        if table not in self._idx:
            self._idx[table] = _records_by(getattr(self, table), key, norm)
        v = norm(value)
        return self._idx[table].get(v) if v else None

    def site(self, site_id: object) -> dict | None:
        return self._lookup("sites", "site_id", site_id)

    def vehicle(self, vehicle_id: object) -> dict | None:
        return self._lookup("vehicles", "vehicle_id", vehicle_id, normalise_plate)

    def carrier(self, carrier_id: object) -> dict | None:
        return self._lookup("carriers", "carrier_id", carrier_id)

    def liaison(self, liaison_id: object) -> dict | None:
        return self._lookup("liaisons", "liaison_id", liaison_id)

    def manifest(self, manifest_id: object) -> dict | None:
        return self._lookup("manifests", "manifest_id", manifest_id)

    def report(self, report_id: object) -> dict | None:
        return self._lookup("reports", "report_id", report_id)

    def vehicle_manifests(self, vehicle_id: object, days: set[str]) -> list[dict]:
        """The vehicle's manifests of the given local dates (YYYY-MM-DD), oldest first.

        A manifest belongs to a day when it was issued, scanned out or received
        on it (night shifts issue a manifest one day and use it the next). A sheet
        that found no manifest for a haul lists these so the liaison can check
        for one the matching missed (re-issued, never scanned, ...).
        """
        if self._by_vehicle is None:
            self._by_vehicle = _manifests_by_vehicle(self.manifests)
        return [r for r in self._by_vehicle.get(normalise_plate(vehicle_id), []) if r["_days"] & days]

    def geo(self) -> GeoIndex:
        """Sites and borders prepared for the maps (built on first use in this process)."""
        if self._geo is None:
            self._geo = geo_index(self.sites, self.boundaries)
        return self._geo

    def history_of(self, lead_id: object) -> list[dict]:
        return list(self.history.get(text(lead_id), []) or []) if self.history else []
