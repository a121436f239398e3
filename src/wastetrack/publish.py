"""Publishing a night so that a crash at any moment leaves the old results or the new ones, never a mix.

A night's outputs are written into a fresh *version* directory
(``OUT/.wastetrack/versions/<date>/<run_id>/``); ``OUT/<date>`` is a symbolic
link to the published version. The commit point is the store: one transaction
replaces the night's stays, hauls, leads, tracks, run (with its ``run_id`` and
``out_version``) and the carry-over state reference. Right after it, the link
is swapped with one atomic ``rename``. If the process dies between the two, the
next run (or ``wastetrack recover``) sees that the store names a complete
version the link does not point to and finishes the swap; versions and scratch
directories nobody references are removed. So the store and ``OUT/`` never
disagree once a run or a recovery has looked at them, and a killed run never
leaves a half-written ``OUT/<date>``.

Readers that follow ``OUT/<date>`` (the contract checker, a browser, a
notebook) see a complete night at every instant.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.lead_tracks import LeadTracks
from wastetrack.leads import write_geojson
from wastetrack.merge import MergedNight
from wastetrack.plan import NightContext, NightPlan, UsageError, cleanup_work

log = logging.getLogger(__name__)

HIDDEN = ".wastetrack"
COMPLETE = ".complete"


@dataclass
class NightResult:
    """What a night run returns to the CLI, notebooks and tests."""

    date: str
    out_dir: Path
    leads: pd.DataFrame
    run: dict
    stays: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    hauls: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def check_out_dir(out: Path, date: str | None = None) -> None:
    """Refuse an OUT that cannot hold results, before anything is read or written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory: give a directory for the outputs")
    if date is not None:
        target = out / date
        if target.exists() and not target.is_dir():
            raise UsageError(f"{target} exists and is a file: move it away, the night's outputs go there")


@contextlib.contextmanager
def out_lock(out: Path, wait_s: float = 3600.0) -> Iterator[None]:
    """One writer per OUT at a time (two terminals, a cron job and a manual re-run): the second waits."""
    hidden = out / HIDDEN
    hidden.mkdir(parents=True, exist_ok=True)
    fh = (hidden / "lock").open("a+")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{hidden / 'lock'} is held by another wastetrack run") from None
                time.sleep(0.5)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def linked_version(out: Path, date: str) -> str | None:
    """The run id ``OUT/<date>`` points to; "legacy" for a plain directory; None if absent."""
    link = out / date
    if link.is_symlink():
        return Path(os.readlink(link)).name
    if link.is_dir():
        return "legacy"
    return None


def swap_link(out: Path, date: str, version_dir: Path) -> None:
    """Point ``OUT/<date>`` at ``version_dir`` with one atomic rename (a plain old directory is kept aside)."""
    link = out / date
    if link.exists() and not link.is_symlink():
        if not link.is_dir():
            raise UsageError(f"{link} exists and is a file: move it away, the night's outputs go there")
        aside = out / HIDDEN / "versions" / date / f"legacy-{int(time.time())}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        link.rename(aside)
    tmp = out / f".{date}.link-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(os.path.relpath(version_dir, out), tmp)
    os.replace(tmp, link)


def _complete(version_dir: Path) -> bool:
    return (version_dir / COMPLETE).is_file()


def recover(out: Path, store: Any, keep_work: set[str] | None = None) -> list[str]:
    """Make ``OUT/`` agree with the store and remove what dead runs left behind; returns what was done.

    For every date with versions: point ``OUT/<date>`` at the version the store
    published (if it is complete), then delete every other version of that date
    that the link does not point to. Scratch work directories are deleted too,
    except ``keep_work`` (the current run's). Call it under ``out_lock``.
    """
    done: list[str] = []
    hidden = out / HIDDEN
    vroot = hidden / "versions"
    for date_dir in sorted(vroot.glob("*")) if vroot.is_dir() else []:
        date = date_dir.name
        pub = store.published(date)
        want = pub.get("out_version") if pub else None
        if want and _complete(date_dir / want) and linked_version(out, date) != want:
            swap_link(out, date, date_dir / want)
            done.append(f"{date}: finished publishing {want}")
        current = linked_version(out, date)
        for v in sorted(date_dir.iterdir()):
            if v.name in (current, want):
                continue
            shutil.rmtree(v, ignore_errors=True)
            done.append(f"{date}: removed unpublished version {v.name}")
        with contextlib.suppress(OSError):
            date_dir.rmdir()
    for tmp in out.glob(".*.link-*"):
        tmp.unlink(missing_ok=True)
        done.append(f"removed {tmp.name}")
    for stale in list(out.glob(".*.partial-*")) + list(out.glob(".*.old-*")):  # left by wastetrack ≤ 0.1
        shutil.rmtree(stale, ignore_errors=True)
        done.append(f"removed {stale.name}")
    work_root = hidden / "work"
    for run_dir in sorted(work_root.glob("*/*")) if work_root.is_dir() else []:
        if keep_work and str(run_dir.resolve()) in keep_work:
            continue
        shutil.rmtree(run_dir, ignore_errors=True)
        done.append(f"removed scratch {run_dir.parent.name}/{run_dir.name}")
    for d in sorted(work_root.glob("*")) if work_root.is_dir() else []:
        with contextlib.suppress(OSError):
            d.rmdir()
    sroot = hidden / "state"
    for date_dir in sorted(sroot.glob("*")) if sroot.is_dir() else []:
        ref = store.state_of(date_dir.name)
        keep = Path(ref["uri"]).name if ref and ref.get("uri") else None
        for s in date_dir.iterdir():
            if s.name != keep and not (keep_work and any(s.name in k for k in keep_work)):
                shutil.rmtree(s, ignore_errors=True)
                done.append(f"{date_dir.name}: removed unreferenced state {s.name}")
        with contextlib.suppress(OSError):
            date_dir.rmdir()
    for line in done:
        log.info("recover: %s", line)
    return done


