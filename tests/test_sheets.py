"""Lead sheets: content a liaison needs, escaping of untrusted text, offline-only pages, liaison indexes.

The context is built from the contract's example reference data (read directly
with pandas/geopandas, since the real readers live elsewhere) and a real track
of 苏E·42288 from the example batch: loaded at a 青浦 site, it tipped for ten
minutes 13 km from any approved receiver in 昆山 — a cross-border illegal dump.
"""

from __future__ import annotations

import os
import re
import shutil
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
    build_sheet,
    key_track_points,
    lead_facts,
    liaison_assignments,
    render_map_svg,
    render_sheet,
    sheet_filename,
    write_index_pages,
    write_lead_pages,
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
    assert "青浦区练塘镇商业综合体项目" in page and "上海地产有限公司" in page and "中交三航局第1工程有限公司" in page
    # No manifest was matched: said exactly so, with the vehicle's manifests of the day to check by hand.
    assert "未匹配到电子联单" in page and "无联单" not in page
    assert 'data-manifest-state="none_matched"' in page
    assert 'data-manifest-id="SH2026112000001" data-status="received"' in page
    assert 'data-manifest-id="SH2026112000006" data-status="received"' in page
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
    joined = "\n".join(f.text for f in facts)
    assert "02:31 至 02:42" in joined and "11 分钟" in joined
    assert "举升传感器触发" in joined
    assert "到达时重车，离开时空车" in joined
    assert "跨省：装载地在上海市，卸载地在江苏省" in joined
    assert "01:51" in joined and "GD2026-1037" in joined


