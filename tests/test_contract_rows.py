"""Hand-made bad inputs: each defect lands in the quarantine with its column, reason and record number."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contract_fixtures import (
    DAY,
    batch_json,
    copy_landing,
    edit_lines,
    field,
    reseal,
    set_field,
    write_batch_json,
)
from wastetrack.contract import ContractError, read_night

TZ = "Asia/Shanghai"
GPS0 = f"{DAY}/gps/part-000.csv"
MAN = f"{DAY}/manifests.csv"


@pytest.fixture
def landing(tmp_path):
    return copy_landing(tmp_path)


def quarantined(night, file: str) -> pd.DataFrame:
    q = night.quarantine.frame()
    return q[q["file"] == file].set_index("row")


def count_of(night, path: str):
    return next(c for c in night.counts if c.path == path)


def test_missing_required_column_fails_the_run_naming_file_and_column(landing):
    def drop_ts(lines):
        return [",".join(c for i, c in enumerate(line.split(",")) if i != 1) for line in lines]

    edit_lines(landing, "gps/part-002.csv", drop_ts)
    with pytest.raises(ContractError, match=r"2026-11-20/gps/part-002\.csv: missing required column\(s\) ts"):
        read_night(landing, DAY)


def test_missing_required_column_in_reference_fails(landing):
    edit_lines(landing, "reference/carriers.csv", lambda ls: [ln.rsplit(",", 1)[0] for ln in ls])
    with pytest.raises(
        ContractError, match=r"reference/carriers\.csv: missing required column\(s\) contact_phone"
    ):
        read_night(landing, DAY)


def test_bad_time_is_quarantined_with_column_value_and_row(landing):
    edit_lines(landing, "gps/part-000.csv", lambda ls: set_field(ls, 10, "ts", "xyz"))
    edit_lines(landing, "manifests.csv", lambda ls: set_field(ls, 3, "issued_at", "2026-13-45T00:00:00"))
    edit_lines(landing, "manifests.csv", lambda ls: set_field(ls, 4, "departed_at", "yesterday"))
    night = read_night(landing, DAY)
    assert quarantined(night, GPS0).loc[10, "reason"] == "ts: cannot parse time 'xyz'"
    man = quarantined(night, MAN)
    assert man.loc[3, "reason"] == "issued_at: cannot parse time '2026-13-45T00:00:00'"
    assert man.loc[4, "reason"] == "departed_at: cannot parse time 'yesterday'"
    # the neighbours survive with the right lineage
    gps = night.gps[night.gps["source_file"] == GPS0]
    assert 10 not in set(gps["source_row"]) and {9, 11} <= set(gps["source_row"])
    c = count_of(night, GPS0)
    assert (c.rows_in, c.rows_quarantined) == (5093, 4)  # 3 (0,0) of the example + ours


def test_empty_optional_time_is_nat_and_empty_required_time_is_quarantined(landing):
    edit_lines(landing, "manifests.csv", lambda ls: set_field(ls, 2, "issued_at", ""))
    night = read_night(landing, DAY)
    assert quarantined(night, MAN).loc[2, "reason"] == "issued_at: missing"
    m = night.manifests.set_index("manifest_id")
    assert pd.isna(m.loc["SH2026112000003", "departed_at"])  # empty in the example file
    # naive issued_at (2026-11-20T06:25:21, record 7) is local time
    assert m.loc["SH2026112000007", "issued_at"] == pd.Timestamp("2026-11-20T06:25:21+08:00")


def test_bad_enum_values_are_quarantined(landing):
    edit_lines(landing, "manifests.csv", lambda ls: set_field(ls, 2, "waste_type", "gravel"))
    edit_lines(landing, "manifests.csv", lambda ls: set_field(ls, 5, "status", "Lost"))
    edit_lines(
        landing, "manifests.csv", lambda ls: set_field(ls, 6, "status", "RECEIVED")
    )  # case is not an error
    night = read_night(landing, DAY)
    man = quarantined(night, MAN)
    assert man.loc[2, "reason"].startswith("waste_type: 'gravel' is not one of muck/mud/")
    assert man.loc[5, "reason"].startswith("status: 'lost' is not one of issued/")
    assert 6 not in man.index
    assert night.manifests.set_index("source_row").loc[6, "status"] == "received"


def test_zero_zero_and_out_of_range_positions(landing):
    def edit(ls):
        set_field(ls, 5, "lon", "0")
        set_field(ls, 5, "lat", "0")
        set_field(ls, 6, "lon", "181.5")
        set_field(ls, 7, "lon", "2.35")  # Paris: a valid position, but not in China
        set_field(ls, 7, "lat", "48.85")
        set_field(ls, 8, "lat", "")
        return ls

    edit_lines(landing, "gps/part-000.csv", edit)
    q = quarantined(read_night(landing, DAY), GPS0)
    assert q.loc[5, "reason"] == "lon/lat (0,0)"
    assert q.loc[6, "reason"].startswith("lon/lat out of range (181.5,")
    assert q.loc[7, "reason"] == "lon/lat outside China's bounding box (2.35, 48.85)"
    assert q.loc[8, "reason"] == "lat: missing"


def test_speed_and_heading_out_of_range_name_the_column(landing):
    def edit(ls):
        set_field(ls, 11, "speed_kmh", "-3")
        set_field(ls, 12, "speed_kmh", "250")
        set_field(ls, 13, "heading", "361")
        set_field(ls, 14, "heading", "north")
        return ls

    edit_lines(landing, "gps/part-000.csv", edit)
    q = quarantined(read_night(landing, DAY), GPS0)
    assert q.loc[11, "reason"] == "speed_kmh: out of range [0, 200] (-3)"
    assert q.loc[12, "reason"] == "speed_kmh: out of range [0, 200] (250)"
    assert q.loc[13, "reason"] == "heading: out of range [0, 360] (361)"
    assert q.loc[14, "reason"] == "heading: not a number 'north'"


def test_bad_plate_is_quarantined_and_variants_are_not(landing):
    def edit(ls):
        set_field(ls, 7, "vehicle_id", "ABC123")
        set_field(ls, 8, "vehicle_id", "沪a·d2586６")  # lower case and a full-width digit: fine
        set_field(ls, 9, "vehicle_id", "")
        return ls

    edit_lines(landing, "gps/part-000.csv", edit)
    night = read_night(landing, DAY)
    q = quarantined(night, GPS0)
    assert q.loc[7, "reason"] == "vehicle_id: invalid plate 'ABC123'"
    assert q.loc[9, "reason"] == "vehicle_id: missing"
    assert 8 not in q.index
    gps = night.gps[night.gps["source_file"] == GPS0].set_index("source_row")
    assert gps.loc[8, "vehicle_id"] == "沪AD25866"


def test_bad_credit_code_flags_a_manifest_and_quarantines_a_carrier(landing):
    def flip_check(code: str) -> str:
        return code[:-1] + ("0" if code[-1] != "0" else "1")

    edit_lines(
        landing,
        "manifests.csv",
        lambda ls: set_field(ls, 4, "carrier_id", flip_check(field(ls, 4, "carrier_id"))),
    )
    edit_lines(
        landing,
        "reference/carriers.csv",
        lambda ls: set_field(ls, 2, "carrier_id", flip_check(field(ls, 2, "carrier_id"))),
    )
    reason = "carrier_id: invalid unified social credit code (check character)"
    night = read_night(landing, DAY)
    # a manifest is evidence of a legal haul: kept (dropping it would accuse its truck), flagged
    assert 4 not in quarantined(night, MAN).index
    bad = night.manifests.loc[~night.manifests["carrier_id_valid"]]
    assert list(bad["source_row"]) == [4]
    assert night.manifests["carrier_id_valid"].sum() == len(night.manifests) - 1
    # the carrier registry must be clean: a carrier with a bad code is quarantined
    assert quarantined(night, "reference/carriers.csv").loc[2, "reason"] == reason
    c = count_of(night, "reference/carriers.csv")
    assert (c.rows_in, c.rows_accepted, c.rows_quarantined) == (15, 14, 1)
    assert len(night.reference.carriers) == 14


def test_duplicate_ids_keep_the_first(landing):
    edit_lines(
        landing,
        "manifests.csv",
        lambda ls: set_field(ls, 5, "manifest_id", " " + field(ls, 2, "manifest_id")),
    )

    def dup_vehicle(ls):
        ls.insert(3, "沪F·F26769,91310118MA6MXA7G0K,013815982847,12.0,310118,")  # 沪F F26769 again
        return ls

    edit_lines(landing, "reference/vehicles.csv", dup_vehicle)
    night = read_night(landing, DAY)
    assert quarantined(night, MAN).loc[5, "reason"] == "duplicate manifest_id"
    kept = night.manifests.set_index("manifest_id").loc["SH2026112000002"]
    assert kept["source_row"] == 2
    v = quarantined(night, "reference/vehicles.csv")
    assert v.loc[3, "reason"] == "duplicate vehicle_id"
    assert night.reference.vehicles.set_index("vehicle_id").loc["沪FF26769", "capacity_m3"] == 10.0


def test_gps_duplicates_are_kept_for_the_cleaning_stage(landing):
    edit_lines(landing, "gps/part-000.csv", lambda ls: [*ls[:3], ls[2], *ls[3:]])
    night = read_night(landing, DAY)
    gps = night.gps[night.gps["source_file"] == GPS0]
    assert len(gps) == 5094 - 3
    assert gps.iloc[1][["vehicle_id", "ts"]].tolist() == gps.iloc[2][["vehicle_id", "ts"]].tolist()


def test_bad_boolean_is_quarantined_and_empty_is_unknown(landing):
    def edit(ls):
        set_field(ls, 1, "loaded", "yes")
        set_field(ls, 2, "tipping", "TRUE")
        set_field(ls, 3, "loaded", "0")
        return ls

    edit_lines(landing, "gps/part-000.csv", edit)
    night = read_night(landing, DAY)
    assert quarantined(night, GPS0).loc[1, "reason"] == "loaded: 'yes' is not a boolean (true/false/1/0)"
    gps = night.gps[night.gps["source_file"] == GPS0].set_index("source_row")
    assert bool(gps.loc[2, "tipping"]) is True
    assert bool(gps.loc[3, "loaded"]) is False
    assert pd.isna(gps.loc[4, "loaded"])  # empty in the example


def test_several_reasons_of_one_row_are_joined(landing):
    def edit(ls):
        set_field(ls, 20, "ts", "never")
        set_field(ls, 20, "loaded", "maybe")
        return ls

    edit_lines(landing, "gps/part-000.csv", edit)
    reason = quarantined(read_night(landing, DAY), GPS0).loc[20, "reason"]
    assert reason == "ts: cannot parse time 'never'; loaded: 'maybe' is not a boolean (true/false/1/0)"


def test_utf8_bom_is_accepted(landing):
    path = landing / DAY / "gps/part-000.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    reseal(landing)
    night = read_night(landing, DAY)
    c = count_of(night, GPS0)
    assert (c.rows_in, c.rows_accepted) == (5093, 5090)
    # manifests.csv of the example already carries a BOM
    assert (landing / DAY / "manifests.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert night.manifests["manifest_id"].iloc[0] == "SH2026112000001"


def test_epoch_milliseconds_in_a_csv_ts(landing):
    edit_lines(landing, "gps/part-000.csv", lambda ls: set_field(ls, 3, "ts", "1795105648000"))
    gps = read_night(landing, DAY).gps
    row = gps[(gps["source_file"] == GPS0) & (gps["source_row"] == 3)].iloc[0]
    assert row["ts"] == pd.Timestamp("2026-11-20T00:27:28+08:00")


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_parquet_with_native_timestamps(landing, tz):
    path = landing / DAY / "gps/part-001.parquet"
    table = pq.read_table(path)
    ts = pd.to_datetime(pd.Series(table.column("ts").to_pylist()), format="ISO8601")
    if tz is None:  # naive native timestamps are local time
        arr = pa.array(ts.dt.tz_convert(TZ).dt.tz_localize(None), pa.timestamp("ms"))
    else:
        arr = pa.array(ts.dt.tz_convert("UTC"), pa.timestamp("us", tz="UTC"))
    pq.write_table(table.set_column(table.schema.get_field_index("ts"), "ts", arr), path)
    reseal(landing)
    gps = read_night(landing, DAY).gps
    part = gps[gps["source_file"] == f"{DAY}/gps/part-001.parquet"].set_index("source_row")
    assert part.loc[1, "ts"] == pd.Timestamp("2026-11-20T00:00:04+08:00")
    assert len(part) == 5978 - 8


def test_malformed_record_is_quarantined_and_later_rows_keep_their_numbers(landing):
    edit_lines(landing, "gps/part-000.csv", lambda ls: [*ls[:30], ls[30] + ",extra", *ls[31:]])
    night = read_night(landing, DAY)
    q = quarantined(night, GPS0)
    assert q.loc[30, "reason"] == "malformed record: 9 fields, expected 8"
    gps = night.gps[night.gps["source_file"] == GPS0].set_index("source_row")
    raw = (landing / GPS0).read_text(encoding="utf-8").splitlines()
    assert 30 not in gps.index
    assert gps.loc[31, "ts"] == pd.Timestamp(field(raw, 31, "ts"))
    assert count_of(night, GPS0).rows_in == 5093


def test_point_site_without_radius_and_bad_accepts_are_quarantined(landing):
    path = landing / "reference/sites.geojson"
    doc = json.loads(path.read_text(encoding="utf-8"))
    del doc["features"][2]["properties"]["radius_m"]  # GD2026-1111, a Point
    doc["features"][26]["properties"]["accepts"] = ["muck", "gold"]
    doc["features"][27]["properties"].pop("accepts")  # a receiver without accepts
    doc["features"][5]["geometry"] = {"type": "LineString", "coordinates": [[121.0, 31.0], [121.1, 31.1]]}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    night = read_night(landing, DAY)
    q = quarantined(night, "reference/sites.geojson")
    assert q.loc[3, "reason"] == "radius_m: required for a Point site"
    assert q.loc[27, "reason"] == "accepts: 'gold' not one of muck/mud/construction/demolition/decoration"
    assert q.loc[28, "reason"] == "accepts: required for a receiving site"
    assert q.loc[6, "reason"] == "geometry: LineString is not a Polygon, MultiPolygon or Point"
    c = count_of(night, "reference/sites.geojson")
    assert (c.rows_in, c.rows_accepted) == (37, 33)
    assert json.loads(q.loc[3, "raw"])["site_id"] == "GD2026-1111"


def test_absent_reports_give_an_empty_typed_frame_but_a_listed_one_must_exist(landing):
    (landing / DAY / "reports.csv").unlink()
    doc = batch_json(landing)
    doc["files"] = [f for f in doc["files"] if f["path"] != "reports.csv"]
    write_batch_json(landing, doc)
    night = read_night(landing, DAY)
    assert night.reports.empty and str(night.reports["reported_at"].dt.tz) == TZ
    assert not any(c.path.endswith("reports.csv") for c in night.counts)


def test_feedback_is_read_and_validated(landing):
    (landing / DAY / "feedback.csv").write_text(
        "lead_id,liaison_id,at,status,case_no,penalty_cny,note\n"
        "L-1,LN-310000-01,2026-11-20T09:00:00+08:00,case_filed,沪青城罚〔2026〕12号,20000,已立案\n"
        "L-2,LN-310000-01,2026-11-20T10:00:00,pending,,,\n",
        encoding="utf-8",
    )
    doc = batch_json(landing)
    doc["files"].append({"path": "feedback.csv", "rows": 0, "sha256": "0" * 64})
    write_batch_json(landing, doc)
    reseal(landing)
    night = read_night(landing, DAY)
    assert len(night.feedback) == 1 and night.feedback["penalty_cny"].iloc[0] == 20000.0
    q = quarantined(night, f"{DAY}/feedback.csv")
    assert q.loc[2, "reason"].startswith("status: 'pending' is not one of received/")


def test_liaison_active_must_be_boolean_and_town_codes_have_nine_digits(landing):
    def edit(ls):
        ls[5] = ls[5].rsplit(",", 1)[0] + ",sometimes"
        ls.append("LN-TOWN-1,town,310118101,青浦区练塘镇,张三,z@example.cn,13800000000,primary,true")
        return ls

    edit_lines(landing, "reference/liaisons.csv", edit)
    night = read_night(landing, DAY)
    q = quarantined(night, "reference/liaisons.csv")
    assert q.loc[5, "reason"] == "active: 'sometimes' is not a boolean (true/false/1/0)"
    town = night.reference.liaisons.set_index("liaison_id").loc["LN-TOWN-1"]
    assert town["adcode"] == "310118101"
    assert bool(town["active"]) is True
