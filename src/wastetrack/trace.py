"""Trace dumping reports (偷倒/乱倒 reports) to trucks: explained by a lead, ranked to a culprit, or untraced.

Every report of the night ends in one place, strongest evidence first:

1. **A detected unloading at the spot** — a lead whose point is within
   ``report_lead_match_m`` and whose time is in the report's window: tonight's
   lead lists the report; one an earlier night reported (the shards' rebuilt
   tail, or the store's last ``report_history_days`` nights — reports arrive
   days late) is named in ``run.json``'s untraced entry (``lead_id`` and the
   reason). For a report without a window, an earlier lead older than its
   default window counts only after steps 2-3 (tonight's truck seen at the
   pile, or dark there, is the likelier one).
2. **A truck seen at the spot** — every truck observed near it in the window
   (``spacetime.report_candidates``: its stays, a pass that lingered) is scored
   (``score_candidates``: named log-odds terms — how close, how long it stood,
   whether its load went there, whether it had a load at all, whether it stood
   inside a site) and ranked (``rank_candidates``). When the first is plausible
   enough (``report_min_score``) the report is its truck's: the haul's own dump
   lead if it has one close by (a split dump's second spot), else a
   ``report_trace`` lead listing up to three candidates.
3. **A truck dark where the waste appeared** — tonight's track gaps are placed
   again with the reports nobody was seen at and the spots where dumping was
   found (``gaps``); a gap placed at the report explains it. An earlier night's
   track gap placed again with a report that came days late names its lead
   (the lead keeps the point it went out with: an event is reported once).
4. **A silence covering the spot** — the ranked trucks again, a silence now
   counting by how much of its weight falls at the spot; else **untraced**,
   with the reason (nobody near; only trucks passing at speed; trucks near it
   whose evidence does not reach the bar — a truck that merely stood on a road
   nearby, or empty after unloading elsewhere, is not a culprit).

Windows: ``observed_from``–``observed_to`` when given; else the
``report_default_window_s`` before ``reported_at`` — and a pile reported without
a window may be older, so stays and silences up to ``report_history_days``
back still count, marked ``stale`` (weighed down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd

from wastetrack.clean import epoch_seconds
from wastetrack.clean import epoch_seconds_or_nan as _secs
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import boxes_around, haversine_m
from wastetrack.gaps import known_spots, place_from_evidence
from wastetrack.scoring import apply_scores
from wastetrack.spacetime import REPORT_TIME_SLACK_S, best_first, best_per_vehicle
from wastetrack.values import tri_state

#: log-odds terms of a candidate (0: as likely as not that this truck left the report's waste).
#: Stood as long as unloading takes (3-45 min) / stood for hours (parked: any dump would be a side matter).
W_DWELL_UNLOADING = 1.0
W_DWELL_PARKED = -1.0
#: The body lifted there; the load sensor went from loaded to empty across it; the truck arrived empty
#: (nothing to dump). A sensor still reading loaded afterwards says nothing: it is a weight threshold, and
#: a small roadside dump off a full body leaves it loaded.
W_TIPPING = 3.0
W_LOAD_DROP = 2.5
W_ARRIVED_EMPTY = -3.0
#: Where the observation sits in the truck's haul (``spacetime.haul_phase``): the detector's own off-site
#: unloading of that haul; carrying a load; empty after a sensor or receiver unloading elsewhere. After an
#: unloading the track step chose, the load is unknown (that choice may be wrong; a split dump leaves part
#: of the load for a second spot).
W_PHASE = {"dump": 2.0, "receiver": 0.0, "loaded": 0.5, "empty": -2.0, "after_dump": 0.0, "": 0.0}
#: Stood inside a site's fence (loading, or a legal unloading) while the waste lies outside it.
W_AT_SITE = -3.0
#: A pass that lingered near the spot as long as tipping takes: a stop too short or too sparsely reported to be
#: a stay, as telling as a stay of unloading length.
W_LINGERED = 1.0
#: A silence covering the spot: how far it points at the spot is its place term already; an observation older
#: than the window of a report without one is weaker than one inside it.
W_SILENCE = 0.0
W_STALE = -1.0
#: a truck seen near a report this close in time to its haul's dump lead is at the same dump (the second spot
#: of a split dump is minutes after the first)
_SAME_DUMP_S = 3600.0
#: a silence that puts almost none of its weight near the spot says nothing about it: its place term (the log
#: of that share) is floored here
_REGION_FLOOR = -6.0


def report_windows(reports: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Reports with their window: ``w0``/``w1`` (epoch s), ``has_window``, ``reported_s`` and ``w0_any``
    (the earliest time an observation may still describe the pile: ``w0`` when the report gives a window,
    else ``report_history_days`` before it was reported)."""
    r = reports.copy()
    reported = _secs(r["reported_at"])
    ofrom, oto = _secs(r["observed_from"]), _secs(r["observed_to"])
    w1 = np.where(np.isfinite(oto), oto, reported)
    w0 = np.where(np.isfinite(ofrom), ofrom, w1 - params.report_default_window_s)
    r["w0"], r["w1"] = np.minimum(w0, w1), np.maximum(w0, w1)
    r["has_window"] = np.isfinite(ofrom)
    r["reported_s"] = reported
    r["w0_any"] = np.where(r["has_window"], r["w0"], reported - params.report_history_days * 86400.0)
    return r


