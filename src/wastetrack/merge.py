"""The cross-vehicle steps of a night, on the shards' compact results (never on raw fixes).

Tonight's leads of every shard are put together; dumping reports are explained
by a lead at the spot or traced to the candidate trucks the shards found in
their space-time index; leads already reported on an earlier night (the
store's registry) are dropped; every lead is routed through the liaison
network; and the carry-over state of the night is written. The result
(``merged.pkl``, with the leads in ``sheets.pkl`` and their tracks in
``tracks.arrow``) is all that sheets and publishing need.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from wastetrack import TIMEZONE, __version__
from wastetrack.carryover import open_manifests, write_state
from wastetrack.contract.quarantine import Quarantine
from wastetrack.contract.tables import FileCount
from wastetrack.ingest import PartResult
from wastetrack.lead_tracks import LeadTracks
from wastetrack.models import LEAD_COLUMNS, LEAD_KINDS
from wastetrack.plan import NightContext, NightPlan
from wastetrack.routing import LiaisonDirectory, route_leads
from wastetrack.shard import ShardResult, load_context
from wastetrack.spacetime import CANDIDATE_COLUMNS, report_candidates
from wastetrack.trace import EarlierNights, trace_reports


@dataclass
class MergedNight:
    """A night's results before publishing (``merged.pkl`` and ``sheets.pkl``)."""

    leads: pd.DataFrame
    untraced: list[dict]
    held_back: list[dict]
    stays: pd.DataFrame
    hauls: pd.DataFrame
    tracks: LeadTracks  # lead_id → the suspect's fixes around it
    run: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    def save(self, work: Path) -> None:
        # the sheets' share apart (every sheet task loads the leads, and only its own leads' tracks), the rest
        # (the night's stays and hauls, for the store: most of the whole at a delta night) beside it
        self.tracks.save(Path(work) / "tracks.arrow")
        rest = replace(self, leads=self.leads.iloc[:0], tracks=LeadTracks())
        for name, obj in (("sheets.pkl", self.leads), ("merged.pkl", rest)):
            tmp = Path(work) / f"{name}.tmp"
            with tmp.open("wb") as fh:
                pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(Path(work) / name)

    @staticmethod
    def load(work: Path) -> MergedNight:
        with (Path(work) / "merged.pkl").open("rb") as fh:
            merged = pickle.load(fh)
        merged.leads, merged.tracks = MergedNight.load_leads(work), MergedNight.load_tracks(work)
        return merged

    @staticmethod
    def load_leads(work: Path) -> pd.DataFrame:
        """The night's leads (what the index pages need), without stays, hauls or tracks."""
        with (Path(work) / "sheets.pkl").open("rb") as fh:
            return pickle.load(fh)

    @staticmethod
    def load_tracks(work: Path, lead_ids: Iterable[str] | None = None) -> LeadTracks:
        """The tracks of ``lead_ids`` (all when None): a sheet task decodes only its own leads' tracks."""
        return LeadTracks.load(Path(work) / "tracks.arrow", lead_ids)


def part_results(work: Path) -> list[PartResult]:
    files = sorted((Path(work) / "parts").glob("*.json"))
    return [PartResult.from_json(f.read_text(encoding="utf-8")) for f in files]


def shard_results(work: Path, n_shards: int) -> list[ShardResult]:
    out = []
    for k in range(n_shards):
        path = Path(work) / "results" / f"{k:04d}.pkl"
        if not path.is_file():
            raise FileNotFoundError(f"shard {k} has no result ({path}): its detect step did not finish")
        with path.open("rb") as fh:
            out.append(pickle.load(fh))
    return out


def _concat(frames: list[pd.DataFrame], columns: list[str] | None = None) -> pd.DataFrame:
    """Concatenate the non-empty frames; all empty → the first one as is (it keeps its columns)."""
    full = [f for f in frames if len(f)]
    if not full:
        if frames and len(frames[0].columns):
            return frames[0].reset_index(drop=True)
        return pd.DataFrame(columns=columns or [])
    return pd.concat(full, ignore_index=True)


def empty_leads() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*LEAD_COLUMNS, "lon", "lat", "evidence")})


