"""Match each haul to the electronic manifest (电子联单) it was hauled under, one-to-one.

A manifest may belong to a haul of the same vehicle on any of these grounds,
each a physical fact about the haul, each with its cost in seconds of
disagreement:

* ``by_gate_out`` — its gate-out scan (``departed_at``) is near the GPS
  departure from the site (``manifest_depart_tolerance_s``);
* ``by_gate_in`` — its gate-in scan (``received_at``) falls in or near the
  unloading stay (``manifest_receive_tolerance_s``), after the departure;
* ``by_issue`` — it has no scan at all and was issued before the departure
  (at most ``manifest_issue_lead_s`` before: night hauls are booked in the
  afternoon; up to ``manifest_issue_after_depart_s`` after: the platform stamps
  a manifest opened at the gate when the truck is already on the road);
* ``by_late_entry`` — it was entered after the fact (补录): no gate-out scan,
  issued after the departure but within ``manifest_late_entry_s``, in transit or
  received (a record of a trip made, not a booking), and it names the haul's own
  site and — when the haul unloaded at a site — that site. Its issue time says
  nothing about the haul, so only those physical facts make the pair.

Any scan-based pair costs less than any pair on the issue time alone (a scan
records the truck at the gate, an issue time only when a form was filled in);
among those, the closer the issue time to the departure the cheaper — a quarter
of a booking's lead counts (booking hours ahead is routine), the whole delay of
a late entry (the exception: a form filled in between two trips is the next
trip's booking before it is the last one's late entry). A manifest
naming another origin site costs ``manifest_origin_mismatch_cost_s`` more. Pairs
are taken greedily by cost, each haul and each manifest at most once, so two
hauls in one night never share a manifest. Cancelled manifests never cover a
haul.

Then ``join_false_loadings``: a call at a site that the manifest's own scans
show was no loading (the load from the first site was received at the next
haul's receiver) joins the two hauls into the one trip it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import epoch_seconds
from wastetrack.config import DEFAULT_PARAMS, Params

MANIFEST_FIELDS = (
    "manifest_id",
    "dest_site_id",
    "waste_type",
    "volume_m3",
    "status",
    "carrier_id",
    "cross_region_filing",
    "issued_at",
    "departed_at",
    "received_at",
    "origin_site_id",
)


def place_loadings_by_gate_out(stays: pd.DataFrame, manifests: pd.DataFrame | None, sites: object,
                               params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Stays the site's own gate-out scan puts at that site, as a loading (``scanned_out``).

    The mirror of a receiver's gate-in scan (``detect.confirm_by_gate_scan``): a manifest of the truck (not
    cancelled) scanned out at its origin site's gate while the truck stood there or within
    ``gate_scan_slack_s`` of it says the truck left that site loaded.

    * Off the fence: the walls, cranes and stockpiles of a construction site throw a loading truck's fixes a
      few hundred metres, out of the fence tolerance, and the haul it starts is lost with its loading. A
      stay within ``site_scan_distance_m`` of the origin site's fence is labelled at that site (among
      several scans the nearest site wins).
    * At the fence: on a sparse feed a truck parked at the bay shows a fix every few minutes, and a
      ten-minute loading can show as two fixes four minutes apart — too short to count as a loading
      (``load_min_dwell_s``), and the haul is lost with it. The gate's scan says it was one.

    Adds the boolean column ``scanned_out`` (``hauls.haul_frames`` counts such a visit as a loading).
    """
    from wastetrack.geofence import distance_to_site

    if stays is None or stays.empty:
        return stays
    out = stays.assign(scanned_out=False)
    if manifests is None or len(manifests) == 0 or "departed_at" not in manifests:
        return out
    site = stays["site_id"].fillna("").astype(str)
    off = site.eq("").to_numpy()
    at_site = (stays["site_kind"].astype(str) == "construction").to_numpy()
    m = manifests.loc[manifests["departed_at"].notna() & (manifests["status"].astype(str) != "cancelled"),
                      ["vehicle_id", "origin_site_id", "departed_at"]]
    if not (off | at_site).any() or m.empty:
        return out
    cand = stays.loc[off | at_site, ["vehicle_id", "start", "end", "lon", "lat"]]
    cand = cand.assign(_row=cand.index, vehicle_id=cand["vehicle_id"].astype(str), _site=site[off | at_site])
    pairs = cand.merge(m.assign(vehicle_id=m["vehicle_id"].astype(str)), on="vehicle_id")
    if pairs.empty:
        return out
    slack = pd.Timedelta(seconds=params.gate_scan_slack_s)
    scanned = pd.to_datetime(pairs["departed_at"], utc=True)
    start, end = pd.to_datetime(pairs["start"], utc=True), pd.to_datetime(pairs["end"], utc=True)
    pairs = pairs.loc[((scanned >= start - slack) & (scanned <= end + slack)).to_numpy()]
    if pairs.empty:
        return out
    own = pairs["_site"].to_numpy(object) != ""
    here = pairs.loc[own & (pairs["_site"].to_numpy(object) == pairs["origin_site_id"].astype(str).to_numpy(object))]
    out.loc[np.unique(here["_row"].to_numpy()), "scanned_out"] = True
    pairs = pairs.loc[~own]
    if pairs.empty:
        return out
    d = distance_to_site(pairs["lon"].to_numpy(float), pairs["lat"].to_numpy(float), pairs["origin_site_id"], sites)
    pairs = pairs.assign(_d=d).loc[np.nan_to_num(d, nan=np.inf) <= params.site_scan_distance_m]
    if pairs.empty:
        return out
    best = pairs.sort_values(["_row", "_d", "origin_site_id"], kind="stable").drop_duplicates("_row")
    kind = pd.Series(sites["kind"].astype(str).to_numpy(), index=sites["site_id"].astype(str).to_numpy())
    kind = kind[~kind.index.duplicated()]
    rows = best["_row"].to_numpy()
    out.loc[rows, "site_id"] = best["origin_site_id"].astype(str).to_numpy()
    out.loc[rows, "site_kind"] = kind.reindex(best["origin_site_id"].astype(str)).fillna("construction").to_numpy()
    out.loc[rows, "scanned_out"] = True
    return out


