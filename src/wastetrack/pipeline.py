"""The night run: one date of the landing directory in; leads, lead sheets, run.json and the store out.

A night is a sequence of steps, each a function of the run's work directory,
so the same steps run in one process, in a process pool (``workers``) or as
Airflow tasks spread over machines (``dags/wastetrack_nightly.py``):

    prepare   check the batch, read the small inputs, decide the context, plan shards   (plan.py)
    ingest    stream each GPS part into vehicle shards, hash and count it        ×parts  (ingest.py)
    detect    clean → stays → geofence → hauls → reconcile → classify, per shard ×shards (shard.py)
    merge     trace reports, route, drop what earlier nights reported, state    (merge.py)
    sheets    render the lead sheets                                            ×chunks (sheets/)
    publish   outputs into a new version, store commit, OUT/<date> swapped       (publish.py)

Peak memory is set by the shard size (``partition.plan_shards`` sizes shards to
a memory budget), never by the size of the night; leads do not depend on the
number of workers or shards (tests/test_sharding.py proves it).

``detect_night`` is the same computation on frames already in memory, for
notebooks: no files, no store.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.contract import NightInputs
from wastetrack.geofence import complete_site_counties
from wastetrack.ingest import ingest
from wastetrack.merge import MergedNight, combine, empty_leads, merge_night, night_quarantine, part_results
from wastetrack.midnight import NightBoundary, split_by_night  # noqa: F401  (re-exported for notebooks)
from wastetrack.plan import (
    CONTEXT_NONE,
    CONTEXT_PREVIOUS_BATCH,
    ContextDecision,
    NightContext,
    NightPlan,
    UsageError,
    check_date,
    cpu_count,
    load_boundaries_for,
    prepare_night,
    previous_day,
)
from wastetrack.publish import NightResult, check_out_dir, out_lock, publish_night, recover, store_rows, write_outputs
from wastetrack.shard import detect_vehicles, load_context, run_shard
from wastetrack.trace import report_windows

log = logging.getLogger("wastetrack")
TZ = TIMEZONE
#: below this many fixes a night runs in one process: starting a pool costs more than it saves
POOL_MIN_FIXES = 1_500_000
#: leads per sheet-rendering task
SHEET_CHUNK = 200

__all__ = ["NightResult", "StageTimer", "detect_night", "load_boundaries_for", "previous_day", "run_night"]


class StageTimer:
    """Wall time per stage, for run.json and the progress line."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.progress:
            self.progress(stage)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - t0, 3)


# ---------------------------------------------------------------- steps (jobs of a work directory)


def prepare_step(
    landing: Path | str, date: str, out: Path | str, store: Any, **kwargs: Any
) -> NightPlan:
    """Job: tidy what dead runs left (``publish.recover``), find the previous night's carried state in the
    store, and plan the night (``plan.prepare_night``; keyword arguments go there)."""
    date = check_date(date)
    out = Path(out)
    if not Path(landing).is_dir():
        raise UsageError(f"landing directory {landing} does not exist (check --landing / WASTETRACK_LANDING)")
    check_out_dir(out, date)
    out.mkdir(parents=True, exist_ok=True)
    recover(out, store)
    state_ref = store.state_of(previous_day(date))
    return prepare_night(landing, date, out, state_ref=state_ref, **kwargs)


def run_ingest(work: str | Path, index: int) -> dict:
    """Job: ingest the ``index``-th input of the plan into shards; writes ``parts/<tag>.json``."""
    work = Path(work)
    plan = NightPlan.load(work)
    spec = plan.part_specs()[index]
    res = ingest(spec, plan.n_shards, work / "shards", work / "quarantine")
    out = work / "parts" / f"{spec.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(res.to_json(), encoding="utf-8")
    return {"tag": spec.tag, "rows": res.rows_in}


def finish_ingest(work: str | Path) -> dict:
    """Job: check every input arrived, collect the plates (key → plate) the shards need."""
    work = Path(work)
    plan = NightPlan.load(work)
    parts = part_results(work)
    missing = sorted({p["tag"] for p in plan.parts} - {p.tag for p in parts})
    if missing:
        raise RuntimeError(f"night {plan.date}: inputs {missing} were not ingested")
    plates: dict[str, str] = {}
    for p in parts:
        for k, v in p.plates.items():
            if plates.setdefault(k, v) != v:
                raise RuntimeError(f"vehicle key collision: {plates[k]!r} and {v!r} share key {k}")
    if any(p.tag.startswith("c-state") for p in parts):
        from wastetrack.carryover import State

        plates.update({k: v for k, v in State.load(plan.context["state_uri"]).plates.items() if k not in plates})
    (work / "plates.json").write_text(json.dumps(plates, ensure_ascii=False), encoding="utf-8")
    return {"parts": len(parts), "fixes": sum(p.rows_written for p in parts), "vehicles": len(plates)}


