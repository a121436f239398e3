"""Landing, shards and state on an fsspec URL: the nightly DAG's tasks on machines that share no disk.

The tasks run in order as Airflow would run them, and between any two tasks the
local scratch folder is deleted: every task starts on a "new machine" that sees
only the URL — fsspec's in-memory file system, and a real S3 API (moto's server on
127.0.0.1, through s3fs and botocore, configured only by ``AWS_*`` variables as a
deployment would be). Two nights run, so the midnight state of the first reaches
the second through the URL alone. The leads must be those of the same nights run
on plain local paths.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from wastetrack import orchestration
from wastetrack.orchestration import LANDING_ENV, OUT_ENV, SHARDS_ENV, STORE_ENV, WORK_ENV
from wastetrack.plan import UsageError
from wastetrack.storage import SCRATCH_ENV, Mirror, is_remote, local_path

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared/contract/example"
DAYS = ("2026-11-19", "2026-11-20")


def test_what_counts_as_a_url() -> None:
    assert is_remote("s3://bucket/landing") and is_remote("memory://x") and is_remote("gs://b/p")
    assert not is_remote("/data/landing") and not is_remote("file:///data/landing") and not is_remote(None)
    assert local_path("file:///data/landing") == "/data/landing"


def test_a_mirror_pulls_what_is_missing_or_changed_and_pushes_what_is_new(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCRATCH_ENV, str(tmp_path / "scratch"))
    url = f"memory://wt-{uuid.uuid4().hex}/root"
    fs = fsspec.filesystem("memory")
    fs.pipe({f"{url}/a/one.txt": b"1", f"{url}/a/skip/big.bin": b"xxxx", f"{url}/b.txt": b"bb"})
    m = Mirror.of(url)
    assert m.local.parent == tmp_path / "scratch" and Mirror.of(url + "/") == m  # one folder per URL
    assert m.pull(m.local / "a", exclude=("skip",)) == 1
    assert (m.local / "a" / "one.txt").read_text() == "1" and not (m.local / "a" / "skip").exists()
    assert m.pull(m.local / "a", exclude=("skip",)) == 0  # already here
    assert m.pull(m.local / "b.txt") == 1 and m.pull(m.local / "nothing") == 0
    (m.local / "a" / "new.txt").write_text("new")
    (m.local / "a" / "one.txt").write_text("one")  # changed (size differs)
    assert m.push(m.local / "a") == 2
    assert fs.cat_file(f"{url}/a/new.txt") == b"new" and fs.cat_file(f"{url}/a/one.txt") == b"one"
    assert fs.cat_file(f"{url}/a/skip/big.bin") == b"xxxx"  # a push never deletes
    m.remove(m.local / "a")
    assert not fs.exists(f"{url}/a") and fs.exists(f"{url}/b.txt")


def _leads(text: str) -> dict[str, dict]:
    return {f["properties"]["lead_id"]: f["properties"] for f in json.loads(text)["features"]}


def _tasks(date: str, scratch: Path) -> dict:
    """One night as the DAG runs it; every task on a fresh machine (the scratch folder deleted before it)."""

    def fresh() -> None:
        shutil.rmtree(scratch, ignore_errors=True)

    fresh()
    plan = orchestration.prepare(date, store=None)
    fresh()
    for i in plan["parts"]:
        orchestration.ingest(plan["work"], i)
        fresh()
    shards = orchestration.finish_ingest(plan["work"])
    fresh()
    for k in shards:
        orchestration.detect(plan["work"], k)
        fresh()
    chunks = orchestration.merge(plan["work"])
    fresh()
    for c in chunks:
        orchestration.sheets(plan["work"], c)
        fresh()
    return orchestration.publish(plan["work"])


@pytest.fixture(params=["memory", "s3"])
def object_root(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty folder on object storage: fsspec's memory file system, or a bucket on a local S3 server."""
    if request.param == "memory":
        yield f"memory://wt-{uuid.uuid4().hex}"
        return
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
            monkeypatch.setenv(k, v)
        fsspec.filesystem("s3").clear_instance_cache()
        bucket = f"wt-{uuid.uuid4().hex[:12]}"
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir(bucket)
        yield f"s3://{bucket}"
    finally:
        fsspec.filesystem("s3").clear_instance_cache()
        server.stop()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's two nights on plain paths: what every run on a URL must give."""
    out = tmp_path_factory.mktemp("reference") / "out"
    for day in DAYS:
        orchestration.nightly(day, landing=str(EXAMPLE), out=str(out))
    return out


