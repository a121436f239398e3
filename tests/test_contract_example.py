"""Reading both example days in full: conservation of rows and known facts of the example data."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from contract_fixtures import DAY, EXAMPLE, PREV, batch_json, copy_landing, write_batch_json
from wastetrack.contract import read_context, read_night
from wastetrack.contract.batch import BatchError
from wastetrack.coords import METRIC_CRS, haversine_m
from wastetrack.models import (
    CARRIER_COLUMNS,
    FEEDBACK_COLUMNS,
    FIX_COLUMNS,
    LIAISON_COLUMNS,
    MANIFEST_COLUMNS,
    REPORT_COLUMNS,
    SITE_COLUMNS,
    VEHICLE_COLUMNS,
)

TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def nights():
    return {day: read_night(EXAMPLE, day) for day in (PREV, DAY)}


@pytest.mark.parametrize("day", [PREV, DAY])
def test_rows_are_conserved_and_equal_the_declared_rows(nights, day):
    night = nights[day]
    declared = {f"{day}/{f['path']}": f["rows"] for f in batch_json(EXAMPLE, day)["files"]}
    counts = {c.path: c for c in night.counts}
    for path, rows in declared.items():
        assert counts[path].rows_in == rows, path
    for c in night.counts:
        assert c.rows_in == c.rows_accepted + c.rows_quarantined, c
    assert set(counts) == set(declared) | {
        "reference/sites.geojson",
        "reference/vehicles.csv",
        "reference/carriers.csv",
        "reference/liaisons.csv",
    }
    q_per_file = night.quarantine.counts()
    for c in night.counts:
        assert q_per_file.get(c.path, 0) == c.rows_quarantined, c.path
    gps_accepted = sum(c.rows_accepted for c in night.counts if "/gps/" in c.path)
    assert len(night.gps) == gps_accepted
    assert len(night.manifests) == declared[f"{day}/manifests.csv"]
    assert len(night.reports) == 3


def test_output_frames_have_the_model_columns_first_and_typed(nights):
    night = nights[DAY]
    assert tuple(night.gps.columns) == FIX_COLUMNS
    assert tuple(night.manifests.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    assert "remark" in night.manifests.columns  # extra input column preserved
    assert tuple(night.reports.columns[: len(REPORT_COLUMNS)]) == REPORT_COLUMNS
    assert tuple(night.feedback.columns[: len(FEEDBACK_COLUMNS)]) == FEEDBACK_COLUMNS and night.feedback.empty
    ref = night.reference
    assert tuple(ref.sites.columns[: len(SITE_COLUMNS)]) == SITE_COLUMNS
    assert tuple(ref.vehicles.columns[: len(VEHICLE_COLUMNS)]) == VEHICLE_COLUMNS
    assert tuple(ref.carriers.columns[: len(CARRIER_COLUMNS)]) == CARRIER_COLUMNS
    assert tuple(ref.liaisons.columns[: len(LIAISON_COLUMNS)]) == LIAISON_COLUMNS
    assert str(night.gps["ts"].dt.tz) == TZ
    assert str(night.manifests["issued_at"].dt.tz) == TZ
    assert night.gps["loaded"].dtype == "boolean"
    assert night.reference.liaisons["active"].dtype == bool
    assert night.reference.boundaries_path is None
    gps = night.gps
    assert gps["source_row"].min() == 1
    assert set(gps["source_file"].cat.categories) == {
        f"{DAY}/gps/part-00{i}{ext}"
        for i, ext in enumerate([".csv", ".parquet", ".csv", ".csv.gz", ".parquet", ".csv"])
    }


def test_all_fixes_fall_on_or_near_the_day_and_inside_the_delta(nights):
    gps = nights[DAY].gps
    assert gps["lon"].between(114, 123).all() and gps["lat"].between(28, 36).all()
    start = pd.Timestamp("2026-11-19 12:00", tz=TZ)  # late re-uploads may be older; none are absurd
    assert (gps["ts"] > start).all() and (gps["ts"] < pd.Timestamp("2026-11-21", tz=TZ)).all()


def test_mixed_timestamp_formats_in_part_005_parse_to_the_right_instant(nights):
    gps = nights[DAY].gps
    part5 = gps[gps["source_file"] == f"{DAY}/gps/part-005.csv"].set_index("source_row")
    # record 1: naive '2026-11-20T00:01:24' → local Asia/Shanghai; find an offset one too.
    assert part5.loc[1, "ts"] == pd.Timestamp("2026-11-20T00:01:24+08:00")
    raw = (EXAMPLE / DAY / "gps/part-005.csv").read_text(encoding="utf-8").splitlines()
    with_offset = next(i for i, line in enumerate(raw[1:], start=1) if "+08:00" in line.split(",")[1])
    naive = next(i for i, line in enumerate(raw[1:], start=1) if "+" not in line.split(",")[1])
    for rec in (with_offset, naive):
        text = raw[rec].split(",")[1]
        expected = pd.Timestamp(text) if "+" in text else pd.Timestamp(text).tz_localize(TZ)
        assert part5.loc[rec, "ts"] == expected
    # the .csv.gz part writes UTC with Z: 2026-11-19T16:00:01Z is 00:00:01 local on the 20th
    first = gps[gps["source_file"] == f"{DAY}/gps/part-003.csv.gz"].iloc[0]
    assert first["source_row"] == 1 and first["vehicle_id"] == "浙F49S86"
    assert first["ts"] == pd.Timestamp("2026-11-20T00:00:01+08:00")


def test_epoch_ms_parquet_part_parses_to_local_time(nights):
    prev = nights[PREV].gps
    p4 = prev[prev["source_file"] == f"{PREV}/gps/part-004.parquet"].set_index("source_row")
    assert p4.loc[1, "ts"] == pd.Timestamp(1795017898000, unit="ms", tz="UTC").tz_convert(TZ)
    assert p4.loc[1, "ts"] == pd.Timestamp("2026-11-19T00:04:58+08:00")
    assert p4["speed_kmh"].isna().all() and p4["loaded"].isna().all()  # optional columns absent


def test_plate_variants_normalise_to_one_vehicle_id(nights):
    ids = set(nights[PREV].gps["vehicle_id"]) | set(nights[DAY].gps["vehicle_id"])
    assert "沪FF26769" in ids and not any("·" in v or " " in v for v in ids)
    m = nights[PREV].manifests.set_index("manifest_id")
    # '沪B37556', '沪B·37556', '沪B 37556', ' 沪B·37556 ' in the raw file
    assert set(m.loc[[f"SH20261119{n:05d}" for n in (6, 7, 8, 9)], "vehicle_id"]) == {"沪B37556"}
    vehicles = set(nights[DAY].reference.vehicles["vehicle_id"])
    assert ids <= vehicles  # every truck in the feed is registered once normalised
    assert "浙F49S86" in vehicles and "皖P9J5E2" in vehicles


def test_report_coordinates_are_moved_from_gcj02_by_about_500_m(nights):
    reports = nights[DAY].reports.set_index("report_id")
    raw = pd.read_csv(EXAMPLE / DAY / "reports.csv", dtype=str).set_index("report_id")
    for rid in reports.index:
        shift = haversine_m(
            float(raw.loc[rid, "lon"]),
            float(raw.loc[rid, "lat"]),
            reports.loc[rid, "lon"],
            reports.loc[rid, "lat"],
        )
        assert 300 < float(shift) < 700, (rid, shift)
    assert reports.loc["RPT-20261120-0004", "lon"] < 119.9099  # GCJ-02 is east of WGS-84 here
    assert reports.loc["RPT-20261120-0004", "waste_type"] == ""
    assert reports.loc["RPT-20261120-0004", "volume_m3_est"] == 15.0
    assert np.isnan(reports.loc["RPT-20261120-0006", "volume_m3_est"])
    assert "沪A·00000" in reports.loc["12345-2026112000005", "description"]  # untrusted text kept as data


def test_quoted_newline_in_report_description_is_one_record(nights):
    reports = nights[PREV].reports.set_index("report_id")
    desc = reports.loc["RPT-20261119-0001", "description"]
    assert "\n" in desc and '"车斗没盖"' in desc
    assert reports.loc["RPT-20261119-0002", "source"] == "patrol"


def test_point_site_became_a_polygon_of_about_the_right_area(nights):
    sites = nights[DAY].reference.sites.set_index("site_id")
    assert str(nights[DAY].reference.sites.crs) == "EPSG:4326"
    assert set(sites.geom_type) <= {"Polygon", "MultiPolygon"}
    row = sites.loc["GD2026-1111"]
    area = float(sites.loc[["GD2026-1111"]].to_crs(METRIC_CRS).area.iloc[0])
    assert area == pytest.approx(np.pi * 119.2**2, rel=0.01)
    assert row["radius_m"] == 119.2 and row["county_adcode"] == ""
    assert row["geometry"].contains(row["geometry"].representative_point())
    recv = sites.loc["XN-3304-05"]
    assert recv["accepts"] == ["muck", "mud"]
    assert recv["valid_from"] == pd.Timestamp("2026-04-28").date()
    assert sites.loc["GD2026-1037", "accepts"] == [] and sites.loc["GD2026-1037", "valid_to"] is pd.NaT


def test_polygon_site_fences_are_moved_from_gcj02(nights):
    import json

    doc = json.loads((EXAMPLE / "reference/sites.geojson").read_text(encoding="utf-8"))
    feat = next(f for f in doc["features"] if f["properties"]["site_id"] == "GD2026-1037")
    x0, y0 = feat["geometry"]["coordinates"][0][0]
    fence = nights[DAY].reference.sites.set_index("site_id").loc["GD2026-1037", "geometry"]
    x1, y1 = fence.exterior.coords[0]
    assert 300 < float(haversine_m(x0, y0, x1, y1)) < 700


def test_quarantine_reasons_of_the_example(nights):
    rc = {
        day: nights[day].quarantine.reason_counts().groupby("reason")["n"].sum().to_dict() for day in nights
    }
    assert rc[PREV] == {"lon/lat (0,0)": 18, "lon/lat out of range": 4}
    assert rc[DAY] == {"lon/lat (0,0)": 12, "lon/lat out of range": 2}
    q = nights[PREV].quarantine.frame()
    hit = q[(q["file"] == f"{PREV}/gps/part-000.csv") & q["reason"].str.contains("out of range")]
    assert hit["reason"].tolist() == ["lon/lat out of range (121.176, 91.5)"]
    raw_lines = (EXAMPLE / PREV / "gps/part-000.csv").read_text(encoding="utf-8").splitlines()
    assert ",91.5," in raw_lines[int(hit["row"].iloc[0])]


def test_quarantine_files_are_written_and_readable(nights, tmp_path):
    night = nights[PREV]
    out = tmp_path / "out" / PREV
    written = night.quarantine.write(out)
    assert {p.name for p in written} == {
        f"{PREV}__gps__part-000.csv.csv",
        f"{PREV}__gps__part-001.parquet.csv",
        f"{PREV}__gps__part-002.csv.csv",
        f"{PREV}__gps__part-004.parquet.csv",
    }
    back = pd.concat([pd.read_csv(p, dtype={"row": int}) for p in written], ignore_index=True)
    assert list(back.columns) == ["file", "row", "reason", "raw"]
    assert len(back) == len(night.quarantine)
    import json

    raw = json.loads(back.iloc[0]["raw"])
    assert set(raw) >= {"vehicle_id", "ts", "lon", "lat"}
    assert (out / "quarantine").is_dir()
    empty = read_night(EXAMPLE, DAY).quarantine
    empty._parts.clear()
    assert empty.write(tmp_path / "o2") == [] and (tmp_path / "o2" / "quarantine").is_dir()


def test_read_context_refuses_an_unusable_day_unless_a_degraded_night_is_accepted(tmp_path, caplog):
    landing = copy_landing(tmp_path, days=(PREV, DAY))
    ctx = read_context(landing, PREV)
    assert ctx is not None and len(ctx.gps) > 10000
    doc = batch_json(landing, PREV)
    doc["complete"] = False
    write_batch_json(landing, doc, PREV)
    with pytest.raises(BatchError, match="complete is false"):
        read_context(landing, PREV)
    with caplog.at_level(logging.WARNING):
        assert read_context(landing, PREV, without_context=True) is None
    assert "complete is false" in caplog.text
    assert read_context(landing, "2026-11-18") is None
