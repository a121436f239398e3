"""Lead sheets: content a liaison needs, escaping of untrusted text, offline-only pages, liaison indexes.

The context is built from the contract's example reference data (read directly
with pandas/geopandas, since the real readers live elsewhere) and a real track
of 苏E·42288 from the example batch: loaded at a 青浦 site, it tipped for ten
minutes 13 km from any approved receiver in 昆山 — a cross-border illegal dump.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from wastetrack.coords import METRIC_CRS, gcj02_to_wgs84, wgs84_to_gcj02
from wastetrack.models import LEAD_COLUMNS
from wastetrack.sheets import (
    SheetContext,
    key_track_points,
    lead_facts,
    liaison_assignments,
    render_map_svg,
    render_sheet,
    write_sheets,
)
from wastetrack.sheets.svgmap import nice_length_m

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared/contract/example"
REF = EXAMPLE / "reference"
DAY = EXAMPLE / "2026-11-20"
TZ = "Asia/Shanghai"
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(1)>\n第二行 & "引号"'


def _plate(s: pd.Series) -> pd.Series:
    return s.astype(str).str.replace(r"[\s·•]", "", regex=True).str.upper()


def _local(s: pd.Series) -> pd.Series:
    """ISO times; those without an offset are local time (the contract's rule), not UTC."""
    s = s.astype("str")
    naive = ~s.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True) & s.str.contains("T")
    s = s.where(~naive, s + "+08:00")
    return pd.to_datetime(s, format="mixed", utc=True, errors="coerce").dt.tz_convert(TZ)


def fake_boundaries() -> gpd.GeoDataFrame:
    """Two provinces split at 121.12°E, their cities and three counties (shapes are not the real ones)."""
    rows = [
        ("310000", "上海市", "province", "", "310000", "", box(121.12, 31.0, 121.45, 31.6)),
        ("320000", "江苏省", "province", "", "320000", "", box(120.6, 31.0, 121.12, 31.6)),
        ("310100", "上海市", "city", "310000", "310000", "310100", box(121.12, 31.0, 121.45, 31.6)),
        ("320500", "苏州市", "city", "320000", "320000", "320500", box(120.6, 31.0, 121.12, 31.6)),
        ("310118", "青浦区", "county", "310100", "310000", "310100", box(121.12, 31.0, 121.45, 31.28)),
        ("310114", "嘉定区", "county", "310100", "310000", "310100", box(121.12, 31.28, 121.45, 31.6)),
        ("320583", "昆山市", "county", "320500", "320000", "320500", box(120.6, 31.0, 121.12, 31.6)),
    ]
    cols = ["adcode", "name", "level", "parent_adcode", "province_adcode", "city_adcode", "geometry"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry="geometry", crs="EPSG:4326")


def load_sites() -> gpd.GeoDataFrame:
    """sites.geojson (declared gcj02) → WGS-84 fences; Point sites buffered by radius_m like the reader."""
    sites = gpd.read_file(REF / "sites.geojson")
    sites["geometry"] = shapely.transform(
        sites.geometry.values, lambda c: np.column_stack(gcj02_to_wgs84(c[:, 0], c[:, 1]))
    )
    pts = sites.geom_type == "Point"
    metric = sites.loc[pts].to_crs(METRIC_CRS)
    sites.loc[pts, "geometry"] = metric.buffer(metric["radius_m"].fillna(100.0)).to_crs("EPSG:4326").values
    sites["accepts"] = sites["accepts"].map(lambda a: list(a) if isinstance(a, list | np.ndarray) else [])
    return sites


