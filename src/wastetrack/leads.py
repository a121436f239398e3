"""Assemble leads: stable ids, report_trace leads, and the ``leads.geojson`` of the contract.

Lead ids are a hash of what the lead is about (kind, vehicle, start of the
event; for a report_trace the report id), so re-running the same inputs gives
the same ids and the store can upsert instead of duplicating.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack import boundaries as bnd
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.models import LEAD_COLUMNS
from wastetrack.scoring import apply_scores
from wastetrack.values import jsonable, local_seconds, opt_bool

TZ = TIMEZONE
KIND_CODE = {
    "illegal_dump": "ID",
    "diverted": "DV",
    "unmanifested": "UM",
    "track_gap": "TG",
    "report_trace": "RT",
}


def lead_id(kind: str, key: str, start: pd.Timestamp) -> str:
    """``ID-20261120-3fa2b1c9d0``: kind, local day the event started, hash of what it is about."""
    day = pd.Timestamp(start).tz_convert(TZ).strftime("%Y%m%d")
    digest = hashlib.sha1(f"{kind}|{key}".encode()).hexdigest()[:10]
    return f"{KIND_CODE[kind]}-{day}-{digest}"


def assign_ids(leads: pd.DataFrame) -> pd.DataFrame:
    if leads.empty:
        return leads
    out = leads.copy()
    keys = [
        f"{r.evidence.get('report_id')}"
        if r.kind == "report_trace"
        else f"{r.vehicle_id}|{pd.Timestamp(r.start).tz_convert(TZ).isoformat(timespec='minutes')}"
        for r in out.itertuples(index=False)
    ]
    out["lead_id"] = [lead_id(k, key, e) for k, key, e in zip(out["kind"], keys, out["start"], strict=True)]
    return out


#: what the lead sheet says of the first candidate, by how it was seen
_TRACE_REASON = {
    "stay": "举报点附近在举报时间窗内有渣土车停留，停留时长与卸载相符",
    "pass": "举报点附近在举报时间窗内有渣土车低速经过或短暂逗留",
    "silence": "举报时间窗内渣土车终端静默，静默期间可到达举报点",
}


def _detail(row: pd.Series) -> dict:
    """One candidate as the lead's evidence shows it: what was seen, and the named terms of its score."""
    from wastetrack.trace import score_parts_of

    d = {
        "vehicle_id": str(row["vehicle_id"]),
        "kind": str(row["kind"]),
        "distance_m": round(float(row["distance_m"])),
        "dwell_min": round(float(row["dwell_min"]), 1) if np.isfinite(float(row["dwell_min"])) else None,
        "at": pd.Timestamp(row["start"]).tz_convert(TZ).isoformat(timespec="seconds"),
        "until": pd.Timestamp(row["end"]).tz_convert(TZ).isoformat(timespec="seconds"),
        "score": round(float(row["score"]), 2),
        "score_parts": score_parts_of(row),
        "haul_phase": str(row.get("phase") or ""),
    }
    for k in ("loaded_before", "loaded_after", "tipping"):
        d[k] = opt_bool(row.get(k))
    if row["kind"] == "pass":
        d["min_speed_kmh"] = round(float(row["min_speed_kmh"]), 1) if np.isfinite(float(row["min_speed_kmh"])) else None
    if row["kind"] == "silence":
        d["region_km2"] = round(float(row["region_km2"]), 2)
    if row.get("site_id"):
        d["site_id"] = str(row["site_id"])
    if bool(row.get("stale")):
        d["before_window"] = True
    return d


