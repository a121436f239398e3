"""Rebuild hauls: loaded at a construction site, unloaded somewhere, from stays and silences.

A haul starts when a truck leaves a construction site (consecutive stays at the
same site — queue, then loading — are one visit) and lasts until its next
construction-site visit. Within it, the unloading is the first of, in order of
how much we trust the evidence:

1. ``sensor``   a stay where the body lifted (``tipping``) or the load sensor
                went from loaded to empty;
2. ``receiver`` a stay at an approved-kind receiving site (disposal, recycling,
                transfer) — approval for *this* load is judged later;
3. ``gap``      a silence of at least ``track_gap_min_s``, long enough to hide a
                detour (``gap_unexplained_min_s`` more than driving straight
                between where it went dark and where it reappeared), after
                which the truck comes back empty (next load, or the sensor);
4. ``dwell``    an off-site stay with an unloading-like dwell, when the truck came
                back to load again without visiting any receiver; the one
                farthest from the origin wins (dumpers drive away, then back).
                A silence *after* such a stay (of ``dump_confident_dwell_s``)
                ranks below it: the truck went dark already empty.

A load-sensor drop counts as ``sensor`` evidence only if the truck then reads
empty (``load_drop_empty_share``) until it loads again: sensors flap.

Stops at truck parks and fuel stations are stays too; they never win over a
receiver or a sensor reading, so legitimate long stops are not leads.
All selection is sort-and-take-first over candidate tables, not loops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack.clean import _ts_i8, epoch_seconds, vehicle_codes
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import haversine_m
from wastetrack.models import HAUL_COLUMNS, PLACE_COLUMNS, RECEIVER_KINDS, STAY_COLUMNS, require_columns

#: time range of one composite (vehicle, time) key: 2^42 µs ≈ 51 days
_SPAN_US = 1 << 42
EVIDENCE_RANK = {"sensor": 0, "receiver": 1, "gap": 2, "dwell": 3}


def loading_visits(stays: pd.DataFrame, merge_gap_s: float = DEFAULT_PARAMS.load_visit_merge_gap_s) -> pd.DataFrame:
    """Consecutive stays of one vehicle at one construction site, close in time, as one loading visit.

    Queue at the gate, then loading inside: two stays, one visit. A truck that
    left and came back to the same site later made a trip in between (maybe a
    dark one): two visits.
    """
    s = stays.sort_values(["vehicle_id", "start"], kind="stable").reset_index(drop=True)
    is_load = (s["site_kind"] == "construction").to_numpy()
    veh = s["vehicle_id"].to_numpy()
    site = s["site_id"].to_numpy()
    t0, t1 = epoch_seconds(s["start"]), epoch_seconds(s["end"])
    close = np.r_[False, (t0[1:] - t1[:-1]) <= merge_gap_s] if len(s) else np.zeros(0, bool)
    same_as_prev = np.r_[False, (veh[1:] == veh[:-1]) & (site[1:] == site[:-1]) & is_load[1:] & is_load[:-1]]
    same_as_prev &= close
    visit = np.cumsum(~same_as_prev)
    s["_visit"] = visit
    loads = s.loc[is_load]
    if loads.empty:
        return pd.DataFrame(
            columns=[
                "vehicle_id",
                "origin_site_id",
                "origin_stay_id",
                "load_start",
                "depart",
                "origin_lon",
                "origin_lat",
                "origin_county_adcode",
            ]
        )
    g = loads.groupby("_visit", sort=True)
    v = pd.DataFrame(
        {
            "vehicle_id": g["vehicle_id"].first(),
            "origin_site_id": g["site_id"].first(),
            "origin_stay_id": g["stay_id"].last(),
            "load_start": g["start"].first(),
            "depart": g["end"].last(),
            "origin_lon": g["lon"].mean(),
            "origin_lat": g["lat"].mean(),
            "origin_county_adcode": g["county_adcode"].first(),
        }
    ).reset_index(drop=True)
    return v.sort_values(["vehicle_id", "depart"], kind="stable", ignore_index=True)


def silences(fixes: pd.DataFrame, min_s: float) -> pd.DataFrame:
    """Gaps between consecutive fixes of one vehicle longer than ``min_s``, with the load state around them."""
    t = epoch_seconds(fixes["ts"])
    veh = vehicle_codes(fixes["vehicle_id"])
    if len(t) < 2:
        return pd.DataFrame(
            columns=[
                "vehicle_id",
                "gap_start",
                "gap_end",
                "gap_s",
                "lon0",
                "lat0",
                "lon1",
                "lat1",
                "loaded_before_gap",
                "loaded_after_gap",
            ]
        )
    i = np.flatnonzero((veh[1:] == veh[:-1]) & (np.diff(t) >= min_s))
    loaded = fixes["loaded"].astype("boolean") if "loaded" in fixes else pd.Series(pd.NA, index=fixes.index)
    return pd.DataFrame(
        {
            "vehicle_id": fixes["vehicle_id"].iloc[i].astype(str).to_numpy(dtype=object),
            "gap_start": fixes["ts"].iloc[i].to_numpy(),
            "gap_end": fixes["ts"].iloc[i + 1].to_numpy(),
            "gap_s": t[i + 1] - t[i],
            "lon0": fixes["lon"].to_numpy(float)[i],
            "lat0": fixes["lat"].to_numpy(float)[i],
            "lon1": fixes["lon"].to_numpy(float)[i + 1],
            "lat1": fixes["lat"].to_numpy(float)[i + 1],
            "loaded_before_gap": loaded.iloc[i].to_numpy(),
            "loaded_after_gap": loaded.iloc[i + 1].to_numpy(),
        }
    )


def load_readings(
    fixes: pd.DataFrame, vehicle_id: pd.Series, t0: pd.Series, t1: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """(known, loaded) counts of load-sensor readings of each vehicle in the window (t0, t1], vectorised.

    Fixes are sorted by vehicle and time; one composite key makes every window
    two binary searches and two cumulative-sum look-ups.
    """
    n = len(vehicle_id)
    if n == 0 or "loaded" not in fixes or len(fixes) == 0:
        return np.zeros(n, np.int64), np.zeros(n, np.int64)
    # integer composite key (vehicle code, µs since the first fix): exact, whatever else the shard holds
    veh = fixes["vehicle_id"]
    codes = vehicle_codes(veh)
    if isinstance(veh.dtype, pd.CategoricalDtype):
        vc = pd.Categorical(vehicle_id.astype(str), categories=veh.cat.categories).codes.astype(np.int64)
    else:
        uniques = pd.unique(veh)
        vc = pd.Index(uniques).get_indexer(vehicle_id.to_numpy()).astype(np.int64)
    t = _ts_i8(fixes["ts"])
    t_min = int(t.min())
    key = codes * _SPAN_US + (t - t_min)
    a = np.clip(_ts_i8(t0) - t_min, -1, _SPAN_US - 1)
    b = np.clip(_ts_i8(t1) - t_min, -1, _SPAN_US - 1)
    lo = np.searchsorted(key, vc * _SPAN_US + a, side="right")
    hi = np.searchsorted(key, vc * _SPAN_US + b, side="right")
    lo, hi = np.where(vc >= 0, lo, 0), np.where(vc >= 0, hi, 0)
    load = fixes["loaded"].astype("boolean")
    known_cs = np.r_[0, np.cumsum(load.notna().to_numpy())]
    loaded_cs = np.r_[0, np.cumsum(load.fillna(False).to_numpy(bool))]
    return known_cs[hi] - known_cs[lo], loaded_cs[hi] - loaded_cs[lo]


def _assign(events: pd.DataFrame, on: str, visits: pd.DataFrame) -> pd.DataFrame:
    """Attach each event to the haul (loading visit) of its vehicle that departed last before it."""
    if events.empty or visits.empty:
        return events.assign(haul_id=pd.Series(dtype=object), depart=pd.Series(dtype=object))
    ev = events.sort_values(on, kind="stable").reset_index(drop=True)
    v = visits[["vehicle_id", "depart", "haul_id", "next_load"]].sort_values("depart", kind="stable")
    m = pd.merge_asof(ev, v, left_on=on, right_on="depart", by="vehicle_id", direction="backward")
    inside = m["haul_id"].notna() & (m["next_load"].isna() | (m[on] < m["next_load"]))
    return m.loc[inside].drop(columns=["next_load"])


def build_hauls(stays: pd.DataFrame, fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Hauls (``models.HAUL_COLUMNS``) of every vehicle, with the unloading chosen as described above."""
    require_columns(stays, [*STAY_COLUMNS, *PLACE_COLUMNS], "labelled stays")
    visits = loading_visits(stays, params.load_visit_merge_gap_s)
    visits = visits.loc[visits["depart"] - visits["load_start"] >= pd.Timedelta(seconds=params.load_min_dwell_s)]
    visits = visits.reset_index(drop=True)
    if visits.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in HAUL_COLUMNS})
    visits["haul_id"] = (
        visits["vehicle_id"] + "@" + pd.Series(epoch_seconds(visits["depart"]).astype(np.int64)).astype(str)
    )
    nxt = visits.groupby("vehicle_id", sort=False)["load_start"].shift(-1)
    visits["next_load"] = nxt
    last_fix = fixes.groupby("vehicle_id", sort=False, observed=True)["ts"].max()
    last_fix.index = last_fix.index.astype(str)
    visits["last_fix"] = visits["vehicle_id"].map(last_fix)

    # --- candidate stays --------------------------------------------------------------------
    other = stays.loc[stays["site_kind"] != "construction"]
    cs = _assign(other, "start", visits)
    cs = cs.merge(visits[["haul_id", "origin_lon", "origin_lat", "next_load"]], on="haul_id", how="left")
    closed = cs["next_load"].notna().to_numpy()
    tip = cs["tipping_any"].astype("boolean")
    lb = cs["loaded_before"].astype("boolean")
    la = cs["loaded_after"].astype("boolean")
    # a load drop is an unloading only if the truck then stays empty until it loads again
    horizon = cs["end"] + pd.Timedelta(hours=2)
    until = cs["next_load"].where(cs["next_load"].notna() & (cs["next_load"] < horizon), horizon)
    known_after, loaded_after = load_readings(fixes, cs["vehicle_id"], cs["end"], until) if len(cs) else (0, 0)
    stays_empty = (known_after >= 3) & (
        (known_after - loaded_after) >= params.load_drop_empty_share * np.maximum(known_after, 1)
    )
    # ... and only during a stay as long as unloading takes (not a day-long park across a sensor reset)
    short = (cs["duration_s"] <= 2 * params.dump_dwell_max_s).to_numpy(bool)
    drop = (lb.fillna(False) & ~la.fillna(True)).to_numpy(bool) & stays_empty & short
    sensor = tip.fillna(False).to_numpy(bool) | drop
    receiver = cs["site_kind"].isin(RECEIVER_KINDS).to_numpy()
    still_loaded = la.fillna(False).to_numpy(bool)
    tip_says_no = (tip.notna() & ~tip.fillna(False)).to_numpy(bool)
    dwell_ok = cs["duration_s"].between(params.dump_dwell_min_s, params.dump_dwell_max_s).to_numpy()
    dwell = (cs["site_kind"] == "").to_numpy() & dwell_ok & closed & ~still_loaded & ~tip_says_no
    rank = np.select([sensor, receiver, dwell], [0, 1, 3], default=9)
    away = haversine_m(cs["lon"], cs["lat"], cs["origin_lon"], cs["origin_lat"]) if len(cs) else np.zeros(0)
    # when the night could know: a sensor or a receiver tells at once; an off-site dwell only once
    # the truck came back to load again (so an event ending 23:35 may be decided after midnight)
    decided_s = cs["end"].where(rank != 3, cs["next_load"]) if len(cs) else cs["end"]
    cand_s = pd.DataFrame(
        {
            "haul_id": cs["haul_id"],
            "decided_at": decided_s,
            "rank": rank,
            "order": np.where(rank == 3, -away, epoch_seconds(cs["start"]) if len(cs) else 0.0),
            "unload_stay_id": cs["stay_id"],
            "unload_start": cs["start"],
            "unload_end": cs["end"],
            "unload_lon": cs["lon"],
            "unload_lat": cs["lat"],
            "unload_site_id": cs["site_id"],
            "unload_county_adcode": cs["county_adcode"],
            "unload_province_adcode": cs["province_adcode"],
            "unload_evidence": pd.Series(rank).map({0: "sensor", 1: "receiver", 3: "dwell"}).to_numpy(),
        }
    )
    cand_s = cand_s.loc[cand_s["rank"] < 9]

    # --- candidate silences -----------------------------------------------------------------
    gaps = silences(fixes, params.track_gap_min_s)
    straight_s = (
        haversine_m(gaps["lon0"], gaps["lat0"], gaps["lon1"], gaps["lat1"])
        * 1.3
        / (params.gap_explained_speed_kmh / 3.6)
    )
    unexplained = gaps["gap_s"].to_numpy(float) - np.asarray(straight_s, dtype=float)
    plausible = (gaps["gap_s"] <= params.track_gap_max_s).to_numpy() & (unexplained >= params.gap_unexplained_min_s)
    gaps = _assign(gaps.loc[plausible], "gap_start", visits)
    gaps = gaps.merge(visits[["haul_id", "next_load"]], on="haul_id", how="left")
    came_back_empty = gaps["next_load"].notna() | (gaps["loaded_after_gap"].astype("boolean") == False)  # noqa: E712
    was_loaded = gaps["loaded_before_gap"].astype("boolean").fillna(True)
    gaps = gaps.loc[came_back_empty.fillna(False).to_numpy(bool) & was_loaded.to_numpy(bool)]
    gaps = gaps.assign(
        gap_lon=(gaps["lon0"] + gaps["lon1"]) / 2.0,
        gap_lat=(gaps["lat0"] + gaps["lat1"]) / 2.0,
        gap_max_reach_m=gaps["gap_s"] * params.reach_speed_kmh / 3.6 / 2.0,
    )
    empty_by_sensor = (gaps["loaded_after_gap"].astype("boolean") == False).fillna(False)  # noqa: E712
    # a truck that already stood off-site long enough to unload was probably empty when it went dark
    confident = cand_s.loc[
        (cand_s["rank"] == 3)
        & (cand_s["unload_end"] - cand_s["unload_start"] >= pd.Timedelta(seconds=params.dump_confident_dwell_s))
    ]
    first_dump = confident.groupby("haul_id")["unload_start"].min().rename("_first_dump")
    dump_at = gaps[["haul_id"]].merge(first_dump, left_on="haul_id", right_index=True, how="left")["_first_dump"]
    after_dump = (dump_at.notna() & (gaps["gap_start"].to_numpy() > dump_at.to_numpy())).to_numpy(bool)
    cand_g = pd.DataFrame(
        {
            "haul_id": gaps["haul_id"],
            "decided_at": gaps["gap_end"].where(empty_by_sensor.to_numpy(bool), gaps["next_load"]),
            "rank": np.where(after_dump, 4, 2),
            "order": -gaps["gap_s"].to_numpy(float),
            "unload_stay_id": "",
            "unload_start": gaps["gap_start"],
            "unload_end": gaps["gap_end"],
            "unload_lon": gaps["gap_lon"],
            "unload_lat": gaps["gap_lat"],
            "unload_site_id": "",
            "unload_evidence": "gap",
            "gap_start": gaps["gap_start"],
            "gap_end": gaps["gap_end"],
            "gap_lon": gaps["gap_lon"],
            "gap_lat": gaps["gap_lat"],
            "gap_max_reach_m": gaps["gap_max_reach_m"],
        }
    )
    parts = [c for c in (cand_s, cand_g) if not c.empty]
    if parts:
        cand = pd.concat(parts, ignore_index=True).sort_values(["haul_id", "rank", "order"], kind="stable")
        best = cand.drop_duplicates("haul_id")
    else:
        best = pd.DataFrame(columns=["haul_id"])
    h = visits.merge(best, on="haul_id", how="left")
    if "decided_at" not in h:
        h["decided_at"] = pd.Series(pd.NaT, index=h.index, dtype=h["depart"].dtype)
    h["returned_empty"] = h["next_load"].notna()
    h["end"] = h["next_load"].where(h["next_load"].notna(), h["last_fix"])
    for col in HAUL_COLUMNS:
        if col not in h:
            h[col] = np.nan if col.endswith(("_lon", "_lat", "_m")) else pd.NA
    for col in (
        "unload_stay_id",
        "unload_site_id",
        "unload_county_adcode",
        "unload_province_adcode",
        "unload_evidence",
    ):
        h[col] = h[col].fillna("").astype(object)
    return h[[*HAUL_COLUMNS, "decided_at", "origin_county_adcode", "origin_lon", "origin_lat", "load_start"]]