def load_reports() -> pd.DataFrame:
    reports = pd.read_csv(DAY / "reports.csv", dtype=str, encoding="utf-8-sig")
    lon, lat = gcj02_to_wgs84(reports["lon"].astype(float), reports["lat"].astype(float))
    reports["lon"], reports["lat"] = lon, lat
    # A report at the dump site with a hostile description (reports are GCJ-02 in the feed).
    glon, glat = wgs84_to_gcj02(121.05405, 31.40205)
    hostile = pd.DataFrame(
        [
            {
                "report_id": "RPT-20261120-0099",
                "reported_at": "2026-11-20T15:02:11+08:00",
                "observed_from": "2026-11-20T01:00:00+08:00",
                "observed_to": "2026-11-20T04:00:00+08:00",
                "lon": float(gcj02_to_wgs84(glon, glat)[0]),
                "lat": float(gcj02_to_wgs84(glon, glat)[1]),
                "address": "昆山市周市镇<b>某村</b>河道旁",
                "waste_type": "muck",
                "volume_m3_est": "15",
                "source": "hotline",
                "reporting_unit": "昆山市12345热线",
                "description": HOSTILE,
            }
        ]
    )
    reports = pd.concat([reports, hostile], ignore_index=True)
    for c in ("reported_at", "observed_from", "observed_to"):
        reports[c] = _local(reports[c])
    return reports


@pytest.fixture(scope="module")
def ctx() -> SheetContext:
    vehicles = pd.read_csv(REF / "vehicles.csv", dtype=str)
    vehicles["vehicle_id"] = _plate(vehicles["vehicle_id"])
    manifests = pd.read_csv(DAY / "manifests.csv", dtype=str, encoding="utf-8-sig")
    manifests["vehicle_id"] = _plate(manifests["vehicle_id"])
    for c in ("issued_at", "departed_at", "received_at"):
        manifests[c] = _local(manifests[c])
    return SheetContext(
        date="2026-11-20",
        sites=load_sites(),
        vehicles=vehicles,
        carriers=pd.read_csv(REF / "carriers.csv", dtype=str),
        liaisons=pd.read_csv(REF / "liaisons.csv", dtype=str),
        manifests=manifests,
        reports=load_reports(),
        boundaries=fake_boundaries(),
        generated_at=pd.Timestamp("2026-11-21T02:30:00+08:00"),
    )


@pytest.fixture(scope="module")
def track() -> pd.DataFrame:
    """苏E·42288 from 00:30 to 03:40 as the feed has it (naive local times, a (0,0) fix, a jump)."""
    gps = pd.read_csv(DAY / "gps/part-002.csv", dtype={"loaded": str, "tipping": str})
    gps = gps[_plate(gps["vehicle_id"]) == "苏E42288"].copy()
    gps["ts"] = _local(gps["ts"])
    for c in ("loaded", "tipping"):
        gps[c] = gps[c].str.lower().map({"true": True, "false": False, "1": True, "0": False})
    window = (gps["ts"] >= pd.Timestamp("2026-11-20 00:30", tz=TZ)) & (
        gps["ts"] <= pd.Timestamp("2026-11-20 03:40", tz=TZ)
    )
    return gps.loc[window, ["ts", "lon", "lat", "speed_kmh", "loaded", "tipping"]].reset_index(drop=True)


def dump_lead() -> dict:
    return {
        "lead_id": "LD-20261120-a1b2c3d4",
        "kind": "illegal_dump",
        "cross_border": True,
        "score": 0.91,
        "vehicle_id": "苏E42288",
        "carrier_id": "91320583MALJ4P790L",
        "start": pd.Timestamp("2026-11-20T02:31:04+08:00").tz_convert(TZ),
        "end": pd.Timestamp("2026-11-20T02:42:14+08:00").tz_convert(TZ),
        "county_adcode": "320583",
        "province_adcode": "320000",
        "origin_site_id": "GD2026-1037",
        "origin_county_adcode": "310118",
        "manifest_id": "",
        "report_ids": ["RPT-20261120-0099"],
        "candidates": [],
        "primary_liaison_id": "LN-320500-01",
        "cc_liaison_ids": ["LN-310118-01", "LN-320000-01", "LN-310000-01"],
        "lon": 121.05341,
        "lat": 31.40264,
        "evidence": {
            "dwell_min": 11.0,
            "tipping": True,
            "loaded_before": True,
            "loaded_after": False,
            "nearest_receiver_id": "ZY-3101-06",
            "nearest_receiver_m": 26500.0,
            "depart": "2026-11-20T01:51:36+08:00",
            "waste_type": "muck",
            "score_parts": {"tipping": 0.35, "load_change": 0.25, "no_receiver": 0.2, "report": 0.11},
            "report_distance_m": {"RPT-20261120-0099": 85.0},
            "reason": "车辆在无消纳资质地点停留 11 分钟，举升传感器触发，停留前重车、停留后空车。",
        },
    }


