"""Administrative boundaries of the delta: load them, and say which county a point is in.

Every lead is routed to the liaison of the county where it happened, and a
cross-border lead is one whose unloading province differs from its origin's,
so "which county is this fix in" is asked for millions of fixes a night. The
project ships real AMap boundaries (province, city and county of Shanghai,
Jiangsu, Zhejiang and Anhui), converted from GCJ-02 to WGS-84 and simplified to
~10 m; ``build.py`` makes the file and ``NOTICE`` says where it comes from. A
landing may override them with ``reference/boundaries.gpkg``.

Typical use::

    b = load_boundaries()                      # or load_boundaries(landing / "reference/boundaries.gpkg")
    where = locate(fixes["lon"], fixes["lat"], b)   # county/city/province adcodes, '' where none
    full_name(where["county_adcode"].iloc[0])       # "江苏省苏州市昆山市"

Adcodes, never names, are the keys: 鼓楼区 is a district of both Nanjing and Xuzhou.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray

from wastetrack.coords import METRIC_CRS, WGS84_CRS
from wastetrack.models import BOUNDARY_COLUMNS

__all__ = [
    "LEVELS",
    "NEAR_BORDER_M",
    "BoundaryFileError",
    "clip_box",
    "full_name",
    "hierarchy_from_adcodes",
    "load_boundaries",
    "locate",
    "names",
    "shipped_path",
]

LEVELS: tuple[str, ...] = ("province", "city", "county")
#: A point outside every county but this close to one (a fix on a river, a quay, the coast, or a border
#: smoothed by simplification) belongs to the nearest county; farther out it is nowhere ('').
NEAR_BORDER_M = 3000.0
SHIPPED_FILE = "yrd_boundaries.parquet"
#: Column names accepted for the adcode in an override file, compared case-insensitively.
ADCODE_ALIASES: tuple[str, ...] = (
    "adcode", "code", "ad_code", "admin_code", "gb_code", "gb", "pac", "区划代码",
)
NAME_ALIASES: tuple[str, ...] = ("name", "name_zh", "name_cn", "cname", "名称")
LOCATE_COLUMNS = ("county_adcode", "city_adcode", "province_adcode")
_COLUMN_DEG = 0.1  # width of the longitude columns points are bucketed in by ``locate``


class BoundaryFileError(ValueError):
    """A boundaries file cannot be used; the message names the file and says why."""


# --------------------------------------------------------------------------- hierarchy


def hierarchy_from_adcodes(adcodes: pd.Series) -> pd.DataFrame:
    """level, parent_adcode, province_adcode, city_adcode implied by 6-digit GB/T 2260 codes.

    ``xx0000`` province, ``xxxx00`` prefecture city, otherwise county; a county's
    city is its ``xxxx00`` code, so Shanghai's districts (3101xx) get ``310100``
    as the contract requires. A province's parent and city are ``''``.
    """
    codes = adcodes.astype(str).str.strip()
    is_prov = codes.str.endswith("0000")
    is_city = ~is_prov & codes.str.endswith("00")
    province = codes.str[:2] + "0000"
    city = (codes.str[:4] + "00").where(~is_prov, "")
    level = np.where(is_prov, "province", np.where(is_city, "city", "county"))
    parent = np.where(is_prov, "", np.where(is_city, province, city))
    return pd.DataFrame(
        {"level": level, "parent_adcode": parent, "province_adcode": province, "city_adcode": city},
        index=adcodes.index,
    ).astype(str)


def _normalise_adcodes(values: pd.Series) -> pd.Series:
    """6-digit strings from ints, floats ('310118.0') or 9/12-digit statistical codes; '' when unusable."""
    s = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    s = s.str.replace(r"\.0+$", "", regex=True)
    long = s.str.fullmatch(r"\d{9}|\d{12}")
    s = s.where(~long, s.str[:6])
    return s.where(s.str.fullmatch(r"\d{6}"), "")


# --------------------------------------------------------------------------- loading


def shipped_path() -> Path:
    """Path of the boundaries file shipped in the package (the contract's default)."""
    res = resources.files(__name__).joinpath("data", SHIPPED_FILE)
    return Path(str(res))


def load_boundaries(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """Boundaries with ``models.BOUNDARY_COLUMNS`` in WGS-84, one row per province, city and county.

    ``path=None`` reads the shipped file; otherwise ``path`` is the landing's
    ``reference/boundaries.gpkg`` (any GeoPackage/GeoParquet/shapefile/GeoJSON
    whose polygon layers carry an adcode column, see ``ADCODE_ALIASES``). Missing
    hierarchy columns are derived from the adcode, missing city/province polygons
    are dissolved from the counties, missing names are taken from the shipped file.

    Files are read once per process and version (path, size, mtime) and cached;
    each call returns a fresh copy, so callers may modify what they get.
    """
    return _load_shared(path).copy()


def _load_shared(path: str | Path | None) -> gpd.GeoDataFrame:
    """The cached table itself (not a copy): for read-only internal use."""
    p = shipped_path() if path is None else Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise BoundaryFileError(f"{p}: boundaries file not found ({exc.strerror})") from exc
    return _load_cached(str(p.resolve()), st.st_size, st.st_mtime_ns, path is None)


@lru_cache(maxsize=4)
def _load_cached(path: str, size: int, mtime_ns: int, shipped: bool) -> gpd.GeoDataFrame:
    del size, mtime_ns  # part of the cache key only: a replaced file is read again
    if shipped:
        return gpd.read_parquet(path)
    return _read_override(Path(path))


def _find_column(columns: Iterable[str], aliases: tuple[str, ...]) -> str | None:
    by_lower = {c.lower(): c for c in columns}
    return next((by_lower[a.lower()] for a in aliases if a.lower() in by_lower), None)


def _read_any(path: Path) -> gpd.GeoDataFrame:
    """All polygon layers of ``path`` that carry an adcode column, concatenated."""
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        try:
            return gpd.read_parquet(path)
        except Exception as exc:
            raise BoundaryFileError(f"{path}: cannot read as GeoParquet: {exc}") from exc
    import pyogrio

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise BoundaryFileError(f"{path}: cannot read as a vector file: {exc}") from exc
    frames, seen = [], []
    for layer in layers:
        fields = list(pyogrio.read_info(path, layer=layer)["fields"])
        seen.append(f"{layer}: {fields}")
        code_col = _find_column(fields, ADCODE_ALIASES)
        if code_col is None:
            continue
        frame = gpd.read_file(path, layer=layer)
        if frame.crs is not None and len(frame):
            frame = frame.to_crs(WGS84_CRS)
        frames.append(frame.rename(columns={code_col: "_adcode"}))
    if not frames:
        raise BoundaryFileError(
            f"{path}: no layer has an adcode column (accepted: {', '.join(ADCODE_ALIASES)}); layers: {seen}"
        )
    crs = next((f.crs for f in frames if f.crs is not None), None)
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry=out.geometry.name, crs=crs).rename(columns={"_adcode": "adcode"})


def _read_override(path: Path) -> gpd.GeoDataFrame:
    raw = _read_any(path)
    code_col = "adcode" if "adcode" in raw.columns else _find_column(raw.columns, ADCODE_ALIASES)
    if code_col is None:
        raise BoundaryFileError(f"{path}: no adcode column (accepted: {', '.join(ADCODE_ALIASES)})")
    if raw.crs is None:
        xmin, ymin, xmax, ymax = raw.total_bounds if len(raw) else (0.0, 0.0, 0.0, 0.0)
        if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
            raise BoundaryFileError(f"{path}: no CRS declared and coordinates are not lon/lat degrees")
        warnings.warn(f"{path}: no CRS declared; assuming WGS-84 lon/lat", stacklevel=3)
        raw = raw.set_crs(WGS84_CRS)
    raw = raw.to_crs(WGS84_CRS)
    adcode = _normalise_adcodes(raw[code_col])
    geom = raw.geometry.values
    polygonal = np.isin(shapely.get_type_id(geom), (3, 6)) & ~shapely.is_empty(geom)
    keep = (adcode != "").to_numpy() & polygonal
    if not keep.any():
        raise BoundaryFileError(f"{path}: no polygon with a valid 6-digit adcode in column {code_col!r}")
    if (~keep).any():
        warnings.warn(f"{path}: ignored {int((~keep).sum())} rows without a 6-digit adcode or polygon",
                      stacklevel=3)
    name_col = _find_column(raw.columns, NAME_ALIASES)
    name = raw[name_col].astype(object).where(raw[name_col].notna(), "").astype(str) if name_col else ""
    frame = gpd.GeoDataFrame(
        {"adcode": adcode, "name": name}, geometry=shapely.make_valid(geom), crs=WGS84_CRS
    ).loc[keep]
    # One row per adcode: a unit stored as several rows (islands, several layers) is merged.
    if frame["adcode"].duplicated().any():
        frame = frame.dissolve(by="adcode", aggfunc="first").reset_index()
    frame = frame.reset_index(drop=True)
    frame = pd.concat([frame, hierarchy_from_adcodes(frame["adcode"])], axis=1)
    frame = _complete_levels(gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84_CRS))
    return _finish(frame)