def file_counts(plan: NightPlan, parts: list[PartResult]) -> list[dict]:
    """run.json ``files``: every input of the batch and of ``reference/``, in reading order."""
    counts = [FileCount(**c) for c in plan.counts]
    gps = [FileCount(p.rel, p.rows_in, p.rows_accepted, p.rows_quarantined) for p in parts if p.report_counts]
    gps.sort(key=lambda c: c.path)
    ref = [c for c in counts if c.path.startswith("reference/")]
    man = [c for c in counts if c.path.endswith("/manifests.csv")]
    rest = [c for c in counts if c not in ref and c not in man]
    return [c.__dict__ for c in (*ref, *man, *gps, *rest)]


def night_quarantine(ctx: NightContext, parts: list[PartResult]) -> Quarantine:
    """The night's rejected rows: the small files' (read in prepare) and every GPS part's."""
    q = Quarantine()
    q._parts.extend(ctx.quarantine._parts)
    for p in parts:
        if p.report_counts and p.quarantine_file:
            q._parts.append(pd.read_parquet(p.quarantine_file))
    return q


def combine(
    results: list[ShardResult], ctx: NightContext, reported_before: Any = None,
    history: EarlierNights | None = None,
) -> tuple[pd.DataFrame, list[dict], dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """(leads, untraced reports, tracks, stays, hauls) of the night from its shards' results.

    Reports are explained or traced on all shards' leads and candidates at once;
    leads an earlier night reported (``reported_before``, the store) are dropped;
    the rest are routed and sorted (score, then id), so the outcome is the same
    whatever the number of shards. ``history`` (``trace.StoreHistory``: the
    store's last nights) lets a report that arrived days late be explained by the
    lead that night reported, or traced to a truck that stood there then, and
    gives tonight's track gaps the spots where dumping was found before.
    """
    params = ctx.params
    today = _concat([r.leads for r in results])
    earlier = _concat([r.earlier for r in results])
    hauls_all = _concat([r.hauls_all for r in results])
    observed = [r.candidates for r in results]
    # where trucks stood the evening before (the previous night's stays, carried): a morning report's window
    # often reaches back there, and those stays are not rebuilt tonight
    carried = ctx.carried_stays
    if len(carried) and len(ctx.reports):
        observed.append(report_candidates(ctx.reports, carried, pd.DataFrame(), params.report_radius_m, hauls_all,
                                          params))
    history_leads = None
    if history is not None:
        history_leads = history.leads()
        h_stays = history.stays(near=(ctx.reports["lon"].to_numpy(float), ctx.reports["lat"].to_numpy(float),
                                      params.report_radius_m)) if len(ctx.reports) else pd.DataFrame()
        if len(h_stays) and len(ctx.reports):
            # the hauls of the trucks that stood there: what they carried then (loaded before, empty after)
            h_hauls = _concat([history.hauls(h_stays["vehicle_id"].astype(str).unique()), hauls_all])
            observed.append(report_candidates(ctx.reports, h_stays, pd.DataFrame(), params.report_radius_m,
                                              h_hauls, params))
    candidates = _concat(observed, list(CANDIDATE_COLUMNS))
    leads, untraced = trace_reports(
        ctx.reports, today, earlier, candidates, hauls_all, SimpleNamespace(vehicles=ctx.vehicles), ctx.sites,
        ctx.boundaries, params, reported_before, history_leads,
    )
    if len(leads):
        leads = route_leads(leads, LiaisonDirectory(ctx.liaisons, ctx.boundaries), ctx.carriers)
        earlier_ids = reported_before(leads["lead_id"]) if reported_before is not None else set()
        if earlier_ids:
            leads = leads.loc[~leads["lead_id"].isin(earlier_ids)]
        leads = leads.sort_values(["score", "lead_id"], ascending=[False, True], ignore_index=True)
    else:
        leads = empty_leads()
    tracks = LeadTracks()
    if len(leads):
        want = {
            (f"{lead.report_ids[0]}|{lead.vehicle_id}" if lead.kind == "report_trace" else lead.lead_id): lead.lead_id
            for lead in leads.itertuples(index=False)
        }
        parts = [r.tracks.loc[r.tracks["key"].isin(want)] for r in results if len(r.tracks)]
        found = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
        if found is not None:
            lead_id = found["key"].astype(str).map(want)
            tracks = LeadTracks(found.drop(columns="key").assign(lead_id=lead_id.to_numpy(object)))
    stays = _concat([r.stays for r in results])
    hauls = _concat([r.hauls for r in results])
    if len(stays):
        stays = stays.sort_values(["vehicle_id", "start", "stay_id"], kind="stable", ignore_index=True)
    if len(hauls):
        hauls = hauls.sort_values(["vehicle_id", "depart", "haul_id"], kind="stable", ignore_index=True)
    return leads, untraced, tracks, stays, hauls


def merge_night(work: Path | str, reported_before: Any = None, history: EarlierNights | None = None) -> MergedNight:
    """Job: put the shards together, trace reports, route; write ``merged.pkl`` and the carry-over state.

    ``reported_before(ids) -> set`` is the store's registry (leads reported on an
    earlier night are dropped and may not be counted twice); None in notebooks.
    ``history``: the store's earlier nights (``trace.StoreHistory(store, date)``), for late reports.
    """
    t0 = time.perf_counter()
    work = Path(work)
    plan = NightPlan.load(work)
    ctx = load_context(work)
    params = ctx.params
    date = plan.date
    results = shard_results(work, plan.n_shards)
    parts = part_results(work)
    leads, untraced, tracks, stays, hauls = combine(results, ctx, reported_before, history)
    held = [h for r in results for h in r.held_back]
    clean = {k: sum(r.clean.get(k, 0) for r in results) for k in ("fixes_in", "duplicates", "teleports",
                                                                   "fixes_out")}
    plates: dict[str, str] = {}
    for p in parts:
        plates.update(p.plates)
    manifests = open_manifests(ctx.manifests_today, date)
    vehicles = _concat([r.vehicles for r in results])
    day1 = pd.Timestamp(date, tz=TIMEZONE) + pd.Timedelta(days=1)
    floor = day1 - pd.Timedelta(hours=params.context_hours)
    carry_stays = stays.loc[stays["end"] >= floor] if len(stays) else stays
    state = write_state(Path(plan.state_dir), date, vehicles, manifests, carry_stays, plates,
                        sum(r.tail_fixes for r in results))

    q = night_quarantine(ctx, parts)
    timings: dict[str, float] = {}
    for r in results:
        for k, v in r.timings.items():
            timings[k] = round(timings.get(k, 0.0) + v, 3)
    timings["merge"] = round(time.perf_counter() - t0, 3)
    run = {
        "date": date,
        "version": __version__,
        "status": "degraded" if ctx.context.degraded else "ok",
        "run_id": plan.run_id,
        "started_at": plan.started_at,
        "files": file_counts(plan, parts),
        "rows_quarantined": len(q),
        "leads": {k: int((leads["kind"] == k).sum()) if len(leads) else 0 for k in LEAD_KINDS},
        "leads_total": len(leads),
        "cross_border_leads": int(leads["cross_border"].astype(bool).sum()) if len(leads) else 0,
        "untraced_reports": untraced,
        "context": {
            "source": ctx.context.source,
            "previous_batch": ctx.context.previous_date,
            **({"note": ctx.context.note} if ctx.context.note else {}),
        },
        "held_back": held,
        "cleaning": clean,
        "counts": {
            "fixes": sum(r.counts["fixes"] for r in results),
            "stays": len(stays),
            "hauls": len(hauls),
            "carried_fixes": state.fixes,
        },
        "shards": {"n": plan.n_shards, "workers": plan.workers,
                   "fixes_per_shard_max": max((r.counts["fixes"] for r in results), default=0)},
        "params": params.as_dict(),
        "timings_s": timings,
    }
    merged = MergedNight(leads=leads, untraced=untraced, held_back=held, stays=stays, hauls=hauls,
                         tracks=tracks, run=run, state=state.ref())
    merged.save(work)
    with (work / "quarantine.pkl").open("wb") as fh:
        pickle.dump(q, fh, protocol=pickle.HIGHEST_PROTOCOL)
    (work / "merge.json").write_text(json.dumps({"leads": len(leads)}), encoding="utf-8")
    return merged
