"""kill -9 at any moment of a run leaves the previous results or the new ones, never a mix.

A night is published in one commit (the store's transaction) followed by one atomic rename
(``OUT/<date>`` → the new version). A run killed anywhere — while ingesting, detecting, writing
sheets, inside the store's transaction, or between the commit and the rename — must leave the
store and ``OUT/`` agreeing (after the recovery every later run does first), and a re-run must
remove whatever the dead run left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wastetrack.publish import HIDDEN, linked_version, recover
from wastetrack.store import open_store

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "contract" / "example"
DATE = "2026-11-20"


def _run(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "wastetrack.cli", "run", "--landing", str(EXAMPLE), "--date", DATE,
           "--out", str(out), "-q", "--workers", "1"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _state(out: Path) -> tuple[str | None, str | None]:
    """(run id the store published for DATE, run id OUT/DATE's run.json names)."""
    with open_store(out / "wastetrack.db") as store:
        pub = store.published(DATE)
    run_json = out / DATE / "run.json"
    on_disk = json.loads(run_json.read_text(encoding="utf-8"))["run_id"] if run_json.exists() else None
    return (pub or {}).get("run_id"), on_disk


def _leftovers(out: Path) -> list[str]:
    hidden = out / HIDDEN
    left = [p.name for p in (hidden / "work").glob("*/*")] if (hidden / "work").exists() else []
    versions = hidden / "versions" / DATE
    current = linked_version(out, DATE)
    left += [v.name for v in versions.iterdir() if v.name != current] if versions.exists() else []
    return left + [p.name for p in out.glob(".*.link-*")]


@pytest.mark.slow
def test_repeated_kill_9_never_leaves_store_and_out_in_disagreement(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _run(out)
    t0 = time.perf_counter()
    assert first.wait(timeout=300) == 0
    duration = time.perf_counter() - t0
    published, on_disk = _state(out)
    assert published and published == on_disk
    seen_new = 0
    # kill points spread over the whole run, from start-up to the final rename
    for frac in (0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.88, 0.94, 0.97, 1.0):
        proc = _run(out)
        time.sleep(duration * frac)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        with open_store(out / "wastetrack.db") as store:
            recover(out, store)  # what the next run (or Airflow's next task) does first
        now_published, now_on_disk = _state(out)
        assert now_published == now_on_disk, f"kill at {frac:.0%}: store {now_published}, OUT {now_on_disk}"
        assert now_published in (published, now_published)
        if now_published != published:
            seen_new += 1
            published = now_published
        assert _leftovers(out) == [], f"kill at {frac:.0%} left {_leftovers(out)}"
    # a run to the end after all that publishes cleanly
    assert _run(out).wait(timeout=300) == 0
    final, final_disk = _state(out)
    assert final == final_disk != published
    assert _leftovers(out) == []
    fc = json.loads((out / DATE / "leads.geojson").read_text(encoding="utf-8"))
    assert fc["features"], "the night's leads are there"


def test_a_plain_old_output_directory_is_kept_aside_and_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / DATE).mkdir(parents=True)
    (out / DATE / "leads.geojson").write_text("{}", encoding="utf-8")  # what wastetrack 0.1 left there
    subprocess.run([sys.executable, "-m", "wastetrack.cli", "run", "--landing", str(EXAMPLE), "--date", DATE,
                    "--out", str(out), "-q", "--no-sheets"], check=True, capture_output=True)
    assert (out / DATE).is_symlink()
    assert json.loads((out / DATE / "leads.geojson").read_text(encoding="utf-8"))["type"] == "FeatureCollection"
    assert _leftovers(out) == []


def test_out_date_that_is_a_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / DATE).write_text("not a directory", encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "wastetrack.cli", "run", "--landing", str(EXAMPLE), "--date", DATE,
                          "--out", str(out), "-q"], capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "is a file" in res.stderr and "Traceback" not in res.stderr
    assert not (out / "wastetrack.db").exists() and not (out / HIDDEN).exists()


@pytest.mark.parametrize("die_in", ["replace_night", "swap_link", "after_commit"])
def test_death_at_each_step_of_publishing_is_recovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       die_in: str) -> None:
    """Deterministic versions of the kill test's most delicate moments (in-process, no sleeps)."""
    from wastetrack import publish
    from wastetrack.pipeline import run_night

    out = tmp_path / "out"
    run_night(EXAMPLE, DATE, out, write_sheets=False)
    before, _ = _state(out)

    class Died(BaseException):
        pass

    if die_in == "replace_night":  # inside the store's transaction: it rolls back
        from wastetrack.store.base import SQLStore

        original = SQLStore._insert

        def dying_insert(self, cur, table, rows):
            if table == "leads":
                raise Died
            return original(self, cur, table, rows)

        monkeypatch.setattr(SQLStore, "_insert", dying_insert)
    elif die_in == "swap_link":  # committed, OUT/<date> not yet swapped
        monkeypatch.setattr(publish, "swap_link", lambda *a, **k: (_ for _ in ()).throw(Died()))
    else:  # committed and swapped, old versions and scratch not yet removed
        monkeypatch.setattr(publish, "cleanup_work", lambda plan: (_ for _ in ()).throw(Died()))
    with pytest.raises(Died):
        run_night(EXAMPLE, DATE, out, write_sheets=False)
    monkeypatch.undo()
    with open_store(out / "wastetrack.db") as store:
        recover(out, store)
    published, on_disk = _state(out)
    assert published == on_disk
    assert (published == before) == (die_in == "replace_night")
    assert _leftovers(out) == []
