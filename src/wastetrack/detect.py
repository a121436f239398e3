"""Turn reconciled hauls into leads: illegal_dump, diverted, unmanifested, track_gap.

The rules are the contract's definitions, applied to where the haul unloaded
(``hauls.build_hauls``) and what its manifest said (``reconcile``):

* unloaded at no receiver (sensor- or dwell-evidenced stay)  → ``illegal_dump``
* unloaded during a silence and came back empty              → ``track_gap``
* unloaded at a receiver, no manifest                        → ``unmanifested``
* unloaded at a receiver other than the manifest's, or one that may not take
  this waste, or whose permit is not valid that local date   → ``diverted``

Only events that *ended* on the run date are kept: a haul that crossed
midnight is reported once, by the run of the day it ended.
"""

from __future__ import annotations

from datetime import date as Date

import geopandas as gpd
import numpy as np
import pandas as pd

from wastetrack import boundaries as bnd
from wastetrack.geofence import nearest_site
from wastetrack.models import RECEIVER_KINDS
from wastetrack.scoring import apply_scores

TZ = "Asia/Shanghai"


def _iso(ts: pd.Timestamp | None) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return pd.Timestamp(ts).tz_convert(TZ).isoformat(timespec="seconds")


def _opt_bool(v: object) -> bool | None:
    return None if v is None or pd.isna(v) else bool(v)


def receiver_approval(site: pd.Series | None, waste_type: str, on: Date) -> list[str]:
    """Why a receiving site may NOT take this load on this date (empty list: it may)."""
    if site is None:
        return ["not_a_receiver"]
    problems = []
    if site["kind"] not in RECEIVER_KINDS:
        problems.append("not_a_receiver")
    accepts = site.get("accepts")
    if waste_type and isinstance(accepts, (list, tuple, np.ndarray)) and waste_type not in list(accepts):
        problems.append("not_accepted")
    vf, vt = site.get("valid_from"), site.get("valid_to")
    if (vf is not None and not pd.isna(vf) and on < pd.Timestamp(vf).date()) or (
        vt is not None and not pd.isna(vt) and on > pd.Timestamp(vt).date()
    ):
        problems.append("permit_invalid")
    return problems


def classify_hauls(
    hauls: pd.DataFrame,
    sites: gpd.GeoDataFrame,
    vehicles: pd.DataFrame,
    boundaries: gpd.GeoDataFrame,
    run_date: str | None = None,
) -> pd.DataFrame:
    """Leads (without ids and routing yet) for hauls whose unloading ended on ``run_date`` (None: all)."""
    h = hauls.loc[hauls["unload_evidence"].astype(str) != ""].copy()
    if h.empty:
        return pd.DataFrame()
    if run_date is not None:
        h = h.loc[h["unload_end"].dt.tz_convert(TZ).dt.strftime("%Y-%m-%d") == run_date]
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
    site_by_id = sites.set_index("site_id", drop=False)
    carrier_of = dict(zip(vehicles["vehicle_id"], vehicles["carrier_id"], strict=False))
    origin_county = dict(zip(sites["site_id"], sites["county_adcode"], strict=False))

    rows = []
    for r in h.itertuples(index=False):
        evidence_kind = r.unload_evidence
        manifest_id = r.manifest_id or ""
        waste = r.manifest_waste_type or ""
        local_day = pd.Timestamp(r.unload_end).tz_convert(TZ).date()
        ev: dict = {
            "haul_id": r.haul_id,
            "depart": _iso(r.depart),
            "unload_evidence": evidence_kind,
            "nearest_receiver_id": r.nearest_receiver_id,
            "nearest_receiver_m": None
            if pd.isna(r.nearest_receiver_m)
            else round(float(r.nearest_receiver_m)),
        }
        if manifest_id:
            ev.update(
                manifest_dest_site_id=r.manifest_dest_site_id,
                waste_type=waste,
                volume_m3=None if pd.isna(r.manifest_volume_m3) else float(r.manifest_volume_m3),
                manifest_status=r.manifest_status,
            )
        if evidence_kind == "gap":
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
            site_id = r.unload_site_id or ""
            if evidence_kind in ("sensor", "dwell") and not site_id:
                kind = "illegal_dump"
                ev["reason"] = "重车在无消纳资质的地点停留卸载"
            elif (
                site_id and site_id in site_by_id.index and site_by_id.loc[site_id, "kind"] in RECEIVER_KINDS
            ):
                ev["unload_site_id"] = site_id
                problems = receiver_approval(site_by_id.loc[site_id], waste, local_day)
                if not manifest_id:
                    kind = "unmanifested"
                    ev["reason"] = "从工地运至消纳场所，但无对应电子联单"
                    if problems:
                        ev["receiver_problems"] = problems
                elif site_id != r.manifest_dest_site_id or problems:
                    kind = "diverted"
                    why = ([] if site_id == r.manifest_dest_site_id else ["wrong_receiver"]) + problems
                    ev["diverted_because"] = why
                    ev["reason"] = "实际卸载地点与电子联单不符或该场所不得接收此类垃圾"
                else:
                    continue  # a legitimate haul
            else:
                continue
        rows.append(
            {
                "kind": kind,
                "vehicle_id": r.vehicle_id,
                "carrier_id": (r.manifest_carrier_id or carrier_of.get(r.vehicle_id, "")) or "",
                "start": pd.Timestamp(r.unload_start).tz_convert(TZ),
                "end": pd.Timestamp(r.unload_end).tz_convert(TZ),
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
    leads = pd.DataFrame(rows)
    stays_cols = hauls.set_index("haul_id")
    # sensor states of the unloading stay, for facts and score
    leads["evidence"] = [{**ev, **_sensor_facts(stays_cols, ev)} for ev in leads["evidence"]]
    origin_prov = leads["origin_county_adcode"].astype(str).str[:2]
    place_prov = leads["province_adcode"].astype(str).str[:2]
    leads["cross_border"] = (origin_prov != "") & (place_prov != "") & (origin_prov != place_prov)
    return apply_scores(leads)


def _sensor_facts(hauls_by_id: pd.DataFrame, ev: dict) -> dict:
    """Sensor readings copied from the haul's unloading stay (kept on the haul by ``attach_stay_sensors``)."""
    hid = ev.get("haul_id")
    if hid not in hauls_by_id.index:
        return {}
    row = hauls_by_id.loc[hid]
    out = {}
    for col in ("tipping", "loaded_before", "loaded_after"):
        if col in row.index:
            out[col] = _opt_bool(row[col])
    return out


def attach_stay_sensors(hauls: pd.DataFrame, stays: pd.DataFrame) -> pd.DataFrame:
    """Copy the unloading stay's sensor readings onto its haul (tipping, loaded before/after)."""
    s = stays[["stay_id", "tipping_any", "loaded_before", "loaded_after"]].rename(
        columns={"stay_id": "unload_stay_id", "tipping_any": "tipping"}
    )
    return hauls.merge(s, on="unload_stay_id", how="left")
