"""One shard of a night: its vehicles' fixes in, every per-vehicle stage run, compact results out.

Clean → stays → geofence → hauls → reconcile → classify → the midnight rule,
then what the cross-vehicle steps need: report candidates from the space-time
index, the tracks around leads and candidates (for the sheets), and the
vehicles' carry-over tails for the next night. Each stage only ever compares a
fix with fixes of the same vehicle, so a shard gives exactly the results its
vehicles would get in one big frame, whatever the shard count.

``detect_vehicles`` is the pure computation (frames in, frames out; notebooks
and tests call it on a whole small night); ``run_shard`` is the job around it
(files in the work directory in and out; the process pool and Airflow's mapped
tasks call it).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wastetrack import TIMEZONE
from wastetrack.carryover import tail_start, vehicle_summary
from wastetrack.clean import _ts_i8, clean_fixes
from wastetrack.config import Params
from wastetrack.detect import attach_stay_sensors, classify_hauls, settle_unloadings
from wastetrack.gaps import gap_evidence, locate_gap_hauls
from wastetrack.geofence import detect_placed_stays
from wastetrack.hauls import build_hauls
from wastetrack.ingest import SHARD_SCHEMA, SHARD_WRITE_OPTIONS
from wastetrack.leads import assign_ids
from wastetrack.midnight import NightBoundary, of_the_night, split_by_night
from wastetrack.partition import shard_of, vehicle_keys
from wastetrack.plan import CONTEXT_NONE, NightContext, NightPlan
from wastetrack.reconcile import join_false_loadings, match_manifests
from wastetrack.spacetime import report_candidates
from wastetrack.trace import rank_candidates, report_sites

log = logging.getLogger(__name__)

#: the sheet's evidence map shows the suspect from this long before the event to this long after it
TRACK_BEFORE = pd.Timedelta(hours=2)
TRACK_AFTER = pd.Timedelta(hours=1)
#: report candidates per report whose tracks a shard keeps (the sheet lists the top ones)
CANDIDATE_TRACKS = 10
TRACK_COLUMNS = ("ts", "lon", "lat", "speed_kmh", "loaded", "tipping")


@dataclass
class ShardResult:
    """What a shard hands to the merge step: small frames, never raw fixes."""

    shard: int
    leads: pd.DataFrame  # reported tonight (ids assigned, no routing yet)
    earlier: pd.DataFrame  # leads of events an earlier night reported (they may explain a report)
    held_back: list[dict]  # leads not judged without the previous day's context
    stays: pd.DataFrame  # tonight's stays (the store's)
    hauls: pd.DataFrame  # tonight's hauls (the store's)
    hauls_all: pd.DataFrame  # every haul seen, for a report's candidate: where had it loaded?
    candidates: pd.DataFrame  # report candidates (spacetime.CANDIDATE_COLUMNS)
    tracks: pd.DataFrame  # fixes around each lead_id or "report_id|vehicle_id" (column ``key``)
    clean: dict[str, int]
    counts: dict[str, int]
    vehicles: pd.DataFrame = field(default_factory=pd.DataFrame)  # carry-over summary per vehicle
    tail_fixes: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)  # keep_all: every stay and haul, the fixes


# ---------------------------------------------------------------- reading a shard


def shard_files(work: Path, shard: int, trace: bool = False) -> list[Path]:
    """The shard's files from every part, context first (their names sort before tonight's).

    ``trace``: instead, the carried fixes that are only searched for report candidates.
    """
    d = Path(work) / "shards" / f"{shard:04d}"
    files = sorted(d.glob("*.parquet")) if d.is_dir() else []
    return [f for f in files if f.name.startswith("t-") == trace]


def read_shard_table(files: list[Path]) -> pa.Table:
    tables = [pq.read_table(f) for f in files]
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else SHARD_SCHEMA.empty_table()


def _bool_from_int8(values: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(values == 1, values < 0)


def fixes_frame(table: pa.Table, plates: Mapping[str, str]) -> pd.DataFrame:
    """Shard schema → the fixes model (``models.FIX_COLUMNS`` without lineage).

    ``vehicle_id`` is a categorical over the shard's plates in sorted order, so
    stages get integer codes for free and plate order for sorting.
    """
    vkey = table.column("vkey").to_numpy()
    inv, uniq = pd.factorize(vkey, sort=True)  # a hash table: np.unique's sort cost 20x more per shard
    names = np.array([plates[str(k)] for k in uniq.tolist()], dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    vehicle = pd.Categorical.from_codes(rank[inv.reshape(-1)], categories=pd.Index(names[order], dtype=object))
    ts = pd.Series(table.column("ts").to_numpy().view("M8[us]")).dt.tz_localize("UTC").dt.tz_convert(TIMEZONE)
    return pd.DataFrame({
        "vehicle_id": vehicle,
        "ts": ts,
        "lon": table.column("lon").to_numpy(),
        "lat": table.column("lat").to_numpy(),
        "speed_kmh": table.column("speed_kmh").to_numpy(),
        "heading": table.column("heading").to_numpy(),
        "loaded": _bool_from_int8(table.column("loaded").to_numpy()),
        "tipping": _bool_from_int8(table.column("tipping").to_numpy()),
    })


# ---------------------------------------------------------------- the per-vehicle stages


def hold_back_without_context(leads: pd.DataFrame, date: str, params: Params) -> tuple[pd.DataFrame, list[dict]]:
    """Without the previous day, an unmatched haul may have its manifest in the missing batch: not judged.

    Night hauls are booked up to ``manifest_issue_lead_s`` ahead, so on a night
    without context an ``unmanifested`` haul that departed within that span after
    midnight is held back (listed in run.json), never reported as a violation.
    """
    if leads.empty:
        return leads, []
    day0 = pd.Timestamp(date, tz=TIMEZONE)
    horizon = day0 + pd.Timedelta(seconds=params.manifest_issue_lead_s)
    depart = pd.to_datetime(leads["evidence"].map(lambda e: e.get("depart") or None), utc=True)
    depart = depart.dt.tz_convert(TIMEZONE)
    hold = (leads["kind"] == "unmanifested") & (depart.isna() | (depart < horizon)).to_numpy()
    held = [
        {"lead_id": r.lead_id, "kind": r.kind, "vehicle_id": r.vehicle_id,
         "start": pd.Timestamp(r.start).isoformat(timespec="seconds"),
         "reason": "its manifest may be in the missing previous day's batch"}
        for r in leads.loc[hold].itertuples(index=False)
    ]
    return leads.loc[~hold].copy(), held


def _slices(fixes: pd.DataFrame, wanted: pd.DataFrame) -> pd.DataFrame:
    """For each row of ``wanted`` (key, vehicle_id, lo, hi): that vehicle's fixes in [lo, hi], as one frame.

    Long form (a ``key`` column) and built with one take: a shard has hundreds of
    report candidates, and a frame per track cost more than the tracks themselves.
    """
    cols = [c for c in TRACK_COLUMNS if c in fixes]
    if wanted.empty or fixes.empty:
        return pd.DataFrame({"key": pd.Series(dtype=object), **{c: fixes[c].iloc[:0] for c in cols}})
    veh = fixes["vehicle_id"]
    if isinstance(veh.dtype, pd.CategoricalDtype):
        codes = np.asarray(veh.cat.codes, dtype=np.int64)
        want = pd.Categorical(wanted["vehicle_id"].astype(str), categories=veh.cat.categories).codes
    else:
        codes_, uniq = pd.factorize(veh)
        codes = np.asarray(codes_, dtype=np.int64)
        want = pd.Index(uniq).get_indexer(wanted["vehicle_id"].astype(str))
    want = np.asarray(want, dtype=np.int64)
    t_us = _ts_i8(fixes["ts"])
    t_min = int(t_us.min())
    span = 1 << 42  # µs: fixes sorted by (vehicle, time), so (code, time) is one sorted int64 key
    key = codes * span + (t_us - t_min)
    lo = np.clip(_ts_i8(wanted["lo"]) - t_min, -1, span - 1)
    hi = np.clip(_ts_i8(wanted["hi"]) - t_min, -1, span - 1)
    i0 = np.searchsorted(key, want * span + lo, side="left")
    i1 = np.searchsorted(key, want * span + hi, side="right")
    n = np.where(want >= 0, np.maximum(i1 - i0, 0), 0)
    rows = np.repeat(i0, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    out = fixes.iloc[rows][cols].reset_index(drop=True)
    out.insert(0, "key", np.repeat(wanted["key"].to_numpy(object), n))
    return out


def lead_tracks(leads: pd.DataFrame, candidates: pd.DataFrame, fixes: pd.DataFrame) -> pd.DataFrame:
    """The suspect's fixes around each lead, and around each of a report's best candidates (long form)."""
    wanted = []
    if len(leads):
        wanted.append(pd.DataFrame({
            "key": leads["lead_id"].to_numpy(object),
            "vehicle_id": leads["vehicle_id"].to_numpy(object),
            "lo": leads["start"].astype(f"datetime64[us, {TIMEZONE}]") - TRACK_BEFORE,
            "hi": leads["end"].astype(f"datetime64[us, {TIMEZONE}]") + TRACK_AFTER,
        }))
    if len(candidates):
        top = candidates.groupby("report_id", sort=False).head(CANDIDATE_TRACKS)
        wanted.append(pd.DataFrame({
            "key": (top["report_id"].astype(str) + "|" + top["vehicle_id"].astype(str)).to_numpy(object),
            "vehicle_id": top["vehicle_id"].to_numpy(object),
            "lo": top["start"].astype(f"datetime64[us, {TIMEZONE}]") - TRACK_BEFORE,
            "hi": top["end"].astype(f"datetime64[us, {TIMEZONE}]") + TRACK_AFTER,
        }))
    if not wanted:
        return _slices(fixes, pd.DataFrame())
    w = pd.concat(wanted, ignore_index=True)
    for col in ("lo", "hi"):
        w[col] = w[col].astype(f"datetime64[us, {TIMEZONE}]")
    return _slices(fixes, w)


def detect_vehicles(
    raw: pd.DataFrame, ctx: NightContext, shard: int = 0, keep_all: bool = False,
    trace_raw: pd.DataFrame | None = None,
) -> tuple[ShardResult, pd.Series]:
    """Every per-vehicle stage on these vehicles' fixes; returns the result and each vehicle's tail start.

    ``keep_all`` (notebooks) also returns every stay and haul of the window and the
    cleaned fixes in ``result.extra``; a shard job never does (memory).
    """
    p, date = ctx.params, ctx.date
    timings: dict[str, float] = {}

    def lap(stage: str, t0: float) -> float:
        now = time.perf_counter()
        timings[stage] = round(timings.get(stage, 0.0) + now - t0, 3)
        return now

    t = time.perf_counter()
    fixes, cstats = clean_fixes(raw, p)
    t = lap("clean", t)
    veh = fixes["vehicle_id"]
    plates = set(map(str, veh.cat.categories if isinstance(veh.dtype, pd.CategoricalDtype) else veh.unique()))
    manifests = ctx.manifests.loc[ctx.manifests["vehicle_id"].isin(plates)] if len(ctx.manifests) else ctx.manifests
    stays = detect_placed_stays(fixes, ctx.sites, ctx.boundaries, p, manifests)
    t = lap("stays", t)
    hauls = attach_stay_sensors(build_hauls(stays, fixes, p, ctx.reports), stays)
    # a haul that unloaded during a silence: its reachable region, counties and most likely place
    hauls, gap_places = locate_gap_hauls(hauls, fixes, ctx.sites, ctx.boundaries, p)
    t = lap("hauls", t)
    hauls = join_false_loadings(match_manifests(hauls, manifests, p), p)
    # the map and the manifest settle where it unloaded: the store keeps what the leads say
    hauls = settle_unloadings(hauls, ctx.sites, p, fixes=fixes)
    t = lap("reconcile", t)
    leads = classify_hauls(hauls, ctx.sites, ctx.vehicles, ctx.boundaries, None, p.receiver_scan_distance_m, params=p,
                           settled=True)
    leads = assign_ids(gap_evidence(leads, gap_places))
    boundary = NightBoundary(fixes, date, p)
    today, earlier = split_by_night(leads, boundary) if len(leads) else (leads, leads)
    held: list[dict] = []
    if ctx.context.source == CONTEXT_NONE:
        today, held = hold_back_without_context(today, date, p)
    stays_n, hauls_n = of_the_night(stays, hauls, boundary)
    t = lap("detect", t)
    cands = report_candidates(ctx.reports, stays, fixes, p.report_radius_m, hauls, p, silences=True)
    trace_fixes = None
    if trace_raw is not None and len(trace_raw) and len(ctx.reports):
        # the previous evening's fixes, carried only to look for trucks that passed a report's spot
        trace_fixes, _ = clean_fixes(trace_raw, p)
        earlier_cands = report_candidates(ctx.reports, stays.iloc[:0], trace_fixes, p.report_radius_m, hauls, p,
                                          silences=True)
        cands = pd.concat([c for c in (cands, earlier_cands) if len(c)] or [cands], ignore_index=True)
    # the sheets draw the tracks of each report's best candidates: ranked here by the same scores as in merge
    ranked = rank_candidates(cands, report_sites(ctx.reports, ctx.sites, p), p) if len(cands) else cands
    t = lap("candidates", t)
    tracks = lead_tracks(today, ranked, fixes)
    if trace_fixes is not None:
        # the evening before, from the carried trace-only fixes, ahead of what tonight holds
        older = lead_tracks(today.iloc[:0], ranked, trace_fixes)
        if len(older):
            tracks = pd.concat([older, tracks], ignore_index=True)
            tracks = tracks.sort_values(["key", "ts"], kind="stable", ignore_index=True)
    t = lap("tracks", t)
    start = tail_start(fixes, stays, hauls, date, p) if len(fixes) else pd.Series(dtype=np.int64)
    vehicles = vehicle_summary(fixes, stays, hauls, date)
    if len(vehicles):
        # where the next night's detection starts for this vehicle: older late rows cannot be stitched on
        vehicles["tail_start_us"] = vehicles["vehicle_id"].map(start).fillna(0).astype(np.int64)
    lap("carryover", t)
    haul_cols = [c for c in hauls.columns if c in (
        "haul_id", "vehicle_id", "origin_site_id", "depart", "end", "manifest_id", "returned_empty",
        "unload_start", "unload_end", "unload_stay_id", "unload_evidence", "unload_site_id", "gap_start")]
    result = ShardResult(
        shard=shard,
        leads=today.reset_index(drop=True),
        earlier=earlier.reset_index(drop=True),
        held_back=held,
        stays=stays_n,
        hauls=hauls_n,
        hauls_all=hauls[haul_cols].reset_index(drop=True) if len(hauls) else pd.DataFrame(columns=haul_cols),
        candidates=cands,
        tracks=tracks,
        clean=cstats.as_dict(),
        counts={"fixes": len(fixes), "stays": len(stays_n), "hauls": len(hauls_n)},
        vehicles=vehicles,
        timings=timings,
    )
    if keep_all:
        result.extra = {"stays": stays, "hauls": hauls, "fixes": fixes}
    return result, start


# ---------------------------------------------------------------- the job


_CONTEXT_CACHE: dict[str, NightContext] = {}


def load_context(work: Path) -> NightContext:
    """The night's shared inputs, loaded once per worker process (a pool runs many shards per process)."""
    key = str(Path(work).resolve())
    if key not in _CONTEXT_CACHE:
        _CONTEXT_CACHE.clear()
        _CONTEXT_CACHE[key] = NightContext.load(Path(work))
    return _CONTEXT_CACHE[key]