def bare_lead() -> dict:
    """A track_gap lead with nothing optional: no manifest, origin, carrier, reports, cc or track."""
    return {
        "lead_id": "LD-20261120-gap00001",
        "kind": "track_gap",
        "cross_border": False,
        "score": 0.55,
        "vehicle_id": "沪B37556",
        "carrier_id": None,
        "start": pd.Timestamp("2026-11-19T23:40:00+08:00"),
        "end": pd.Timestamp("2026-11-20T00:35:00+08:00"),
        "county_adcode": "310118",
        "province_adcode": "310000",
        "origin_site_id": "",
        "origin_county_adcode": "",
        "manifest_id": None,
        "report_ids": [],
        "candidates": [],
        "primary_liaison_id": "LN-310118-01",
        "cc_liaison_ids": [],
        "lon": 121.2,
        "lat": 31.1,
        "evidence": {},
    }


def trace_lead() -> dict:
    return {
        "lead_id": "LD-20261120-trace001",
        "kind": "report_trace",
        "cross_border": False,
        "score": 0.42,
        "vehicle_id": "沪D·D25866",
        "carrier_id": "91310112870506128F",
        "start": pd.Timestamp("2026-11-20T06:27:36+08:00"),
        "end": pd.Timestamp("2026-11-20T13:19:13+08:00"),
        "county_adcode": "310114",
        "province_adcode": "310000",
        "origin_site_id": "",
        "origin_county_adcode": "",
        "manifest_id": "",
        "report_ids": ["RPT-20261120-0004"],
        "candidates": ["沪DD25866", "沪AZ9177"],
        "primary_liaison_id": "LN-310114-01",
        "cc_liaison_ids": ["LN-310118-01"],
        "lon": 121.25,
        "lat": 31.35,
        "evidence": {
            "candidates_detail": [
                {
                    "vehicle_id": "沪DD25866",
                    "distance_m": 140.0,
                    "dwell_min": 7.5,
                    "at": "2026-11-20T07:10:00+08:00",
                },
                {
                    "vehicle_id": "沪AZ9177",
                    "distance_m": 620.0,
                    "dwell_min": 3.0,
                    "at": "2026-11-20T08:02:00+08:00",
                },
            ]
        },
    }


def leads_frame() -> pd.DataFrame:
    frame = pd.DataFrame([dump_lead(), bare_lead(), trace_lead()])
    assert set(LEAD_COLUMNS) <= set(frame.columns)
    return frame


EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_sheet_states_who_when_where_and_kind(ctx, track):
    page = render_sheet(dump_lead(), track, ctx)
    assert "苏E42288" in page
    assert "苏州昆山鸿运运输有限公司" in page and "91320583MALJ4P790L" in page
    assert "江苏省苏州市昆山市" in page
    assert "偷倒乱倒" in page and "跨省" in page
    assert "<svg" in page and "</svg>" in page
    assert "2026年11月20日 02:31 至 02:42" in page
    # Origin site with its builder and contractor, and the missing manifest stated.
    assert (
        "青浦区练塘镇商业综合体项目" in page
        and "上海地产有限公司" in page
        and "中交三航局第1工程有限公司" in page
    )
    assert "无联单" in page
    # Coordinates: WGS-84 to 6 decimals and the GCJ-02 pair for Chinese map apps.
    glon, glat = wgs84_to_gcj02(121.05341, 31.40264)
    assert "121.053410" in page and f"{float(glon):.6f},{float(glat):.6f}" in page
    assert "LN-320500-01" in page and "唐超浩" in page and "曹英明" in page
    assert "case_filed" in page and "LD-20261120-a1b2c3d4" in page


def test_hostile_description_is_escaped(ctx, track):
    page = render_sheet(dump_lead(), track, ctx)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;某村&lt;/b&gt;" in page  # the address too
    assert "white-space: pre-wrap" in page