def sheet_context(ctx: NightContext, plan: NightPlan, leads: pd.DataFrame | None = None) -> Any:
    """The lookups the sheets of ``leads`` need (all the night's when None), built once per chunk.

    Only the leads' vehicles, their manifests and their reports are indexed: a delta night has
    ~10^6 manifests, and indexing all of them in every process that renders sheets cost more
    than the sheets.
    """
    from wastetrack.lifecycle import read_night_history
    from wastetrack.sheets import SheetContext

    manifests, reports, vehicles = ctx.manifests, ctx.reports, ctx.vehicles
    if leads is not None:
        plates = set(leads["vehicle_id"].astype(str))
        plates |= {str(v) for c in leads["candidates"] for v in (c if isinstance(c, (list, tuple)) else [])}
        ids = set(leads["manifest_id"].astype(str)) - {""}
        if len(manifests):
            manifests = manifests.loc[manifests["vehicle_id"].isin(plates) | manifests["manifest_id"].isin(ids)]
        if len(vehicles):
            vehicles = vehicles.loc[vehicles["vehicle_id"].astype(str).isin(plates)]
        rids = {str(r) for rs in leads["report_ids"] for r in (rs if isinstance(rs, (list, tuple)) else [])}
        if len(reports):
            reports = reports.loc[reports["report_id"].astype(str).isin(rids)]
    kwargs: dict[str, Any] = dict(
        date=plan.date, sites=ctx.sites, vehicles=vehicles, carriers=ctx.carriers, liaisons=ctx.liaisons,
        manifests=manifests, reports=reports, boundaries=ctx.boundaries,
        generated_at=pd.Timestamp(plan.started_at),
    )
    kwargs["night_note"] = night_note_zh(ctx.context)
    kwargs["history"] = read_night_history(plan.work_dir)
    return SheetContext(**kwargs)


def night_note_zh(decision: ContextDecision) -> str:
    """The banner every sheet of a night without (or with rebuilt) context carries, in Chinese."""
    if decision.source == CONTEXT_NONE:
        return ("注意：本夜运行缺少前一日（" + decision.previous_date + "）的数据。跨午夜的运输可能未被判定；"
                "联单可能在缺失日的线索（无联单运输）暂不判定，详见 run.json 的 held_back。")
    if decision.source == CONTEXT_PREVIOUS_BATCH:
        return "说明：前一夜的结转状态缺失，本夜已重新读取前一日批次数据以衔接跨午夜的运输。"
    return ""


