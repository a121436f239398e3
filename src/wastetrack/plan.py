"""The plan of a night: what to read, where the midnight context comes from, and how many shards.

``prepare_night`` is the first step of every run, local or on Airflow. It does
all the cheap, small work up front — check the batch's structure, read and
validate the reference directory, manifests, reports and feedback, decide the
context (the previous night's carried state, else the previous batch, else
none: the first night) and size the shards from the declared rows — and writes
it to the run's work directory. Every later step (``ingest`` a part, ``detect``
a shard, ``merge``, ``publish``) reads only that directory, so a step can run in
another process or on another machine that sees the same storage.

Work directory of one run: ``WORK/<date>/<run_id>/`` with ``plan.json``,
``context.pkl`` (reference, manifests, reports, feedback), ``parts/``,
``quarantine/``, ``shards/<k>/``, ``results/<k>.pkl``, ``merged.pkl``, ``sheets.pkl`` and ``tracks.arrow``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date as Date
from datetime import timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack import boundaries as bnd
from wastetrack.carryover import State
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.contract import BatchError, ContractError
from wastetrack.contract.batch import Batch, check_structure, read_batch, verify_batch, verify_file
from wastetrack.contract.quarantine import Quarantine
from wastetrack.contract.readers import read_feedback, read_manifests, read_reports
from wastetrack.contract.reference import read_reference
from wastetrack.contract.tables import FileCount
from wastetrack.geofence import complete_site_counties
from wastetrack.ingest import PartSpec
from wastetrack.partition import plan_shards
from wastetrack.trace import report_windows

log = logging.getLogger(__name__)

#: default memory budget of a night (all workers together); a delta night runs in 8 GB
DEFAULT_MEMORY_BUDGET_BYTES = 6 * 1024**3

CONTEXT_STATE = "state"
CONTEXT_PREVIOUS_BATCH = "previous_batch"
CONTEXT_NONE = "none"


class UsageError(ContractError):
    """A user error (a bad date, path or option): one line that says what to do; exit code 2."""


def previous_day(date: str) -> str:
    return (Date.fromisoformat(date) - timedelta(days=1)).isoformat()


def check_date(date: str) -> str:
    """``date`` if it is a real calendar date YYYY-MM-DD; a UsageError naming it otherwise."""
    text = str(date).strip()
    try:
        ok = len(text) == 10 and Date.fromisoformat(text).isoformat() == text
    except ValueError:  # 2026-02-30, 2026-13-01
        ok = False
    if not ok:
        raise UsageError(f"{date!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-20")
    return text


def new_run_id() -> str:
    """Sortable and unique: when the run started, and a random part."""
    return pd.Timestamp.now(tz=TIMEZONE).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass
class ContextDecision:
    """Where the midnight context of the night comes from, and what the run must say about it."""

    source: str  # CONTEXT_STATE | CONTEXT_PREVIOUS_BATCH | CONTEXT_NONE
    previous_date: str
    note: str = ""  # plain words for stdout, run.json, index.html and every sheet
    state_uri: str = ""
    degraded: bool = False  # the night may miss or mis-judge what crossed midnight

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NightPlan:
    """Everything the later steps of one night need to know (``plan.json``)."""

    date: str
    run_id: str
    landing: str
    out: str
    work_dir: str
    state_dir: str
    version_dir: str
    timezone: str
    n_shards: int
    workers: int
    shard_plan: dict
    context: dict
    parts: list[dict]
    sources: list[str]
    counts: list[dict] = field(default_factory=list)  # FileCounts of the non-GPS files
    params: dict = field(default_factory=dict)
    started_at: str = ""
    write_sheets: bool = True

    @property
    def work(self) -> Path:
        return Path(self.work_dir)

    def part_specs(self) -> list[PartSpec]:
        return [PartSpec(**p) for p in self.parts]

    def get_params(self) -> Params:
        return Params(**self.params)

    def save(self) -> None:
        tmp = self.work / "plan.json.tmp"
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.work / "plan.json")

    @classmethod
    def load(cls, work_dir: str | Path) -> NightPlan:
        path = Path(work_dir) / "plan.json"
        if not path.is_file():
            raise FileNotFoundError(f"no night plan at {path}: run the prepare step first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class NightContext:
    """The small shared inputs of a night (``context.pkl``), loaded once per worker process."""

    date: str
    params: Params
    sites: gpd.GeoDataFrame
    vehicles: pd.DataFrame
    carriers: pd.DataFrame
    liaisons: pd.DataFrame
    boundaries: gpd.GeoDataFrame
    manifests: pd.DataFrame  # tonight's, plus the context's still-open ones
    manifests_today: pd.DataFrame
    reports: pd.DataFrame  # with the window w0/w1 (epoch seconds)
    feedback: pd.DataFrame
    context: ContextDecision
    quarantine: Quarantine
    carried_stays: pd.DataFrame = field(default_factory=pd.DataFrame)  # the previous night's, for tracing

    def save(self, work: Path) -> None:
        with (work / "context.pkl").open("wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(work: Path) -> NightContext:
        with (Path(work) / "context.pkl").open("rb") as fh:
            return pickle.load(fh)


def layout(out: Path, date: str, run_id: str, work_root: Path | None) -> dict[str, Path]:
    """Where a run keeps its scratch files, its carry-over state and its output version."""
    hidden = out / ".wastetrack"
    work_root = work_root or hidden / "work"
    return {
        "work": work_root / date / run_id,
        "state": hidden / "state" / date / run_id,
        "version": hidden / "versions" / date / run_id,
    }


def load_boundaries_for(landing: Path) -> gpd.GeoDataFrame:
    override = Path(landing) / "reference" / "boundaries.gpkg"
    return bnd.load_boundaries(override if override.exists() else None)


def _gps_specs(batch: Batch, landing: Path, start_src: int, tag_prefix: str, keep_since_us: int | None,
               report: bool) -> list[PartSpec]:
    specs = []
    for i, f in enumerate(batch.gps_files()):
        specs.append(PartSpec(
            path=str(batch.dir / f["path"]),
            rel=f"{batch.date}/{f['path']}",
            rows=int(f["rows"]),
            sha256=f["sha256"],
            src=start_src + i,
            timezone=batch.timezone,
            coord_sys=batch.coord_sys_of("gps"),
            tag=f"{tag_prefix}{i:03d}",
            keep_since_us=keep_since_us,
            report_counts=report,
        ))
    return specs


def _verify_small(batch: Batch) -> None:
    """Hash the non-GPS files now (they are small); GPS parts are hashed while they stream in."""
    for entry in batch.files:
        if not entry["path"].startswith("gps/"):
            verify_file(batch, entry)


def decide_context(
    landing: Path, date: str, state_ref: dict | None, without_context: bool
) -> tuple[ContextDecision, State | None, Batch | None]:
    """The carried state of the previous night if the store knows it and it is readable; else the previous
    batch (re-read: the state is missing); else nothing (the first night). A previous batch that exists but
    is refused stops the night — unless the operator accepts a degraded night with ``without_context``."""
    prev = previous_day(date)
    if state_ref and state_ref.get("uri"):
        try:
            state = State.load(state_ref["uri"])
            return ContextDecision(CONTEXT_STATE, prev, state_uri=state.uri), state, None
        except (OSError, ValueError, KeyError) as exc:
            lost = f"the carried state of {prev} is unreadable ({exc})"
    else:
        lost = f"no carried state of {prev} in the store"
    if not (landing / prev / "batch.json").exists():
        note = (f"{lost} and no batch {prev} in the landing directory: this night ran WITHOUT the previous "
                "day. Hauls that may have started before midnight, or whose manifest may be in the missing "
                "day, are not judged (see held_back in run.json).")
        return ContextDecision(CONTEXT_NONE, prev, note=note, degraded=True), None, None
    try:
        batch = read_batch(landing, prev, verify=False)
        verify_batch(batch)
    except ContractError as exc:
        if not without_context:
            raise BatchError(
                f"batch {date} not processed: the previous day's batch is needed to stitch trips across "
                f"midnight ({lost}), and it is refused ({exc}). Fix it, or run with --without-context to "
                "accept a degraded night."
            ) from exc
        note = (f"{lost}, and the previous batch {prev} is refused ({exc}): this night ran WITHOUT the "
                "previous day; hauls that may belong to it are not judged.")
        return ContextDecision(CONTEXT_NONE, prev, note=note, degraded=True), None, None
    note = f"{lost}: the previous batch {prev} was read again for the midnight context."
    return ContextDecision(CONTEXT_PREVIOUS_BATCH, prev, note=note), None, batch


def prepare_night(
    landing: Path | str,
    date: str,
    out: Path | str,
    *,
    state_ref: dict | None,
    params: Params = DEFAULT_PARAMS,
    workers: int = 1,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    n_shards: int | None = None,
    run_id: str | None = None,
    work_root: Path | str | None = None,
    without_context: bool = False,
    write_sheets: bool = True,
) -> NightPlan:
    """Check and read the small inputs, decide the context, size the shards; write the run's work dir."""
    landing, out = Path(landing), Path(out)
    date = check_date(date)
    if not landing.is_dir():
        raise UsageError(f"landing directory {landing} does not exist (check --landing)")
    if not (landing / date / "batch.json").is_file():
        raise BatchError(f"batch {date} refused: {landing / date / 'batch.json'} not found "
                         "(no batch for this day in that landing directory yet)")
    run_id = run_id or new_run_id()
    paths = layout(out, date, run_id, Path(work_root) if work_root else None)
    work = paths["work"]
    if work.exists():
        shutil.rmtree(work)  # a retried step of the same run starts clean
    work.mkdir(parents=True)
    started = pd.Timestamp.now(tz=TIMEZONE)

    batch = read_batch(landing, date, verify=False)
    check_structure(batch)
    _verify_small(batch)
    quarantine = Quarantine()
    counts: list[FileCount] = []
    reference = read_reference(landing, quarantine, counts)
    manifests = read_manifests(batch, quarantine, counts)
    reports = read_reports(batch, quarantine, counts)
    feedback = read_feedback(batch, quarantine, counts)
    boundaries = load_boundaries_for(landing)
    sites = complete_site_counties(reference.sites, boundaries)

    decision, state, prev_batch = decide_context(landing, date, state_ref, without_context)
    day0 = pd.Timestamp(date, tz=TIMEZONE)
    parts: list[PartSpec] = []
    context_manifests: list[pd.DataFrame] = []
    expected = 0
    carried_stays = pd.DataFrame()
    if state is not None:
        for prefix, files in (("c-state", state.tail_files), ("t-state", state.trace_files)):
            for i, f in enumerate(sorted(files)):
                parts.append(PartSpec(path=f, rel=f"{state.date}/state/{Path(f).parent.name}/{Path(f).name}",
                                      rows=-1, sha256="", src=-1, timezone=TIMEZONE, coord_sys="wgs84",
                                      tag=f"{prefix}-{i:04d}", report_counts=False, kind="state"))
        context_manifests.append(state.manifests_frame())
        carried_stays = state.stays_frame()
        expected += state.fixes
    elif prev_batch is not None:
        since = day0 - pd.Timedelta(hours=params.context_hours)
        since_us = int(since.tz_convert("UTC").value // 1000)
        parts += _gps_specs(prev_batch, landing, 10_000, "c", since_us, report=False)
        context_manifests.append(read_manifests(prev_batch, Quarantine(), []))
        share = min(params.context_hours / 24.0, 1.0)
        expected += int(sum(f["rows"] for f in prev_batch.gps_files()) * share)
    # detection floors: tonight's rows older than what the context can stitch them to are only traced
    if state is not None:
        default_floor = day0 - pd.Timedelta(hours=params.min_tail_hours)
        floors = state.floors()
    elif prev_batch is not None:
        default_floor, floors = day0 - pd.Timedelta(hours=params.context_hours), None
    else:
        default_floor = day0 - pd.Timedelta(hours=params.min_tail_hours)
        floors = None
    floors_path = ""
    if floors is not None and len(floors):
        floors_path = str(work / "floors.parquet")
        floors.to_parquet(floors_path, index=False)
    today = _gps_specs(batch, landing, 0, "p", None, report=True)
    for spec in today:
        spec.floors, spec.default_floor_us = floors_path, int(default_floor.value // 1000)
    parts += today
    expected += sum(p.rows for p in today)
    frames = [m for m in [*context_manifests, manifests] if len(m)]
    all_manifests = (pd.concat(frames, ignore_index=True).drop_duplicates("manifest_id", keep="last")
                     .reset_index(drop=True) if frames else manifests)

    shard_plan = plan_shards(expected, workers, memory_budget_bytes, n_shards)
    ctx = NightContext(
        date=date, params=params, sites=sites, vehicles=reference.vehicles, carriers=reference.carriers,
        liaisons=reference.liaisons, boundaries=boundaries, manifests=all_manifests, manifests_today=manifests,
        reports=report_windows(reports, params) if len(reports) else reports.assign(w0=[], w1=[]),
        feedback=feedback, context=decision, quarantine=quarantine, carried_stays=carried_stays,
    )
    ctx.save(work)
    plan = NightPlan(
        date=date, run_id=run_id, landing=str(landing.resolve()), out=str(out.resolve()),
        work_dir=str(work.resolve()), state_dir=str(paths["state"].resolve()),
        version_dir=str(paths["version"].resolve()), timezone=batch.timezone,
        n_shards=shard_plan.n_shards, workers=shard_plan.workers, shard_plan=shard_plan.as_dict(),
        context=decision.as_dict(), parts=[asdict(p) for p in parts],
        sources=[p.rel for p in parts], counts=[asdict(c) for c in counts], params=params.as_dict(),
        started_at=started.isoformat(timespec="seconds"), write_sheets=write_sheets,
    )
    plan.save()
    log.info("night %s: %d parts, %d shards, context %s", date, len(parts), plan.n_shards, decision.source)
    return plan


def cleanup_work(plan: NightPlan) -> None:
    """Remove the run's scratch files (shards, results); the state and the output version stay."""
    shutil.rmtree(plan.work_dir, ignore_errors=True)
    parent = Path(plan.work_dir).parent
    try:
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    except OSError:
        pass


def cpu_count() -> int:
    """Cores this process may use (cgroup/affinity-aware where the OS tells)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)
