"""Turn reconciled hauls into leads: illegal_dump, diverted, unmanifested, track_gap.

``hauls.build_hauls`` decided where each haul unloaded from the truck's own
track; this stage judges that place against the map and the manifest, in two
named steps before the contract's definitions apply:

1. ``explain_by_silent_receiver`` — a silence that began or ended within
   ``silent_receiver_distance_m`` of an approved receiver's fence, both ends on
   the receiver's side (nearer to it than to the loading site), long enough to
   drive there, unload (``unload_min_s``) and come back, is a visit to that
   receiver with the terminal silent (pits and basement yards block the
   signal) — or the manifest's gate-in scan during the silence says so, or the
   truck went dark driving straight for the receiver its manifest names. It is
   then no track gap, and a stop the track step chose *after* it is no dump
   (the truck was empty by then).
2. ``confirm_by_gate_scan`` — an off-fence unloading near the manifest's
   receiver, with its gate-in scan during the stay, is at that receiver.
3. ``confirm_by_own_track`` — so is one whose truck's own fixes were inside
   that receiver's fence minutes before or after the stay (it drove into the
   yard; the fixes at the tipping face drifted).
4. ``confirm_by_later_scan`` — a stop at another receiver's fence earlier in
   the haul was no unloading when the manifest's own receiver scanned the load
   in later, with the truck's fixes inside its fence.

``settle_unloadings`` runs them; the shard stores the hauls it returns, so the
store's haul and the lead built from it name the same unloading.

Then, per haul:

* unloaded at no receiver (sensor- or track-evidenced stay)  → ``illegal_dump``
* unloaded during a silence and came back empty              → ``track_gap``
* unloaded at a receiver, no manifest                        → ``unmanifested``
* unloaded at a receiver other than the manifest's, or one that may not take
  this waste, or whose permit is not valid that local date   → ``diverted``

Which night reports a lead is the midnight rule's (``decided_at``).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wastetrack import TIMEZONE
from wastetrack import boundaries as bnd
from wastetrack.clean import epoch_seconds, epoch_seconds_or_nan
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import METRIC_CRS
from wastetrack.features import FixIndex
from wastetrack.geofence import distance_to_site, metric_points, nearest_site, site_fences
from wastetrack.hauls import went_home_guess
from wastetrack.models import RECEIVER_KINDS
from wastetrack.scoring import apply_scores
from wastetrack.values import opt_bool

TZ = TIMEZONE


def _iso(ts: pd.Timestamp | None) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return pd.Timestamp(ts).tz_convert(TZ).isoformat(timespec="seconds")


def confirm_by_gate_scan(
    h: pd.DataFrame, sites: gpd.GeoDataFrame, max_distance_m: float, slack_s: float = DEFAULT_PARAMS.gate_scan_slack_s
) -> pd.DataFrame:
    """An off-fence unloading is at the manifest's receiver when that receiver's gate-in scan says so.

    GPS near a receiver can sit well outside its fence (urban canyons, a queue
    on the road). When the manifest's ``received_at`` falls within the stay and
    the stay is within ``max_distance_m`` of that receiver's fence, the receiver's
    own scan outweighs the GPS: the haul unloaded there, not in a field.
    ``slack_s``: a scan at the gate comes minutes before the truck stands at the
    tipping face, and the two clocks differ by minutes.
    """
    recv = h["manifest_received_at"] if "manifest_received_at" in h else pd.Series(pd.NaT, index=h.index)
    u0 = epoch_seconds(h["unload_start"])
    u1 = epoch_seconds(h["unload_end"])
    scan = pd.to_datetime(recv, utc=True).fillna(h["unload_start"])
    recv_s = np.where(recv.notna().to_numpy(), epoch_seconds(scan), np.nan)
    with np.errstate(invalid="ignore"):
        in_stay = (recv_s >= u0 - slack_s) & (recv_s <= u1 + slack_s)
    near = _off_fence_near_manifest_receiver(h.loc[_off_fence(h) & pd.Series(in_stay, index=h.index)], sites,
                                             max_distance_m).index
    return _at_manifest_receiver(h, near, "receiver_scan")


def confirm_by_own_track(
    h: pd.DataFrame, fixes: pd.DataFrame, sites: gpd.GeoDataFrame, max_distance_m: float,
    params: Params = DEFAULT_PARAMS, fx: FixIndex | None = None,
) -> pd.DataFrame:
    """An off-fence unloading is at the manifest's receiver when the truck's own fixes were inside that
    receiver's fence (``receiver_yard_min_fixes`` of them) within ``gate_scan_slack_s`` of the stay.

    The same drift ``confirm_by_gate_scan`` forgives, seen in the track itself: walls, stockpiles and pits of
    a yard throw the fixes at the tipping face a few hundred metres, but the truck's approach through the
    gate, or its wait in the yard, left fixes inside the fence. A dumper on the verge outside never drove in
    (on the simulated worlds: no tipping outside a receiver had two fixes inside its fence within ten
    minutes; every drifted delivery had three or more). Only within ``max_distance_m`` of the fence.
    """
    if h.empty or fixes is None or fixes.empty or "manifest_dest_site_id" not in h:
        return h
    timed = h["unload_start"].notna() & h["unload_end"].notna()
    cand = _off_fence_near_manifest_receiver(h.loc[_off_fence(h) & timed], sites, max_distance_m)
    if cand.empty:
        return h
    polys = site_fences(cand["manifest_dest_site_id"], sites, "EPSG:4326")
    fx = fx or FixIndex(fixes)
    slack = int(params.gate_scan_slack_s * 1e6)
    lo, hi = fx.range_of(fx.code_of(cand["vehicle_id"]), epoch_seconds(cand["unload_start"]).astype(np.int64) * 10**6
                         - slack, epoch_seconds(cand["unload_end"]).astype(np.int64) * 10**6 + slack)
    lon, lat = fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float)
    inside = np.array([int(shapely.contains_xy(poly, lon[a:b], lat[a:b]).sum()) if b > a else 0
                       for poly, a, b in zip(polys, lo, hi, strict=True)])
    return _at_manifest_receiver(h, cand.index[inside >= params.receiver_yard_min_fixes], "receiver_track")


def confirm_by_later_scan(h: pd.DataFrame, fixes: pd.DataFrame, sites: gpd.GeoDataFrame,
                          params: Params = DEFAULT_PARAMS, fx: FixIndex | None = None) -> pd.DataFrame:
    """A haul placed at one receiver unloaded at its manifest's receiver when that one scanned it in later.

    Roads pass yards: a long red light within the fence tolerance of one is a "visit" to it, and the first
    receiver visit is taken as the unloading (``hauls.receiver_unloadings``). When the manifest names
    another receiver, whose gate-in scan (``received_at``) came after that stop and before the haul ended,
    and the truck's own fixes were inside that receiver's fence (``receiver_yard_min_fixes`` of them within
    ``gate_scan_slack_s`` of the scan), the load was received there: a yard weighs what it scans in, and
    the stop before was no unloading. The unloading moves to those fixes (``receiver_scan``).
    """
    need = {"manifest_dest_site_id", "manifest_received_at", "unload_site_id", "unload_evidence", "unload_end"}
    if h.empty or fixes is None or fixes.empty or not need <= set(h.columns):
        return h
    site = h["unload_site_id"].fillna("").astype(str).to_numpy()
    dest = h["manifest_dest_site_id"].fillna("").astype(str).to_numpy()
    recv, u1 = epoch_seconds_or_nan(h["manifest_received_at"]), epoch_seconds_or_nan(h["unload_end"])
    end = epoch_seconds_or_nan(h["end"]) if "end" in h else np.full(len(h), np.nan)
    slack = params.gate_scan_slack_s
    with np.errstate(invalid="ignore"):
        cand = ((h["unload_evidence"].astype(str).to_numpy() == "receiver") & (site != "") & (dest != "")
                & (site != dest) & (recv > u1) & (np.isnan(end) | (recv <= end + slack)))
    if not cand.any():
        return h
    c = h.loc[cand]
    polys = site_fences(c["manifest_dest_site_id"], sites, "EPSG:4326")
    fx = fx or FixIndex(fixes)
    r_us = recv[cand].astype(np.int64) * 10**6
    slack_us = int(slack * 1e6)
    lo, hi = fx.range_of(fx.code_of(c["vehicle_id"]), r_us - slack_us, r_us + slack_us)
    lon, lat = fixes["lon"].to_numpy(float), fixes["lat"].to_numpy(float)
    rows, firsts, lasts, lons, lats = [], [], [], [], []
    for idx, poly, a, b in zip(c.index, polys, lo, hi, strict=True):
        if poly is None or b <= a:
            continue
        inside = np.flatnonzero(shapely.contains_xy(poly, lon[a:b], lat[a:b])) + a
        if len(inside) < params.receiver_yard_min_fixes:
            continue
        rows.append(idx)
        firsts.append(fixes["ts"].iloc[inside[0]])
        lasts.append(fixes["ts"].iloc[inside[-1]])
        lons.append(float(lon[inside].mean()))
        lats.append(float(lat[inside].mean()))
    if not rows:
        return h
    out = h.copy()
    county_of = (sites.drop_duplicates("site_id").set_index("site_id")["county_adcode"] if "county_adcode" in sites
                 else pd.Series(dtype=object))
    county = out.loc[rows, "manifest_dest_site_id"].map(county_of).fillna("").astype(str).tolist()
    out.loc[rows, "unload_site_id"] = out.loc[rows, "manifest_dest_site_id"]
    out.loc[rows, "unload_evidence"] = "receiver_scan"
    out.loc[rows, "unload_start"] = pd.Series(firsts, index=rows).astype(out["unload_start"].dtype)
    out.loc[rows, "unload_end"] = pd.Series(lasts, index=rows).astype(out["unload_end"].dtype)
    out.loc[rows, "unload_lon"] = lons
    out.loc[rows, "unload_lat"] = lats
    if "unload_stay_id" in out:
        out.loc[rows, "unload_stay_id"] = ""
    if "unload_county_adcode" in out:
        out.loc[rows, "unload_county_adcode"] = county
        out.loc[rows, "unload_province_adcode"] = [f"{x[:2]}0000" if x else "" for x in county]
    if "decided_at" in out:
        out.loc[rows, "decided_at"] = out.loc[rows, "unload_end"]
    return out


def _off_fence(h: pd.DataFrame) -> pd.Series:
    """Hauls whose unloading the track placed off any fence (a sensor or a dwell) and whose manifest names a
    receiver: the ones a receiver's own record may put back inside its fence."""
    return ((h["unload_site_id"].astype(str) == "") & h["unload_evidence"].isin(["sensor", "dwell"])
            & (h["manifest_dest_site_id"].fillna("").astype(str) != ""))