def crowded_reports(ranked: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> set[str]:
    """Reports where no truck is singled out: ``report_crowd_trucks`` or more trucks each have evidence enough to
    be named (``report_min_score``) within ``report_crowd_margin`` of the best one (``ranked``: best first)."""
    if ranked is None or ranked.empty:
        return set()
    score = ranked["score"].to_numpy(float)
    top = ranked.groupby("report_id", sort=False)["score"].transform("max").to_numpy(float)
    rival = (score >= params.report_min_score) & (score >= top - params.report_crowd_margin)
    n = pd.Series(rival).groupby(ranked["report_id"].to_numpy(object)).sum()
    return set(n.index[n >= params.report_crowd_trucks])


def report_trace_leads(
    reports: pd.DataFrame,
    ranked: pd.DataFrame,
    hauls: pd.DataFrame,
    vehicles: pd.DataFrame,
    sites: gpd.GeoDataFrame,
    boundaries: gpd.GeoDataFrame,
    params: Params = DEFAULT_PARAMS,
    observed: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """report_trace leads for reports whose best-ranked truck is plausible enough; the rest untraced, with why.

    ``ranked``: one row per (report, truck), best first (``trace.rank_candidates``:
    ``score`` and its ``p_*`` terms). The lead names the first truck when its score
    reaches ``report_min_score``, and lists up to three (``candidates``, their
    evidence in ``evidence.candidates_detail``) while at least
    ``report_list_min_score``. ``observed``: every observation near the reports,
    judged or not, to say why a report stays untraced.
    """
    untraced: list[dict] = []
    rows = []
    carrier_of = dict(zip(vehicles["vehicle_id"], vehicles["carrier_id"], strict=False))
    site_county = dict(zip(sites["site_id"], sites["county_adcode"], strict=False))
    where = bnd.locate(reports["lon"].to_numpy(float), reports["lat"].to_numpy(float), boundaries)
    r_m = params.report_radius_m
    radius = f"{r_m / 1000:g} km" if r_m >= 1000 else f"{r_m:g} m"
    by_report = dict(tuple(ranked.groupby("report_id", sort=False))) if len(ranked) else {}
    seen = set(observed["report_id"]) if observed is not None and len(observed) else set()
    # only the candidates' hauls: grouping every haul of the night by vehicle cost more than the tracing
    wanted = set(ranked["vehicle_id"].astype(str)) if len(ranked) else set()
    hauls_of = _hauls_by_vehicle(hauls.loc[hauls["vehicle_id"].astype(str).isin(wanted)] if len(hauls) else hauls)
    crowded = crowded_reports(ranked, params)
    for i, rep in enumerate(reports.itertuples(index=False)):
        c = by_report.get(rep.report_id)
        if rep.report_id in crowded:
            who = c.loc[c["score"] >= params.report_min_score, "vehicle_id"].astype(str).tolist()
            untraced.append({"report_id": rep.report_id, "candidates": who, "reason": (
                f"{len(who)} trucks stopped or lingered at the spot in the window with like evidence (a place "
                f"where trucks stop): none singled out ({', '.join(who)})")})
            continue
        if c is None or c.empty or float(c["score"].iloc[0]) < params.report_min_score:
            if c is not None and len(c):
                why = (f"trucks near the spot in the window, none plausibly the one that dumped (best evidence "
                       f"{float(c['score'].iloc[0]):.1f} < {params.report_min_score:g})")
            elif rep.report_id in seen:
                why = f"only trucks passing at speed within {radius} in the window"
            else:
                why = f"no truck within {radius} in the window"
            untraced.append({"report_id": rep.report_id, "reason": why})
            continue
        listed = c.loc[c["score"] >= params.report_list_min_score].head(3)
        top = listed.iloc[0]
        haul = _haul_at(hauls_of.get(top["vehicle_id"]), top["start"])
        origin = str(haul["origin_site_id"]) if haul is not None else ""
        in_haul = haul is not None and (pd.isna(haul.get("end")) or pd.Timestamp(top["start"]) <= haul["end"])
        manifest = str(haul.get("manifest_id") or "") if in_haul else ""
        ev = {
            "report_id": rep.report_id,
            "top_distance_m": round(float(top["distance_m"])),
            "top_is_stay": top["kind"] == "stay",
            "top_kind": str(top["kind"]),
            "top_score": round(float(top["score"]), 2),
            "n_candidates": len(listed),
            "candidates_detail": [_detail(r) for _, r in listed.iterrows()],
            "reason": _TRACE_REASON.get(str(top["kind"]), _TRACE_REASON["stay"]),
        }
        if haul is not None:
            # the candidate's haul at the time: where it had loaded, when it left, under which manifest
            ev["haul_id"] = str(haul["haul_id"])
            ev["depart"] = pd.Timestamp(haul["depart"]).tz_convert(TZ).isoformat(timespec="seconds")
            ev["in_haul"] = bool(in_haul)
        for k in ("loaded_before", "loaded_after", "tipping"):
            ev[k] = opt_bool(top.get(k))
        start = pd.Timestamp(top["start"]).tz_convert(TZ)
        end = pd.Timestamp(top["end"]).tz_convert(TZ)
        rows.append(
            {
                "kind": "report_trace",
                "vehicle_id": top["vehicle_id"],
                "carrier_id": carrier_of.get(top["vehicle_id"], ""),
                "start": start,
                "end": end,
                "lon": float(rep.lon),
                "lat": float(rep.lat),
                "county_adcode": where["county_adcode"].iloc[i],
                "province_adcode": where["province_adcode"].iloc[i],
                "origin_site_id": origin,
                "origin_county_adcode": site_county.get(origin, "") if origin else "",
                "manifest_id": manifest,
                "report_ids": [rep.report_id],
                "candidates": [str(v) for v in listed["vehicle_id"]],
                "haul_id": "",
                "evidence": ev,
            }
        )
    if not rows:
        return pd.DataFrame(), untraced
    leads = pd.DataFrame(rows)
    op = leads["origin_county_adcode"].astype(str).str[:2]
    pp = leads["province_adcode"].astype(str).str[:2]
    leads["cross_border"] = (op != "") & (pp != "") & (op != pp)
    return apply_scores(leads), untraced


def _hauls_by_vehicle(hauls: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if hauls.empty:
        return {}
    h = hauls.sort_values(["vehicle_id", "depart"], kind="stable")
    return {str(v): g for v, g in h.groupby("vehicle_id", sort=False)}


def _haul_at(hauls: pd.DataFrame | None, at: pd.Timestamp) -> pd.Series | None:
    """The vehicle's haul that departed last before ``at`` (its likely load), if any."""
    if hauls is None or hauls.empty:
        return None
    before = hauls.loc[hauls["depart"] <= at]
    return None if before.empty else before.iloc[-1]


def feature_collection(leads: pd.DataFrame) -> dict:
    """The contract's leads.geojson: WGS-84 Points, LEAD_COLUMNS as properties plus ``evidence``."""
    feats = []
    for r in leads.to_dict("records"):
        props = {k: r[k] for k in LEAD_COLUMNS}
        for k in ("start", "end"):
            props[k] = pd.Timestamp(props[k]).tz_convert(TZ).isoformat(timespec="seconds")
        props["cross_border"] = bool(props["cross_border"])
        props["score"] = float(props["score"])
        for k in ("report_ids", "candidates", "cc_liaison_ids"):
            props[k] = [str(x) for x in props[k]]
        for k in (
            "vehicle_id",
            "carrier_id",
            "county_adcode",
            "province_adcode",
            "origin_site_id",
            "origin_county_adcode",
            "manifest_id",
            "primary_liaison_id",
        ):
            props[k] = "" if props[k] is None or (isinstance(props[k], float) and np.isnan(props[k])) else str(props[k])
        props["evidence"] = jsonable(r.get("evidence") or {}, time=local_seconds)
        if r.get("sheet"):
            props["sheet"] = r["sheet"]
        feats.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(float(r["lon"]), 7), round(float(r["lat"]), 7)],
                },
                "properties": jsonable(props, time=local_seconds),
            }
        )
    return {"type": "FeatureCollection", "name": "wastetrack leads", "features": feats}


def write_geojson(leads: pd.DataFrame, path: Path) -> None:
    path.write_text(json.dumps(feature_collection(leads), ensure_ascii=False, indent=1), encoding="utf-8")