def _greedy_one_to_one(pairs: pd.DataFrame) -> pd.DataFrame:
    """Lowest-cost pairs with each haul and each manifest used once (sort, then repeated de-duplication)."""
    pairs = pairs.sort_values(["cost", "haul_id", "manifest_id"], kind="stable")
    chosen = []
    while not pairs.empty:
        first_h = ~pairs.duplicated("haul_id")
        first_m = ~pairs.duplicated("manifest_id")
        take = pairs.loc[first_h & first_m]
        # a pair is safe when it is the cheapest remaining for both its haul and its manifest
        chosen.append(take)
        pairs = pairs.loc[
            ~pairs["haul_id"].isin(take["haul_id"]) & ~pairs["manifest_id"].isin(take["manifest_id"])
        ]
    return pd.concat(chosen, ignore_index=True) if chosen else pairs


def _most_hauls_covered(pairs: pd.DataFrame) -> pd.DataFrame:
    """One-to-one pairs, cheapest first; where that leaves a haul without a manifest it could have had, the
    forms are paired again to cover as many hauls as possible.

    Cheapest first (``_greedy_one_to_one``) is right for scans: a scan records the truck at a gate. A form
    — a manifest known only by when it was filled in, booked ahead or entered after the trip — says much
    less, and a haul left without a manifest is an accusation (``unmanifested``): a form entered late for
    the trip that ended at 23:20 and a booking for the trip that left at 23:58 both look cheapest on the
    later trip, and cheapest-first accuses the first. So on the few vehicles where cheapest-first left a
    haul uncovered, its scan pairs stay and its forms are solved as an assignment that covers the most
    hauls, then costs the least (``scipy.optimize.linear_sum_assignment``): when some pairing gives every
    remaining trip a form, none is accused on this evidence.
    """
    chosen = _greedy_one_to_one(pairs[["haul_id", "manifest_id", "cost", "ground"]])
    left = pairs.loc[~pairs["haul_id"].isin(chosen["haul_id"])]
    if left.empty:
        return chosen
    from scipy.optimize import linear_sum_assignment

    redo = pairs["vehicle_id"].isin(set(left["vehicle_id"]))
    mine = chosen["haul_id"].isin(pairs.loc[redo, "haul_id"])
    keep = chosen.loc[~mine | (chosen["ground"] == "scan")]
    forms = pairs.loc[redo & (pairs["ground"] != "scan") & ~pairs["haul_id"].isin(keep["haul_id"])
                      & ~pairs["manifest_id"].isin(keep["manifest_id"])]
    solved = [keep]
    big = 1e9  # every covered haul outweighs any sum of costs (seconds): most hauls first, then cheapest
    for _, g in forms.groupby("vehicle_id", sort=True):
        hs, h_idx = np.unique(g["haul_id"].to_numpy(str), return_inverse=True)
        ms, m_idx = np.unique(g["manifest_id"].to_numpy(str), return_inverse=True)
        w = np.zeros((len(hs), len(ms)))
        w[h_idx, m_idx] = g["cost"].to_numpy(float) - big
        r, c = linear_sum_assignment(w)
        ok = w[r, c] < 0
        solved.append(pd.DataFrame({"haul_id": hs[r[ok]], "manifest_id": ms[c[ok]], "cost": w[r[ok], c[ok]] + big}))
    return pd.concat(solved, ignore_index=True)