@pytest.mark.slow
def test_a_landing_on_a_url_runs_from_the_command_line_and_the_one_task_night(
    local_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wastetrack.cli import main

    monkeypatch.setenv(SCRATCH_ENV, str(tmp_path / "scratch"))
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.delenv(WORK_ENV, raising=False)
    url = f"memory://wt-{uuid.uuid4().hex}/landing"
    fsspec.filesystem("memory").put(str(EXAMPLE), url, recursive=True)
    cli_out = tmp_path / "cli-out"
    assert main(["run", "--landing", url, "--date", DAYS[0], "--date", DAYS[1], "--out", str(cli_out), "-q"]) == 0
    shutil.rmtree(tmp_path / "scratch")  # the second way starts from an empty mirror
    task_out = tmp_path / "task-out"
    for day in DAYS:
        orchestration.nightly(day, landing=url, out=str(task_out))
    for day in DAYS:
        want = _leads((local_reference / day / "leads.geojson").read_text("utf-8"))
        assert want and _leads((cli_out / day / "leads.geojson").read_text("utf-8")) == want
        assert _leads((task_out / day / "leads.geojson").read_text("utf-8")) == want
    run = json.loads((cli_out / DAYS[1] / "run.json").read_text("utf-8"))
    assert run["context"]["source"] == "state"  # the state stayed local: the previous batch was not needed
    # a night with the previous night's carried state in the store needs only its own day from the URL
    shutil.rmtree(tmp_path / "scratch")
    mirror = orchestration.pull_night_inputs(url, DAYS[1], cli_out / "wastetrack.db")
    assert (mirror / DAYS[1] / "batch.json").is_file() and (mirror / "reference").is_dir()
    assert not (mirror / DAYS[0]).exists()
    # without it (a new store), the previous batch is mirrored too: it is read again for the midnight context
    orchestration.pull_night_inputs(url, DAYS[1], tmp_path / "empty.db")
    assert (mirror / DAYS[0] / "batch.json").is_file()
    assert main(["run", "--landing", url + "-typo", "--date", DAYS[0], "--out", str(cli_out), "-q"]) == 2
    with pytest.raises(UsageError, match="mapped nightly DAG"):
        orchestration.nightly(DAYS[0], landing=url, out=f"memory://wt-{uuid.uuid4().hex}/out")


@pytest.mark.slow
def test_a_night_on_object_storage_gives_the_leads_of_a_night_on_local_paths(
    object_root: str, local_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_out = local_reference
    root = object_root
    fs, _ = fsspec.core.url_to_fs(root)
    fs.put(str(EXAMPLE), f"{root}/landing", recursive=True)
    scratch = tmp_path / "scratch"
    monkeypatch.setenv(SCRATCH_ENV, str(scratch))
    monkeypatch.setenv(LANDING_ENV, f"{root}/landing")
    monkeypatch.setenv(OUT_ENV, f"{root}/out")
    monkeypatch.setenv(WORK_ENV, f"{root}/work")
    monkeypatch.setenv(SHARDS_ENV, "3")  # several shard tasks, each on its own machine
    monkeypatch.delenv(STORE_ENV, raising=False)
    with pytest.raises(UsageError, match="set the store"):
        orchestration.prepare(DAYS[0])  # no database file on object storage
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "wastetrack.db"))  # a server store in production

    assert orchestration.batch_ready(f"{root}/landing", DAYS[0]) is True
    assert orchestration.batch_ready(f"{root}/landing", "2026-11-21") is False
    summaries = [_tasks(day, scratch) for day in DAYS]
    assert summaries[1]["context"] == "state"  # night 2 found night 1's carried state through the URL

    for day, summary in zip(DAYS, summaries, strict=True):
        remote = _leads(fs.cat_file(f"{root}/out/{day}/leads.geojson").decode("utf-8"))
        local = _leads((local_out / day / "leads.geojson").read_text("utf-8"))
        assert remote == local and len(remote) == summary["leads_total"] > 0
        run = json.loads(fs.cat_file(f"{root}/out/{day}/run.json"))
        assert run["context"]["source"] == summary["context"]
        sheets = [p for p in fs.ls(f"{root}/out/{day}/sheets", detail=False) if p.endswith(".html")]
        assert len(sheets) >= len(remote)  # a sheet per lead, plus the index and liaison pages
    state = fs.find(f"{root}/out/.wastetrack/state/{DAYS[1]}")
    assert any(p.endswith("state.json") for p in state) and any("/tail/" in p for p in state)
    assert not fs.exists(f"{root}/work") or not fs.find(f"{root}/work")  # the runs' scratch is gone