def _utc(values: pd.Series) -> pd.Series:
    """A time column as UTC timestamps with a fresh index (to build frames from columns of others)."""
    return pd.to_datetime(values, utc=True).reset_index(drop=True)


def _with_windows(reports: pd.DataFrame, params: Params) -> pd.DataFrame:
    if "w0" in reports and "w0_any" in reports:
        return reports
    return report_windows(reports, params)


# ---------------------------------------------------------------- explained by a lead


def explain_by_leads(reports: pd.DataFrame, leads: pd.DataFrame, params: Params, stale: bool = True,
                     sites_of_reports: dict[str, str] | None = None) -> dict[str, str]:
    """report_id → lead_id of the nearest lead that explains it: its point within ``report_lead_match_m``
    and its time in the report's window (±30 min; a report without a window: its default window, and with
    ``stale`` any time in the ``report_history_days`` before it was reported).

    A lead whose load went into a receiver's yard (a diverted or unmanifested delivery: its evidence names
    the ``unload_site_id``) explains a report outside that yard's fence (``sites_of_reports``, from
    ``report_sites``) only when the truck stood where the pile is (within ``report_place_sigma_m``: the
    yard may be the GPS's drift, the place it stood is not): a load tipped in the yard is in the yard, and
    a pile a few hundred metres down the road is somebody's dump — a truck dark near that yard, a truck
    seen there, or nobody known yet.

    Two leads as near (track gaps placed on the report itself): the one whose silence put more of its
    weight there (``placement.mass_share``) — the likelier of two trucks that could have left the pile."""
    if reports.empty or leads.empty:
        return {}
    from wastetrack.spacetime import near_pairs

    r = _with_windows(reports, params).reset_index(drop=True)
    # the grid index pairs only leads within the match distance of a report (linear, no cross join)
    li, ri = near_pairs(leads["lon"].to_numpy(float), leads["lat"].to_numpy(float), r, params.report_lead_match_m)
    if li.size == 0:
        return {}
    d = haversine_m(r["lon"].to_numpy(float)[ri], r["lat"].to_numpy(float)[ri],
                    leads["lon"].to_numpy(float)[li], leads["lat"].to_numpy(float)[li])
    s, e = epoch_seconds(leads["start"])[li], epoch_seconds(leads["end"])[li]
    slack = REPORT_TIME_SLACK_S
    has = r["has_window"].to_numpy(bool)[ri] if "has_window" in r else np.ones(len(ri), bool)
    lo = np.where(has | (not stale), r["w0"].to_numpy(float)[ri], r["w0_any"].to_numpy(float)[ri])
    hi = np.where(has, r["w1"].to_numpy(float)[ri], r["reported_s"].to_numpy(float)[ri]
                  if "reported_s" in r else r["w1"].to_numpy(float)[ri])
    ok = (s <= hi + slack) & (e >= lo - slack) & (d <= params.report_lead_match_m)
    evs = leads["evidence"] if "evidence" in leads else pd.Series([None] * len(leads), index=leads.index)
    if sites_of_reports is not None and ok.any():
        yard, stood_lon, stood_lat = _yards_and_stands(leads, evs)
        inside = np.array([sites_of_reports.get(rid, "") for rid in r["report_id"].to_numpy(object)[ri]],
                          dtype=object)
        d_stood = haversine_m(r["lon"].to_numpy(float)[ri], r["lat"].to_numpy(float)[ri], stood_lon[li], stood_lat[li])
        ok &= (yard[li] == "") | (yard[li] == inside) | (d_stood <= params.report_place_sigma_m)
    if not ok.any():
        return {}
    share = np.array([float(((ev or {}).get("placement") or {}).get("mass_share") or 0.0)
                      if isinstance(ev, dict) else 0.0 for ev in evs], dtype=float)
    best = pd.DataFrame({"report_id": r["report_id"].to_numpy(object)[ri[ok]],
                         "lead_id": leads["lead_id"].to_numpy(object)[li[ok]], "d": d[ok],
                         "share": share[li[ok]]})
    best = best.sort_values(["report_id", "d", "share", "lead_id"], ascending=[True, True, False, True],
                            kind="stable").drop_duplicates("report_id")
    return dict(zip(best["report_id"], best["lead_id"], strict=True))