def test_key_track_points_find_the_dump(track, ctx):
    pts = key_track_points(track, dump_lead(), ctx)
    at = pts.set_index("ts")["note"]
    near = at[
        (at.index >= pd.Timestamp("2026-11-20 02:31", tz=TZ)) & (at.index <= pd.Timestamp("2026-11-20 02:43", tz=TZ))
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
    assert "卸载点" in svg and "北" in svg and "公里" in svg
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
    assert "未匹配到电子联单" in page and "无联单" not in page
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
    assert _links(sz.split("抄送线索")[0]) == ["LD-20261120-a1b2c3d4.html"] and not _links(sz.split("抄送线索")[1])
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
    joined = "\n".join(f.text for f in lead_facts(diverted_lead(), ctx))
    assert "申报去向为「青浦区金泽镇建筑垃圾资源化利用厂」（ZY-3101-06）" in joined
    assert "实际卸载于「嘉善县西塘镇建筑垃圾消纳场」（XN-3304-12），与联单不符" in joined
    assert "核准接收工程渣土、工程泥浆，不接收装修垃圾" in joined
    assert "有效期为 2026-04-07 至 2026-11-19，卸载当日不在有效期内" in joined
    assert "该车无举升、载重传感器数据" in joined  # None is unknown, never "not triggered"
    page = render_sheet(diverted_lead(), None, ctx)
    assert "未按联单消纳（改变去向）" in page and "跨省" in page
    assert "SH2026112000001" in page and "已接收" in page and "基础分" in page


def test_track_gap_shows_silence_and_reach(ctx, track):
    # The terminal of 苏E42288 silenced from about 02:25 to 02:50: the fixes in between are gone.
    t0 = track.loc[track["ts"] <= pd.Timestamp("2026-11-20 02:25", tz=TZ), "ts"].max()
    t1 = track.loc[track["ts"] >= pd.Timestamp("2026-11-20 02:50", tz=TZ), "ts"].min()
    track = track[(track["ts"] <= t0) | (track["ts"] >= t1)].reset_index(drop=True)
    lead = {
        **bare_lead(),
        "vehicle_id": "苏E42288",
        "start": t0,
        "end": t1,
        "lon": 121.05341,
        "lat": 31.40264,
        "evidence": {
            "gap_min": 25.0,
            "gap_start": t0.isoformat(),
            "gap_end": t1.isoformat(),
            "max_reach_km": 12.5,
            "loaded_before": True,
            "loaded_after": False,
        },
    }
    joined = "\n".join(f.text for f in lead_facts(lead, ctx))
    assert "定位终端于 02:24 至 02:50 中断 25 分钟；中断前为重车，恢复后为空车" in joined
    assert "最远可达 12.5 公里" in joined
    assert "减速停靠" not in joined  # no placement in the evidence: no reason claimed
    # why the point is there, when the placement says so: the officer searches where the truck stopped
    stopped = {**lead, "evidence": {**lead["evidence"], "placement": {"method": "stood_going_dark"}}}
    reach = next(f for f in lead_facts(stopped, ctx) if f.topic == "reach")
    assert "（车辆在该处减速停靠后定位中断）" in reach.text
    svg = render_map_svg(lead, track, ctx)
    assert 'data-role="lead-gap"' in svg  # the silent stretch is dashed
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


# ------------------------------------------------------------------------------------------------ new behaviour
def _fixes(rows: list[tuple[str, float, float, object, object]]) -> pd.DataFrame:
    """A track from (local time, lon, lat, loaded, tipping) rows; speeds are not needed by the sheets."""
    frame = pd.DataFrame(rows, columns=["ts", "lon", "lat", "loaded", "tipping"])
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize(TZ)
    frame["speed_kmh"] = 30.0
    for c in ("loaded", "tipping"):
        frame[c] = frame[c].astype("boolean")
    return frame


def _line(t0: str, t1: str, a: tuple[float, float], b: tuple[float, float], step_s: int, loaded, tipping=False):
    """Fixes every ``step_s`` seconds moving straight from ``a`` to ``b`` between t0 and t1 (inclusive)."""
    n = max(int((pd.Timestamp(t1) - pd.Timestamp(t0)).total_seconds() // step_s) + 1, 2)
    times = pd.date_range(t0, t1, periods=n).round("s")
    f = np.linspace(0.0, 1.0, len(times))
    return [
        (str(t), a[0] + (b[0] - a[0]) * k, a[1] + (b[1] - a[1]) * k, loaded, tipping)
        for t, k in zip(times, f, strict=True)
    ]


def out_and_back() -> tuple[dict, pd.DataFrame]:
    """Loaded north to a dump, tipping there, empty back south along the very same road."""
    south, north = (121.20, 31.10), (121.20, 31.16)
    rows = (
        _line("2026-11-20 00:00:00", "2026-11-20 00:19:30", south, north, 30, True)
        + _line("2026-11-20 00:20:00", "2026-11-20 00:24:30", north, north, 30, True)
        + _line("2026-11-20 00:25:00", "2026-11-20 00:27:00", north, north, 30, True, True)
        + _line("2026-11-20 00:27:30", "2026-11-20 00:30:00", north, north, 30, False)
        + _line("2026-11-20 00:30:30", "2026-11-20 00:50:00", north, south, 30, False)
    )
    lead = {
        **bare_lead(),
        "lead_id": "LD-OUT-AND-BACK",
        "kind": "illegal_dump",
        "start": pd.Timestamp("2026-11-20T00:20:00+08:00"),
        "end": pd.Timestamp("2026-11-20T00:30:00+08:00"),
        "lon": north[0],
        "lat": north[1],
        "evidence": {
            "depart": "2026-11-20T00:00:00+08:00",
            "tipping": True,
            "loaded_before": True,
            "loaded_after": False,
            "haul_id": "沪B37556@1",
        },
    }
    return lead, _fixes(rows)


def test_loaded_approach_is_drawn_above_the_empty_return(ctx):
    lead, track = out_and_back()
    svg = render_map_svg(lead, track, ctx)
    runs = re.findall(r'<polyline [^>]*data-state="(\w+)" data-leg="(\w+)"', svg)
    states = [s for s, _ in runs]
    assert "loaded" in states and "empty" in states
    # every empty run comes before (under) every loaded run, and the approach is drawn last of all
    assert max(i for i, s in enumerate(states) if s == "empty") < min(i for i, s in enumerate(states) if s == "loaded")
    assert runs[-1] == ("loaded", "approach")
    # loaded and empty differ in colour and width: a wide pale band under a narrow red line
    empty = re.search(r'<polyline [^>]*stroke="#2b8cbe" stroke-width="([\d.]+)" stroke-opacity', svg)
    loaded = re.search(r'<polyline [^>]*stroke="#d7301f" stroke-width="([\d.]+)"', svg)
    assert empty and loaded and float(empty.group(1)) > 1.5 * float(loaded.group(1))


def test_scale_bar_sits_under_the_map_never_on_it(ctx, track):
    for lead in (dump_lead(), trace_lead(), out_and_back()[0]):
        svg = render_map_svg(lead, track, ctx, 680, 500)
        map_h = 500 - 46
        legend = svg.index('data-role="legend"')
        bar = svg.index('data-role="scale-bar"')
        assert bar > legend  # inside the legend strip
        ys = [float(y) for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)"', svg[bar:])]
        assert ys and min(ys) >= map_h


def gap_lead_and_track() -> tuple[dict, pd.DataFrame]:
    """A track_gap like the review's: a 5-minute drop-out while driving, later the lead's 18-minute silence
    that ends 54 m from where it began (no load sensor)."""
    site, gap_pt = (121.119, 30.996), (121.1727, 30.9545)
    rows = (
        _line("2026-11-20 19:40:00", "2026-11-20 19:52:48", site, site, 24, None)
        + _line("2026-11-20 19:57:49", "2026-11-20 20:31:23", (121.131, 30.988), gap_pt, 24, None)
        + _line("2026-11-20 20:49:11", "2026-11-20 21:10:11", (121.1730, 30.9540), (121.2033, 30.9796), 30, None)
    )
    lead = {
        **bare_lead(),
        "lead_id": "TG-REVIEW",
        "start": pd.Timestamp("2026-11-20T20:31:23+08:00"),
        "end": pd.Timestamp("2026-11-20T20:49:11+08:00"),
        "lon": gap_pt[0],
        "lat": gap_pt[1],
        "manifest_id": "",
        "evidence": {
            "haul_id": "沪B37556@2",
            "gap_min": 17.8,
            "gap_start": "2026-11-20T20:31:23+08:00",
            "gap_end": "2026-11-20T20:49:11+08:00",
            "max_reach_km": 7.4,
            "loaded_before": None,
            "loaded_after": None,
        },
    }
    return lead, _fixes(rows)


def test_track_gap_labels_its_own_gap_and_draws_the_reach_circle(ctx):
    lead, track = gap_lead_and_track()
    model = build_sheet(lead, track, ctx)
    by_role = {r.role: r for r in model.key_points for r in [r] if r.role}
    start = next(p for p in model.key_points if "gap-start" in p.role.split())
    end = next(p for p in model.key_points if "gap-end" in p.role.split())
    assert start.ts == pd.Timestamp("2026-11-20T20:31:23+08:00") and end.ts == pd.Timestamp("2026-11-20T20:49:11+08:00")
    assert "本线索中断 18 分钟" in end.note
    # the unrelated 5-minute drop-out is called what it is, never the lead's gap
    short = next(p for p in model.key_points if p.ts == pd.Timestamp("2026-11-20T19:57:49+08:00"))
    assert short.role == "silence-end" and "定位中断" not in short.note and "非本线索" in short.note
    assert not any(r in by_role for r in ("arrival", "departure"))
    # the reach circle is drawn whole in figure 1, and the fact points to it only because it is
    assert "reach-circle" in model.maps[0].roles
    reach = next(f for f in model.facts if f.topic == "reach")
    assert "图1" in reach.text and reach.claims["figures"] == ["fig1:reach-circle"]
    svg = model.maps[0].svg
    circle = re.search(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="([\d.]+)"[^>]*data-role="reach-circle"', svg)
    assert circle and float(circle.group(3)) > 50  # visible, not a dot
    lead_gap = re.search(r'data-role="lead-gap" data-state="\w+" data-leg="\w+" data-t0="(\d+)" data-t1="(\d+)"', svg)
    assert (
        lead_gap
        and int(lead_gap.group(1)) == int(start.ts.timestamp())
        and int(lead_gap.group(2)) == int(end.ts.timestamp())
    )
    page = render_sheet(lead, track, ctx)
    assert page.count('class="lead-gap"') == 2
    # A reach too large to draw whole is stated without pointing at any circle.
    far = {**lead, "evidence": {**lead["evidence"], "max_reach_km": 120.0}}
    far_reach = next(f for f in build_sheet(far, track, ctx).facts if f.topic == "reach")
    assert "图" not in far_reach.text and far_reach.claims["figures"] == []


def test_report_trace_never_claims_a_missing_manifest(ctx):
    """Without the haul look-up a report trace says 未核实; with it, what the look-up found."""
    unchecked = trace_lead()
    page = render_sheet(unchecked, None, ctx)
    assert "无联单" not in page and "未匹配到电子联单" not in page
    assert 'data-manifest-state="unverified"' in page and "未核实" in page
    facts = {f.topic: f for f in lead_facts(unchecked, ctx)}
    assert facts["manifest"].claims.get("manifest_unverified") is True
    assert facts["load_at_report"].claims.get("load_unverified") is True
    # The lead engineer's fields: the candidate's haul, its manifest and the load around the report.
    checked = {
        **trace_lead(),
        "manifest_id": "SH2026112000001",
        "origin_site_id": "GD2026-1037",
        "evidence": {
            **trace_lead()["evidence"],
            "haul_id": "沪DD25866@1795100000",
            "depart": "2026-11-20T06:50:12+08:00",
            "loaded_before": True,
            "loaded_after": True,
        },
    }
    page = render_sheet(checked, None, ctx)
    assert 'data-manifest-state="matched"' in page and "SH2026112000001" in page and "未核实" not in page
    assert "2026-11-20 06:50:12" in page  # 驶离时间, not "—"
    facts = {f.topic: f for f in lead_facts(checked, ctx)}
    assert facts["manifest"].claims["manifest_id"] == "SH2026112000001"
    assert "到达举报点附近时为重车，离开时为重车" in facts["load_at_report"].text
    assert facts["origin"].claims["times"]["depart"] == "2026-11-20T06:50:12+08:00"
    # Looked up and none matched: said so, with the vehicle's manifests of the day.
    none = {**checked, "manifest_id": ""}
    fact = next(f for f in lead_facts(none, ctx) if f.topic == "manifest")
    assert fact.claims["no_manifest"] is True and "未匹配到电子联单" in fact.text
    # Looked up, and no haul of the candidate covered the report.
    no_haul = {**none, "evidence": {**none["evidence"], "haul_id": ""}}
    fact = next(f for f in lead_facts(no_haul, ctx) if f.topic == "manifest")
    assert fact.claims["manifest_unverified"] is True and "未找到首选车辆在举报时段内的运次" in fact.text


def _section_numbers(page: str) -> list[str]:
    return re.findall(r"<h2>(\S+?)、", page)


def test_sections_are_numbered_without_gaps(ctx, track):
    from wastetrack.sheets.labels import cn_numeral

    history = {"LD-20261120-gap00001": [{"at": "2026-11-21T09:00:00+08:00", "event": "delivered"}]}
    with_history = SheetContext(**{**_ctx_fields(ctx), "history": history})
    for lead, c in ((bare_lead(), ctx), (dump_lead(), ctx), (bare_lead(), with_history), (trace_lead(), ctx)):
        numbers = _section_numbers(render_sheet(lead, track, c))
        assert numbers == [cn_numeral(i) for i in range(1, len(numbers) + 1)], numbers
    assert len(_section_numbers(render_sheet(bare_lead(), None, ctx))) == 6  # no reports: 一 … 六
    assert len(_section_numbers(render_sheet(bare_lead(), None, with_history))) == 7


def _ctx_fields(ctx: SheetContext) -> dict:
    keep = ("date", "sites", "vehicles", "carriers", "liaisons", "manifests", "reports", "boundaries", "generated_at")
    return {k: getattr(ctx, k) for k in keep}


def test_night_note_and_history_on_the_pages(ctx, tmp_path):
    note = "本夜运行缺少前一日数据，跨午夜的运输可能未被判定 <b>注意</b>"
    history = {
        "LD-20261120-a1b2c3d4": [
            {"at": "2026-11-21T10:05:00+08:00", "event": "received", "actor": "唐超浩", "detail": "已签收"},
            {"at": "2026-11-21T08:00:00+08:00", "event": "delivered", "actor": "系统", "detail": HOSTILE},
            {"at": "2026-11-22T16:00:00+08:00", "event": "case_filed", "actor": "唐超浩", "detail": "立案号 KS-1"},
        ]
    }
    c = SheetContext(**{**_ctx_fields(ctx), "night_note": note, "history": history})
    write_sheets(leads_frame(), {}, c, tmp_path)
    pages = sorted(tmp_path.glob("*.html"))
    assert len(pages) == 3 + 1 + 5
    for p in pages:
        page = p.read_text(encoding="utf-8")
        assert page.count('data-role="night-note"') == 1, p.name
        assert "跨午夜的运输可能未被判定 &lt;b&gt;注意&lt;/b&gt;" in page
    sheet = (tmp_path / "LD-20261120-a1b2c3d4.html").read_text(encoding="utf-8")
    assert "处理记录" in sheet
    events = re.findall(r'<tr data-event="(\w+)">', sheet)
    assert events == ["delivered", "received", "case_filed"]  # in time order
    assert "已送达联络员" in sheet and "已立案" in sheet and "立案号 KS-1" in sheet
    assert "<script" not in sheet.lower() and "&lt;script&gt;alert(1)" in sheet
    assert "处理记录" not in (tmp_path / "LD-20261120-gap00001.html").read_text(encoding="utf-8")


def test_hostile_text_anywhere_is_escaped_and_never_evaluated(ctx, track, tmp_path):
    evil = "</title><script>alert(1)</script>{{ 7*7 }}{% if 1 %}X{% endif %}<svg onload=alert(2)>"
    sites = ctx.sites.copy()
    sites.loc[sites["site_id"] == "GD2026-1037", "name"] = evil
    carriers = ctx.carriers.copy()
    carriers.loc[carriers["carrier_id"] == "91320583MALJ4P790L", "name"] = evil
    liaisons = ctx.liaisons.copy()
    liaisons.loc[liaisons["liaison_id"] == "LN-320500-01", "name"] = evil
    c = SheetContext(
        **{
            **_ctx_fields(ctx),
            "sites": sites,
            "carriers": carriers,
            "liaisons": liaisons,
            "night_note": evil,
            "history": {"LD-20261120-a1b2c3d4": [{"at": "x", "event": evil, "actor": evil, "detail": evil}]},
        }
    )
    lead = dump_lead()
    lead["evidence"] = {**lead["evidence"], "reason": evil, evil: evil}
    write_sheets(pd.DataFrame([lead, bare_lead(), trace_lead()]), {lead["lead_id"]: track}, c, tmp_path)
    pages = list(tmp_path.glob("*.html"))
    assert len(pages) >= 4
    for p in pages:
        page = p.read_text(encoding="utf-8")
        assert "<script" not in page.lower(), p.name
        assert "<svg onload" not in page.lower() and "</title><script" not in page, p.name
        assert "{{ 7*7 }}{% if 1 %}X{% endif %}" in page, p.name  # the banner: shown, never run as a template
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "{{ 7*7 }}" in index and "&lt;svg onload=alert(2)&gt;" in index  # the carrier's name, as text
    sheet = (tmp_path / "LD-20261120-a1b2c3d4.html").read_text(encoding="utf-8")
    assert "{{ 7*7 }}{% if 1 %}X{% endif %}" in sheet  # shown literally, not run as a template
    assert "&lt;/title&gt;&lt;script&gt;" in sheet


def test_a_province_can_override_the_layout(ctx, tmp_path):
    override = tmp_path / "tpl"
    override.mkdir()
    css = (Path(__file__).resolve().parents[1] / "src/wastetrack/sheets/templates/sheet.css").read_text("utf-8")
    (override / "sheet.css").write_text(css + "\n/* 浙江省版式 */\n", encoding="utf-8")
    c = SheetContext(**{**_ctx_fields(ctx), "template_dir": override})
    assert "/* 浙江省版式 */" in render_sheet(bare_lead(), None, c)
    assert "/* 浙江省版式 */" not in render_sheet(bare_lead(), None, ctx)


def test_chunks_written_apart_give_the_same_pages(ctx, track, tmp_path):
    """The pipeline may write chunks of the night in several processes: a pickled context, chunk by chunk,
    then the index pages, gives the same directory as one write_sheets call."""
    import pickle

    leads = leads_frame()
    tracks = {"LD-20261120-a1b2c3d4": track}
    one = tmp_path / "one"
    write_sheets(leads, tracks, ctx, one)
    apart = tmp_path / "apart"
    for chunk in (leads.iloc[[0, 2]], leads.iloc[[1]]):
        clone = pickle.loads(pickle.dumps(ctx))  # as a worker process receives it
        written = write_lead_pages(chunk, tracks, clone, apart)
        assert [p.name for p in written] == [f"{lid}.html" for lid in chunk["lead_id"]]
    index_pages = write_index_pages(leads, pickle.loads(pickle.dumps(ctx)), apart)
    assert index_pages[0].name == "index.html" and len(index_pages) == 6
    for p in one.iterdir():
        assert (apart / p.name).read_bytes() == p.read_bytes(), p.name
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in apart.iterdir())


def test_sheet_filename_never_takes_an_index_name():
    names = {sheet_filename(x) for x in ("index", "INDEX", "liaison-LN-1", "sheets", "LD-1")}
    assert "index.html" not in names and "sheets.html" not in names
    assert not any(n.startswith("liaison-") for n in names) and "LD-1.html" in names


# ------------------------------------------------------------------------------------------------ in a browser
#: Measures the laid-out page and writes the result onto <body data-probe="…">; only in the test's copy.
_PROBE = """<script>(function () {
  const box = (el) => { const b = el.getBoundingClientRect(); return {l: b.left, r: b.right, t: b.top, b: b.bottom}; };
  const overlap = (a, b) => a.l < b.r - 0.5 && b.l < a.r - 0.5 && a.t < b.b - 0.5 && b.t < a.b - 0.5;
  const out = {vw: document.documentElement.clientWidth, sw: document.documentElement.scrollWidth,
               overlaps: [], plate: null, svg_h: [], figure_h: []};
  document.querySelectorAll('.cols').forEach((c) => {
    const tables = Array.from(c.querySelectorAll('table')).map(box);
    for (let i = 0; i < tables.length; i++)
      for (let j = i + 1; j < tables.length; j++) if (overlap(tables[i], tables[j])) out.overlaps.push([i, j]);
  });
  const p = document.querySelector('[data-role=plate]');
  if (p) {
    const b = box(p), cell = p.closest('td');
    const hit = document.elementFromPoint((b.l + b.r) / 2, (b.t + b.b) / 2);
    out.plate = {l: b.l, r: b.r, on_top: hit === p || p.contains(hit),
                 clipped: cell.scrollWidth > cell.clientWidth + 1, cell_r: box(cell).r};
  }
  document.querySelectorAll('figure.map').forEach((f) => {
    out.svg_h.push(box(f.querySelector('svg')).b - box(f.querySelector('svg')).t);
    out.figure_h.push(box(f).b - box(f).t);
  });
  document.body.setAttribute('data-probe', JSON.stringify(out));
})();</script>"""
#: A4 (210 mm) less the 11 mm side margins of @page, at 96 px per inch.
A4_CONTENT_PX = round((210 - 2 * 11) / 25.4 * 96)
A4_CONTENT_H_PX = round((297 - 12 - 13) / 25.4 * 96)


def _chromium() -> str:
    """Debian's chromium (scripts/chromium.sh installs it); a CI run without it fails instead of skipping."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: the layout checks need it in CI (scripts/chromium.sh)")
        pytest.skip("chromium is not installed (scripts/chromium.sh installs it)")
    return path


def _probe(docs: dict[str, tuple[str, int, bool]], tmp_path: Path) -> dict[str, dict]:
    """Lay pages out in one headless chromium and return what _PROBE measured in each.

    ``docs`` maps a name to (page, width px, print_css). Each page goes into an iframe of that width in
    one harness page (one browser start for all). Its copy allows the probe's inline script (the real
    page forbids every script); with ``print_css`` the @media print rules apply on screen, at the width
    of an A4 page's text block.
    """
    import html as html_lib
    import json
    import subprocess

    frames = []
    for name, (page, width, print_css) in docs.items():
        page = page.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
        if print_css:
            page = page.replace("@media print {", "@media all {").replace("@media screen and (max-width", "@media (x")
        page = page.replace("</body>", _PROBE + "</body>")
        frames.append(
            f'<iframe name="{name}" width="{width}" height="9000" style="border:0;display:block" '
            f'srcdoc="{html_lib.escape(page, quote=True)}"></iframe>'
        )
    collect = (
        "<script>window.addEventListener('load', () => { const out = {};"
        " document.querySelectorAll('iframe').forEach((f) => {"
        " out[f.name] = JSON.parse(f.contentDocument.body.getAttribute('data-probe')); });"
        " document.body.setAttribute('data-probe', JSON.stringify(out)); });</script>"
    )
    src = tmp_path / "probe.html"
    src.write_text(f"<!DOCTYPE html><html><body>{''.join(frames)}{collect}</body></html>", encoding="utf-8")
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--hide-scrollbars",
        "--window-size=1300,1000",
        "--virtual-time-budget=20000",
        "--dump-dom",
        src.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<body data-probe="([^"]*)"', done.stdout)
    assert found, f"chromium gave no measurement (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html_lib.unescape(found.group(1)))


def test_layout_on_a_phone_and_on_a4(ctx, track, tmp_path):
    """At 400 px a sheet is one column: nothing overlaps, the plate is whole and on top, nothing makes the page
    scroll sideways (wide tables scroll inside their box). In print the two columns fit the A4 text block and
    each map fits a page. The index pages fit a phone too."""
    pages = {
        "dump": render_sheet(dump_lead(), track, ctx),
        "trace": render_sheet(trace_lead(), None, ctx),
        "gap": render_sheet(*gap_lead_and_track(), ctx),
    }
    write_sheets(leads_frame(), {"LD-20261120-a1b2c3d4": track}, ctx, tmp_path / "night")
    docs = {f"{k}-phone": (v, 400, False) for k, v in pages.items()}
    docs |= {f"{k}-a4": (v, A4_CONTENT_PX, True) for k, v in pages.items()}
    for name in ("index.html", "liaison-LN-310118-01.html"):
        docs[f"{name}-phone"] = ((tmp_path / "night" / name).read_text(encoding="utf-8"), 400, False)
    probes = _probe(docs, tmp_path)
    assert set(probes) == set(docs)
    for name, p in probes.items():
        assert p["sw"] <= p["vw"] + 1, (name, "the page scrolls sideways", p)
        assert not p["overlaps"], (name, "tables overlap", p)
        if name.endswith(".html-phone"):
            continue
        plate = p["plate"]
        assert plate["on_top"] and not plate["clipped"] and plate["l"] >= 0 and plate["r"] <= p["vw"], (name, plate)
        if name.endswith("-a4"):
            assert p["vw"] == A4_CONTENT_PX
            assert all(h <= 115 / 25.4 * 96 + 1 for h in p["svg_h"]), (name, p["svg_h"])
            assert all(h <= A4_CONTENT_H_PX for h in p["figure_h"]), (name, p["figure_h"])
        else:
            assert p["vw"] == 400