def test_page_loads_nothing_external(ctx, track):
    for lead in (dump_lead(), bare_lead(), trace_lead()):
        page = render_sheet(lead, track if lead["kind"] == "illegal_dump" else None, ctx)
        assert not EXTERNAL.search(page), EXTERNAL.search(page)
        assert "http://" not in page and "https://" not in page
        assert "@import" not in page and "url(http" not in page
        assert "default-src 'none'" in page  # CSP: even a slipped reference would not load


def test_facts_follow_the_evidence(ctx, track):
    facts = lead_facts(dump_lead(), ctx)
    joined = "\n".join(facts)
    assert "02:31 至 02:42" in joined and "11 分钟" in joined
    assert "举升传感器触发" in joined
    assert "到达时重车，离开时空车" in joined
    assert "跨省：装载地在上海市，卸载地在江苏省" in joined
    assert "01:51" in joined and "GD2026-1037" in joined


def test_key_track_points_find_the_dump(track, ctx):
    pts = key_track_points(track, dump_lead(), ctx)
    at = pts.set_index("ts")["note"]
    near = at[
        (at.index >= pd.Timestamp("2026-11-20 02:31", tz=TZ))
        & (at.index <= pd.Timestamp("2026-11-20 02:43", tz=TZ))
    ]
    assert near.str.contains("到达事件点").sum() == 1
    assert near.str.contains("举升开始").sum() == 1 and near.str.contains("举升结束").sum() == 1
    assert near.str.contains("转为空车").sum() == 1
    # The earlier, legitimate unloading at the recycling plant is listed with the plant's name.
    legit = pts[pts["note"].str.contains("举升开始") & (pts["ts"] < pd.Timestamp("2026-11-20 02:00", tz=TZ))]
    assert legit["site"].str.contains("青浦区金泽镇建筑垃圾资源化利用厂").all() and len(legit) == 1
    assert len(pts) <= 24
    assert (pts["lon"] != 0).all()  # the (0,0) fix of the feed is not shown
    assert not ((pts["lon"] - 121.082216).abs() < 1e-6).any()  # nor the 5 km jump at 02:20:14


def test_map_draws_track_sites_borders_and_scale(ctx, track):
    svg = render_map_svg(dump_lead(), track, ctx, standalone=True)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") >= 2  # loaded and empty runs in different colours
    assert "#d7301f" in svg and "#2b8cbe" in svg
    assert "事件点" in svg and "北" in svg and "公里" in svg
    assert "昆山市" in svg  # county label inside the view
    assert "举报 RPT-20261120-0099" in svg
    width_m = float(re.search(r"图幅宽 ([\d.]+) 公里", svg).group(1)) * 1000
    assert 1000 <= width_m <= 30_000


def test_map_without_any_position():
    lead = {**bare_lead(), "lon": None, "lat": None}
    ctx = SheetContext(date="2026-11-20")
    svg = render_map_svg(lead, None, ctx)
    assert "无位置数据" in svg


@pytest.mark.parametrize(("target", "expected"), [(2600, 2000), (730, 500), (100, 100), (19_999, 10_000)])
def test_scale_bar_is_round(target, expected):
    assert nice_length_m(target) == expected


def test_lead_with_missing_optional_data_renders(ctx):
    page = render_sheet(bare_lead(), None, ctx)
    assert "轨迹中断" in page and "沪B37556" in page
    assert "无联单" in page
    assert "未能追溯到来源工地" in page
    assert "无该车辆在事件前后的轨迹数据" in page
    # Crossing midnight: both dates are written out.
    assert "2026年11月19日 23:40 至 2026年11月20日 00:35（跨日" in page
    # A lead without even an evidence dict or liaison renders with a bare context too.
    lead = {k: v for k, v in bare_lead().items() if k not in ("evidence", "primary_liaison_id")}
    assert "<svg" in render_sheet(lead, None, SheetContext(date="2026-11-20"))