def _yards_and_stands(leads: pd.DataFrame, evs: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per lead: the yard its load went into (``unload_site_id`` of a delivery, else "") and where its truck
    stood — the lead's point, or the ``stood_lon``/``stood_lat`` its evidence keeps when the point was put in
    the yard (``detect._into_the_yard``)."""
    ev = [e if isinstance(e, dict) else {} for e in evs]
    yard = np.array([str(e.get("unload_site_id") or "") for e in ev], dtype=object)
    lon = np.array([e.get("stood_lon", x) for e, x in zip(ev, leads["lon"].to_numpy(float), strict=True)], float)
    lat = np.array([e.get("stood_lat", y) for e, y in zip(ev, leads["lat"].to_numpy(float), strict=True)], float)
    return yard, lon, lat


# ---------------------------------------------------------------- judging candidates


def report_sites(reports: pd.DataFrame, sites: gpd.GeoDataFrame | None, params: Params) -> dict[str, str]:
    """report_id → the site whose fence (with ``fence_tolerance_m``) holds the report's point, if any."""
    if reports.empty or sites is None or sites.empty:
        return {}
    from wastetrack.geofence import match_sites

    m = match_sites(reports["lon"].to_numpy(float), reports["lat"].to_numpy(float), sites, params.fence_tolerance_m)
    return {rid: s for rid, s in zip(reports["report_id"], m["site_id"], strict=True) if s}


PART_COLUMNS = ("p_place", "p_dwell", "p_sensor", "p_phase", "p_site", "p_kind", "p_stale")


def score_candidates(c: pd.DataFrame, sites_of_reports: dict[str, str], params: Params = DEFAULT_PARAMS
                     ) -> pd.DataFrame:
    """Candidates with ``score`` (sum of the ``p_*`` log-odds terms) and ``plausible`` (not a pass at speed).

    Terms: ``p_place`` how close — a Gaussian of ``report_place_sigma_m`` (where a
    report says waste lies vs where it lies); for a silence, the log of the share
    of its unloading weight within two sigmas of the report (``gaps.mass_near``)
    once the pile counts as a place it may have unloaded, as ``gaps`` weighs it.
    ``p_dwell``: stood as long as unloading takes (``unload_min_s`` to
    ``dump_dwell_max_s``), or for hours. ``p_sensor``: the body lifted, the load
    dropped across it, or it arrived empty. ``p_phase``: where
    it sits in its haul (its detected unloading, loaded, empty afterwards).
    ``p_site``: stood inside a site the waste is not in. ``p_kind``: a pass that
    lingered as long as tipping takes (one that stood for hours was parked: ``p_dwell`` as for a stay of
    hours). ``p_stale``: older than the window of a
    report without one. A pass that never stopped near the spot
    (``report_linger_s``), nor crawled by (``report_slow_speed_kmh``) losing its
    load, is not plausible: driving by is no evidence.
    """
    if c.empty:
        return c.assign(score=pd.Series(dtype=float), plausible=pd.Series(dtype=bool),
                        **{k: pd.Series(dtype=float) for k in PART_COLUMNS})
    out = c.copy()
    kind = out["kind"].astype(str).to_numpy()
    stay, pas, sil = kind == "stay", kind == "pass", kind == "silence"
    d = out["distance_m"].to_numpy(float)
    sigma = params.report_place_sigma_m
    # a silence: the share of its unloading weight near the spot once the fresh pile there counts as a place
    # where it may have unloaded (``gaps``: a reported pile in its time weighs gap_report_spot_weight):
    # q (1 + A/2) / (1 + q A/2) for a share q without it
    q = np.nan_to_num(out["region_share"].to_numpy(float) if "region_share" in out else np.zeros(len(out)), nan=0.0)
    half_a = params.gap_report_spot_weight / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        region_term = np.clip(np.log(q * (1.0 + half_a) / (1.0 + q * half_a)), _REGION_FLOOR, 0.0)
    p_place = np.where(sil, region_term, -0.5 * (d / sigma) ** 2)
    dwell_s = out["dwell_min"].to_numpy(float) * 60.0
    p_dwell = np.where(stay & (dwell_s >= params.unload_min_s) & (dwell_s <= params.dump_dwell_max_s),
                       W_DWELL_UNLOADING, 0.0)
    p_dwell = np.where(stay & (dwell_s > params.dump_dwell_max_s), W_DWELL_PARKED, p_dwell)
    tip = tri_state(out["tipping"]) == 1
    lb = tri_state(out["loaded_before"])
    lb_t, lb_f = lb == 1, lb == 0
    la_f = tri_state(out["loaded_after"]) == 0
    p_sensor = np.select([tip, lb_t & la_f, lb_f], [W_TIPPING, W_LOAD_DROP, W_ARRIVED_EMPTY], default=0.0)
    phase = out["phase"].fillna("").astype(str).to_numpy()
    p_phase = np.array([W_PHASE.get(p, 0.0) for p in phase], dtype=float)
    site = out["site_id"].fillna("").astype(str).to_numpy()
    rep_site = np.array([sites_of_reports.get(r, "") for r in out["report_id"]], dtype=object)
    p_site = np.where(stay & (site != "") & (site != rep_site), W_AT_SITE, 0.0)
    linger = out["linger_s"].to_numpy(float)
    lingered = pas & (np.nan_to_num(linger) >= params.report_linger_s)
    crawled = pas & (np.nan_to_num(out["min_speed_kmh"].to_numpy(float), nan=np.inf) <= params.report_slow_speed_kmh)
    # a pass is evidence when the truck stopped long enough to tip, or crawled by and its load went
    slow = lingered | (crawled & lb_t & la_f)
    # ... as long as tipping takes, not for hours: a truck that stood near the spot longer than any dump lasts
    # (a silence while it stood counts as standing) was parked there, as for a stay
    parked = lingered & (np.nan_to_num(linger) > params.dump_dwell_max_s)
    p_kind = np.where(lingered & ~parked, W_LINGERED, 0.0)
    p_kind = np.where(sil, W_SILENCE, p_kind)
    p_dwell = np.where(parked, W_DWELL_PARKED, p_dwell)
    p_stale = np.where(out["stale"].fillna(False).astype(bool).to_numpy(), W_STALE, 0.0)
    parts = {"p_place": p_place, "p_dwell": p_dwell, "p_sensor": p_sensor, "p_phase": p_phase, "p_site": p_site,
             "p_kind": p_kind, "p_stale": p_stale}
    for k, v in parts.items():
        out[k] = np.round(v, 3)
    out["score"] = np.round(sum(parts.values()), 3)
    out["plausible"] = ~pas | slow
    return out


def rank_candidates(c: pd.DataFrame, sites_of_reports: dict[str, str], params: Params = DEFAULT_PARAMS
                    ) -> pd.DataFrame:
    """One row per (report, truck): its best plausible observation, ranked per report (best first).

    Ties: higher score, then nearer, then earlier, then the plate — the ranking
    never depends on which shard saw a truck or in what order.
    """
    return best_per_vehicle(plausible_sightings(c, sites_of_reports, params))


def plausible_sightings(c: pd.DataFrame, sites_of_reports: dict[str, str], params: Params = DEFAULT_PARAMS
                        ) -> pd.DataFrame:
    """Every plausible observation of a truck near a report, scored (``score_candidates``; passes at speed
    dropped): ``rank_candidates`` keeps each truck's best, the haul check looks at them all."""
    s = score_candidates(c, sites_of_reports, params)
    return s.loc[s["plausible"].astype(bool)] if len(s) else s


def score_parts_of(row: pd.Series) -> dict[str, float]:
    """The named terms of one candidate's score (for the lead's evidence)."""
    names = {"p_place": "closeness", "p_dwell": "dwell", "p_sensor": "sensors", "p_phase": "haul",
             "p_site": "inside_site", "p_kind": "how_seen", "p_stale": "before_window"}
    return {names[k]: float(row[k]) for k in PART_COLUMNS if k in row and float(row[k]) != 0.0}


# ---------------------------------------------------------------- earlier nights (the store)


class EarlierNights(Protocol):
    """What the store knows of the nights before this one (``StoreHistory``), for late reports."""

    def leads(self) -> pd.DataFrame: ...

    def stays(self, near: tuple[np.ndarray, np.ndarray, float] | None = None) -> pd.DataFrame: ...

    def hauls(self, vehicles: Iterable[str] | None = None) -> pd.DataFrame: ...


class StoreHistory:
    """The leads, stays and hauls the store holds for the ``report_history_days`` nights before ``date``.

    Every stored lead was reported by its night, so a report it explains is
    named with it; stays and hauls let a late report be traced to a truck that
    stood at the spot nights ago. Read once, lazily.
    """

    def __init__(self, store: Any, date: str, days: int | None = None) -> None:
        from datetime import date as Date
        from datetime import timedelta

        self.store = store
        n = DEFAULT_PARAMS.report_history_days if days is None else int(days)
        d = Date.fromisoformat(date)
        known = set(store.dates()) if hasattr(store, "dates") else set()
        self.dates = [x for x in ((d - timedelta(days=k)).isoformat() for k in range(n, 0, -1)) if x in known]
        self._cache: dict[str, pd.DataFrame] = {}

    def _nights(self, table: str) -> Iterator[pd.DataFrame]:
        """The table's rows of each earlier night, one night at a time, as plain frames (no geometry)."""
        for x in self.dates:
            f = self.store.read(table, x)
            if len(f):
                yield pd.DataFrame(f.drop(columns=[c for c in ("geometry",) if c in f]))

    def _read(self, table: str) -> pd.DataFrame:
        if table not in self._cache:
            self._cache[table] = _concat_nonempty(self._nights(table))
        return self._cache[table]

    def leads(self) -> pd.DataFrame:
        return self._read("leads")

    def stays(self, near: tuple[np.ndarray, np.ndarray, float] | None = None) -> pd.DataFrame:
        """The earlier nights' stays; ``near`` = (lon, lat, radius_m): only those within ``radius_m`` of one
        of these points (the night's reports). A delta night's history is millions of stays and a report
        looks at a few: the database keeps those in a box around each point, then the exact distance
        decides, a night at a time."""
        if near is None:
            return self._read("stays")
        from wastetrack.spacetime import near_pairs

        lon, lat, radius_m = near
        points = pd.DataFrame({"lon": np.asarray(lon, float), "lat": np.asarray(lat, float)})
        points = points.loc[np.isfinite(points["lon"]) & np.isfinite(points["lat"])].reset_index(drop=True)
        if points.empty:
            return pd.DataFrame()
        # 1 % wider than the circle: the database only narrows, the exact distance below decides
        boxes = boxes_around(points["lon"].to_numpy(), points["lat"].to_numpy(), 1.01 * float(radius_m))
        nights = (self.store.read_in_boxes("stays", x, boxes) for x in self.dates) \
            if hasattr(self.store, "read_in_boxes") else self._nights("stays")
        return _concat_nonempty(
            f.iloc[np.unique(near_pairs(f["lon"].to_numpy(float), f["lat"].to_numpy(float), points, radius_m)[0])]
            for f in nights if len(f)
        )

    def hauls(self, vehicles: Iterable[str] | None = None) -> pd.DataFrame:
        """The earlier nights' hauls; only those of ``vehicles`` when given (read by plate in the database)."""
        if vehicles is None:
            return self._read("hauls")
        ids = sorted(set(map(str, vehicles)))
        if not ids:
            return pd.DataFrame()
        return _concat_nonempty(self.store.read_ids("hauls", "vehicle_id", ids, date=x) for x in self.dates)


def _concat_nonempty(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    full = [f for f in frames if len(f)]
    return pd.concat(full, ignore_index=True) if full else pd.DataFrame()


# ---------------------------------------------------------------- the night's reports


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
    history_leads: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """Every report of the night ends up explained by a lead, traced, or untraced with a reason.

    ``today``: tonight's leads; ``earlier``: leads the shards rebuilt that an
    earlier night reported (confirmed by ``reported_before`` when a store is
    there); ``history_leads``: the store's leads of the last nights (reported by
    definition). ``candidates``: every observation near a report, from every
    shard (``spacetime.report_candidates``). Returns tonight's leads (with
    ``report_ids`` and the new report_trace leads, rescored) and the untraced
    entries for ``run.json`` (an entry explained by an earlier lead carries its
    ``lead_id``).
    """
    from wastetrack.leads import assign_ids, report_trace_leads

    untraced: list[dict] = []
    if not len(reports):
        today = _place_gaps_again(today, None, history_leads, sites, boundaries, params)
        return (apply_scores(today) if len(today) else today), untraced
    rest = _with_windows(reports, params)
    owner: dict[str, str] = {}  # report_id → tonight's lead that explains it
    in_yard = report_sites(rest, sites, params)  # the receiver (or site) yard a report lies in, if any

    def settled(ids: Iterable[str]) -> None:
        nonlocal rest
        rest = rest.loc[~rest["report_id"].isin(set(ids))]

    def by_earlier(leads: pd.DataFrame, confirm: bool, stale: bool = True) -> None:
        found = explain_by_leads(rest, leads, params, stale, in_yard) if len(leads) else {}
        if found and confirm and reported_before is not None:
            confirmed = reported_before(set(found.values()))
            found = {r: lid for r, lid in found.items() if lid in confirmed}
        untraced.extend(
            {"report_id": rid, "reason": f"explained by lead {lid} reported on an earlier night", "lead_id": lid}
            for rid, lid in sorted(found.items())
        )
        settled(found)

    def by_haul(ranked: pd.DataFrame) -> None:
        """A report where a truck was seen near it minutes and a few hundred metres from that haul's dump
        lead (an illegal dump, a track gap: e.g. the first spot of a split dump) is that lead's: one event,
        one lead: within ``report_radius_m`` of the lead's place and an hour (``_SAME_DUMP_S``) of its time.
        Any truck plausible enough to be listed (``report_list_min_score``) counts, the best-ranked first: one
        found dumping right there outranks one that only passed (it was the third of three on a split dump
        at a red light, behind two trucks that drove by)."""
        first = ranked.loc[ranked["score"] >= params.report_list_min_score] if len(ranked) else ranked
        if first.empty or "haul_id" not in first:
            return
        first = best_first(first)
        for leads, confirm, tonight in ((today, False, True), (earlier, True, False), (history_leads, False, False)):
            dumps = haul_leads(leads, confirm)
            if dumps.empty or first.empty:
                continue
            m = first.merge(dumps, on="haul_id", how="inner")
            if m.empty:
                continue
            d = haversine_m(m["lon"].to_numpy(float), m["lat"].to_numpy(float), m["l_lon"].to_numpy(float),
                            m["l_lat"].to_numpy(float))
            gap = np.maximum(_secs(m["start"]) - _secs(m["l_end"]), _secs(m["l_start"]) - _secs(m["end"]))
            m = m.loc[(d <= params.report_radius_m) & (gap <= _SAME_DUMP_S)].drop_duplicates("report_id")
            found = dict(zip(m["report_id"], m["lead_id"], strict=True))
            if tonight:
                owner.update(found)
            else:
                untraced.extend(
                    {"report_id": rid, "reason": f"explained by lead {lid} reported on an earlier night",
                     "lead_id": lid}
                    for rid, lid in sorted(found.items())
                )
            settled(found)
            first = first.loc[~first["report_id"].isin(set(found))]

    def haul_leads(leads: pd.DataFrame | None, confirm: bool) -> pd.DataFrame:
        """The dump leads (illegal_dump, track_gap) among ``leads`` with their haul, place and time."""
        cols = ["haul_id", "lead_id", "l_lon", "l_lat", "l_start", "l_end"]
        if leads is None or not len(leads):
            return pd.DataFrame(columns=cols)
        d = leads.loc[leads["kind"].isin(("illegal_dump", "track_gap"))]
        if d.empty:
            return pd.DataFrame(columns=cols)
        evs = d["evidence"] if "evidence" in d else pd.Series([{}] * len(d), index=d.index)
        own = d["haul_id"] if "haul_id" in d else pd.Series("", index=d.index)
        hid = [h if isinstance(h, str) and h else str((ev or {}).get("haul_id") or "")
               for h, ev in zip(own, evs, strict=True)]
        out = pd.DataFrame({"haul_id": hid, "lead_id": d["lead_id"].to_numpy(object),
                            "l_lon": d["lon"].to_numpy(float), "l_lat": d["lat"].to_numpy(float),
                            "l_start": _utc(d["start"]), "l_end": _utc(d["end"])})
        out = out.loc[out["haul_id"] != ""]
        if len(out) and confirm and reported_before is not None:
            out = out.loc[out["lead_id"].isin(reported_before(set(out["lead_id"])))]
        return out.drop_duplicates("haul_id")

    def split(leads: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        if leads is None or not len(leads):
            return pd.DataFrame(), pd.DataFrame()
        gap = leads["kind"].eq("track_gap").to_numpy()
        return leads.loc[~gap], leads.loc[gap]

    today_direct, today_gap = split(today)
    earlier_direct, earlier_gap = split(earlier)
    if history_leads is not None and len(history_leads) and len(earlier):
        history_leads = history_leads.loc[~history_leads["lead_id"].isin(set(earlier["lead_id"]))]
    hist_direct, hist_gap = split(history_leads)
    hist_direct = hist_direct.loc[hist_direct["kind"] != "report_trace"] if len(hist_direct) else hist_direct
    traced: list[pd.DataFrame] = []
    # 1. a detected unloading at the spot: tonight's, then an earlier night's
    owner.update(explain_by_leads(rest, today_direct, params, sites_of_reports=in_yard))
    settled(owner)
    #    (a report without a window: within its default window; a pile older than that may be tonight's
    #    truck's too, seen at it or dark near it, so the older leads wait until after those)
    by_earlier(earlier_direct, confirm=True, stale=False)
    by_earlier(hist_direct, confirm=False, stale=False)
    # 2. a truck seen at the spot (it stood there, or lingered) whose evidence is strong enough
    cands = candidates.loc[candidates["report_id"].isin(set(rest["report_id"]))] if len(candidates) else candidates
    seen_at = plausible_sightings(cands, in_yard, params)
    ranked = best_per_vehicle(seen_at)
    # every sighting, not only each truck's best: the one beside its own dump lead is the one that counts
    by_haul(seen_at.loc[seen_at["kind"].isin(("stay", "pass"))] if len(seen_at) else seen_at)
    ranked = ranked.loc[ranked["report_id"].isin(set(rest["report_id"]))] if len(ranked) else ranked
    if len(ranked):
        first = ranked.drop_duplicates("report_id")
        seen = first.loc[first["kind"].isin(("stay", "pass")) & (first["score"] >= params.report_min_score)]
        now = rest.loc[rest["report_id"].isin(set(seen["report_id"]))]
        leads_now, crowded = report_trace_leads(now, ranked, hauls, reference.vehicles, sites, boundaries, params)
        traced.append(leads_now)
        # a spot where several trucks stood alike names none of them yet: a silence (step 3) or the rest may
        settled(set(now["report_id"]) - {u["report_id"] for u in crowded})
    # 3. a truck that was dark where the waste appeared: tonight's track gaps are placed again with the
    #    reports nobody was seen at (and where dumping was found, tonight and on earlier nights), then explain
    #    the reports at their point
    if len(today_gap):
        today = _place_gaps_again(today, rest, history_leads, sites, boundaries, params)
        today_gap = today.loc[today["kind"].eq("track_gap").to_numpy()]
    gap_owner = explain_by_leads(rest, today_gap, params)
    owner.update(gap_owner)
    settled(gap_owner)
    by_earlier(earlier_gap, confirm=True)
    by_earlier(hist_gap, confirm=False)
    # ... and an earlier night's silence that could have left the pile (the report came days late): its lead,
    #     placed again with the reports still open, lands on one — named, not reported again
    by_earlier(_gaps_placed_at_reports(earlier_gap, rest, sites, boundaries, params), confirm=True)
    by_earlier(_gaps_placed_at_reports(hist_gap, rest, sites, boundaries, params), confirm=False)
    by_earlier(earlier_direct, confirm=True)
    by_earlier(hist_direct, confirm=False)
    # 4. the rest: the best-ranked truck if plausible (a silence covering the spot counts here), else untraced
    last = ranked.loc[ranked["report_id"].isin(set(rest["report_id"]))] if len(ranked) else ranked
    by_haul(last)
    last = last.loc[last["report_id"].isin(set(rest["report_id"]))] if len(last) else last
    leads_last, more_untraced = report_trace_leads(rest, last, hauls, reference.vehicles, sites, boundaries, params,
                                                   observed=cands)
    traced.append(leads_last)
    untraced += more_untraced
    if len(today):
        today = today.copy()
        today["report_ids"] = [sorted(r for r, o in owner.items() if o == lid) for lid in today["lead_id"]]
    new = [assign_ids(f) for f in traced if len(f)]
    if new:
        today = pd.concat([today, *new], ignore_index=True) if len(today) else pd.concat(new, ignore_index=True)
    return (apply_scores(today) if len(today) else today), untraced


def _place_gaps_again(
    today: pd.DataFrame, reports: pd.DataFrame | None, history_leads: pd.DataFrame | None,
    sites: gpd.GeoDataFrame, boundaries: gpd.GeoDataFrame, params: Params,
) -> pd.DataFrame:
    """Tonight's track gaps placed again with what only the merge step knows: the reports nobody was seen at,
    and where dumping was found tonight (other trucks' leads) and on earlier nights (the store)."""
    if today is None or not len(today) or not today["kind"].eq("track_gap").any():
        return today
    gap = today["kind"].eq("track_gap").to_numpy()
    spots = known_spots(reports, _found_spots(history_leads, today.loc[~gap]), params)
    if spots.empty:
        return today
    placed = place_from_evidence(today.loc[gap], sites, boundaries, params, spots)
    return pd.concat([today.loc[~gap], placed]).loc[today.index]


def _gaps_placed_at_reports(
    gaps: pd.DataFrame | None, reports: pd.DataFrame, sites: gpd.GeoDataFrame, boundaries: gpd.GeoDataFrame,
    params: Params,
) -> pd.DataFrame:
    """Earlier nights' track-gap leads placed again with ``reports`` as piles found in their time: only those
    whose point moved onto a report (the placement's ``spot``).

    The lead went out on its night with the point its silence gave then; a pile reported a day or two later
    inside the region is what the placement would have chosen had it known (``gaps``: a pile in the
    silence's time). A report without a window may describe a pile older than its default window: up to
    ``report_history_days`` before it, as for trucks seen there.
    """
    if gaps is None or not len(gaps) or reports is None or reports.empty:
        return pd.DataFrame()
    r = reports.assign(w0=np.where(reports["has_window"].to_numpy(bool), reports["w0"], reports["w0_any"]))
    placed = place_from_evidence(gaps, sites, boundaries, params, known_spots(r, None, params))
    ids = set(r["report_id"].astype(str))
    on = [isinstance(ev, dict) and str((ev.get("placement") or {}).get("spot", "")) in ids
          for ev in placed["evidence"]]
    return placed.loc[on]


def _found_spots(*leads: pd.DataFrame | None) -> pd.DataFrame | None:
    """Where dumping was found (illegal dumps, traced reports) by earlier nights and by tonight's other leads:
    spots dumpers come back to. In lead-id order, so the placement never depends on the shard count."""
    frames = [f.loc[f["kind"].isin(("illegal_dump", "report_trace"))] for f in leads if f is not None and len(f)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    found = pd.concat([f[["lead_id", "lon", "lat"]] for f in frames], ignore_index=True)
    found = found.drop_duplicates("lead_id").sort_values("lead_id", kind="stable", ignore_index=True)
    return found.assign(source=found["lead_id"])