def sheet_chunks(work: str | Path, workers: int) -> int:
    """How many sheet-rendering tasks the night's leads are split into (0 when there are no sheets to write)."""
    plan = NightPlan.load(work)
    n = int(json.loads((Path(work) / "merge.json").read_text(encoding="utf-8"))["leads"])
    if not plan.write_sheets or n == 0:
        return 0
    return max(min(n // SHEET_CHUNK + 1, max(workers, 1) * 4), 1)


def run_sheets(work: str | Path, chunk: int, n_chunks: int) -> dict[str, str]:
    """Job: render every ``n_chunks``-th lead sheet starting at ``chunk``; writes ``sheets/<chunk>.json``."""
    from wastetrack.sheets import write_lead_pages

    work = Path(work)
    plan = NightPlan.load(work)
    done: dict[str, str] = {}
    leads = MergedNight.load_leads(work).iloc[chunk::n_chunks]
    if len(leads):
        tracks = MergedNight.load_tracks(work, leads["lead_id"].astype(str))
        ctx = load_context(work)
        paths = write_lead_pages(leads, tracks, sheet_context(ctx, plan, leads),
                                 Path(plan.version_dir) / "sheets")
        done = {lid: Path(p).name for lid, p in zip(leads["lead_id"], paths, strict=True)}
    out = work / "sheets" / f"{chunk:04d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(done, ensure_ascii=False), encoding="utf-8")
    return done


def write_index(work: str | Path) -> dict[str, str]:
    """The night's index.html and one page per liaison; returns lead_id → sheet file of every lead."""
    from wastetrack.sheets import write_index_pages

    work = Path(work)
    plan = NightPlan.load(work)
    rendered: dict[str, str] = {}
    for f in sorted((work / "sheets").glob("*.json")):
        rendered.update(json.loads(f.read_text(encoding="utf-8")))
    leads = MergedNight.load_leads(work)
    write_index_pages(leads, sheet_context(load_context(work), plan, leads), Path(plan.version_dir) / "sheets")
    return rendered


def merge_step(work: str | Path, store: Any) -> dict:
    """Job: the cross-vehicle steps (``merge.merge_night``) with the store's registry of reported leads."""
    from wastetrack.lifecycle import write_night_history
    from wastetrack.trace import StoreHistory

    plan = NightPlan.load(work)
    # the store's earlier nights: a report that arrives days late is traced to what trucks did then
    history = StoreHistory(store, plan.date, plan.get_params().report_history_days)
    merged = merge_night(work, lambda ids: store.leads_reported_before(plan.date, ids), history=history)
    if plan.write_sheets and len(merged.leads):
        # a lead reported again (a re-run) shows what already happened to it: delivered, replies, escalations
        write_night_history(work, store, merged.leads["lead_id"], plan.landing)
    return {"leads": len(merged.leads)}


def publish_step(work: str | Path, store: Any, timings: dict[str, float] | None = None,
                 keep_work: bool = False, prepared: tuple[MergedNight, dict] | None = None) -> NightResult:
    """Job: index pages, outputs into the new version, store commit, ``OUT/<date>`` swapped, scratch removed.

    ``prepared``: the merged night and its store rows (``publish.store_rows``) when the caller
    already has them (``run_night`` encodes them while the sheets render).
    """
    work = Path(work)
    plan = NightPlan.load(work)
    rendered = write_index(work) if plan.write_sheets else {}
    ctx = load_context(work)
    merged, rows = prepared if prepared is not None else (MergedNight.load(work), None)
    quarantine = night_quarantine(ctx, part_results(work))
    merged.run["timings_s"] = {"shard_stages": merged.run["timings_s"], **(timings or {})}
    run = write_outputs(plan, merged, quarantine, rendered)
    return publish_night(plan, store, merged, run, ctx, keep_work=keep_work, rows=rows)


# ---------------------------------------------------------------- running the steps


class _Inline:
    """The process pool's interface, in this process (one worker, or a small night)."""

    def map(self, fn: Callable, *iterables: Iterable) -> Iterator:
        return map(fn, *iterables)

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _init_worker(threads: int) -> None:
    """Pool workers share the cores: Arrow's own thread pool must not oversubscribe them."""
    import pyarrow as pa

    pa.set_cpu_count(max(threads, 1))
    pa.set_io_thread_count(max(threads, 1))


def executor(workers: int, fixes_expected: int, force: bool = False) -> Any:
    if workers <= 1 or (fixes_expected < POOL_MIN_FIXES and not force):
        return _Inline()
    threads = max(cpu_count() // workers, 1)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))


def open_store_checked(url: str | Path) -> Any:
    """Open the store, or a one-line UsageError naming it (password masked) and what to do."""
    from wastetrack.store import mask_url, open_store
    from wastetrack.store.urls import StoreError

    shown = mask_url(url)
    try:
        return open_store(url)
    except StoreError as exc:  # already one line, masked, with the remedy (e.g. run `wastetrack db upgrade`)
        raise UsageError(str(exc)) from exc
    except (ValueError, NotImplementedError) as exc:
        raise UsageError(f"--store {shown}: {str(exc).replace(str(url), shown)}") from exc
    except Exception as exc:  # sqlite3.DatabaseError for "file is not a database", psycopg errors, …
        msg = str(exc).replace(str(url), shown).splitlines()[0] if str(exc) else ""
        raise UsageError(f"--store {shown}: cannot open the store ({type(exc).__name__}: {msg})") from exc


def run_night(
    landing: Path | str,
    date: str,
    out: Path | str,
    store_url: str | None = None,
    params: Params = DEFAULT_PARAMS,
    progress: Callable[[str], None] | None = None,
    write_sheets: bool = True,
    without_context: bool = False,
    workers: int | None = None,
    shards: int | None = None,
    memory_budget_bytes: int | None = None,
    work_root: Path | str | None = None,
    force_pool: bool = False,
    keep_work: bool = False,
) -> NightResult:
    """Run one night end to end. Raises ``contract.BatchError`` (nothing written) for a refused batch
    and ``plan.UsageError`` for a bad date, path or store, before reading anything."""
    from wastetrack.plan import DEFAULT_MEMORY_BUDGET_BYTES

    landing, out = Path(landing), Path(out)
    date = check_date(date)
    if not landing.is_dir():
        raise UsageError(f"landing directory {landing} does not exist (check --landing)")
    check_out_dir(out, date)
    workers = max(int(workers or cpu_count()), 1)
    timer = StageTimer(progress)
    out.mkdir(parents=True, exist_ok=True)
    store = open_store_checked(store_url or out / "wastetrack.db")
    try:
        with out_lock(out):
            with timer("prepare"):
                plan = prepare_step(
                    landing, date, out, store, params=params, workers=workers,
                    memory_budget_bytes=memory_budget_bytes or DEFAULT_MEMORY_BUDGET_BYTES, n_shards=shards,
                    work_root=work_root, without_context=without_context, write_sheets=write_sheets,
                )
            work = plan.work_dir
            try:
                expected = plan.shard_plan["fixes_expected"]
                with executor(workers, expected, force_pool) as ex:
                    with timer("ingest"):
                        list(ex.map(run_ingest, [work] * len(plan.parts), range(len(plan.parts))))
                        finish_ingest(work)
                    with timer("detect"):
                        list(ex.map(run_shard, [work] * plan.n_shards, range(plan.n_shards)))
                # the pool goes before the merge: its workers keep the heap of their biggest shard, and the
                # merge runs alone (gigabytes at a delta night)
                with timer("merge"):
                    merge_step(work, store)
                with executor(workers, expected, force_pool) as ex, timer("sheets"):
                    n = sheet_chunks(work, workers)
                    rendering = ex.map(run_sheets, [work] * n, range(n), [n] * n)  # a pool submits them all now
                    # this process only waits for the pool: meanwhile it encodes the store's rows (pure; the
                    # commit still comes after the sheets, in publish)
                    merged = MergedNight.load(work)
                    prepared = (merged, store_rows(plan.date, merged))
                    list(rendering)
                with timer("publish"):
                    result = publish_step(work, store, dict(timer.timings), keep_work=keep_work, prepared=prepared)
            except BaseException:
                recover(out, store)  # the work dir and the unpublished version go; the previous night stays
                raise
    finally:
        store.close()
    result.run["timings_s"] = {**result.run["timings_s"], **timer.timings}
    if plan.context.get("note"):
        log.warning("%s: %s", date, plan.context["note"])
    return result


# ---------------------------------------------------------------- in memory (notebooks)


def _night_fixes(inputs: NightInputs, context: NightInputs | None, params: Params) -> pd.DataFrame:
    """This batch's fixes plus the previous batch's tail (``context_hours`` before midnight)."""
    day_start = pd.Timestamp(inputs.date, tz=TZ)
    frames = [inputs.gps]
    if context is not None and len(context.gps):
        since = day_start - pd.Timedelta(hours=params.context_hours)
        frames.insert(0, context.gps.loc[context.gps["ts"] >= since])
    frames = [f for f in frames if len(f)]
    fixes = pd.concat(frames, ignore_index=True) if frames else inputs.gps
    return fixes.drop(columns=[c for c in ("source_file", "source_row") if c in fixes])


def detect_night(
    inputs: NightInputs,
    context: NightInputs | None,
    boundaries: gpd.GeoDataFrame,
    params: Params = DEFAULT_PARAMS,
    timer: StageTimer | None = None,
    reported_before: Callable[[Iterable[str]], set[str]] | None = None,
) -> dict:
    """All computation of a night on frames in memory (one shard: every vehicle), no I/O.

    Returns leads, untraced reports, stays, hauls, cleaned fixes, sites, cleaning
    counts, the night boundary and the manifests used — what notebooks explore.
    Without ``reported_before`` (a store), earlier nights are assumed run.
    """
    from wastetrack.contract.quarantine import Quarantine

    timer = timer or StageTimer()
    sites = complete_site_counties(inputs.reference.sites, boundaries)
    frames = [m for m in ([context.manifests] if context is not None else []) + [inputs.manifests] if len(m)]
    manifests = (pd.concat(frames, ignore_index=True).drop_duplicates("manifest_id", keep="last")
                 .reset_index(drop=True) if frames else inputs.manifests)
    source = CONTEXT_PREVIOUS_BATCH if context is not None else CONTEXT_NONE
    ctx = NightContext(
        date=inputs.date, params=params, sites=sites, vehicles=inputs.reference.vehicles,
        carriers=inputs.reference.carriers, liaisons=inputs.reference.liaisons, boundaries=boundaries,
        manifests=manifests, manifests_today=inputs.manifests,
        reports=report_windows(inputs.reports, params) if len(inputs.reports) else inputs.reports.assign(w0=[], w1=[]),
        feedback=inputs.feedback,
        context=ContextDecision(source, previous_day(inputs.date), degraded=context is None),
        quarantine=Quarantine(),
    )
    raw = _night_fixes(inputs, context, params)
    with timer("detect"):
        result, _ = detect_vehicles(raw, ctx, keep_all=True)
    with timer("merge"):
        leads, untraced, _, _, _ = combine([result], ctx, reported_before)
    fixes = result.extra["fixes"]
    return {
        "leads": leads if len(leads) else empty_leads(),
        "untraced": untraced,
        "stays": result.extra["stays"],
        "hauls": result.extra["hauls"],
        "night_stays": result.stays,
        "night_hauls": result.hauls,
        "fixes": fixes,
        "sites": sites,
        "clean": result.clean,
        "boundary": NightBoundary(fixes, inputs.date, params),
        "manifests": manifests,
        "held_back": result.held_back,
    }