def test_liaison_assignments_primary_wins():
    frame = pd.DataFrame(
        [
            {"lead_id": "A", "primary_liaison_id": "X", "cc_liaison_ids": ["X", "Y"]},
            {"lead_id": "B", "primary_liaison_id": "", "cc_liaison_ids": np.array(["Y"])},
        ]
    )
    got = liaison_assignments(frame).sort_values(["liaison_id", "lead_id"]).to_dict("records")
    assert got == [
        {"liaison_id": "X", "lead_id": "A", "role": "primary"},
        {"liaison_id": "Y", "lead_id": "A", "role": "cc"},
        {"liaison_id": "Y", "lead_id": "B", "role": "cc"},
    ]


def _links(page: str) -> list[str]:
    return re.findall(r'href="(LD-[^"]+\.html)"', page)


def test_write_sheets_indexes(ctx, track, tmp_path):
    leads = leads_frame()
    summary = write_sheets(leads, {"LD-20261120-a1b2c3d4": track}, ctx, tmp_path)
    assert summary["sheets"] == 3
    liaisons = {"LN-320500-01", "LN-310118-01", "LN-320000-01", "LN-310000-01", "LN-310114-01"}
    assert summary["indexes"] == 1 + len(liaisons)
    for lid in leads["lead_id"]:
        assert (tmp_path / f"{lid}.html").exists()
    for li in liaisons:
        assert (tmp_path / f"liaison-{li}.html").exists()
    # index.html: all leads, highest score first.
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert _links(index) == [
        "LD-20261120-a1b2c3d4.html",
        "LD-20261120-gap00001.html",
        "LD-20261120-trace001.html",
    ]
    # A liaison's page lists exactly its leads, split into 主办 and 抄送.
    qp = (tmp_path / "liaison-LN-310118-01.html").read_text(encoding="utf-8")
    head, cc_part = qp.split("抄送线索")
    assert _links(head) == ["LD-20261120-gap00001.html"]
    assert _links(cc_part) == ["LD-20261120-a1b2c3d4.html", "LD-20261120-trace001.html"]
    js = (tmp_path / "liaison-LN-310114-01.html").read_text(encoding="utf-8")
    assert _links(js) == ["LD-20261120-trace001.html"]
    sz = (tmp_path / "liaison-LN-320500-01.html").read_text(encoding="utf-8")
    assert _links(sz.split("抄送线索")[0]) == ["LD-20261120-a1b2c3d4.html"] and not _links(
        sz.split("抄送线索")[1]
    )
    assert not list(tmp_path.glob(".*tmp*"))


def test_rerun_removes_sheets_of_vanished_leads(ctx, tmp_path):
    write_sheets(leads_frame(), {}, ctx, tmp_path)
    unrelated = tmp_path / "notes.html"
    unrelated.write_text("kept", encoding="utf-8")
    summary = write_sheets(leads_frame().iloc[[0]], {}, ctx, tmp_path)
    assert summary["sheets"] == 1
    assert not (tmp_path / "LD-20261120-gap00001.html").exists()
    assert not (tmp_path / "liaison-LN-310114-01.html").exists()
    assert (tmp_path / "LD-20261120-a1b2c3d4.html").exists() and unrelated.exists()


def test_unsafe_lead_id_gets_safe_file_and_escaped_link(ctx, tmp_path):
    lead = {**bare_lead(), "lead_id": '../x"><script>'}
    write_sheets(pd.DataFrame([lead]), {}, ctx, tmp_path)
    files = [p.name for p in tmp_path.iterdir()]
    assert not (tmp_path.parent / "x").exists()
    sheet = next(f for f in files if f.startswith("x_") and f.endswith(".html"))
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script" not in index and sheet in index


def diverted_lead() -> dict:
    """Manifest SH2026112000001 declares 装修垃圾 to ZY-3101-06; the truck unloaded at XN-3304-12 instead,
    a disposal site that takes only muck/mud and whose permit ended on 2026-11-19."""
    return {
        **dump_lead(),
        "lead_id": "DV-20261120-0001",
        "kind": "diverted",
        "cross_border": "true",  # as text, as some stores give it back
        "county_adcode": "330421",
        "province_adcode": "330000",
        "manifest_id": "SH2026112000001",
        "report_ids": np.array([], dtype=object),
        "cc_liaison_ids": np.array(["LN-310118-01"], dtype=object),
        "evidence": '{"unload_site_id": "XN-3304-12", "manifest_dest_site_id": "ZY-3101-06", '
        '"waste_type": "decoration", "dwell_min": 8.5, "tipping": null, "score_parts": {"base": 0.7}}',
    }


