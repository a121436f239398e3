"""Trace dumping reports (偷倒/乱倒 reports) to trucks.

Each report is first offered to the night's detected leads: a lead whose
unloading point is within ``report_lead_match_m`` (for a ``track_gap``: within
the distance the silent truck could have driven) and whose time overlaps the
report's window *explains* it, and the report id goes on that lead. A report no
lead explains becomes a ``report_trace`` lead when trucks stood (or, failing
that, passed) within ``report_radius_m`` in its window, candidates ranked by
distance; otherwise it is listed in ``run.json`` as untraced with the reason.
Windows: ``observed_from``–``observed_to`` when given, else the
``report_default_window_s`` before ``reported_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from wastetrack.clean import epoch_seconds
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import haversine_m
from wastetrack.scoring import apply_scores


def report_windows(reports: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Reports with ``w0``/``w1`` (epoch seconds) of the window the dumping happened in."""
    r = reports.copy()
    reported = epoch_seconds(r["reported_at"])
    ofrom = r["observed_from"]
    oto = r["observed_to"]
    w1 = np.where(oto.notna(), epoch_seconds(oto.fillna(r["reported_at"])), reported)
    w0 = np.where(ofrom.notna(), epoch_seconds(ofrom.fillna(r["reported_at"])), w1 - params.report_default_window_s)
    r["w0"], r["w1"] = np.minimum(w0, w1), np.maximum(w0, w1)
    return r


def explain_by_leads(reports: pd.DataFrame, leads: pd.DataFrame, params: Params) -> dict[str, str]:
    """report_id → lead_id of the nearest lead that explains it."""
    if reports.empty or leads.empty:
        return {}
    pairs = reports[["report_id", "lon", "lat", "w0", "w1"]].merge(
        leads[["lead_id", "kind", "lon", "lat", "start", "end", "evidence"]].rename(
            columns={"lon": "llon", "lat": "llat"}
        ),
        how="cross",
    )
    d = haversine_m(pairs["lon"], pairs["lat"], pairs["llon"], pairs["llat"])
    s, e = epoch_seconds(pairs["start"]), epoch_seconds(pairs["end"])
    overlap = (s <= pairs["w1"].to_numpy() + 1800) & (e >= pairs["w0"].to_numpy() - 1800)
    reach = np.array(
        [
            float(ev.get("max_reach_km") or 0.0) * 1000.0 if k == "track_gap" else 0.0
            for k, ev in zip(pairs["kind"], pairs["evidence"], strict=True)
        ]
    )
    limit = np.maximum(params.report_lead_match_m, reach)
    ok = overlap & (d <= limit)
    best = (
        pairs.assign(d=d / np.maximum(limit, 1.0)).loc[ok].sort_values(["report_id", "d"]).drop_duplicates("report_id")
    )
    return dict(zip(best["report_id"], best["lead_id"], strict=True))


def candidates_for(reports: pd.DataFrame, stays: pd.DataFrame, fixes: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Candidate trucks per report from stays and fixes in memory (``spacetime.report_candidates``)."""
    from wastetrack.spacetime import report_candidates

    return report_candidates(reports, stays, fixes, params.report_radius_m)


def trace_reports(
    reports: pd.DataFrame,
    today: pd.DataFrame,
    earlier: pd.DataFrame,
    candidates: pd.DataFrame,
    hauls: pd.DataFrame,
    reference: Any,
    sites: gpd.GeoDataFrame,
    boundaries: gpd.GeoDataFrame,
    params: Params = DEFAULT_PARAMS,
    reported_before: Callable[[Iterable[str]], set[str]] | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """Every report of the night ends up explained by a lead, traced, or untraced with a reason.

    Order, strongest evidence first: an unloading detected at the spot (tonight,
    then one an earlier night reported — confirmed by ``reported_before`` when a
    store is there); a truck that *stood* within the radius in the window
    (``report_trace``); a silent truck that could have reached the spot
    (``track_gap``); a truck that only passed (``report_trace``); else untraced.
    ``candidates`` are every report's candidate trucks, best first per report
    (``spacetime.report_candidates``, computed shard by shard).
    Returns tonight's leads (with ``report_ids`` and the new report_trace
    leads, rescored) and the untraced entries for ``run.json``.
    """
    from wastetrack.leads import assign_ids, report_trace_leads

    untraced: list[dict] = []
    if not len(reports):
        return (apply_scores(today) if len(today) else today), untraced
    rest = reports if "w0" in reports else report_windows(reports, params)
    owner: dict[str, str] = {}  # report_id → tonight's lead that explains it
    is_gap_today = today["kind"].eq("track_gap") if len(today) else pd.Series(dtype=bool)
    is_gap_before = earlier["kind"].eq("track_gap") if len(earlier) else pd.Series(dtype=bool)

    def settled(ids: Iterable[str]) -> None:
        nonlocal rest
        rest = rest.loc[~rest["report_id"].isin(set(ids))]

    def by_earlier(leads: pd.DataFrame) -> None:
        found = explain_by_leads(rest, leads, params) if len(leads) else {}
        if found and reported_before is not None:
            confirmed = reported_before(set(found.values()))
            found = {r: lid for r, lid in found.items() if lid in confirmed}
        untraced.extend(
            {"report_id": rid, "reason": f"explained by lead {lid} reported on an earlier night"}
            for rid, lid in found.items()
        )
        settled(found)

    # 1. direct evidence: a detected unloading at the spot (tonight, then an earlier night)
    owner.update(explain_by_leads(rest, today.loc[~is_gap_today] if len(today) else today, params))
    settled(owner)
    by_earlier(earlier.loc[~is_gap_before] if len(earlier) else earlier)
    # 2. a truck that stood within the radius in the window: a report_trace lead
    cands = candidates.loc[candidates["report_id"].isin(set(rest["report_id"]))] if len(candidates) else candidates
    stood = cands.loc[cands["is_stay"].astype(bool)] if len(cands) else cands
    with_stay = rest.loc[rest["report_id"].isin(set(stood["report_id"]))] if len(stood) else rest.iloc[:0]
    traced, _ = report_trace_leads(with_stay, cands, hauls, reference.vehicles, sites, boundaries, params)
    settled(with_stay["report_id"])
    # 3. indirect evidence: a silent truck that could have reached the spot
    gap_owner = explain_by_leads(rest, today.loc[is_gap_today] if len(today) else today, params)
    owner.update(gap_owner)
    settled(gap_owner)
    by_earlier(earlier.loc[is_gap_before] if len(earlier) else earlier)
    # 4. trucks that only passed by, or nobody
    more_traced, more_untraced = report_trace_leads(rest, cands, hauls, reference.vehicles, sites, boundaries, params)
    untraced += more_untraced
    if len(today):
        today = today.copy()
        today["report_ids"] = [sorted(r for r, o in owner.items() if o == lid) for lid in today["lead_id"]]
    new = [f for f in (traced, more_traced) if len(f)]
    if new:
        today = pd.concat([today, *[assign_ids(f) for f in new]], ignore_index=True)
    return (apply_scores(today) if len(today) else today), untraced