def load_plates(work: Path) -> dict[str, str]:
    import json

    return json.loads((Path(work) / "plates.json").read_text(encoding="utf-8"))


def write_tail(files: list[Path], start: pd.Series, floor_us: int, plates: Mapping[str, str],
               state_dir: Path, shard: int) -> int:
    """Write what the next night needs of the shard's rows (as read, before cleaning); returns rows written.

    ``tail/``: each vehicle's rows from its tail start (the next night detects on
    them); ``trace/``: its other rows of the last ``context_hours`` (from
    ``floor_us``), only searched for report candidates.
    """
    if start.empty or not files:
        return 0
    keys = vehicle_keys(pa.array([str(v) for v in start.index], pa.string()))
    since_us = start.to_numpy(dtype=np.int64)
    lookup_keys = pa.array(keys)
    written = 0
    paths = {name: state_dir / name / f"{shard:04d}.parquet" for name in ("tail", "trace")}
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(paths["tail"], SHARD_SCHEMA, **SHARD_WRITE_OPTIONS) as tail, \
            pq.ParquetWriter(paths["trace"], SHARD_SCHEMA, **SHARD_WRITE_OPTIONS) as trace:
        for f in files:
            table = pq.read_table(f)
            if table.num_rows == 0:
                continue
            idx = pc.fill_null(pc.index_in(table.column("vkey"), value_set=lookup_keys), -1)
            idx = np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)
            known = idx >= 0
            ts = table.column("ts").to_numpy()
            in_tail = known & (ts >= np.where(known, since_us[np.maximum(idx, 0)], 0))
            in_trace = known & ~in_tail & (ts >= floor_us)
            for mask, w in ((in_tail, tail), (in_trace, trace)):
                if mask.any():
                    part = table.filter(pa.array(mask))
                    w.write_table(part)
                    written += part.num_rows
    return written