def _complete_levels(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Dissolve counties into the cities and provinces the file lacks, so every level exists."""
    counties = frame[frame["level"] == "county"]
    extra = []
    for level, key in (("city", "city_adcode"), ("province", "province_adcode")):
        have = set(frame.loc[frame["level"] == level, "adcode"])
        missing = counties[~counties[key].isin(have)]
        if len(missing):
            merged = missing[[key, "geometry"]].dissolve(by=key).reset_index().rename(columns={key: "adcode"})
            extra.append(pd.concat([merged, hierarchy_from_adcodes(merged["adcode"])], axis=1))
    if extra:
        frame = gpd.GeoDataFrame(pd.concat([frame, *extra], ignore_index=True), geometry="geometry",
                                 crs=WGS84_CRS)
    frame["name"] = frame["name"].fillna("").astype(str)
    blank = frame["name"] == ""
    if blank.any():
        try:
            shipped = names()
        except BoundaryFileError:
            shipped = {}
        frame.loc[blank, "name"] = frame.loc[blank, "adcode"].map(shipped).fillna("")
    return frame


def _finish(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    order = frame["level"].map({lv: i for i, lv in enumerate(LEVELS)})
    frame = frame.assign(_o=order).sort_values(["_o", "adcode"]).reset_index(drop=True)
    out = gpd.GeoDataFrame(frame[list(BOUNDARY_COLUMNS)], geometry="geometry", crs=WGS84_CRS)
    for col in BOUNDARY_COLUMNS[:-1]:
        out[col] = out[col].astype(str)
    return out


def _resolve(boundaries: gpd.GeoDataFrame | str | Path | None) -> gpd.GeoDataFrame:
    if boundaries is None or isinstance(boundaries, str | Path):
        return _load_shared(boundaries)  # read-only use below: no need to copy
    return boundaries


# --------------------------------------------------------------------------- locate


@dataclass
class _Index:
    """Point-in-polygon machinery for the finest level of one boundaries table, built once."""

    geoms: NDArray[np.object_]  # WGS-84, prepared
    bounds: NDArray[np.float64]
    county: pd.api.extensions.ExtensionArray  # str arrays, one per row plus a trailing '' for "nowhere"
    city: pd.api.extensions.ExtensionArray
    province: pd.api.extensions.ExtensionArray
    _near: tuple[shapely.STRtree, NDArray[np.intp]] | None = field(default=None, repr=False)

    def near_tree(self) -> tuple[shapely.STRtree, NDArray[np.intp]]:
        """STRtree of the coverage's outer boundary segments (metric), and the row owning each segment.

        Segments, not polygons: nearest-polygon search computes a distance to
        thousands of vertices per candidate (~40 µs a point); to a segment it is
        a few flops. Shared inner edges appear twice and are dropped: an outside
        point is always nearest to the outer boundary.
        """
        if self._near is None:
            tr = _to_metric()
            parts, part_row = shapely.get_parts(self.geoms, return_index=True)
            rings, ring_part = shapely.get_rings(parts, return_index=True)
            xy, vertex_ring = shapely.get_coordinates(rings, return_index=True)
            mx, my = tr.transform(xy[:, 0], xy[:, 1])
            same = vertex_ring[1:] == vertex_ring[:-1]
            a = np.column_stack([mx[:-1], my[:-1]])[same]
            b = np.column_stack([mx[1:], my[1:]])[same]
            owner = part_row[ring_part[vertex_ring[:-1][same]]]
            swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
            key = np.where(swap[:, None], np.hstack([b, a]), np.hstack([a, b]))
            order = np.lexsort(key.T[::-1])
            ordered = key[order]
            starts = np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)]
            group = np.cumsum(starts) - 1
            outer = np.sort(order[starts & (np.bincount(group)[group] == 1)])
            segs = shapely.linestrings(np.stack([a[outer], b[outer]], axis=1))
            self._near = (shapely.STRtree(segs), owner[outer])
        return self._near


@lru_cache(maxsize=1)
def _to_metric() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(WGS84_CRS, METRIC_CRS, always_xy=True)


_INDEX_CACHE: OrderedDict[tuple[Any, ...], _Index] = OrderedDict()


def _finest(b: pd.DataFrame) -> NDArray[np.intp]:
    """Positions of the rows of the finest level present (counties; cities or provinces for a coarse
    override), in adcode order."""
    codes = b["adcode"].astype(str).to_numpy()
    level = b["level"].astype(str).to_numpy() if "level" in b.columns else \
        hierarchy_from_adcodes(b["adcode"])["level"].to_numpy()
    for lv in ("county", "city", "province"):
        pos = np.flatnonzero(level == lv)
        if len(pos):
            return pos[np.argsort(codes[pos], kind="stable")]
    raise BoundaryFileError("boundaries have no province, city or county rows")


def _index(b: gpd.GeoDataFrame) -> _Index:
    """Cached by every row's adcode, level and geometry object identity.

    The cached index holds those geometry objects, so their ids cannot be
    reused while the entry lives: a hit is the same polygons (copies made by
    ``load_boundaries`` share them, shapely geometries being immutable). The key
    costs ~0.1 ms, so calling ``locate`` once per report stays cheap.
    """
    all_geoms = np.asarray(b.geometry.values, dtype=object)
    levels = b["level"].to_numpy() if "level" in b.columns else ()
    key = (tuple(b["adcode"].to_numpy()), tuple(levels), tuple(map(id, all_geoms)))
    hit = _INDEX_CACHE.get(key)
    if hit is not None:
        _INDEX_CACHE.move_to_end(key)
        return hit
    rows = b.iloc[_finest(b)]
    rows = rows[~(shapely.is_missing(rows.geometry.values) | shapely.is_empty(rows.geometry.values))]
    codes = rows["adcode"].astype(str).to_numpy()
    h = hierarchy_from_adcodes(rows["adcode"])
    city = rows["city_adcode"].astype(str) if "city_adcode" in rows else h["city_adcode"]
    province = rows["province_adcode"].astype(str) if "province_adcode" in rows else h["province_adcode"]
    level = h["level"].to_numpy()
    geoms = np.asarray(rows.geometry.values, dtype=object).copy()
    shapely.prepare(geoms)

    def table(values: ArrayLike) -> pd.api.extensions.ExtensionArray:
        # trailing '' is what row -1 (nowhere) takes
        return pd.array(np.append(np.asarray(values, dtype=object), ""), dtype=str)

    idx = _Index(
        geoms=geoms,
        bounds=shapely.bounds(geoms),
        county=table(np.where(level == "county", codes, "")),
        city=table(np.where(level == "city", codes, city.to_numpy())),
        province=table(province.to_numpy()),
    )
    _INDEX_CACHE[key] = idx
    while len(_INDEX_CACHE) > 4:
        _INDEX_CACHE.popitem(last=False)
    return idx


def locate(
    lon: ArrayLike, lat: ArrayLike, boundaries: gpd.GeoDataFrame | str | Path | None = None
) -> pd.DataFrame:
    """county_adcode, city_adcode, province_adcode of WGS-84 points ('' where none).

    ``boundaries`` is a table from ``load_boundaries`` (default: the shipped one) or
    a path to load. A point on a border between two counties goes to the lower
    adcode; a point outside every county but within ``NEAR_BORDER_M`` of one (a
    quay, a river, the coast) to the nearest county; farther, NaN or (0, 0) fixes
    get ''. The result has the index of ``lon`` when it is a Series.

    Vectorised: points are sorted by longitude once, then each county tests only
    the slice of points inside its bounding box with a prepared point-in-polygon
    (``shapely.intersects_xy``); the Python loop is over counties (~300), never
    points. About 2 million points/s.
    """
    index = lon.index if isinstance(lon, pd.Series) else None
    x = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
    y = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    if x.shape != y.shape:
        raise ValueError(f"lon and lat differ in length: {x.shape[0]} != {y.shape[0]}")
    idx = _index(_resolve(boundaries))
    row = _point_in_polygon(idx, x, y)
    missing = np.flatnonzero(row < 0)
    if len(missing):
        row[missing] = _nearest_within(idx, x[missing], y[missing], NEAR_BORDER_M)
    # row -1 takes the trailing '' (a take on a small string array beats building a million str objects)
    take = np.where(row >= 0, row, len(idx.geoms))

    def col(table: pd.api.extensions.ExtensionArray) -> pd.Series:
        return pd.Series(table.take(take), index=index)

    columns = {"county_adcode": idx.county, "city_adcode": idx.city, "province_adcode": idx.province}
    return pd.DataFrame({name: col(values) for name, values in columns.items()}, index=index)


def _point_in_polygon(idx: _Index, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
    """Row of the first polygon (by adcode) containing or touching each point, -1 where none.

    Points are sorted once by (longitude column of ``_COLUMN_DEG``, latitude):
    a polygon's bounding box is then one contiguous run per column it spans,
    found for all (polygon, column) pairs by one ``searchsorted``. Only those
    candidates go to the prepared point-in-polygon test.
    """
    n = len(x)
    result = np.full(n, -1, dtype=np.intp)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 360) & (np.abs(y) <= 90))
    if not len(ok) or not len(idx.geoms):
        return result
    x0 = float(np.floor(idx.bounds[:, 0].min()))
    # key = column * 1000 + (lat + 500): latitude sorts within its column; |lat| <= 90 keeps columns apart.
    col = np.floor((x[ok] - x0) / _COLUMN_DEG)
    key = col * 1000.0 + (y[ok] + 500.0)
    order = np.argsort(key)
    key, xs, ys, pts = key[order], x[ok][order], y[ok][order], ok[order]
    b = idx.bounds
    c0 = np.floor((b[:, 0] - x0) / _COLUMN_DEG).astype(np.int64)
    c1 = np.floor((b[:, 2] - x0) / _COLUMN_DEG).astype(np.int64)
    ncol = c1 - c0 + 1
    poly = np.repeat(np.arange(len(b)), ncol)
    cols = np.repeat(c0 - np.cumsum(ncol) + ncol, ncol) + np.arange(int(ncol.sum()))
    lo = np.searchsorted(key, cols * 1000.0 + (b[poly, 1] + 500.0), side="left")
    hi = np.searchsorted(key, cols * 1000.0 + (b[poly, 3] + 500.0), side="right")
    hit_row = np.full(len(pts), -1, dtype=np.intp)
    starts = np.cumsum(ncol) - ncol
    totals = np.add.reduceat(hi - lo, starts)
    for k in np.flatnonzero(totals > 0):
        runs = slice(starts[k], starts[k] + ncol[k])
        lens = hi[runs] - lo[runs]
        total = int(totals[k])
        # concatenated aranges lo..hi of this polygon's runs, without a loop over runs
        cand = np.repeat(lo[runs] - np.cumsum(lens) + lens, lens) + np.arange(total)
        cand = cand[(xs[cand] >= b[k, 0]) & (xs[cand] <= b[k, 2]) & (hit_row[cand] < 0)]
        if len(cand):
            inside = shapely.intersects_xy(idx.geoms[k], xs[cand], ys[cand])
            hit_row[cand[inside]] = k
    result[pts] = hit_row
    return result


def _nearest_within(
    idx: _Index, x: NDArray[np.float64], y: NDArray[np.float64], max_m: float
) -> NDArray[np.intp]:
    """Row of the nearest polygon within ``max_m`` metres, -1 where none (or not finite)."""
    out = np.full(len(x), -1, dtype=np.intp)
    if not len(idx.geoms):
        return out
    margin = max_m / 90_000.0  # degrees; generous (1° of longitude ≥ 90 km below 35°N)
    xmin, ymin = idx.bounds[:, 0].min() - margin, idx.bounds[:, 1].min() - margin
    xmax, ymax = idx.bounds[:, 2].max() + margin, idx.bounds[:, 3].max() + margin
    with np.errstate(invalid="ignore"):
        near = np.flatnonzero((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
    if not len(near):
        return out
    tree, owner = idx.near_tree()
    mx, my = _to_metric().transform(x[near], y[near])
    q, seg = tree.query_nearest(shapely.points(mx, my), max_distance=max_m, all_matches=False)
    out[near[q]] = owner[seg]
    return out


# --------------------------------------------------------------------------- names and maps


def names(boundaries: gpd.GeoDataFrame | str | Path | None = None) -> dict[str, str]:
    """adcode → name of every unit (all levels)."""
    if boundaries is None:
        return dict(_shipped_names())
    b = _resolve(boundaries)
    return dict(zip(b["adcode"].astype(str), b["name"].astype(str), strict=True))


@lru_cache(maxsize=1)
def _shipped_names() -> tuple[tuple[str, str], ...]:
    b = load_boundaries()
    return tuple(zip(b["adcode"].astype(str), b["name"].astype(str), strict=True))


def full_name(adcode: str, boundaries: gpd.GeoDataFrame | str | Path | None = None) -> str:
    """Province + city + county name as written on Chinese documents: ``江苏省苏州市昆山市``.

    A municipality's city level repeats its province and is left out
    (``上海市黄浦区``). Parts whose code is unknown are skipped; '' for an empty
    or malformed code (a point nowhere).
    """
    code = str(adcode or "").strip()
    if len(code) != 6 or not code.isdigit():
        return ""
    n = names(boundaries)
    prov, city = code[:2] + "0000", code[:4] + "00"
    parts = [n.get(prov, "")]
    if code != prov:
        city_name = n.get(city, "")
        if city_name and city_name != parts[0]:
            parts.append(city_name)
        if code != city:
            parts.append(n.get(code, ""))
    return "".join(parts)


def clip_box(
    bounds: tuple[float, float, float, float] | ArrayLike,
    boundaries: gpd.GeoDataFrame | str | Path | None = None,
    level: str | Iterable[str] | None = "county",
    clip: bool = False,
) -> gpd.GeoDataFrame:
    """Boundary rows of ``level`` (one, several, or None for all) intersecting a lon/lat box.

    ``bounds`` is (min_lon, min_lat, max_lon, max_lat), e.g. an event ± a few km,
    to draw the borders around it on a map. ``clip=True`` also cuts the polygons
    to the box (smaller to embed in a page) — but then the box edge becomes part
    of each polygon's outline, so to draw *borders* clip ``geometry.boundary``
    instead.
    """
    xmin, ymin, xmax, ymax = (float(v) for v in np.asarray(bounds, dtype=np.float64).ravel())
    if not (xmin <= xmax and ymin <= ymax):
        raise ValueError(f"bounds must be (min_lon, min_lat, max_lon, max_lat), got {tuple(bounds)!r}")
    b = _resolve(boundaries)
    if level is not None:
        wanted = {level} if isinstance(level, str) else set(level)
        unknown = wanted - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown level(s) {sorted(unknown)}; expected {LEVELS}")
        b = b[b["level"].isin(wanted)]
    hits = np.sort(b.sindex.query(shapely.box(xmin, ymin, xmax, ymax), predicate="intersects"))
    out = b.iloc[hits].copy()
    if clip and len(out):
        out["geometry"] = shapely.clip_by_rect(out.geometry.values, xmin, ymin, xmax, ymax)
        out = out[~out.geometry.is_empty]
    return out