def _seconds(s: pd.Series, fallback: pd.Series) -> np.ndarray:
    """Epoch seconds of a time column, NaN where it is missing."""
    return np.where(s.notna().to_numpy(), epoch_seconds(s.fillna(fallback)), np.nan)


def pair_costs(pairs: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Every (haul, manifest) pair of one vehicle with its ``cost`` (inf: not a possible pair) and ``ground``."""
    dep = epoch_seconds(pairs["depart"])
    gate = _seconds(pairs["departed_at"], pairs["depart"])
    recv = _seconds(pairs["received_at"], pairs["depart"])
    u0 = _seconds(pairs["unload_start"], pairs["depart"])
    u1 = _seconds(pairs["unload_end"], pairs["depart"])
    issued = epoch_seconds(pairs["issued_at"])
    has_gate, has_recv = ~np.isnan(gate), ~np.isnan(recv) & ~np.isnan(u0)
    with np.errstate(invalid="ignore"):
        gate_cost = np.abs(gate - dep)
        # the gate-in scan falls inside (or near) the unloading stay
        recv_cost = np.maximum(np.maximum(u0 - recv, recv - u1), 0.0)
        by_gate_out = has_gate & (gate_cost <= params.manifest_depart_tolerance_s)
        by_gate_in = has_recv & (recv_cost <= params.manifest_receive_tolerance_s) & (recv >= dep)
    by_issue = (
        ~has_gate
        & ~has_recv
        & (issued <= dep + params.manifest_issue_after_depart_s)
        & (dep - issued <= params.manifest_issue_lead_s)
    )
    # a manifest still "issued" (never scanned) in its own day's batch had not been used by the end of
    # that day: it can only cover a haul that left after midnight (pre-booked for the next night)
    issue_day_end = epoch_seconds(
        pairs["issued_at"].dt.tz_convert(TIMEZONE).dt.normalize() + pd.Timedelta(days=1)
    )
    # — unless the haul is still on the road at the end of the batch, not yet unloaded: its gate-out may not
    # have reached the platform's export (a status is a snapshot), and it is judged again tomorrow anyway. A
    # booking is used by the truck's next trip: one made before the truck's previous trip left, and never
    # used since, is not this one's either
    on_road = np.isnan(u0) & (pairs["haul_end_at"].isna().to_numpy(bool) if "haul_end_at" in pairs else False)
    if "prev_depart" in pairs:
        prev = _seconds(pairs["prev_depart"], pairs["depart"])
        with np.errstate(invalid="ignore"):
            on_road &= np.isnan(prev) | (issued > prev)
    # — unless the load reached no site at all: a driver who means to tip it on the way does not scan his
    # form at the gate, and his booking is then the only record of the trip (a receiver the load got to
    # would have scanned it in). Only the truck's latest booking before it left: forms are used in the order
    # they were filled in, so one followed by another before the departure was for an earlier or a later
    # trip (an afternoon booking for the small hours, while the evening's trips ran on forms of their own)
    unload_site = pairs["unload_site_id"].fillna("").astype(str).to_numpy() if "unload_site_id" in pairs else ""
    nowhere = np.zeros(len(pairs), dtype=bool)
    if "unload_site_id" in pairs and "m_next_issued" in pairs:
        nxt = _seconds(pairs["m_next_issued"], pairs["depart"])
        with np.errstate(invalid="ignore"):
            nowhere = (unload_site == "") & (np.isnan(nxt) | (nxt > dep))
    by_issue &= ~((pairs["status"].to_numpy() == "issued") & (dep < issue_day_end) & ~on_road & ~nowhere)
    same_origin = pairs["m_origin"].to_numpy() == pairs["origin_site_id"].to_numpy()
    same_dest = (unload_site == "") | (unload_site == pairs["dest_site_id"].fillna("").astype(str).to_numpy())
    late = issued - dep
    # a late entry records a trip that happened: a manifest still only "issued" (never in transit) is a
    # booking for a trip to come, not one
    by_late_entry = (
        ~has_gate
        & (pairs["status"].to_numpy() != "issued")
        & (late > params.manifest_issue_after_depart_s)
        & (late <= params.manifest_late_entry_s)
        & same_origin
        & same_dest
    )
    # two tiers: a scan is a record of this truck at this gate at that time, an issue time only when someone
    # filled in a form, so any scan-based pair costs less than any pair on the issue time alone (booked
    # ahead or entered late: the closer to the departure, the likelier)
    cost = np.fmin(np.where(by_gate_out, gate_cost, np.inf), np.where(by_gate_in, recv_cost, np.inf))
    form_base = max(params.manifest_depart_tolerance_s, params.manifest_receive_tolerance_s)
    # booking hours ahead is routine (a quarter of the lead counts); a form issued after the truck left is the
    # exception (its whole delay counts), whether stamped on the road or entered after the trip: a form filled
    # in between two trips is the next trip's booking first
    lag = np.where(issued <= dep, (dep - issued) / 4.0, issued - dep)
    cost = np.where(np.isinf(cost) & by_issue, form_base + lag, cost)
    cost = np.where(np.isinf(cost) & by_late_entry, form_base + late, cost)
    cost = cost + np.where(same_origin, 0.0, params.manifest_origin_mismatch_cost_s)
    ground = np.select(
        [by_gate_out | by_gate_in, by_issue, by_late_entry], ["scan", "issue", "late_entry"], default=""
    )
    return pairs.assign(cost=cost, ground=ground)


def match_manifests(
    hauls: pd.DataFrame, manifests: pd.DataFrame, params: Params = DEFAULT_PARAMS
) -> pd.DataFrame:
    """Hauls with ``manifest_*`` columns from their matched manifest (empty strings / NaN when none)."""
    out = hauls.copy()
    m = manifests.loc[manifests["status"] != "cancelled"] if len(manifests) else manifests
    cols = {f: f"manifest_{f}" if f != "manifest_id" else "manifest_id" for f in MANIFEST_FIELDS}
    if len(out) == 0 or len(m) == 0:
        for f, c in cols.items():
            out[c] = "" if f not in ("volume_m3", "issued_at", "departed_at", "received_at") else pd.NA
        return out
    keep = ["haul_id", "vehicle_id", "depart", "origin_site_id", "unload_start", "unload_end"]
    keep += [c for c in ("unload_site_id", "haul_end_at") if c in out]
    trips = out[keep].sort_values(["vehicle_id", "depart"], kind="stable")
    trips["prev_depart"] = trips.groupby("vehicle_id", sort=False)["depart"].shift(1)
    forms = m[[*MANIFEST_FIELDS, "vehicle_id"]].rename(columns={"origin_site_id": "m_origin"})
    # when the truck's next form was filled in (``pair_costs``: a booking followed by another was not this trip's)
    forms = forms.assign(_t=pd.to_datetime(forms["issued_at"], utc=True)).sort_values(
        ["vehicle_id", "_t", "manifest_id"], kind="stable")
    forms["m_next_issued"] = forms.groupby("vehicle_id", sort=False)["_t"].shift(-1)
    pairs = trips.merge(forms.drop(columns="_t"), on="vehicle_id")
    pairs = pair_costs(pairs, params)
    pairs = pairs.loc[np.isfinite(pairs["cost"].to_numpy())]
    chosen = _most_hauls_covered(pairs[["haul_id", "vehicle_id", "manifest_id", "cost", "ground"]])
    fields = [*MANIFEST_FIELDS, *(["carrier_id_valid"] if "carrier_id_valid" in m else [])]
    man = m[fields].rename(columns={**cols, "carrier_id_valid": "manifest_carrier_id_valid"})
    matched = chosen[["haul_id", "manifest_id"]].merge(man, on="manifest_id", how="left")
    out = out.merge(matched, on="haul_id", how="left")
    for f, c in cols.items():
        if f in ("volume_m3", "issued_at", "departed_at", "received_at"):
            continue
        out[c] = out[c].fillna("").astype(object)
    return out


#: what a haul says about where and when it started (a joined trip keeps the first haul's); everything else —
#: its unloading, its end, how that was decided — comes from the haul that unloaded
_START_COLUMNS = ("haul_id", "vehicle_id", "origin_site_id", "origin_stay_id", "depart", "origin_county_adcode",
                  "origin_lon", "origin_lat", "load_start")


def join_false_loadings(hauls: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Hauls with every call at a site that the manifest's own scans show was no loading joined away.

    Haul A left site X under manifest M and found no unloading; the truck's next haul B, "loaded" at site Y,
    has no manifest and unloaded at M's receiver while M's gate-in scan was taken there (within
    ``gate_scan_slack_s`` of the stay). The receiver's scan says the load from X arrived: the call at Y was
    a stop at a site on the way (a sparse, sensorless track cannot tell a few minutes standing at a gate from
    loading), and A and B are one trip — A's start and manifest, B's unloading and end. Left as two, B is an
    ``unmanifested`` haul that never was (two on the held-out sparse worlds). The same when B's unloading
    is a silence the scan was taken in (the yard's dead zone): B would be a track gap of a load the
    receiver had received; joined, the silence is A's, and the scan in it makes it a receiver visit
    (``detect.explain_by_silent_receiver``).
    """
    need = {"manifest_id", "manifest_received_at", "manifest_dest_site_id", "unload_evidence", "unload_site_id"}
    if hauls.empty or not need <= set(hauls.columns):
        return hauls
    h = hauls.sort_values(["vehicle_id", "depart"], kind="stable")
    nxt = h.groupby("vehicle_id", sort=False).shift(-1)
    recv = pd.to_datetime(h["manifest_received_at"], utc=True)
    slack = pd.Timedelta(seconds=params.gate_scan_slack_s)
    b_start = pd.to_datetime(nxt["unload_start"], utc=True)
    b_end = pd.to_datetime(nxt["unload_end"], utc=True)
    b_site = nxt["unload_site_id"].fillna("").astype(str)
    at_receiver = (b_site != "") & (b_site == h["manifest_dest_site_id"].fillna("").astype(str))
    in_silence = nxt["unload_evidence"].fillna("").astype(str) == "gap"
    join = (
        (h["unload_evidence"].fillna("").astype(str) == "")
        & (h["manifest_id"].fillna("").astype(str) != "")
        & recv.notna()
        & nxt["haul_id"].notna()
        & (nxt["manifest_id"].fillna("").astype(str) == "")
        & (at_receiver | in_silence)
        & (recv >= b_start - slack) & (recv <= b_end + slack)
    ).to_numpy(bool)
    if not join.any():
        return hauls
    a_rows, b_ids = h.index[join], nxt.loc[join, "haul_id"].astype(str).tolist()
    out = hauls.copy()
    rest = [c for c in out.columns if c not in _START_COLUMNS and not c.startswith("manifest_")]
    # B's unloading and end onto A's row, column by column (each keeps its dtype)
    src = out.set_index(out["haul_id"].astype(str)).loc[b_ids, rest].set_axis(a_rows, axis=0)
    out.loc[a_rows, rest] = src
    return out.loc[~out["haul_id"].astype(str).isin(set(b_ids))]
