"""The night run: one date of the landing directory in, leads, lead sheets and run.json out.

Stages (each timed into ``run.json``): read & validate → clean → stays →
geofence → hauls → reconcile → detect → trace reports → route → write. The
previous day's batch is read as *context* so trips that cross midnight are
stitched; only events that ended on the run date are reported. Outputs are
built in a temporary directory next to ``OUT/<date>`` and swapped in at the end,
and the store replaces the date in one transaction: a re-run replaces, never
duplicates, and a failed run leaves the previous results in place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from wastetrack import __version__
from wastetrack import boundaries as bnd
from wastetrack.clean import clean_fixes
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.contract import BatchError, ContractError, NightInputs, read_night
from wastetrack.detect import attach_stay_sensors, classify_hauls
from wastetrack.geofence import complete_site_counties, label_stays
from wastetrack.hauls import build_hauls
from wastetrack.leads import assign_ids, write_geojson
from wastetrack.models import HAUL_COLUMNS, LEAD_COLUMNS, LEAD_KINDS
from wastetrack.reconcile import match_manifests
from wastetrack.routing import LiaisonDirectory, route_leads
from wastetrack.stays import detect_stays
from wastetrack.trace import trace_reports

log = logging.getLogger("wastetrack")
TZ = "Asia/Shanghai"


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


@dataclass
class NightResult:
    date: str
    out_dir: Path
    leads: pd.DataFrame
    run: dict
    stays: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    hauls: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    fixes: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def previous_day(date: str) -> str:
    return (Date.fromisoformat(date) - timedelta(days=1)).isoformat()


def _night_fixes(inputs: NightInputs, context: NightInputs | None, params: Params) -> pd.DataFrame:
    """This batch's fixes plus the previous batch's tail (``context_hours`` before midnight)."""
    day_start = pd.Timestamp(inputs.date, tz=TZ)
    frames = [inputs.gps]
    if context is not None and len(context.gps):
        since = day_start - pd.Timedelta(hours=params.context_hours)
        frames.insert(0, context.gps.loc[context.gps["ts"] >= since])
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else inputs.gps


def _night_manifests(inputs: NightInputs, context: NightInputs | None) -> pd.DataFrame:
    frames = [f for f in ([context.manifests] if context is not None else []) + [inputs.manifests] if len(f)]
    if not frames:
        return inputs.manifests
    m = pd.concat(frames, ignore_index=True)
    return m.drop_duplicates("manifest_id", keep="last").reset_index(drop=True)


def load_boundaries_for(landing: Path) -> gpd.GeoDataFrame:
    override = landing / "reference" / "boundaries.gpkg"
    return bnd.load_boundaries(override if override.exists() else None)


class NightBoundary:
    """Decides which night an event, stay or haul belongs to, so each is reported and stored once.

    An item belongs to the night on which it ended. One caveat: an item still
    open when a vehicle's data stops in the last ``open_event_margin_s`` of a day
    (its end is then just the last fix we have) is left to the next night,
    which sees how it really ended; that next night, in turn, takes back such
    items of the previous day.
    """

    def __init__(self, fixes: pd.DataFrame, date: str, params: Params) -> None:
        self.date = date
        self.day0 = pd.Timestamp(date, tz=TZ)
        self.day1 = self.day0 + pd.Timedelta(days=1)
        self.margin = pd.Timedelta(seconds=params.open_event_margin_s)
        before0 = fixes["ts"] < self.day0
        before1 = fixes["ts"] < self.day1
        self.last0 = fixes.loc[before0].groupby("vehicle_id")["ts"].max().rename("_last")
        self.last1 = fixes.loc[before1].groupby("vehicle_id")["ts"].max().rename("_last")

    @staticmethod
    def _last(frame: pd.DataFrame, last: pd.Series) -> np.ndarray:
        merged = frame[["vehicle_id"]].merge(last, left_on="vehicle_id", right_index=True, how="left")
        return merged["_last"].to_numpy()

    def masks(self, frame: pd.DataFrame, on: str = "end") -> tuple[np.ndarray, np.ndarray]:
        """(belongs to this night, belonged to an earlier night) for rows with ``vehicle_id`` and ``on``.

        Leads are placed by ``decided_at`` — when the evidence was complete (an
        off-site stay is only an unloading once the truck came back to load) —
        so an event that ended at 23:35 but was decided at 00:35 is reported by
        the next night, not lost between the two.
        """
        if frame.empty:
            return np.zeros(0, bool), np.zeros(0, bool)
        end = frame[on]
        ended = end.dt.tz_convert(TZ).dt.strftime("%Y-%m-%d").to_numpy()
        open_now = (end.to_numpy() == self._last(frame, self.last1)) & (end >= self.day1 - self.margin).to_numpy()
        left_to_us = (
            (ended < self.date)
            & (end.to_numpy() == self._last(frame, self.last0))
            & (end >= self.day0 - self.margin).to_numpy()
        )
        mine = ((ended == self.date) & ~open_now) | left_to_us
        return mine, ~mine & (ended < self.date)


def split_by_night(leads: pd.DataFrame, boundary: NightBoundary) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leads this night reports, leads earlier nights reported) — each event is reported once."""
    mine, earlier = boundary.masks(leads, on="decided_at" if "decided_at" in leads else "end")
    return leads.loc[mine].copy(), leads.loc[earlier]


