"""A night split by vehicle gives the same answer however it is split, streamed or carried over.

* leads.geojson is byte-identical for any number of shards and workers (process pool included);
* the streaming ingestion accepts and quarantines exactly what the in-memory readers do;
* a GPS part that breaks its batch.json promise is refused after streaming, and nothing is published;
* night 2 from night 1's carried state gives the leads night 2 gets from re-reading batch 1, and a
  lost state falls back to the previous batch and says so;
* the space-time index finds exactly the candidates a brute-force cross join finds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wastetrack.clean import epoch_seconds, vehicle_time_order
from wastetrack.contract import BatchError, read_night
from wastetrack.contract.batch import read_batch
from wastetrack.coords import haversine_m
from wastetrack.ingest import PartSpec, detect_floor, ingest_part
from wastetrack.partition import plan_shards, shard_of, vehicle_key, vehicle_keys
from wastetrack.pipeline import run_night
from wastetrack.spacetime import report_candidates
from wastetrack.store import open_store

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "contract" / "example"
DATES = ("2026-11-19", "2026-11-20")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wastetrack.simulate import simulate

    base = tmp_path_factory.mktemp("sharding")
    simulate(base / "landing", base / "truth.json", seed=5, days=2, trucks=14, start_date=DATES[0])
    return base / "landing"


def _night_hashes(landing: Path, out: Path, **kw: object) -> list[str]:
    for d in DATES:
        run_night(landing, d, out, **kw)
    return [hashlib.sha256((out / d / "leads.geojson").read_bytes()).hexdigest() for d in DATES]


def _lead_ids(out: Path, date: str) -> list[str]:
    fc = json.loads((out / date / "leads.geojson").read_text(encoding="utf-8"))
    return sorted(f["properties"]["lead_id"] for f in fc["features"])


def test_vehicle_keys_are_stable_and_per_distinct_plate() -> None:
    # a fixed value: the key of a plate must never change between versions, machines or runs
    assert vehicle_key("沪AD1234") == vehicle_key("沪AD1234") == 2287259467054861855
    keys = vehicle_keys(["沪AD1234", "苏E12345", "沪AD1234"])
    assert keys[0] == keys[2] != keys[1] and (keys >= 0).all()
    assert set(shard_of(keys, 4)) <= {0, 1, 2, 3}


def test_vehicle_time_order_is_lexsort_with_ties_in_arrival_order() -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 50, 20_000)
    t_us = 1_795_000_000_000_000 + rng.integers(0, 5, 20_000) * 1_000_000  # many equal (vehicle, time) pairs
    order = vehicle_time_order(codes, t_us)
    assert np.array_equal(order, np.lexsort((t_us, codes)))  # lexsort is stable: duplicates keep arrival order
    # a span the combined key cannot hold (60 days) takes the lexsort path, with the same answer
    wide = t_us + (np.arange(20_000) % 2) * 60 * 86_400 * 1_000_000
    assert np.array_equal(vehicle_time_order(codes, wide), np.lexsort((wide, codes)))
    assert vehicle_time_order(np.zeros(0, int), np.zeros(0, int)).size == 0


def test_detect_floor_is_the_vehicles_own_floor_or_the_default(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = vehicle_keys(["沪A1", "沪A2", "沪A3"])
    pq.write_table(pa.table({"vkey": keys[:2], "floor_us": np.array([10, 20], np.int64)}), tmp_path / "f.parquet")
    spec = PartSpec(path="x", rel="2026-11-20/gps/p.csv", tag="p", src=0, rows=0, sha256="", timezone="Asia/Shanghai",
                    coord_sys="WGS84", default_floor_us=99, floors=str(tmp_path / "f.parquet"))
    batch = np.array([keys[1], keys[2], keys[0], keys[1]], dtype=keys.dtype)
    assert detect_floor(spec, batch).tolist() == [20, 99, 10, 20]


def test_shards_are_sized_to_the_memory_budget() -> None:
    small = plan_shards(500_000, workers=2, memory_budget_bytes=6 * 1024**3)
    assert small.n_shards == 1
    big = plan_shards(130_000_000, workers=2, memory_budget_bytes=6 * 1024**3)
    per_worker = 3 * 1024**3
    assert big.n_shards % 2 == 0 and big.fixes_per_shard * 450 <= per_worker
    assert plan_shards(10, 1, 1024, n_shards=7).n_shards == 7


def test_shard_writers_buffer_rows_into_row_groups_and_lose_none(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wastetrack import ingest

    monkeypatch.setattr(ingest, "SHARD_ROW_GROUP", 1000)
    rng = np.random.default_rng(5)
    w = ingest.ShardWriters(tmp_path, "p", 3)
    sent: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    for b in range(7):  # batches of 700 rows: a shard gets ~230 per batch, so a row group spans batches
        n = 700
        keys = rng.integers(0, 2**62, n, dtype=np.int64)
        rows = np.arange(b * n, (b + 1) * n, dtype=np.int64)
        shards = rng.integers(0, 3, n)
        table = pa.table({"vkey": keys, "ts": rows * 1_000_000, "lon": np.full(n, 121.0), "lat": np.full(n, 31.0),
                          "speed_kmh": np.zeros(n, np.float32), "heading": np.zeros(n, np.float32),
                          "loaded": np.full(n, -1, np.int8), "tipping": np.full(n, -1, np.int8),
                          "src": np.zeros(n, np.int16), "row": rows}, schema=ingest.SHARD_SCHEMA)
        w.write(table, shards)
        for k in range(3):
            sent[k].append(rows[shards == k])
    w.close()
    for k in range(3):
        f = pq.ParquetFile(w.path(k))
        got = f.read().column("row").to_numpy()
        assert np.array_equal(got, np.concatenate(sent[k]))  # every row, once, in arrival order
        sizes = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
        assert all(s >= 1000 for s in sizes[:-1]) and sum(sizes) == w.counts[k]


def test_leads_are_identical_for_any_shard_and_worker_count(landing: Path, tmp_path: Path) -> None:
    one = _night_hashes(landing, tmp_path / "one", workers=1, shards=1)
    four = _night_hashes(landing, tmp_path / "four", workers=1, shards=4)
    pool = _night_hashes(landing, tmp_path / "pool", workers=2, shards=3, force_pool=True)
    assert one == four == pool
    assert len(_lead_ids(tmp_path / "one", DATES[1])) > 0


def test_streaming_ingestion_accepts_and_quarantines_exactly_what_the_readers_do(tmp_path: Path) -> None:
    date = "2026-11-20"
    inputs = read_night(EXAMPLE, date)
    expected = {c.path: c for c in inputs.counts if "/gps/" in c.path}
    q = inputs.quarantine.frame()
    batch = read_batch(EXAMPLE, date, verify=False)
    seen_rows = 0
    for i, f in enumerate(batch.gps_files()):
        rel = f"{date}/{f['path']}"
        spec = PartSpec(str(batch.dir / f["path"]), rel, f["rows"], f["sha256"], i, batch.timezone,
                        batch.coord_sys_of("gps"), f"p{i:03d}")
        res = ingest_part(spec, 3, tmp_path / "shards", tmp_path / "q")
        c = expected[rel]
        assert (res.rows_in, res.rows_accepted, res.rows_quarantined) == (
            c.rows_in, c.rows_accepted, c.rows_quarantined)
        assert sum(res.fixes_by_shard) == res.rows_written == res.rows_accepted
        want = q.loc[q["file"] == rel, ["row", "reason"]].sort_values("row").reset_index(drop=True)
        if res.quarantine_file:
            got = pd.read_parquet(res.quarantine_file)[["row", "reason"]].sort_values("row").reset_index(drop=True)
            pd.testing.assert_frame_equal(got, want, check_dtype=False)
        else:
            assert want.empty
        seen_rows += res.rows_written
    assert seen_rows == len(inputs.gps)


def test_a_gps_part_not_as_declared_is_refused_after_streaming_and_nothing_is_published(
    landing: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "landing"
    shutil.copytree(landing, bad)
    part = sorted((bad / DATES[0] / "gps").glob("*.csv"))[0]
    text = part.read_text(encoding="utf-8").splitlines(keepends=True)
    part.write_text("".join(text[:-1]), encoding="utf-8")  # one record fewer, hash changed
    out = tmp_path / "out"
    with pytest.raises(BatchError, match=f"{part.name} sha256 mismatch"):
        run_night(bad, DATES[0], out, write_sheets=False)
    assert not (out / DATES[0]).exists()
    hidden = out / ".wastetrack"
    assert not any((hidden / "versions").glob("*/*")) and not any((hidden / "work").glob("*/*"))
    with open_store(out / "wastetrack.db") as store:
        assert store.dates() == []


def test_state_carries_midnight_like_rereading_the_previous_batch(landing: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for d in DATES:
        run_night(landing, d, out, write_sheets=False)
    run = json.loads((out / DATES[1] / "run.json").read_text(encoding="utf-8"))
    assert run["context"]["source"] == "state" and run["status"] == "ok"
    from_state = _lead_ids(out, DATES[1])

    # the state is lost (its directory deleted): the previous batch is read again, said so, same leads
    for s in (out / ".wastetrack" / "state" / DATES[0]).iterdir():
        shutil.rmtree(s)
    run_night(landing, DATES[1], out, write_sheets=False)
    again = json.loads((out / DATES[1] / "run.json").read_text(encoding="utf-8"))
    assert again["context"]["source"] == "previous_batch" and "unreadable" in again["context"]["note"]
    assert _lead_ids(out, DATES[1]) == from_state

    # a store that never ran night 1: the previous batch is read again, and the run says so
    alone = tmp_path / "alone"
    run_night(landing, DATES[1], alone, write_sheets=False)
    run2 = json.loads((alone / DATES[1] / "run.json").read_text(encoding="utf-8"))
    assert run2["context"]["source"] == "previous_batch" and "read again" in run2["context"]["note"]


def test_shard_results_carry_compact_frames_never_the_fixes(landing: Path, tmp_path: Path) -> None:
    import pickle

    res = run_night(landing, DATES[0], tmp_path / "out", write_sheets=False, shards=2, keep_work=True,
                    work_root=tmp_path / "work")
    results = sorted((tmp_path / "work").rglob("results/*.pkl"))
    assert len(results) == 2
    fixes = res.run["counts"]["fixes"]
    rows = 0
    for path in results:
        with path.open("rb") as fh:
            r = pickle.load(fh)
        assert r.extra == {}  # the cleaned fixes and every stay stay in the shard (notebooks ask for them)
        rows += sum(len(f) for f in (r.stays, r.hauls, r.hauls_all, r.candidates, r.leads, r.vehicles))
    assert 0 < rows < 0.1 * fixes


def test_carried_tail_is_a_fraction_of_the_night(landing: Path, tmp_path: Path) -> None:
    res = run_night(landing, DATES[0], tmp_path / "out", write_sheets=False)
    batch_rows = sum(f["rows_accepted"] for f in res.run["files"] if "/gps/" in f["path"])
    assert 0 < res.run["counts"]["carried_fixes"] < 0.6 * batch_rows


def test_space_time_index_finds_what_a_cross_join_finds() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    t0 = pd.Timestamp("2026-11-20 00:00", tz="Asia/Shanghai")
    fixes = pd.DataFrame({
        "vehicle_id": rng.choice([f"沪A{i:05d}" for i in range(40)], n),
        "ts": t0 + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
        "lon": 121.3 + rng.random(n) * 0.2,
        "lat": 31.1 + rng.random(n) * 0.2,
        "loaded": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
    }).astype({"ts": "datetime64[us, Asia/Shanghai]"})
    reports = pd.DataFrame({
        "report_id": [f"R{i}" for i in range(25)],
        "lon": 121.3 + rng.random(25) * 0.2,
        "lat": 31.1 + rng.random(25) * 0.2,
    })
    w0 = t0.timestamp() + rng.integers(0, 80_000, 25).astype(float)
    reports["w0"], reports["w1"] = w0, w0 + 6 * 3600
    stays = pd.DataFrame(columns=["vehicle_id", "start", "end", "lon", "lat", "duration_s"])
    got = report_candidates(reports, stays, fixes, 1000.0)
    pairs = reports.merge(fixes, how="cross")
    d = haversine_m(pairs["lon_x"], pairs["lat_x"], pairs["lon_y"], pairs["lat_y"])
    t = epoch_seconds(pairs["ts"])
    ok = (d <= 1000.0) & (t >= pairs["w0"]) & (t <= pairs["w1"])
    want = set(zip(pairs.loc[ok, "report_id"], pairs.loc[ok, "vehicle_id"], strict=True))
    assert len(want) > 50
    assert set(zip(got["report_id"], got["vehicle_id"], strict=True)) == want


def test_lead_tracks_file_gives_each_lead_its_own_track_and_reads_only_those_asked(tmp_path: Path) -> None:
    from wastetrack.lead_tracks import LeadTracks

    def track(n: int, t0: str) -> pd.DataFrame:
        return pd.DataFrame({
            "ts": pd.date_range(t0, periods=n, freq="30s", tz="Asia/Shanghai").astype("datetime64[us, Asia/Shanghai]"),
            "lon": 121.0 + np.arange(n) * 1e-3, "lat": np.full(n, 31.0),
            "loaded": pd.array([True, None, False][:n] + [True] * max(n - 3, 0), dtype="boolean"),
        })
    tracks = {"L-b": track(4, "2026-11-20 23:58"), "L-a": track(2, "2026-11-20 01:00"), "L-c": track(5, "2026-11-20")}
    lt = LeadTracks.from_dict(tracks)
    lt.save(tmp_path / "tracks.arrow")
    back = LeadTracks.load(tmp_path / "tracks.arrow")
    assert sorted(back) == ["L-a", "L-b", "L-c"] and len(back) == 3
    for k, t in tracks.items():
        pd.testing.assert_frame_equal(back[k], t)  # values, dtypes (zone, nullable booleans) and time order
    some = LeadTracks.load(tmp_path / "tracks.arrow", ["L-b", "L-x"])
    assert list(some) == ["L-b"]
    pd.testing.assert_frame_equal(some["L-b"], tracks["L-b"])
    assert len(LeadTracks.load(tmp_path / "missing.arrow")) == 0
