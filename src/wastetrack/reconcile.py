"""Match each haul to the electronic manifest (电子联单) it was hauled under, one-to-one.

A manifest belongs to a haul of the same vehicle whose GPS departure from the
site is near the manifest's gate-out scan (``departed_at``), or whose unloading
stay holds the gate-in scan at the receiver (``received_at``), or — when the
manifest has no scan at all — that departed within ``manifest_issue_lead_s``
after the manifest was issued. A matching origin site makes a pair cheaper. Pairs are
taken greedily by cost, each haul and each manifest at most once, so two hauls
in one night never share a manifest. Cancelled manifests never cover a haul.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
_ORIGIN_MISMATCH_COST_S = 3600.0


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
    pairs = out[["haul_id", "vehicle_id", "depart", "origin_site_id", "unload_start", "unload_end"]].merge(
        m[[*MANIFEST_FIELDS, "vehicle_id"]].rename(columns={"origin_site_id": "m_origin"}),
        on="vehicle_id",
    )
    dep = epoch_seconds(pairs["depart"])
    has_gate = pairs["departed_at"].notna().to_numpy()
    gate = np.where(has_gate, epoch_seconds(pairs["departed_at"].fillna(pairs["depart"])), np.nan)
    has_recv = (pairs["received_at"].notna() & pairs["unload_start"].notna()).to_numpy()
    recv = np.where(has_recv, epoch_seconds(pairs["received_at"].fillna(pairs["depart"])), np.nan)
    u0 = np.where(has_recv, epoch_seconds(pairs["unload_start"].fillna(pairs["depart"])), np.nan)
    u1 = np.where(has_recv, epoch_seconds(pairs["unload_end"].fillna(pairs["depart"])), np.nan)
    issued = epoch_seconds(pairs["issued_at"])
    gate_cost = np.abs(gate - dep)
    # the gate-in scan falls inside (or near) the unloading stay
    recv_cost = np.maximum(np.maximum(u0 - recv, recv - u1), 0.0)
    by_gate = has_gate & (gate_cost <= params.manifest_depart_tolerance_s)
    by_recv = has_recv & (recv_cost <= params.manifest_receive_tolerance_s) & (recv >= dep)
    by_issue = (
        ~has_gate & ~has_recv & (issued <= dep + 1800.0) & (dep - issued <= params.manifest_issue_lead_s)
    )
    # a manifest still "issued" (never scanned) in its own day's batch had not been used by the end of
    # that day: it can only cover a haul that left after midnight (pre-booked for the next night)
    issue_day_end = epoch_seconds(
        pairs["issued_at"].dt.tz_convert("Asia/Shanghai").dt.normalize() + pd.Timedelta(days=1)
    )
    by_issue &= ~((pairs["status"].to_numpy() == "issued") & (dep < issue_day_end))
    cost = np.fmin(np.where(by_gate, gate_cost, np.inf), np.where(by_recv, recv_cost, np.inf))
    cost = np.where(by_issue, np.abs(dep - issued) / 4.0, cost)
    cost = cost + np.where(
        pairs["m_origin"].to_numpy() == pairs["origin_site_id"].to_numpy(), 0.0, _ORIGIN_MISMATCH_COST_S
    )
    pairs = pairs.assign(cost=cost).loc[by_gate | by_recv | by_issue]
    chosen = _greedy_one_to_one(pairs[["haul_id", "manifest_id", "cost"]])
    fields = [*MANIFEST_FIELDS, *(["carrier_id_valid"] if "carrier_id_valid" in m else [])]
    man = m[fields].rename(columns={**cols, "carrier_id_valid": "manifest_carrier_id_valid"})
    matched = chosen[["haul_id", "manifest_id"]].merge(man, on="manifest_id", how="left")
    out = out.merge(matched, on="haul_id", how="left")
    for f, c in cols.items():
        if f in ("volume_m3", "issued_at", "departed_at", "received_at"):
            continue
        out[c] = out[c].fillna("").astype(object)
    return out