def detect_night(
    inputs: NightInputs,
    context: NightInputs | None,
    boundaries: gpd.GeoDataFrame,
    params: Params = DEFAULT_PARAMS,
    timer: StageTimer | None = None,
    reported_before: Callable[[Iterable[str]], set[str]] | None = None,
) -> dict:
    """All computation of a night, no I/O: returns leads, untraced reports, stays, hauls, fixes and stats.

    ``reported_before`` (from the store) confirms which leads of earlier nights
    were really reported; a report is only set aside as explained by such a
    lead when it was. Without it (notebooks), earlier nights are assumed run.
    """
    timer = timer or StageTimer()
    date = inputs.date
    ref = inputs.reference
    with timer("clean"):
        fixes, clean_stats = clean_fixes(_night_fixes(inputs, context, params), params)
        sites = complete_site_counties(ref.sites, boundaries)
    with timer("stays"):
        stays = detect_stays(fixes, params)
    with timer("geofence"):
        stays = label_stays(stays, sites, boundaries, params)
    with timer("hauls"):
        hauls = attach_stay_sensors(build_hauls(stays, fixes, params), stays)
    with timer("reconcile"):
        manifests = _night_manifests(inputs, context)
        hauls = match_manifests(hauls, manifests, params)
    with timer("detect"):
        all_leads = classify_hauls(hauls, sites, ref.vehicles, boundaries, None, params.receiver_scan_distance_m)
        all_leads = assign_ids(all_leads)
        boundary = NightBoundary(fixes, date, params)
        today, earlier = split_by_night(all_leads, boundary)
    with timer("trace"):
        today, untraced = trace_reports(
            inputs.reports, today, earlier, stays, fixes, hauls, ref, sites, boundaries, params, reported_before
        )
    with timer("route"):
        directory = LiaisonDirectory(ref.liaisons, boundaries)
        today = route_leads(today, directory, ref.carriers) if len(today) else _empty_leads()
        if len(today):
            today = today.sort_values(["score", "lead_id"], ascending=[False, True], ignore_index=True)
    return {
        "leads": today,
        "untraced": untraced,
        "stays": stays,
        "hauls": hauls,
        "fixes": fixes,
        "sites": sites,
        "clean": clean_stats.as_dict(),
        "boundary": boundary,
        "manifests": manifests,
    }


def _empty_leads() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*LEAD_COLUMNS, "lon", "lat", "evidence")})