def run_shard(work: Path | str, shard: int) -> dict:
    """Job: detect one shard of the planned night; writes ``results/<shard>.pkl`` and the shard's tail."""
    t0 = time.perf_counter()
    work = Path(work)
    plan = NightPlan.load(work)
    ctx = load_context(work)
    plates = load_plates(work)
    files = shard_files(work, shard)
    raw = fixes_frame(read_shard_table(files), plates)
    trace_files = shard_files(work, shard, trace=True)
    trace_raw = fixes_frame(read_shard_table(trace_files), plates) if trace_files else None
    t_read = time.perf_counter() - t0
    result, start = detect_vehicles(raw, ctx, shard, trace_raw=trace_raw)
    del raw, trace_raw
    t1 = time.perf_counter()
    day1 = pd.Timestamp(plan.date, tz=TIMEZONE) + pd.Timedelta(days=1)
    floor_us = int((day1 - pd.Timedelta(hours=ctx.params.context_hours)).value // 1000)
    result.tail_fixes = write_tail(files, start, floor_us, plates, Path(plan.state_dir), shard)
    result.timings["read"] = round(t_read, 3)
    result.timings["carryover"] = round(result.timings.get("carryover", 0.0) + time.perf_counter() - t1, 3)
    out = work / "results" / f"{shard:04d}.pkl"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(out)
    return {"shard": shard, "fixes": result.counts["fixes"], "leads": len(result.leads),
            "seconds": round(time.perf_counter() - t0, 3)}


def shard_for_plates(plates: list[str], n_shards: int) -> np.ndarray:
    """The shard of each plate (for tests and the notebooks: which shard holds this truck?)."""
    return shard_of(vehicle_keys(pa.array(plates, pa.string())), n_shards)


__all__ = [
    "ShardResult", "detect_vehicles", "fixes_frame", "run_shard", "shard_files",
]