def test_diverted_facts_name_each_problem(ctx):
    joined = "\n".join(lead_facts(diverted_lead(), ctx))
    assert "申报去向为「青浦区金泽镇建筑垃圾资源化利用厂」（ZY-3101-06）" in joined
    assert "实际卸载于「嘉善县西塘镇建筑垃圾消纳场」（XN-3304-12），与联单不符" in joined
    assert "核准接收工程渣土、工程泥浆，不接收装修垃圾" in joined
    assert "有效期为 2026-04-07 至 2026-11-19，卸载当日不在有效期内" in joined
    assert "该车无举升、载重传感器数据" in joined  # None is unknown, never "not triggered"
    page = render_sheet(diverted_lead(), None, ctx)
    assert "未按联单消纳（改变去向）" in page and "跨省" in page
    assert "SH2026112000001" in page and "已接收" in page and "基础分" in page


def test_track_gap_shows_silence_and_reach(ctx, track):
    lead = {
        **bare_lead(),
        "vehicle_id": "苏E42288",
        "start": pd.Timestamp("2026-11-20T02:25:00+08:00"),
        "end": pd.Timestamp("2026-11-20T02:50:00+08:00"),
        "lon": 121.05341,
        "lat": 31.40264,
        "evidence": {
            "gap_min": 25.0,
            "gap_start": "2026-11-20T02:25:00+08:00",
            "gap_end": "2026-11-20T02:50:00+08:00",
            "max_reach_km": 12.5,
            "loaded_before": True,
            "loaded_after": False,
        },
    }
    joined = "\n".join(lead_facts(lead, ctx))
    assert "定位终端于 02:25 至 02:50 中断 25 分钟；中断前为重车，恢复后为空车" in joined
    assert "最远可达 12.5 公里" in joined
    svg = render_map_svg(lead, track, ctx)
    assert 'stroke-dasharray="6 5"' in svg  # the silent stretch is dashed
    assert 'stroke-dasharray="3 4"' in svg  # the reach circle
    assert "推测卸载点" in svg


def test_nullable_sensor_columns_and_frame_rows(ctx, track):
    """Leads straight from a DataFrame (NaN, numpy arrays, pd.NA) and a track with pandas 'boolean' + NA."""
    t = track.copy()
    t["loaded"] = t["loaded"].astype("boolean")
    t.loc[t.index[::7], "loaded"] = pd.NA
    t["tipping"] = t["tipping"].astype("boolean")
    frame = pd.DataFrame([dump_lead(), diverted_lead(), bare_lead()])
    frame.loc[2, "cross_border"] = pd.NA
    frame.loc[2, "score"] = np.nan
    for lead in frame.to_dict("records"):
        page = render_sheet(lead, t, ctx)
        assert "</html>" in page and "<script" not in page


def test_empty_night_writes_an_empty_index(ctx, tmp_path):
    summary = write_sheets(pd.DataFrame(columns=[*LEAD_COLUMNS, "lon", "lat", "evidence"]), {}, ctx, tmp_path)
    assert summary == {"sheets": 0, "indexes": 1, "files": ["index.html"]}
    assert "共 0 条线索" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_with_the_shipped_boundaries(ctx, track):
    boundaries = pytest.importorskip("wastetrack.boundaries")
    real = SheetContext(
        date=ctx.date,
        sites=ctx.sites,
        vehicles=ctx.vehicles,
        carriers=ctx.carriers,
        liaisons=ctx.liaisons,
        manifests=ctx.manifests,
        reports=ctx.reports,
        boundaries=boundaries.load_boundaries(),
    )
    assert real.place("320583") == "江苏省苏州市昆山市" and real.place("310118") == "上海市青浦区"
    svg = render_map_svg(dump_lead(), track, real)
    assert "昆山市" in svg and "嘉定区" in svg
    assert 'stroke-dasharray="10 3 2 3"' in svg  # the Shanghai–Jiangsu border runs through the view
    assert len(svg) < 120_000  # borders are clipped and simplified to the view, not copied whole