def _tracks(leads: pd.DataFrame, fixes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The suspected vehicle's fixes from 2 h before to 1 h after each event (the sheet's evidence map)."""
    out: dict[str, pd.DataFrame] = {}
    if leads.empty:
        return out
    suspects = fixes.loc[fixes["vehicle_id"].isin(set(leads["vehicle_id"]))]
    by_vehicle = dict(tuple(suspects.groupby("vehicle_id", sort=False)))
    for r in leads.itertuples(index=False):
        f = by_vehicle.get(r.vehicle_id)
        if f is None:
            continue
        lo, hi = pd.Timestamp(r.start) - pd.Timedelta(hours=2), pd.Timestamp(r.end) + pd.Timedelta(hours=1)
        cols = [c for c in ("ts", "lon", "lat", "speed_kmh", "loaded", "tipping") if c in f]
        out[r.lead_id] = f.loc[(f["ts"] >= lo) & (f["ts"] <= hi), cols].reset_index(drop=True)
    return out


def _of_the_day(stays: pd.DataFrame, hauls: pd.DataFrame, boundary: NightBoundary) -> tuple[pd.DataFrame, ...]:
    """Stays and hauls of this night (same rule as leads): each lands in exactly one night of the store."""
    s = stays.loc[boundary.masks(stays)[0]] if len(stays) else stays
    h = (
        hauls.loc[boundary.masks(hauls)[0], list(HAUL_COLUMNS)]
        if len(hauls)
        else hauls.reindex(columns=list(HAUL_COLUMNS))
    )
    return s.reset_index(drop=True), h.reset_index(drop=True)


def _read_previous(landing: Path, date: str, without_context: bool) -> tuple[NightInputs | None, str]:
    """The previous day's batch as context, or why there is none.

    Absent (the first night of a landing) is normal. Present but refused is not:
    without its tail, hauls after midnight lose their manifests and midnight
    events are lost, so the night is refused too — unless the operator accepts
    a ``degraded`` night with ``without_context``.
    """
    prev = previous_day(date)
    if not (landing / prev / "batch.json").exists():
        return None, ""
    try:
        return read_night(landing, prev), ""
    except ContractError as exc:
        if not without_context:
            raise BatchError(
                f"batch {date} not processed: the previous day's batch is needed to stitch trips across "
                f"midnight, and it is refused ({exc}). Fix it, or run with --without-context to accept "
                "a degraded night."
            ) from exc
        return None, f"previous batch {prev} refused, night run without it: {exc}"


def run_night(
    landing: Path | str,
    date: str,
    out: Path | str,
    store_url: str | None = None,
    params: Params = DEFAULT_PARAMS,
    progress: Callable[[str], None] | None = None,
    write_sheets: bool = True,
    without_context: bool = False,
) -> NightResult:
    """Run one night end to end. Raises ``contract.BatchError`` (nothing written) for a refused batch."""
    landing, out = Path(landing), Path(out)
    timer = StageTimer(progress)
    started = pd.Timestamp.now(tz=TZ)
    with timer("read"):
        inputs = read_night(landing, date)
        context, context_note = _read_previous(landing, date, without_context)
        boundaries = load_boundaries_for(landing)

    from wastetrack.store import open_store  # imported here: the store is optional for detect_night users

    store = open_store(store_url or out / "wastetrack.db")
    try:
        result = detect_night(
            inputs,
            context,
            boundaries,
            params,
            timer,
            reported_before=lambda ids: store.leads_reported_before(date, ids),
        )
        leads = result["leads"]
        with timer("registry"):
            if len(inputs.feedback):
                store.apply_feedback(inputs.feedback)
            earlier = store.leads_reported_before(date, leads["lead_id"]) if len(leads) else set()
            if earlier:
                leads = leads.loc[~leads["lead_id"].isin(earlier)].reset_index(drop=True)
        final = out / date
        tmp = out / f".{date}.partial-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        (tmp / "quarantine").mkdir(parents=True)
        with timer("sheets"):
            if write_sheets:
                from wastetrack.sheets import SheetContext, sheet_filename
                from wastetrack.sheets import write_sheets as _write_sheets

                ctx = SheetContext(
                    date=date,
                    sites=result["sites"],
                    vehicles=inputs.reference.vehicles,
                    carriers=inputs.reference.carriers,
                    liaisons=inputs.reference.liaisons,
                    manifests=result["manifests"],
                    reports=inputs.reports,
                    boundaries=boundaries,
                    generated_at=started,
                )
                _write_sheets(leads, _tracks(leads, result["fixes"]), ctx, tmp / "sheets")
                if len(leads):
                    leads = leads.assign(sheet=[f"sheets/{sheet_filename(lid)}" for lid in leads["lead_id"]])
        run = {
            "date": date,
            "version": __version__,
            "status": "degraded" if context_note else "ok",
            "started_at": started.isoformat(timespec="seconds"),
            "files": [c.__dict__ for c in inputs.counts],
            "rows_quarantined": len(inputs.quarantine),
            "leads": {k: int((leads["kind"] == k).sum()) if len(leads) else 0 for k in LEAD_KINDS},
            "leads_total": len(leads),
            "cross_border_leads": int(leads["cross_border"].sum()) if len(leads) else 0,
            "untraced_reports": result["untraced"],
            "context": {
                "previous_batch": previous_day(date) if context is not None else None,
                **({"note": context_note} if context_note else {}),
            },
            "cleaning": result["clean"],
            "counts": {
                "fixes": len(result["fixes"]),
                "stays": len(result["stays"]),
                "hauls": len(result["hauls"]),
            },
            "params": params.as_dict(),
            "timings_s": timer.timings,
        }
        with timer("write"):
            inputs.quarantine.write(tmp / "quarantine")
            write_geojson(leads, tmp / "leads.geojson")
            run["timings_s"] = timer.timings
            run["finished_at"] = pd.Timestamp.now(tz=TZ).isoformat(timespec="seconds")
            (tmp / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=1, default=str), "utf-8")
            store.replace_night(date, *_of_the_day(result["stays"], result["hauls"], result["boundary"]), leads, run)
            if final.exists():
                old = out / f".{date}.old-{os.getpid()}"
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old)
            else:
                tmp.rename(final)
    finally:
        store.close()
    run["timings_s"] = timer.timings
    return NightResult(date, out / date, leads, run, result["stays"], result["hauls"], result["fixes"])