#: tracks stored with the leads are simplified to this tolerance (degrees; ~2 m): a parked truck's
#: hundreds of jittering fixes become a handful of vertices, the shape of the drive stays
TRACK_SIMPLIFY_DEG = 2e-5


def tracks_frame(tracks: LeadTracks, leads: pd.DataFrame) -> pd.DataFrame:
    """The suspects' tracks around the leads as WGS-84 LineStrings (WKT), for the store's lead_tracks.

    Built as one shapely array (vectorised construction, simplification and WKT), not string by
    string: a delta night has thousands of leads with hundreds of fixes each.
    """
    import numpy as np
    import shapely

    cols = ["lead_id", "vehicle_id", "start", "end", "n_fixes", "wkt"]
    vehicle = dict(zip(leads["lead_id"], leads["vehicle_id"], strict=False)) if len(leads) else {}
    ids, first, end, body = tracks.spans()
    counts = end - first
    keep = np.array([i in vehicle for i in ids.tolist()], dtype=bool) & (counts >= 2)
    if not keep.any():
        return pd.DataFrame(columns=cols)
    rows = np.repeat(keep, counts)  # the body is grouped by lead: a lead's rows follow each other
    coords = np.column_stack([body["lon"].to_numpy(float)[rows], body["lat"].to_numpy(float)[rows]])
    ids, first, end, counts = ids[keep], first[keep], end[keep], counts[keep]
    lines = shapely.linestrings(coords, indices=np.repeat(np.arange(len(ids)), counts))
    lines = shapely.simplify(lines, TRACK_SIMPLIFY_DEG, preserve_topology=False)
    wkt = shapely.to_wkt(lines, rounding_precision=7, trim=True)
    ts = body["ts"]
    return pd.DataFrame({
        "lead_id": ids.tolist(),
        "vehicle_id": [vehicle[i] for i in ids.tolist()],
        "start": list(ts.iloc[first]),
        "end": list(ts.iloc[end - 1]),
        "n_fixes": counts,
        "wkt": wkt,
    }, columns=cols)


def write_outputs(plan: NightPlan, merged: MergedNight, quarantine: Any, sheet_files: dict[str, str]) -> dict:
    """Fill the version directory: quarantine/, leads.geojson, run.json; then mark it complete."""
    vdir = Path(plan.version_dir)
    vdir.mkdir(parents=True, exist_ok=True)
    quarantine.write(vdir / "quarantine")
    leads = merged.leads
    if len(leads) and sheet_files:
        leads = leads.assign(sheet=[f"sheets/{sheet_files.get(lid, '')}" if lid in sheet_files else ""
                                    for lid in leads["lead_id"]])
    write_geojson(leads, vdir / "leads.geojson")
    run = dict(merged.run)
    run["out_version"] = plan.run_id
    run["finished_at"] = pd.Timestamp.now(tz=TIMEZONE).isoformat(timespec="seconds")
    (vdir / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=1, default=str), "utf-8")
    (vdir / COMPLETE).write_text(plan.run_id, encoding="utf-8")
    return run


def store_rows(date: str, merged: MergedNight) -> dict[str, list[tuple]]:
    """The night's rows for the store, its run's row aside (``codec.encode_night_rows``).

    Pure: no database is touched. ``run_night`` calls it while the sheet workers render (its own
    process only waits for them then), so a delta night's millions of stays and hauls are encoded
    in time that was idle; the commit still comes after the sheets.
    """
    from wastetrack.store.codec import encode_night_rows

    return encode_night_rows(date, merged.stays, merged.hauls, merged.leads,
                             tracks_frame(merged.tracks, merged.leads), merged.state)


def publish_night(plan: NightPlan, store: Any, merged: MergedNight, run: dict, ctx: NightContext,
                  keep_work: bool = False, rows: dict[str, list[tuple]] | None = None) -> NightResult:
    """Commit the night to the store, then swap ``OUT/<date>`` to the new version, then tidy up.

    ``rows``: ``store_rows(plan.date, merged)`` when already encoded (else encoded here).
    """
    from wastetrack.store.codec import encode_run

    out = Path(plan.out)
    if len(ctx.feedback):
        store.apply_feedback(ctx.feedback)
    leads = merged.leads
    t0 = time.perf_counter()
    rows = store_rows(plan.date, merged) if rows is None else rows
    store.replace_encoded_night(plan.date, {**rows, "runs": [encode_run(plan.date, run)]})
    store_s = round(time.perf_counter() - t0, 3)
    swap_link(out, plan.date, Path(plan.version_dir))
    # the store's share of the night (the delta benchmark reports it): known only now, so run.json — already
    # published — is replaced in place, atomically, with that one figure added
    run = {**run, "timings_s": {**run.get("timings_s", {}), "store": store_s}}
    run_json = Path(plan.version_dir) / "run.json"
    tmp = run_json.with_name("run.json.tmp")
    tmp.write_text(json.dumps(run, ensure_ascii=False, indent=1, default=str), "utf-8")
    tmp.replace(run_json)
    date_dir = Path(plan.version_dir).parent
    for v in date_dir.iterdir():
        if v.name != plan.run_id:
            shutil.rmtree(v, ignore_errors=True)
    if not keep_work:
        cleanup_work(plan)
    return NightResult(plan.date, out / plan.date, leads, run, merged.stays, merged.hauls)
