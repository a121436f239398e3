"""batch.json verification: a batch is processed all or nothing."""

from __future__ import annotations

import gzip
import io

import pytest

from contract_fixtures import DAY, EXAMPLE, batch_json, copy_landing, reseal, write_batch_json
from wastetrack.contract import BatchError, ContractError, read_batch, read_night
from wastetrack.contract.batch import count_csv_records, hash_and_count


def _count(data: bytes, chunk: int = 7) -> int:
    return count_csv_records(data[i : i + chunk] for i in range(0, len(data), chunk))


@pytest.mark.parametrize("day", ["2026-11-19", "2026-11-20"])
def test_example_batches_verify_against_the_producers_declared_rows_and_hashes(day):
    batch = read_batch(EXAMPLE, day, verify=True)
    assert batch.complete and batch.date == day
    assert batch.coord_sys == {"gps": "wgs84", "reports": "gcj02"}
    assert [f["path"] for f in batch.gps_files()] == [
        "gps/part-000.csv",
        "gps/part-001.parquet",
        "gps/part-002.csv",
        "gps/part-003.csv.gz",
        "gps/part-004.parquet",
        "gps/part-005.csv",
    ]


def test_record_count_is_rfc4180_quoted_newlines_crlf_blank_lines_any_chunking():
    data = b'a,b\r\n1,"x\r\ny"\r\n\r\n2,"say ""hi""\n"\r\n3,4'
    for chunk in (1, 2, 3, 5, 64):
        assert _count(data, chunk) == 3
    assert _count(b"a,b\n") == 0
    assert _count(b"a,b") == 0
    assert _count(b"") == 0
    assert _count(b"a,b\n1,2\n\n\n") == 1


def test_gz_rows_are_counted_on_the_decompressed_csv_and_hashed_as_stored(tmp_path):
    path = tmp_path / "part.csv.gz"
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write(b'vehicle_id,ts\n"A\nB",1\nC,2\n')
    path.write_bytes(buf.getvalue())
    sha, rows = hash_and_count(path)
    assert rows == 2
    import hashlib

    assert sha == hashlib.sha256(buf.getvalue()).hexdigest()


def test_incomplete_batch_is_refused_waiting_for_producer(tmp_path):
    landing = copy_landing(tmp_path)
    doc = batch_json(landing)
    doc["complete"] = False
    write_batch_json(landing, doc)
    with pytest.raises(
        BatchError, match=r"batch 2026-11-20 refused: complete is false — waiting for the producer"
    ):
        read_batch(landing, DAY)
    assert read_batch(landing, DAY, verify=False).complete is False


def test_missing_file_is_refused_naming_it(tmp_path):
    landing = copy_landing(tmp_path)
    (landing / DAY / "gps/part-002.csv").unlink()
    with pytest.raises(BatchError, match=r"gps/part-002\.csv listed in batch\.json but missing"):
        read_night(landing, DAY)


def test_sha_mismatch_is_refused_with_both_hashes(tmp_path):
    landing = copy_landing(tmp_path)
    path = landing / DAY / "gps/part-001.parquet"
    declared = batch_json(landing)["files"][3]["sha256"]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BatchError) as err:
        read_batch(landing, DAY)
    msg = str(err.value)
    assert msg.startswith("batch 2026-11-20 refused: gps/part-001.parquet sha256 mismatch")
    assert f"declared {declared}" in msg


def test_row_count_mismatch_is_refused(tmp_path):
    landing = copy_landing(tmp_path)
    doc = batch_json(landing)
    entry = next(f for f in doc["files"] if f["path"] == "gps/part-000.csv")
    entry["rows"] += 1
    write_batch_json(landing, doc)
    with pytest.raises(
        BatchError, match=r"gps/part-000\.csv row count mismatch \(declared 5094, found 5093\)"
    ):
        read_batch(landing, DAY)


def test_unlisted_data_file_is_refused(tmp_path):
    landing = copy_landing(tmp_path)
    (landing / DAY / "gps/part-999.csv").write_text("vehicle_id,ts,lon,lat\n", encoding="utf-8")
    with pytest.raises(BatchError, match=r"gps/part-999\.csv present in the batch directory but not listed"):
        read_batch(landing, DAY)


def test_date_must_match_directory_and_paths_stay_inside(tmp_path):
    landing = copy_landing(tmp_path)
    doc = batch_json(landing)
    doc["date"] = "2026-11-21"
    write_batch_json(landing, doc)
    with pytest.raises(BatchError, match="declares date '2026-11-21'"):
        read_batch(landing, DAY)
    doc["date"] = DAY
    doc["files"][0]["path"] = "../reference/carriers.csv"
    write_batch_json(landing, doc)
    with pytest.raises(BatchError, match="leaves the batch directory"):
        read_batch(landing, DAY, verify=False)


def test_bad_json_and_absent_batch_are_batch_errors(tmp_path):
    landing = copy_landing(tmp_path)
    (landing / DAY / "batch.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BatchError, match="not valid JSON"):
        read_batch(landing, DAY)
    with pytest.raises(BatchError, match=r"2026-11-18/batch\.json not found"):
        read_batch(landing, "2026-11-18")
    assert issubclass(BatchError, ContractError)


def test_reseal_helper_reproduces_the_producers_declaration(tmp_path):
    # The fixture helper recomputes with our counter; on untouched files it must agree with the producer.
    landing = copy_landing(tmp_path)
    before = batch_json(landing)
    reseal(landing)
    assert batch_json(landing) == before


def test_unknown_coordinate_system_is_refused(tmp_path):
    landing = copy_landing(tmp_path)
    doc = batch_json(landing)
    doc["coord_sys"]["reports"] = "mars"
    write_batch_json(landing, doc)
    with pytest.raises(BatchError, match="coord_sys"):
        read_batch(landing, DAY, verify=False)