def _off_fence_near_manifest_receiver(h: pd.DataFrame, sites: gpd.GeoDataFrame, max_distance_m: float
                                      ) -> pd.DataFrame:
    """The rows of ``h`` whose unloading lies within ``max_distance_m`` of their manifest receiver's fence."""
    if h.empty:
        return h
    d = distance_to_site(h["unload_lon"].to_numpy(float), h["unload_lat"].to_numpy(float),
                         h["manifest_dest_site_id"], sites)
    return h.loc[np.nan_to_num(d, nan=np.inf) <= max_distance_m]


def _at_manifest_receiver(h: pd.DataFrame, rows: pd.Index, evidence: str) -> pd.DataFrame:
    """``h`` with the unloading of ``rows`` put at their manifest's receiver, on ``evidence``."""
    if not len(rows):
        return h
    out = h.copy()
    out.loc[rows, "unload_site_id"] = out.loc[rows, "manifest_dest_site_id"]
    out.loc[rows, "unload_evidence"] = evidence
    return out


def _receivers_metric(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rec = sites.loc[sites["kind"].isin(RECEIVER_KINDS)].drop_duplicates("site_id")
    return rec.to_crs(METRIC_CRS) if len(rec) else rec


def explain_by_silent_receiver(
    h: pd.DataFrame, sites: gpd.GeoDataFrame, params: Params = DEFAULT_PARAMS, fixes: pd.DataFrame | None = None,
    fx: FixIndex | None = None,
) -> pd.DataFrame:
    """Hauls whose silence a receiver explains, re-placed at that receiver (``unload_evidence`` ``receiver_silent``).

    The silence judged is the chosen track gap, or else the haul's silence in
    which an unloading could best hide (``silence_*`` from ``build_hauls``) — for a haul the
    track step placed at a stop, only a silence *before* that stop (a truck that
    unloaded at the receiver drove on empty; one that stopped first and went
    dark later may well have dumped first). It is a receiver visit when either

    * the manifest's gate-in scan falls in the silence (``gate_scan_slack_s``)
      and its receiver could be reached and left in the silence's time; or
    * it began or ended within ``silent_receiver_distance_m`` of the fence of
      the receiver the manifest names — or, for a haul without a manifest for
      any receiver, at the fence of the nearest one (``fence_tolerance_m``) —
      both its ends nearer to that fence than to the haul's loading site (the
      signal was lost and found on the receiver's side), and the silence is
      long enough to drive there and back (along a road ``road_detour_factor``
      times the straight line, at ``gap_explained_speed_kmh``) and unload
      (``unload_min_s``); or
    * (with the shard's ``fixes``) the truck went dark driving straight for the receiver the manifest
      names — it lies within ``silent_receiver_course_deg`` of its course into the silence — and the
      silence is long enough to get there, unload and get to where it came back (as above): a dead
      zone that began farther out on the way in (a long access road, a valley, a yard behind a hill).

    A dead zone at a yard makes a delivery the paperwork announced believable from a minute or two of
    access road away; without the paperwork, only the terminal seen at the yard itself says the truck went
    in. On the simulated worlds every silence the nearest yard explained from farther out without the
    manifest's word (2 of 2 on 18 worlds) was a dump 0.7-1.5 km outside it, reported as an unmanifested or
    diverted delivery at its gate; a truck that went dark inside a yard it had no manifest for delivered
    there unmanifested. A haul whose manifest names another receiver is judged by that one.
    """
    ev = h["unload_evidence"].astype(str)
    is_gap = (ev == "gap").to_numpy()
    s0 = h["silence_start"] if "silence_start" in h else pd.Series(pd.NaT, index=h.index)
    has_slot = s0.notna().to_numpy()
    before_stop = has_slot & (ev == "dwell").to_numpy() & (s0 < h["unload_start"]).fillna(False).to_numpy(bool)
    # the likeliest stop of a truck that went home loaded (hauls step 4) was no decision: any silence counts
    todo = is_gap | (has_slot & (ev == "").to_numpy()) | before_stop | (has_slot & went_home_guess(h, params))
    rec = _receivers_metric(sites)
    if not todo.any() or rec.empty:
        return h
    c = h.loc[todo]
    cols = ("silence_start", "silence_end", "silence_lon0", "silence_lat0", "silence_lon1", "silence_lat1")
    t0, t1, lon0, lat0, lon1, lat1 = (c[k] for k in cols)
    secs = np.asarray(epoch_seconds(t1) - epoch_seconds(t0), dtype=float)
    fences = np.asarray(rec.geometry.values)
    p0 = np.asarray(metric_points(lon0.to_numpy(float), lat0.to_numpy(float)).values)
    p1 = np.asarray(metric_points(lon1.to_numpy(float), lat1.to_numpy(float)).values)
    ids = rec["site_id"].to_numpy(object)
    dest = c["manifest_dest_site_id"].fillna("").astype(str).to_numpy() if "manifest_dest_site_id" in c else None
    dest_idx = (pd.Index(ids).get_indexer(dest) if dest is not None else np.full(len(c), -1)).astype(np.int64)
    has_dest = dest_idx >= 0
    tree = shapely.STRtree(fences)
    (_, f0), n0 = tree.query_nearest(p0, return_distance=True, all_matches=False)
    (_, f1), n1 = tree.query_nearest(p1, return_distance=True, all_matches=False)
    nearest = np.where(n0 <= n1, f0, f1)
    # the manifest's receiver where there is one, else the nearest
    which = np.where(has_dest, dest_idx, nearest)
    speed = params.gap_explained_speed_kmh / 3.6

    def feasible(f_idx: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Drive from where it went dark to the fence, unload, drive to where it came back: in the silence?"""
        around = shapely.distance(p0[m], fences[f_idx]) + shapely.distance(fences[f_idx], p1[m])
        return around * params.road_detour_factor / speed + params.unload_min_s <= secs[m]

    fence = fences[which]
    d0, d1 = shapely.distance(p0, fence), shapely.distance(p1, fence)
    # announced by the manifest: within a minute or two of access road; unannounced: at the fence itself
    reach = np.where(has_dest, params.silent_receiver_distance_m, params.fence_tolerance_m)
    by_geometry = np.minimum(d0, d1) <= reach
    by_geometry[by_geometry] = feasible(which[by_geometry], by_geometry)
    if "origin_lon" in c:
        # ... on the receiver's side at both ends: a truck that went dark (or came back) nearer its loading
        # site than the receiver lost the signal there, not in the receiver's yard
        origin = np.asarray(metric_points(c["origin_lon"].to_numpy(float), c["origin_lat"].to_numpy(float)).values)
        for p, d in ((p0, d0), (p1, d1)):
            by_geometry &= d < np.nan_to_num(shapely.distance(p, origin), nan=np.inf)
    by_course = _heading_for(c, has_dest & ~by_geometry, p0, fences[which], fixes, params, fx)
    by_course[by_course] = feasible(which[by_course], by_course)
    by_geometry |= by_course
    recv = c["manifest_received_at"] if "manifest_received_at" in c else pd.Series(pd.NaT, index=c.index)
    recv_s = np.where(recv.notna().to_numpy(), epoch_seconds(pd.to_datetime(recv, utc=True).fillna(t0)), np.nan)
    slack = params.gate_scan_slack_s
    with np.errstate(invalid="ignore"):
        scanned = (recv_s >= epoch_seconds(t0) - slack) & (recv_s <= epoch_seconds(t1) + slack)
    by_scan = scanned & has_dest
    by_scan[by_scan] = feasible(dest_idx[by_scan], by_scan)
    hit = by_scan | by_geometry
    if not hit.any():
        return h
    rows = c.index[hit]
    f_hit = which[hit]
    out = h.copy()
    site = rec.iloc[f_hit]
    spot = gpd.GeoSeries(site.geometry.representative_point().values, crs=METRIC_CRS).to_crs("EPSG:4326")
    county = site["county_adcode"].fillna("").astype(str).to_numpy() if "county_adcode" in site else ""
    out.loc[rows, "unload_site_id"] = ids[f_hit]
    out.loc[rows, "unload_evidence"] = "receiver_silent"
    out.loc[rows, "unload_stay_id"] = ""
    out.loc[rows, "unload_start"] = t0[hit].to_numpy()
    out.loc[rows, "unload_end"] = t1[hit].to_numpy()
    out.loc[rows, "decided_at"] = t1[hit].to_numpy()
    out.loc[rows, "unload_lon"] = spot.x.to_numpy()
    out.loc[rows, "unload_lat"] = spot.y.to_numpy()
    out.loc[rows, "unload_county_adcode"] = county
    out.loc[rows, "unload_province_adcode"] = [f"{c_[:2]}0000" if c_ else "" for c_ in county]
    for col in ("gap_start", "gap_end"):
        out.loc[rows, col] = pd.NaT
    for col in ("gap_lon", "gap_lat", "gap_max_reach_m"):
        out.loc[rows, col] = np.nan
    return out


def _heading_for(c: pd.DataFrame, todo: np.ndarray, p0: np.ndarray, fence: np.ndarray, fixes: pd.DataFrame | None,
                 params: Params, fx: FixIndex | None = None) -> np.ndarray:
    """Per silence (``todo`` only): was the truck driving straight for ``fence`` as it went dark — the fence's
    nearest point within ``silent_receiver_course_deg`` of its course over the last ``gap_course_base_m``
    (``gaps.silence_geometry``; a truck that stood or crawled has no course and is not judged here)."""
    out = np.zeros(len(c), dtype=bool)
    if fixes is None or fixes.empty or not todo.any():
        return out
    from wastetrack.gaps import silence_geometry

    sub = c.loc[todo]
    geo = silence_geometry([str(i) for i in range(len(sub))], sub["vehicle_id"].astype(str),
                           sub["silence_start"], sub["silence_end"], fixes, params, index=fx)
    course = geo["course0_deg"].to_numpy(float)
    target = shapely.shortest_line(p0[todo], fence[todo])
    tx = shapely.get_coordinates(shapely.get_point(target, 1))
    sx = shapely.get_coordinates(p0[todo])
    bearing = np.degrees(np.arctan2(tx[:, 0] - sx[:, 0], tx[:, 1] - sx[:, 1])) % 360.0
    off = np.abs((course - bearing + 180.0) % 360.0 - 180.0)
    driving = ~geo["stood0"].astype(bool).to_numpy()
    out[np.flatnonzero(todo)] = np.isfinite(course) & driving & (off <= params.silent_receiver_course_deg)
    return out


def haul_verdicts(h: pd.DataFrame, sites: gpd.GeoDataFrame) -> pd.DataFrame:
    """Per haul, vectorised: ``kind`` ('' for a legitimate haul) and ``problems`` of the receiver.

    The per-lead loop that writes evidence then only runs over the few hauls
    that are leads, not over every haul of the night.
    """
    s = sites.drop_duplicates("site_id").set_index("site_id")
    site = h["unload_site_id"].astype(str)
    known = site.isin(s.index)
    skind = site.map(s["kind"]).where(known, "")
    at_receiver = (site != "") & skind.isin(RECEIVER_KINDS)
    day = h["unload_end"].dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
    vf = pd.to_datetime(site.map(s["valid_from"]).where(known), errors="coerce")
    vt = pd.to_datetime(site.map(s["valid_to"]).where(known), errors="coerce")
    permit_bad = at_receiver & ((vf.notna() & (day < vf)) | (vt.notna() & (day > vt)))
    waste = h["manifest_waste_type"].fillna("").astype(str)
    accepts = site.map(s["accepts"]).where(known)
    refused = [
        bool(w) and isinstance(a, (list, tuple, np.ndarray)) and w not in list(a)
        for w, a in zip(waste, accepts, strict=True)
    ]
    not_accepted = at_receiver & pd.Series(refused, index=h.index, dtype=bool)
    has_manifest = h["manifest_id"].fillna("").astype(str) != ""
    wrong_receiver = has_manifest & at_receiver & (site != h["manifest_dest_site_id"].fillna("").astype(str))
    ev = h["unload_evidence"].astype(str)
    kind = np.select(
        [
            ev == "gap",
            ev.isin(["sensor", "dwell"]) & (site == ""),
            at_receiver & ~has_manifest,
            at_receiver & (wrong_receiver | not_accepted | permit_bad),
        ],
        ["track_gap", "illegal_dump", "unmanifested", "diverted"],
        default="",
    )
    problems = [
        [name for name, flag in (("wrong_receiver", a), ("not_accepted", b), ("permit_invalid", c)) if flag]
        for a, b, c in zip(wrong_receiver, not_accepted, permit_bad, strict=True)
    ]
    return pd.DataFrame({"kind": kind, "problems": problems}, index=h.index)


def settle_unloadings(hauls: pd.DataFrame, sites: gpd.GeoDataFrame, params: Params = DEFAULT_PARAMS,
                      scan_distance_m: float | None = None, fixes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Where each haul unloaded once the map and the manifest have had their say (steps 1-4 above).

    Row by row: the shard settles its hauls once, stores them, and classifies the settled hauls
    (``classify_hauls(..., settled=True)``). ``scan_distance_m``: default ``receiver_scan_distance_m``.
    ``fixes``: the shard's cleaned fixes (steps 3 and 4 read them; without them they are skipped).
    """
    h = hauls
    # one index of the shard's fixes for the three steps that look the truck up by time
    fx = FixIndex(fixes) if fixes is not None and len(fixes) and len(h) else None
    if len(h) and "silence_start" in h:
        h = explain_by_silent_receiver(h, sites, params, fixes, fx)
    decided = (h["unload_evidence"].astype(str) != "").to_numpy() if len(h) else np.zeros(0, bool)
    if decided.any() and "manifest_dest_site_id" in h:
        # only hauls with an unloading have its times (a night of none has no datetime column to read)
        scan_m = params.receiver_scan_distance_m if scan_distance_m is None else scan_distance_m
        part = confirm_by_gate_scan(h.loc[decided], sites, scan_m, params.gate_scan_slack_s)
        if fixes is not None:
            part = confirm_by_own_track(part, fixes, sites, scan_m, params, fx)
            part = confirm_by_later_scan(part, fixes, sites, params, fx)
        h = h.copy()
        cols = [c for c in ("unload_site_id", "unload_evidence", "unload_start", "unload_end", "unload_lon",
                            "unload_lat", "unload_stay_id", "unload_county_adcode", "unload_province_adcode",
                            "decided_at") if c in h and c in part]
        h.loc[part.index, cols] = part[cols]
    return h


def classify_hauls(
    hauls: pd.DataFrame,
    sites: gpd.GeoDataFrame,
    vehicles: pd.DataFrame,
    boundaries: gpd.GeoDataFrame,
    run_date: str | None = None,
    scan_distance_m: float = DEFAULT_PARAMS.receiver_scan_distance_m,
    params: Params = DEFAULT_PARAMS,
    settled: bool = False,
) -> pd.DataFrame:
    """Leads (without ids and routing yet) for hauls whose unloading ended on ``run_date`` (None: all).

    ``settled``: the hauls already went through ``settle_unloadings`` (the shard's, which it stores).
    """
    h = hauls if settled else settle_unloadings(hauls, sites, params, scan_distance_m)
    h = h.loc[h["unload_evidence"].astype(str) != ""].copy()
    if h.empty:
        return pd.DataFrame()
    if run_date is not None:
        h = h.loc[h["unload_end"].dt.tz_convert(TZ).dt.strftime("%Y-%m-%d") == run_date]
    if h.empty:
        return pd.DataFrame()
    h = h.join(haul_verdicts(h, sites))
    h = h.loc[h["kind"] != ""]
    if h.empty:
        return pd.DataFrame()
    # where it happened: stays already carry admin units; silences are located here
    missing = h["unload_county_adcode"].astype(str) == ""
    if missing.any():
        where = bnd.locate(
            h.loc[missing, "unload_lon"].to_numpy(float),
            h.loc[missing, "unload_lat"].to_numpy(float),
            boundaries,
        )
        h.loc[missing, "unload_county_adcode"] = where["county_adcode"].to_numpy()
        h.loc[missing, "unload_province_adcode"] = where["province_adcode"].to_numpy()
    receivers = sites.loc[sites["kind"].isin(RECEIVER_KINDS)]
    near = nearest_site(h["unload_lon"].to_numpy(float), h["unload_lat"].to_numpy(float), receivers)
    h["nearest_receiver_id"] = near["site_id"].to_numpy()
    h["nearest_receiver_m"] = near["distance_m"].to_numpy()
    carrier_of = dict(zip(vehicles["vehicle_id"], vehicles["carrier_id"], strict=False))
    origin_county = dict(zip(sites["site_id"], sites["county_adcode"], strict=False))

    h["went_home"] = went_home_guess(h, params)
    rows = []
    for r in h.itertuples(index=False):
        evidence_kind = r.unload_evidence
        manifest_id = r.manifest_id or ""
        waste = r.manifest_waste_type or ""
        ev: dict = {
            "haul_id": r.haul_id,
            "depart": _iso(r.depart),
            "unload_evidence": evidence_kind,
            "nearest_receiver_id": r.nearest_receiver_id,
            "nearest_receiver_m": None
            if pd.isna(r.nearest_receiver_m)
            else round(float(r.nearest_receiver_m)),
        }
        p = getattr(r, "unload_p", None)
        if evidence_kind in ("dwell", "gap") and p is not None and not pd.isna(p):
            ev["unload_p"] = round(float(p), 3)  # the unloading model's calibrated probability (scoring)
            if r.went_home:
                ev["went_home_loaded"] = True  # hauls step 4: nowhere else it could have unloaded
        if manifest_id:
            ev.update(
                manifest_dest_site_id=r.manifest_dest_site_id,
                waste_type=waste,
                volume_m3=None if pd.isna(r.manifest_volume_m3) else float(r.manifest_volume_m3),
                manifest_status=r.manifest_status,
            )
            valid = getattr(r, "manifest_carrier_id_valid", True)
            if valid is not None and not pd.isna(valid) and not bool(valid):
                ev["manifest_carrier_code_invalid"] = True
        if r.kind == "track_gap":
            kind = "track_gap"
            gap_min = (pd.Timestamp(r.gap_end) - pd.Timestamp(r.gap_start)).total_seconds() / 60.0
            ev.update(
                gap_min=round(gap_min, 1),
                gap_start=_iso(r.gap_start),
                gap_end=_iso(r.gap_end),
                max_reach_km=round(float(r.gap_max_reach_m) / 1000.0, 1),
                reason="车辆重车状态下终端静默，期间可能卸载，恢复信号后空车返回",
            )
        else:
            stay = getattr(r, "unload_stay_id", "")
            ev.update(
                unload_stay_id=stay,
                dwell_min=round(
                    (pd.Timestamp(r.unload_end) - pd.Timestamp(r.unload_start)).total_seconds() / 60.0, 1
                ),
            )
            kind = r.kind
            if kind == "illegal_dump" and ev.get("went_home_loaded"):
                ev["reason"] = "车辆装载离开工地后未到任何消纳场所即收车，此处停留是最可能的卸载地点"
            elif kind == "illegal_dump":
                ev["reason"] = "重车在无消纳资质的地点停留卸载"
            elif kind == "unmanifested":
                ev["unload_site_id"] = r.unload_site_id
                ev["reason"] = "从工地运至消纳场所，但无对应电子联单"
                if r.problems:
                    ev["receiver_problems"] = list(r.problems)
            else:  # diverted
                ev["unload_site_id"] = r.unload_site_id
                ev["diverted_because"] = list(r.problems)
                ev["reason"] = "实际卸载地点与电子联单不符或该场所不得接收此类垃圾"
        rows.append(
            {
                "kind": kind,
                "vehicle_id": r.vehicle_id,
                "carrier_id": (r.manifest_carrier_id or carrier_of.get(r.vehicle_id, "")) or "",
                "start": pd.Timestamp(r.unload_start).tz_convert(TZ),
                "end": pd.Timestamp(r.unload_end).tz_convert(TZ),
                "decided_at": pd.Timestamp(r.decided_at).tz_convert(TZ)
                if not pd.isna(r.decided_at)
                else pd.Timestamp(r.unload_end).tz_convert(TZ),
                "lon": float(r.unload_lon),
                "lat": float(r.unload_lat),
                "county_adcode": r.unload_county_adcode or "",
                "province_adcode": r.unload_province_adcode or "",
                "origin_site_id": r.origin_site_id or "",
                "origin_county_adcode": origin_county.get(r.origin_site_id, "")
                or r.origin_county_adcode
                or "",
                "manifest_id": manifest_id,
                "report_ids": [],
                "candidates": [],
                "haul_id": r.haul_id,
                "evidence": ev,
            }
        )
    if not rows:
        return pd.DataFrame()
    leads = _into_the_yard(pd.DataFrame(rows), sites)
    stays_cols = hauls.set_index("haul_id")
    # sensor states of the unloading stay, for facts and score
    leads["evidence"] = [{**ev, **_sensor_facts(stays_cols, ev)} for ev in leads["evidence"]]
    origin_prov = leads["origin_county_adcode"].astype(str).str[:2]
    place_prov = leads["province_adcode"].astype(str).str[:2]
    leads["cross_border"] = (origin_prov != "") & (place_prov != "") & (origin_prov != place_prov)
    return apply_scores(leads)


def _into_the_yard(leads: pd.DataFrame, sites: gpd.GeoDataFrame) -> pd.DataFrame:
    """A delivery lead's point in the yard it names: the point of the fence nearest where the truck stood.

    A diverted or unmanifested lead says the load was tipped inside a receiver's yard; its fixes may stand
    outside the fence (the yard's walls and pits throw them a few hundred metres: that drift is why the stay
    counts at the yard at all), but the load is where it was tipped, in the yard. Where the truck's fixes
    put it stays in the evidence (``stood_lon``/``stood_lat``): report tracing asks whether a pile outside
    the fence lies where the truck stood (``trace.explain_by_leads``).
    """
    if leads.empty or sites is None or sites.empty:
        return leads
    yard = np.array([str((ev or {}).get("unload_site_id") or "") if k in ("diverted", "unmanifested") else ""
                     for k, ev in zip(leads["kind"], leads["evidence"], strict=True)], dtype=object)
    rows = np.flatnonzero(yard != "")
    if not rows.size:
        return leads
    fences = site_fences(yard[rows], sites)
    known = np.array([f is not None for f in fences], dtype=bool)
    rows, fences = rows[known], fences[known]
    pts = np.asarray(metric_points(leads["lon"].to_numpy(float)[rows], leads["lat"].to_numpy(float)[rows]).values)
    outside_m = shapely.distance(fences, pts)
    keep = outside_m > 0
    if not keep.any():
        return leads
    rows, fences, pts, outside_m = rows[keep], fences[keep], pts[keep], outside_m[keep]
    near = shapely.shortest_line(fences, pts)  # from the fence to the point: its first vertex is on the fence
    on_fence = gpd.GeoSeries(shapely.points(shapely.get_coordinates(near)[::2]), crs=METRIC_CRS).to_crs("EPSG:4326")
    out = leads.copy()
    evs = list(out["evidence"])
    for r, lon, lat, m in zip(rows, out["lon"].to_numpy(float)[rows], out["lat"].to_numpy(float)[rows], outside_m,
                              strict=True):
        evs[r] = {**evs[r], "stood_lon": round(float(lon), 6), "stood_lat": round(float(lat), 6),
                  "stood_outside_fence_m": round(float(m))}
    out["evidence"] = evs
    lon_col, lat_col = out.columns.get_loc("lon"), out.columns.get_loc("lat")
    out.iloc[rows, lon_col] = on_fence.x.to_numpy()
    out.iloc[rows, lat_col] = on_fence.y.to_numpy()
    return out


def _sensor_facts(hauls_by_id: pd.DataFrame, ev: dict) -> dict:
    """Sensor readings copied from the haul's unloading stay (kept on the haul by ``attach_stay_sensors``)."""
    hid = ev.get("haul_id")
    if hid not in hauls_by_id.index:
        return {}
    row = hauls_by_id.loc[hid]
    out = {}
    for col in ("tipping", "loaded_before", "loaded_after"):
        if col in row.index:
            out[col] = opt_bool(row[col])
    return out


def attach_stay_sensors(hauls: pd.DataFrame, stays: pd.DataFrame) -> pd.DataFrame:
    """Copy the unloading stay's sensor readings onto its haul (tipping, loaded before/after)."""
    s = stays[["stay_id", "tipping_any", "loaded_before", "loaded_after"]].rename(
        columns={"stay_id": "unload_stay_id", "tipping_any": "tipping"}
    )
    return hauls.merge(s, on="unload_stay_id", how="left")
