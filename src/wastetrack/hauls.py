"""Rebuild hauls: loaded at a construction site, unloaded somewhere, from stays and silences.

A haul starts when a truck leaves a construction site (a loading visit:
consecutive stays at one site — queue, then loading — lasting at least
``load_min_dwell_s`` (with the minutes a dead zone hid right after it, ``dark_at_site_s``),
after which a working load sensor does not read empty,
``left_empty``; a loaded truck does not load again, so visits with no
chance to unload between them are one trip, ``one_loading_per_trip``) and ends
at the first of

* its next loading visit (``ended_by`` ``load``);
* a shift park: an off-site stay of ``shift_park_min_s`` — the truck is home,
  and no unloading or wait lasts that long — or of ``home_park_min_s`` where the
  truck parks for its shifts (``shift_parks``) (``park``);
* a silence longer than ``track_gap_max_s``: the terminal switched off between
  shifts (``off``).

A haul whose end is not in the data yet is *open*; the next night rebuilds it
from the carried tail. Where a haul unloaded is decided by the first of these
steps that finds something, in order of how much the evidence can be trusted:

1. ``sensor_unloadings`` — a stay where the body lifted (``tipping``) or the load
   sensor went from loaded to empty *and stayed empty* (``load_drop_empty_share``
   of the readings until the next loading): the truck says so itself, at once.
2. ``receiver_unloadings`` — a stay at an approved-kind receiving site
   (disposal, recycling, transfer), or right next to one in the same visit
   (``receiver_visits``: the tipping face inside a yard whose GPS drifts):
   whether this load was allowed there is judged later (``detect``), but a
   truck at a receiver's tipping face unloaded. Of the first visit's stays (a
   halt at the gate or a light inside the fence tolerance, then the face), the
   longest is the unloading.
3. ``track_unloadings`` — without either, the truck's movements: its off-site
   stays and its silences (a silence is a candidate only as the contract's track
   gap: ``track_gap_min_s`` or longer, ``gap_unexplained_min_s`` more than
   driving its distance, loaded before and empty after). Each is scored by the
   unloading model (``wastetrack.unloading``: dwell, approach and departure,
   turn, detour, place in the haul, the truck's habits); the most likely one
   is the unloading when it is at least ``unloading_min_probability`` likely.
   This needs the haul's end (what the truck did afterwards is evidence), so
   it is decided only once the haul has ended.

A haul that ends at a park or a switched-off terminal without an unloading
found by steps 1-2 is decided by step 3 as well, on the night it ended: it
does not wait for a loading that comes only the next evening. If no stop or
silence is likely enough, step 4 (``went_home_unloadings``) still takes the
likeliest: the truck went home without calling at a receiver, so the load went
somewhere on the way (a lead with a lower score, ``went_home``).

``decided_at`` — when the night could know — drives the midnight rule: a sensor
or a receiver decides at once (the stay's end); the track only once the haul
ended (the next loading has lasted ``load_min_dwell_s``, the park has lasted
``shift_park_min_s`` — ``home_park_min_s`` at home —, or the terminal came back after its long silence).

Besides the chosen unloading, each haul carries the silence in which an
unloading could best hide (``silence_*``: the chosen track gap, else the one
with the most time driving does not explain): ``detect`` checks it against
the map, because a terminal silent at a receiver's gate explains a haul
without any violation.
All selection is sort-and-take-first over candidate tables, not loops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack.clean import _ts_i8, epoch_seconds, vehicle_codes
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import haversine_m
from wastetrack.features import SAME_PLACE_M, FixIndex, candidate_features, haul_reach, home_m, home_parks
from wastetrack.models import HAUL_COLUMNS, PLACE_COLUMNS, RECEIVER_KINDS, STAY_COLUMNS, require_columns

#: the evidence names, strongest first (``unload_evidence``)
EVIDENCE_ORDER: tuple[str, ...] = ("sensor", "receiver", "dwell", "gap")
#: how a haul ended (``ended_by``): the next loading, a shift park, the terminal off between shifts
ENDINGS: tuple[str, ...] = ("load", "park", "off")
#: the haul's silence ``detect`` checks against receivers (``receiver_silence``)
SILENCE_SLOT: tuple[str, ...] = (
    "silence_start", "silence_end", "silence_s", "silence_unexplained_s", "silence_lon0", "silence_lat0",
    "silence_lon1", "silence_lat1",
)

_VISIT_COLUMNS = (
    "vehicle_id", "origin_site_id", "origin_stay_id", "load_start", "depart", "origin_lon", "origin_lat",
    "origin_county_adcode", "scanned_out",
)
_SILENCE_COLUMNS = (
    "vehicle_id", "gap_start", "gap_end", "gap_s", "lon0", "lat0", "lon1", "lat1", "loaded_before_gap",
    "loaded_after_gap",
)


# ---------------------------------------------------------------- hauls: where they start and end


def visit_numbers(owner: np.ndarray, site: np.ndarray, start: pd.Series, end: pd.Series, merge_gap_s: float,
                  member: np.ndarray | None = None) -> np.ndarray:
    """Visit number of each stay (rows sorted by owner, then start): consecutive stays of one owner (a
    vehicle, a haul) at one site, each beginning within ``merge_gap_s`` of the one before, are one visit —
    the queue at the gate, then the loading or the tipping inside. Only ``member`` rows join a visit."""
    n = len(site)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    t0, t1 = epoch_seconds(start), epoch_seconds(end)
    m = np.ones(n, dtype=bool) if member is None else np.asarray(member, dtype=bool)
    same_as_prev = (owner[1:] == owner[:-1]) & (site[1:] == site[:-1]) & m[1:] & m[:-1]
    same_as_prev &= (t0[1:] - t1[:-1]) <= merge_gap_s
    return np.cumsum(~np.r_[False, same_as_prev])


def loading_visits(stays: pd.DataFrame, merge_gap_s: float = DEFAULT_PARAMS.load_visit_merge_gap_s) -> pd.DataFrame:
    """Consecutive stays of one vehicle at one construction site, close in time, as one loading visit.

    Queue at the gate, then loading inside: two stays, one visit. A truck that
    left and came back to the same site later made a trip in between (maybe a
    dark one): two visits.
    """
    s = stays.sort_values(["vehicle_id", "start"], kind="stable").reset_index(drop=True)
    is_load = (s["site_kind"] == "construction").to_numpy()
    s["_visit"] = visit_numbers(s["vehicle_id"].to_numpy(), s["site_id"].to_numpy(), s["start"], s["end"],
                                merge_gap_s, is_load)
    loads = s.loc[is_load]
    if loads.empty:
        return pd.DataFrame(columns=list(_VISIT_COLUMNS))
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
            # the site's gate scanned the truck out during the visit (``reconcile.place_loadings_by_gate_out``)
            "scanned_out": g["scanned_out"].any() if "scanned_out" in loads else False,
        }
    ).reset_index(drop=True)
    return v.sort_values(["vehicle_id", "depart"], kind="stable", ignore_index=True)


def silences(fixes: pd.DataFrame, min_s: float) -> pd.DataFrame:
    """Gaps between consecutive fixes of one vehicle longer than ``min_s``, with the load state around them."""
    t = epoch_seconds(fixes["ts"])
    veh = vehicle_codes(fixes["vehicle_id"])
    if len(t) < 2:
        return pd.DataFrame(columns=list(_SILENCE_COLUMNS))
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


def _first_after(hauls: pd.DataFrame, events: pd.DataFrame, on: str, columns: list[str]) -> pd.DataFrame:
    """For each haul, ``columns`` of its vehicle's first event whose ``on`` is at or after the departure."""
    if events.empty or hauls.empty:
        return pd.DataFrame({c: pd.Series(pd.NaT, index=hauls.index, dtype=hauls["depart"].dtype) for c in columns})
    q = pd.DataFrame({"_row": np.arange(len(hauls)), "vehicle_id": hauls["vehicle_id"].astype(str).to_numpy(object),
                      "_t": _ts_i8(hauls["depart"])})
    ev = pd.DataFrame({c: events[c].array for c in columns})
    ev["vehicle_id"] = events["vehicle_id"].astype(str).to_numpy(object)
    ev["_t"] = _ts_i8(events[on])
    m = pd.merge_asof(q.sort_values("_t", kind="stable"), ev.sort_values("_t", kind="stable"),
                      on="_t", by="vehicle_id", direction="forward")
    m = m.sort_values("_row", kind="stable")
    return pd.DataFrame({c: m[c].array for c in columns}, index=hauls.index)


def _visit_silences(visits: pd.DataFrame, quiet: pd.DataFrame, edge: str, at: str, params: Params) -> pd.DataFrame:
    """Per visit (row for row): the silence shorter than ``track_gap_max_s`` whose ``edge`` (``gap_start`` /
    ``gap_end``) is the visit's ``at`` time (``depart`` / ``load_start``) — all NaN where there is none."""
    q = quiet.loc[quiet["gap_s"] < params.track_gap_max_s]
    q = q.assign(vehicle_id=q["vehicle_id"].astype(str)).drop_duplicates(["vehicle_id", edge])
    keys = pd.MultiIndex.from_arrays([visits["vehicle_id"].astype(str).to_numpy(object), visits[at]])
    return q.set_index(["vehicle_id", edge]).reindex(keys)


def dark_at_site_s(visits: pd.DataFrame, quiet: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Per visit: the seconds the truck most likely went on loading at the site after its terminal went silent.

    Loading bays in basements and pits are dead zones: a truck can vanish a few
    minutes after it arrives and reappear kilometres away, on its way. The part
    of a silence that begins at the visit's last fix and that driving does not
    explain (its distance along a road at ``gap_explained_speed_kmh``) was most
    likely spent at the site, so it counts towards the loading's length — only
    when the truck reappeared away from the site (``load_dark_away_m``): a
    silence that ends at the site again may hide a dark trip out and back. A
    silence that *ends* at a visit is not counted: it began elsewhere, and its
    minutes could have been spent anywhere on the way (a loaded truck's dark
    detour must not turn a short call at the site into a new loading).
    """
    if visits.empty or quiet.empty:
        return np.zeros(len(visits))
    after = _visit_silences(visits, quiet, "gap_start", "depart", params)
    away = haversine_m(after["lon1"].to_numpy(float), after["lat1"].to_numpy(float),
                       visits["origin_lon"].to_numpy(float), visits["origin_lat"].to_numpy(float))
    idle = np.nan_to_num(np.maximum(unexplained_by_driving_s(after, params), 0.0))
    return np.where(np.nan_to_num(away, nan=0.0) > params.load_dark_away_m, idle, 0.0)


def dark_on_arrival_s(visits: pd.DataFrame, quiet: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Per visit: the seconds of a silence that ends at the visit's first fix and began at the same site.

    A truck that reached the site and lost its signal in the loading bay shows a lone fix at the gate, a
    silence, then a few minutes before it leaves. When the silence began within ``load_dark_away_m`` of the
    site, the part driving does not explain was spent there — unless the truck had just made a visit to the
    same site (within ``load_visit_merge_gap_s`` before the silence): then the silence follows that loading
    and the short call after it is no loading of its own. A silence that began away from the site is never
    counted (a loaded truck's dark detour back to its site is no loading).
    """
    if visits.empty or quiet.empty:
        return np.zeros(len(visits))
    before = _visit_silences(visits, quiet, "gap_end", "load_start", params)
    near = haversine_m(before["lon0"].to_numpy(float), before["lat0"].to_numpy(float),
                       visits["origin_lon"].to_numpy(float), visits["origin_lat"].to_numpy(float))
    at_site = np.nan_to_num(near, nan=np.inf) <= params.load_dark_away_m
    idle = np.nan_to_num(np.maximum(unexplained_by_driving_s(before, params), 0.0))
    return np.where(at_site & ~_just_loaded(visits, before, params), idle, 0.0)


def _just_loaded(visits: pd.DataFrame, before: pd.DataFrame, params: Params) -> np.ndarray:
    """Per visit: the silence before it (``before``, from ``_visit_silences``) began within
    ``load_visit_merge_gap_s`` of the truck's previous visit to the same site — it never left: the visit
    is the end of that one (the bay's dead zone in between), not a loading of its own."""
    veh = visits["vehicle_id"].astype(str).to_numpy(object)
    order = visits.assign(_v=veh).groupby("_v", sort=False)
    prev_site = order["origin_site_id"].shift(1).to_numpy(object)
    prev_depart = order["depart"].shift(1)
    gap_start = pd.Series(before["gap_start"].array, index=visits.index)
    since = (gap_start - prev_depart).dt.total_seconds().to_numpy(float)
    return (prev_site == visits["origin_site_id"].to_numpy(object)) & (
        np.nan_to_num(since, nan=np.inf) <= params.load_visit_merge_gap_s)


def unexplained_by_driving_s(gaps: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Seconds of each silence that driving between its ends does not explain (along a road, at
    ``gap_explained_speed_kmh``): time the truck stood somewhere while its terminal was quiet."""
    road_m = haversine_m(gaps["lon0"], gaps["lat0"], gaps["lon1"], gaps["lat1"]) * params.road_detour_factor
    return gaps["gap_s"].to_numpy(float) - np.asarray(road_m, float) / (params.gap_explained_speed_kmh / 3.6)


def _mostly_empty(known: np.ndarray, loaded: np.ndarray, params: Params) -> np.ndarray:
    """Load-sensor readings that say empty: enough of them, and mostly empty (one flap changes nothing)."""
    return (known >= params.load_drop_min_readings) & (
        (known - loaded) >= params.load_drop_empty_share * np.maximum(known, 1)
    )


def left_empty(
    visits: pd.DataFrame, fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS, fx: FixIndex | None = None,
    quiet: pd.DataFrame | None = None,
) -> np.ndarray:
    """Per visit: did the truck's load sensor say it drove away empty (so the visit was no loading)?

    A truck that stops at a site to wait, turn or ask, and leaves without a load,
    looks like a loading to the track alone; its load sensor tells them apart.
    Only a sensor that works is believed: it must have read ``loaded`` at some
    time in the frame (a sensor stuck at empty must not erase every haul of its
    truck), and the readings from leaving until the truck calls at a site again
    must be mostly empty (``load_drop_empty_share`` of at least
    ``load_drop_min_readings``), so one flapping reading changes nothing and a
    load taken just outside the fence (the yard's GPS drifts) still counts.

    Only the readings from before the truck could unload unseen say how it
    left: a silence of ``stay_silence_split_s`` or more (``quiet``) after the
    departure is such a chance, and a truck that drove off reading loaded,
    went dark for twenty minutes and came back empty left loaded — the readings
    after its silence describe its dark dump, not the site. Where the truck
    went dark before it gave ``load_drop_min_readings`` readings (a dead zone
    at the gate), the whole window decides, unless one of those few read loaded.
    """
    out = np.zeros(len(visits), dtype=bool)
    if visits.empty or "loaded" not in fixes or len(fixes) == 0:
        return out
    fx = FixIndex(fixes) if fx is None else fx
    said_loaded = fixes["loaded"].astype("boolean").fillna(False).to_numpy(bool)
    working = np.bincount(fx.codes[said_loaded], minlength=len(fx.names)) > 0
    code = fx.code_of(visits["vehicle_id"])
    works = (code >= 0) & working[np.maximum(code, 0)]
    if not works.any():
        return out
    # until it calls at a site again (a loading just outside the fence, where the yard's GPS drifts, comes
    # before that and reads loaded), at most the horizon of a load drop
    nxt = visits.groupby(visits["vehicle_id"].astype(str).to_numpy(object), sort=False)["load_start"].shift(-1)
    horizon = visits["depart"] + pd.Timedelta(seconds=params.load_drop_horizon_s)
    until = nxt.where(nxt.notna() & (nxt < horizon), horizon)
    known, loaded = load_readings(fixes, visits["vehicle_id"], visits["depart"], until, fx)
    whole = _mostly_empty(known, loaded, params)
    quiet = silences(fixes, params.stay_silence_split_s) if quiet is None else quiet
    dark = _first_after(visits, quiet, "gap_start", ["gap_start"])["gap_start"].astype(until.dtype)
    before_dark = until.where(dark.isna() | (dark >= until), dark)
    known_b, loaded_b = load_readings(fixes, visits["vehicle_id"], visits["depart"], before_dark, fx)
    enough = known_b >= params.load_drop_min_readings
    return works & np.where(enough, _mostly_empty(known_b, loaded_b, params), whole & (loaded_b == 0))


def one_loading_per_trip(
    visits: pd.DataFrame,
    stays: pd.DataFrame,
    fixes: pd.DataFrame,
    params: Params = DEFAULT_PARAMS,
    quiet: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Loading visits a loaded truck could not have made dropped: a truck loads again only after it could unload.

    Between two loadings the truck must have had a chance to unload: a stay
    off the construction sites (a receiver, a field) or a silence that splits
    stays. Consecutive visits with no such chance between them are one trip
    (the truck stopped by a second site on its way, or waited at one before
    loading at the next); the longest of them is the loading — an excavator
    takes minutes, a stop at a fence in traffic does not.
    """
    if len(visits) < 2:
        return visits
    kind = stays["site_kind"].astype(str)
    chances = [stays.loc[kind != "construction", ["vehicle_id", "start"]].rename(columns={"start": "t"})]
    quiet = silences(fixes, params.stay_silence_split_s) if quiet is None else quiet
    if len(quiet):
        chances.append(quiet[["vehicle_id", "gap_start"]].rename(columns={"gap_start": "t"}))
    ch = pd.concat([c for c in chances if len(c)] or [chances[0]], ignore_index=True)
    v = visits.assign(_row=np.arange(len(visits)), vehicle_id=visits["vehicle_id"].astype(str))
    v["_t"] = _ts_i8(v["load_start"])
    if len(ch):
        c = pd.DataFrame({"vehicle_id": ch["vehicle_id"].astype(str).to_numpy(object), "_t": _ts_i8(ch["t"]),
                          "_chance": _ts_i8(ch["t"])})
        m = pd.merge_asof(v.sort_values("_t", kind="stable"), c.sort_values("_t", kind="stable"),
                          on="_t", by="vehicle_id", direction="backward").sort_values("_row")
        last_chance = m["_chance"].to_numpy(float)
    else:
        last_chance = np.full(len(v), np.nan)
    prev_depart = v.groupby("vehicle_id", sort=False)["depart"].shift(1)
    first = prev_depart.isna().to_numpy()
    could_unload = first | (last_chance > np.where(first, 0, _ts_i8(prev_depart.fillna(v["depart"]))))
    trip = np.cumsum(could_unload)
    dwell = (v["depart"] - v["load_start"]).dt.total_seconds().to_numpy()
    keep = (
        pd.DataFrame({"trip": trip, "dwell": dwell, "row": np.arange(len(v))})
        .sort_values(["trip", "dwell", "row"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("trip")["row"]
    )
    return visits.iloc[np.sort(keep.to_numpy())].reset_index(drop=True)


def shift_parks(stays: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """The off-site stays that end a haul as a park, with ``park_known_s``: how long the stay must have lasted
    for the night to know it is one.

    An off-site stay of ``shift_park_min_s`` anywhere (no unloading or wait lasts that long), or of
    ``home_park_min_s`` within ``features.SAME_PLACE_M`` of another of the truck's stays of that length: the
    truck is back where it parks between shifts. An hour there is a break at home, not a wait with the load:
    without this, a truck that tipped, went home for 1.9 hours and refuelled on its way to the next shift had
    its haul run on through the break and the fuel stop taken for the unloading.
    """
    parks = home_parks(stays, params)
    out = parks.assign(park_known_s=params.shift_park_min_s)
    dur = stays["duration_s"].astype(float)
    short = stays.loc[(stays["site_kind"].astype(str) == "") & (dur >= params.home_park_min_s)
                      & (dur < params.shift_park_min_s)]
    if len(short) and len(parks):
        at_home = short.loc[home_m(short, parks) <= SAME_PLACE_M]
        out = pd.concat([out, at_home.assign(park_known_s=params.home_park_min_s)]) if len(at_home) else out
    return out


def haul_frames(
    stays: pd.DataFrame,
    fixes: pd.DataFrame,
    params: Params = DEFAULT_PARAMS,
    quiet: pd.DataFrame | None = None,
    fx: FixIndex | None = None,
) -> pd.DataFrame:
    """One row per haul: where and when it loaded, and how (and whether yet) it ended.

    Columns: the loading visit's, ``haul_id``, ``next_load``, ``haul_end_at`` (the
    first of the next loading, the start of a shift park, the start of a long
    silence; NaT while the haul is open), ``ended_by`` (``ENDINGS`` or ""),
    ``end_known_at`` (when the night could know it ended), ``last_fix``.
    ``quiet``: the fixes' silences of ``stay_silence_split_s`` or more, if already found.
    """
    quiet = silences(fixes, params.stay_silence_split_s) if quiet is None else quiet
    visits = loading_visits(stays, params.load_visit_merge_gap_s)
    if visits.empty:  # no truck here called at a site (a shard of one, a quiet night): no haul, no error
        return one_loading_per_trip(visits, stays, fixes, params, quiet)
    seen_s = (visits["depart"] - visits["load_start"]).dt.total_seconds().to_numpy(float)
    loading = seen_s + dark_at_site_s(visits, quiet, params) + dark_on_arrival_s(visits, quiet, params) \
        >= params.load_min_dwell_s
    # ... or however short it looked: the site's gate scanned the truck out under a manifest (a sparse feed
    # shows a ten-minute loading as two fixes four minutes apart) — unless the call is the end of a visit the
    # truck never left (the bay's dead zone in between): that visit is the loading already
    scanned = visits["scanned_out"].fillna(False).to_numpy(bool).copy()
    if scanned.any() and len(quiet):
        scanned &= ~_just_loaded(visits, _visit_silences(visits, quiet, "gap_end", "load_start", params), params)
    loading |= scanned
    loading &= ~left_empty(visits, fixes, params, fx, quiet)
    h = one_loading_per_trip(visits.loc[loading].reset_index(drop=True), stays, fixes, params, quiet)
    if h.empty:
        return h
    h["haul_id"] = h["vehicle_id"] + "@" + pd.Series(epoch_seconds(h["depart"]).astype(np.int64)).astype(str)
    h["next_load"] = h.groupby("vehicle_id", sort=False)["load_start"].shift(-1)
    last_fix = fixes.groupby("vehicle_id", sort=False, observed=True)["ts"].max()
    last_fix.index = last_fix.index.astype(str)
    h["last_fix"] = h["vehicle_id"].map(last_fix)

    # a shift park: the first off-site stay after departure long enough to be no unloading and no wait
    parks = shift_parks(stays, params)
    park = _first_after(h, parks.rename(columns={"start": "park_start", "end": "park_end"}), "park_start",
                        ["park_start", "park_known_s"])
    # the terminal off between shifts: the first silence after departure longer than any haul goes dark
    off_gaps = quiet.loc[quiet["gap_s"] >= params.track_gap_max_s] if len(quiet) else quiet
    off = _first_after(h, off_gaps.rename(columns={"gap_start": "off_start", "gap_end": "off_end"}),
                       "off_start", ["off_start", "off_end"])

    # the haul ends at the first of them (each only if it comes after the departure)
    end_at = pd.Series(pd.NaT, index=h.index, dtype=h["depart"].dtype)
    ended_by = np.full(len(h), "", dtype=object)
    for name, t in (("load", h["next_load"]), ("park", park["park_start"]), ("off", off["off_start"])):
        t = t.astype(h["depart"].dtype)
        first = (t.notna() & (t >= h["depart"]) & (end_at.isna() | (t < end_at))).to_numpy(bool)
        end_at = end_at.mask(first, t)
        ended_by[first] = name
    h["haul_end_at"] = end_at
    h["ended_by"] = ended_by
    # when the night could know the haul had ended
    known = pd.Series(pd.NaT, index=h.index, dtype=h["depart"].dtype)
    by = h["ended_by"].to_numpy()
    known = known.mask(by == "load", h["next_load"] + pd.Timedelta(seconds=params.load_min_dwell_s))
    park_known = park["park_start"].astype(h["depart"].dtype) + pd.to_timedelta(
        pd.to_numeric(park["park_known_s"], errors="coerce"), unit="s")
    known = known.mask(by == "park", park_known)
    known = known.mask(by == "off", off["off_end"].astype(h["depart"].dtype))
    h["end_known_at"] = known
    return h


# ---------------------------------------------------------------- candidates within a haul


def _in_haul(events: pd.DataFrame, on: str, hauls: pd.DataFrame) -> pd.DataFrame:
    """Events (stays or silences) with the haul they happened in: departed before, its end not reached yet."""
    ctx = ["depart", "haul_id", "haul_end_at"]
    if events.empty or hauls.empty:
        return events.iloc[:0].assign(**{c: pd.Series(dtype=object) for c in ctx})
    ev = events.reset_index(drop=True)
    ev = ev.assign(vehicle_id=ev["vehicle_id"].astype(str).to_numpy(object), _t=_ts_i8(ev[on]))
    hv = pd.DataFrame({c: hauls[c].array for c in ctx})
    hv["vehicle_id"] = hauls["vehicle_id"].astype(str).to_numpy(object)
    hv["_t"] = _ts_i8(hauls["depart"])
    m = pd.merge_asof(ev.sort_values("_t", kind="stable"), hv.sort_values("_t", kind="stable"),
                      on="_t", by="vehicle_id", direction="backward")
    end = m["haul_end_at"]
    inside = m["haul_id"].notna() & (end.isna() | (m[on] < end))
    return m.loc[inside].drop(columns="_t").reset_index(drop=True)


def load_readings(
    fixes: pd.DataFrame, vehicle_id: pd.Series, t0: pd.Series, t1: pd.Series, fx: FixIndex | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(known, loaded) counts of load-sensor readings of each vehicle in the window (t0, t1], vectorised.

    Fixes are sorted by vehicle and time; one composite key makes every window
    two binary searches and two cumulative-sum look-ups (integer counts: exact
    whatever else the frame holds).
    """
    n = len(vehicle_id)
    if n == 0 or "loaded" not in fixes or len(fixes) == 0:
        return np.zeros(n, np.int64), np.zeros(n, np.int64)
    fx = FixIndex(fixes) if fx is None else fx
    code = fx.code_of(vehicle_id)
    lo = np.where(code >= 0, fx.search(code, _ts_i8(t0), "right"), 0)
    hi = np.where(code >= 0, fx.search(code, _ts_i8(t1), "right"), 0)
    hi = np.maximum(hi, lo)
    load = fixes["loaded"].astype("boolean")
    known_cs = np.r_[0, np.cumsum(load.notna().to_numpy())]
    loaded_cs = np.r_[0, np.cumsum(load.fillna(False).to_numpy(bool))]
    return known_cs[hi] - known_cs[lo], loaded_cs[hi] - loaded_cs[lo]


def _codes(s: pd.Series) -> np.ndarray:
    """Nullable boolean as -1 unknown / 0 false / 1 true (the model's encoding of a sensor reading)."""
    b = s.astype("boolean")
    return np.where(b.isna().to_numpy(), -1, b.fillna(False).to_numpy(bool).astype(int)).astype(np.int8)


def receiver_visits(stays: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Off-site stays right next to a stay at a receiver, in time and space, counted as part of that visit.

    A truck queues at a receiver's gate, then stands at the tipping face inside;
    the yard's walls, stockpiles and pits throw its fixes a few hundred metres
    (GPS drift), so the second stay can fall outside the fence tolerance. A stay
    that begins within ``load_visit_merge_gap_s`` after (or ends that long before)
    a stay at a receiver, within ``receiver_scan_distance_m`` of it, is at that
    receiver — like the stays of one loading visit.
    """
    if stays.empty:
        return stays
    s = stays.sort_values(["vehicle_id", "start"], kind="stable")
    kind = s["site_kind"].astype(str).to_numpy()
    veh = s["vehicle_id"].astype(str).to_numpy()
    t0, t1 = epoch_seconds(s["start"]), epoch_seconds(s["end"])
    lon, lat = s["lon"].to_numpy(float), s["lat"].to_numpy(float)
    is_rcv = np.isin(kind, RECEIVER_KINDS)
    out = s.copy()
    cols = [c for c in ("site_id", "site_kind", *PLACE_COLUMNS[2:]) if c in s]
    for step in (1, -1):  # the receiver stay before, then the one after
        j = np.arange(len(s)) - step
        ok = (j >= 0) & (j < len(s))
        j = np.clip(j, 0, len(s) - 1)
        gap = np.where(step == 1, t0 - t1[j], t0[j] - t1)
        near = haversine_m(lon, lat, lon[j], lat[j]) <= params.receiver_scan_distance_m
        take = ok & (kind == "") & is_rcv[j] & (veh == veh[j]) & (gap >= 0) & (gap <= params.load_visit_merge_gap_s)
        take &= near & (out["site_kind"].astype(str).to_numpy() == "")
        if take.any():
            src = s.iloc[j[take]]
            for c in cols:
                out.loc[out.index[take], c] = src[c].to_numpy()
    return out.loc[stays.index]


def stay_candidates(
    stays: pd.DataFrame,
    fixes: pd.DataFrame,
    hauls: pd.DataFrame,
    params: Params = DEFAULT_PARAMS,
    fx: FixIndex | None = None,
    visits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every non-loading stay inside a haul, with what it says about unloading (``sensor``, ``receiver``).
    ``visits``: the stays already labelled by ``receiver_visits``, if at hand."""
    other = receiver_visits(stays, params) if visits is None else visits
    other = other.loc[other["site_kind"] != "construction"]
    cs = _in_haul(other, "start", hauls)
    if cs.empty:
        return cs.assign(sensor=pd.Series(dtype=bool), receiver=pd.Series(dtype=bool),
                         offsite=pd.Series(dtype=bool))
    cs = cs.merge(hauls[["haul_id", "next_load"]], on="haul_id", how="left")
    tip = cs["tipping_any"].astype("boolean")
    # a load drop is an unloading only if the truck then stays empty until it loads again
    horizon = cs["end"] + pd.Timedelta(seconds=params.load_drop_horizon_s)
    until = cs["haul_end_at"].where(cs["haul_end_at"].notna() & (cs["haul_end_at"] < horizon), horizon)
    known, loaded = load_readings(fixes, cs["vehicle_id"], cs["end"], until, fx)
    stays_empty = _mostly_empty(known, loaded, params)
    drop = (_codes(cs["loaded_before"]) == 1) & (_codes(cs["loaded_after"]) == 0) & stays_empty
    # ... and only during a stay as long as unloading takes (not a day-long park across a sensor reset)
    drop &= (cs["duration_s"].astype(float) <= params.sensor_stay_max_s).to_numpy()
    # ... and not when the sensor reads loaded again over the drive away: the "empty" at the stay was a flap
    # (mostly empty over the next two hours can still hide a load delivered twenty minutes later)
    still = left_loaded(cs, fixes, params, fx)
    drop &= ~still
    cs["sensor"] = tip.fillna(False).to_numpy(bool) | drop
    cs["receiver"] = cs["site_kind"].isin(RECEIVER_KINDS).to_numpy() & ~still
    cs["offsite"] = (cs["site_kind"] == "").to_numpy()
    return cs


def left_loaded(cs: pd.DataFrame, fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS, fx: FixIndex | None = None
                ) -> np.ndarray:
    """Per stay: the truck drove away with its load — a working load sensor read mostly loaded over the
    ``load_still_window_s`` after it and the body never lifted during it.

    A sensor is working when it reads empty at other times of the night (``load_drop_min_readings`` empty
    readings of that truck): one stuck at "loaded" says nothing, and the stay keeps what the map says.
    """
    out = np.zeros(len(cs), dtype=bool)
    if cs.empty or "loaded" not in fixes or fixes.empty:
        return out
    load = fixes["loaded"].astype("boolean")
    empty_readings = load.eq(False).fillna(False)
    per_truck = empty_readings.groupby(fixes["vehicle_id"].astype(str).to_numpy()).sum()
    working = cs["vehicle_id"].astype(str).map(per_truck).fillna(0).to_numpy() >= params.load_drop_min_readings
    if not working.any():
        return out
    until = cs["end"] + pd.Timedelta(seconds=params.load_still_window_s)
    known, loaded = load_readings(fixes, cs["vehicle_id"], cs["end"], until, fx)
    mostly_loaded = (known >= params.load_drop_min_readings) & (loaded >= params.load_drop_empty_share
                                                                * np.maximum(known, 1))
    lifted = cs["tipping_any"].astype("boolean").fillna(False).to_numpy(bool)
    return working & mostly_loaded & ~lifted


def silence_candidates(
    fixes: pd.DataFrame, hauls: pd.DataFrame, params: Params = DEFAULT_PARAMS, quiet: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every silence inside a haul that splits stays (``stay_silence_split_s``), with ``unexplained_s`` and
    ``track_gap`` — whether it is the contract's track gap: long enough, not explained by driving, the
    truck loaded before (or unknown) and empty after (the haul ended, or the sensor reads empty)."""
    gaps = silences(fixes, params.stay_silence_split_s) if quiet is None else quiet
    gaps = gaps.loc[gaps["gap_s"] < params.track_gap_max_s]
    g = _in_haul(gaps, "gap_start", hauls)
    if g.empty:
        return g.assign(unexplained_s=pd.Series(dtype=float), track_gap=pd.Series(dtype=bool))
    g["unexplained_s"] = unexplained_by_driving_s(g, params)
    empty_after = (g["loaded_after_gap"].astype("boolean") == False).fillna(False).to_numpy(bool)  # noqa: E712
    came_back_empty = g["haul_end_at"].notna().to_numpy() | empty_after
    was_loaded = g["loaded_before_gap"].astype("boolean").fillna(True).to_numpy(bool)
    g["track_gap"] = (
        (g["gap_s"].to_numpy(float) >= params.track_gap_min_s)
        & (g["unexplained_s"].to_numpy() >= params.gap_unexplained_min_s)
        & was_loaded
        & came_back_empty
    )
    g["empty_by_sensor"] = empty_after
    return g


def track_candidates(stay_c: pd.DataFrame, silence_c: pd.DataFrame, hauls: pd.DataFrame) -> pd.DataFrame:
    """The sensorless step's candidates in one table: off-site stays and track-gap silences, with their haul.

    Columns are what ``features.candidate_features`` reads: ``kind`` (stay |
    silence), times, the place (mean, first and last point), ``span_s``,
    ``dwell_s``, ``n_fixes``, sensor codes, and the haul's context.
    """
    st = stay_c.loc[stay_c["offsite"]] if len(stay_c) else stay_c
    dwell = st["dwell_s"] if "dwell_s" in st else st.get("duration_s", pd.Series(dtype=float))
    a = pd.DataFrame({
        "haul_id": st["haul_id"],
        "vehicle_id": st["vehicle_id"].astype(str),
        "kind": "stay",
        "stay_id": st["stay_id"],
        "start": st["start"],
        "end": st["end"],
        "lon": st["lon"].astype(float),
        "lat": st["lat"].astype(float),
        "lon0": st["first_lon"].astype(float) if "first_lon" in st else st["lon"].astype(float),
        "lat0": st["first_lat"].astype(float) if "first_lat" in st else st["lat"].astype(float),
        "lon1": st["last_lon"].astype(float) if "last_lon" in st else st["lon"].astype(float),
        "lat1": st["last_lat"].astype(float) if "last_lat" in st else st["lat"].astype(float),
        "span_s": st["duration_s"].astype(float),
        "dwell_s": pd.to_numeric(dwell, errors="coerce").astype(float),
        "n_fixes": st["n_fixes"].astype(float),
        "tipping": _codes(st["tipping_any"]) if len(st) else np.zeros(0, np.int8),
        "loaded_before": _codes(st["loaded_before"]) if len(st) else np.zeros(0, np.int8),
        "loaded_after": _codes(st["loaded_after"]) if len(st) else np.zeros(0, np.int8),
        # where the stay is (a silence is located later, from where its unloading is placed)
        **{c: st[c].fillna("").astype(str) if c in st else "" for c in PLACE_COLUMNS},
    })
    sg = silence_c.loc[silence_c["track_gap"]] if len(silence_c) else silence_c
    b = pd.DataFrame({
        "haul_id": sg["haul_id"],
        "vehicle_id": sg["vehicle_id"].astype(str),
        "kind": "silence",
        "stay_id": "",
        "start": sg["gap_start"],
        "end": sg["gap_end"],
        "lon": (sg["lon0"] + sg["lon1"]) / 2.0,
        "lat": (sg["lat0"] + sg["lat1"]) / 2.0,
        "lon0": sg["lon0"],
        "lat0": sg["lat0"],
        "lon1": sg["lon1"],
        "lat1": sg["lat1"],
        "span_s": sg["gap_s"].astype(float),
        "dwell_s": sg["unexplained_s"].astype(float),
        "n_fixes": 0.0,
        "tipping": -1,
        "loaded_before": _codes(sg["loaded_before_gap"]) if len(sg) else np.zeros(0, np.int8),
        "loaded_after": _codes(sg["loaded_after_gap"]) if len(sg) else np.zeros(0, np.int8),
    })
    parts = [p for p in (a, b) if len(p)]
    if not parts:
        return a.iloc[:0]
    c = pd.concat(parts, ignore_index=True)
    ctx = hauls[["haul_id", "depart", "origin_lon", "origin_lat", "haul_end_at", "ended_by", "next_load",
                 "end_known_at", "haul_reach_m"]]
    c = c.merge(ctx, on="haul_id", how="left")
    return c.sort_values(["vehicle_id", "start", "kind"], kind="stable", ignore_index=True)


# ---------------------------------------------------------------- the steps, strongest evidence first


def _earliest(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per haul: its earliest candidate (a truck unloads once; the first sign of it is the unloading)."""
    return frame.sort_values(["haul_id", "start"], kind="stable").drop_duplicates("haul_id")


def sensor_unloadings(stay_c: pd.DataFrame, track_c: pd.DataFrame) -> pd.DataFrame:
    """Step 1: the first stay where the body lifted or the load dropped for good, or silence the load dropped
    across for good (``track_c["sensor"]``, ``sensor_silences``); decided at its end."""
    parts = [f.loc[f["sensor"].to_numpy(bool)].assign(unload_evidence=how)
             for f, how in ((stay_c, "sensor"), (track_c, "gap")) if len(f) and "sensor" in f]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["haul_id"])
    s = _earliest(pd.concat(parts, ignore_index=True))
    return s.assign(decided_at=s["end"])


def sensor_silences(track_c: pd.DataFrame, fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS,
                    fx: FixIndex | None = None) -> np.ndarray:
    """Per row of ``track_c``: a track-gap silence the load sensor says the load went in — loaded at the last
    fix before, empty at the first after, and mostly empty from then until the haul ended (or
    ``load_drop_horizon_s``), not loaded again over the drive away (``left_loaded``): the tests a stay passes
    in step 1. The truck says where its load went, so the haul is decided when the silence ends: it does not
    wait for the next loading, which may come after midnight (a sensor truck's track gap at 23:14-23:37,
    its next loading at 23:56, was reported a night late)."""
    out = np.zeros(len(track_c), dtype=bool)
    if track_c.empty or "loaded" not in fixes:
        return out
    pick = ((track_c["kind"] == "silence").to_numpy() & (track_c["loaded_before"].to_numpy() == 1)
            & (track_c["loaded_after"].to_numpy() == 0))
    if not pick.any():
        return out
    c = track_c.loc[pick]
    horizon = c["end"] + pd.Timedelta(seconds=params.load_drop_horizon_s)
    until = c["haul_end_at"].where(c["haul_end_at"].notna() & (c["haul_end_at"] < horizon), horizon)
    known, loaded = load_readings(fixes, c["vehicle_id"], c["end"], until, fx)
    still = left_loaded(c.assign(tipping_any=pd.Series(pd.NA, index=c.index, dtype="boolean")), fixes, params, fx)
    out[pick] = _mostly_empty(known, loaded, params) & ~still
    return out


def receiver_unloadings(stay_c: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Step 2: the haul's first visit to a receiving site, at its longest stay; decided at that stay's end.

    A visit is the stays at one receiver's fence, each beginning within ``load_visit_merge_gap_s`` of the
    one before (as a loading visit): a red light or the gate queue, then the tipping face. The body is
    tipped where the truck stood longest, not at the first brief halt inside the fence tolerance.
    """
    r = stay_c.loc[stay_c["receiver"]].sort_values(["haul_id", "start"], kind="stable")
    if r.empty:
        return r.assign(unload_evidence=pd.Series(dtype=object), decided_at=r["end"])
    haul = r["haul_id"].to_numpy()
    visit = visit_numbers(haul, r["site_id"].astype(str).to_numpy(), r["start"], r["end"],
                          params.load_visit_merge_gap_s)
    first = visit == pd.Series(visit).groupby(haul).transform("min").to_numpy()
    v = r.loc[first].assign(_dwell=(epoch_seconds(r["end"]) - epoch_seconds(r["start"]))[first])
    s = v.sort_values(["haul_id", "_dwell", "start"], ascending=[True, False, True], kind="stable")
    s = s.drop_duplicates("haul_id").drop(columns="_dwell")
    return s.assign(unload_evidence="receiver", decided_at=s["end"])


def track_unloadings(track_c: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Step 3: in an ended haul, the most likely off-site stay or silence, if likely enough (``unload_p``).

    Decided when the haul's end became known: what the truck did afterwards is
    part of the evidence.
    """
    if track_c.empty:
        return track_c.assign(unload_evidence=pd.Series(dtype=object), decided_at=pd.Series(dtype=object))
    return _likeliest(track_c.loc[track_c["haul_end_at"].notna()
                                  & (track_c["unload_p"] >= params.unloading_min_probability)])


def _likeliest(c: pd.DataFrame) -> pd.DataFrame:
    """Per haul, its most likely candidate (earliest among equals) as the unloading, decided when the haul's
    end became known. Among the candidates a step would take, one where a pile was reported that night
    (``reported``: ``reported_here``) goes first: the model weighs the track, the report is what was seen on
    the ground there (a fuel stop and the dump beside it are both likely on the track alone)."""
    c = c.assign(_reported=c["reported"].astype(bool) if "reported" in c else False)
    best = c.sort_values(["haul_id", "_reported", "unload_p", "start"], ascending=[True, False, False, True],
                         kind="stable").drop(columns="_reported")
    best = best.drop_duplicates("haul_id")
    evidence = np.where(best["kind"].to_numpy() == "silence", "gap", "dwell")
    return best.assign(unload_evidence=evidence, decided_at=best["end_known_at"])


#: how a haul ends when the truck went home: a shift park, or the terminal off between shifts
WENT_HOME: tuple[str, ...] = ("park", "off")


def delivered_after_home(hauls: pd.DataFrame, visits: pd.DataFrame) -> np.ndarray:
    """Per haul: it ended with the truck home (``WENT_HOME``) and the truck then called at a receiver before
    loading again — it parked loaded (waiting for the receiver to open) and delivered afterwards.
    ``visits``: the stays labelled by ``receiver_visits``."""
    out = np.zeros(len(hauls), dtype=bool)
    home = hauls["haul_end_at"].notna().to_numpy(bool) & hauls["ended_by"].isin(WENT_HOME).to_numpy(bool)
    if not home.any() or visits.empty:
        return out
    v = visits.loc[visits["site_kind"].astype(str).isin(RECEIVER_KINDS), ["vehicle_id", "start"]]
    if v.empty:
        return out
    h = hauls.loc[home, ["vehicle_id", "haul_end_at", "next_load"]].reset_index()
    m = h.astype({"vehicle_id": str}).merge(v.astype({"vehicle_id": str}), on="vehicle_id")
    after = m["start"] >= m["haul_end_at"]
    before_next = m["next_load"].isna() | (m["start"] < m["next_load"])
    hit = m.loc[(after & before_next).to_numpy(bool), "index"].unique()
    out[hauls.index.get_indexer(hit)] = True
    return out


def went_home_guess(hauls: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Per haul: its unloading is step 4's guess (the likeliest stop or silence of a truck that went home
    loaded), not a decision of steps 1-3."""
    if not {"unload_p", "ended_by", "unload_evidence"} <= set(hauls.columns):
        return np.zeros(len(hauls), dtype=bool)
    track = hauls["unload_evidence"].astype(str).isin(("dwell", "gap")).to_numpy(bool)
    unlikely = (pd.to_numeric(hauls["unload_p"], errors="coerce") < params.unloading_min_probability).to_numpy(bool)
    return track & unlikely & hauls["ended_by"].isin(WENT_HOME).to_numpy(bool)


def went_home_unloadings(track_c: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Step 4: a haul that ended with the truck home (``WENT_HOME``) and no unloading found by steps 1-3.

    The truck left a site loaded and went home without calling at a receiver: the load went somewhere on the
    way. Its most likely stop or silence is that place, however unlikely the model finds it on its own (the
    model weighs each stop against a haul that may have unloaded elsewhere; here there is nowhere else). The
    lead carries a lower score (``scoring``: ``went_home``). Not when the truck parked loaded: a working
    load sensor still read loaded after the candidate, or the truck called at a receiver after going home
    and before loading again (``delivered_after_home``, column ``delivered_later``). Nor a stop or silence
    where the truck parks off-shift (within ``features.SAME_PLACE_M`` of one of its shift parks): that is home;
    nor a stop shorter than unloading takes (``unload_min_s``).
    """
    if track_c.empty:
        return track_c.assign(unload_evidence=pd.Series(dtype=object), decided_at=pd.Series(dtype=object))
    later = track_c["delivered_later"].to_numpy(bool)
    # standing, or dark, where the truck parks for its off-shift (one of its own shift parks) is being home
    at_home = track_c["f_home_m"].to_numpy(float) <= SAME_PLACE_M
    # a stop shorter than tipping takes is a light or a gate, not where a whole load went
    long_enough = track_c["dwell_s"].to_numpy(float) >= params.unload_min_s
    return _likeliest(track_c.loc[track_c["haul_end_at"].notna() & track_c["ended_by"].isin(WENT_HOME)
                                  & (track_c["loaded_after"].to_numpy() != 1) & ~later & ~at_home & long_enough])


def choose_unloading(steps: list[pd.DataFrame]) -> pd.DataFrame:
    """Per haul, the row of the first step (strongest evidence) that found one."""
    parts = [s for s in steps if len(s)]
    if not parts:
        return pd.DataFrame(columns=["haul_id"])
    order = pd.concat([s.assign(_step=i) for i, s in enumerate(steps) if len(s)], ignore_index=True)
    return order.sort_values(["haul_id", "_step"], kind="stable").drop_duplicates("haul_id").drop(columns="_step")


def receiver_silence(silence_c: pd.DataFrame) -> pd.DataFrame:
    """Per haul, the silence with the most time not explained by driving (``silence_*``): the one in which
    a visit to a receiver could hide. ``detect`` judges it against the map."""
    if silence_c.empty:
        return pd.DataFrame(columns=["haul_id", *SILENCE_SLOT])
    s = silence_c.sort_values(["haul_id", "unexplained_s"], ascending=[True, False], kind="stable")
    s = s.drop_duplicates("haul_id")
    return pd.DataFrame({
        "haul_id": s["haul_id"],
        "silence_start": s["gap_start"],
        "silence_end": s["gap_end"],
        "silence_s": s["gap_s"].astype(float),
        "silence_unexplained_s": s["unexplained_s"].astype(float),
        "silence_lon0": s["lon0"].astype(float),
        "silence_lat0": s["lat0"].astype(float),
        "silence_lon1": s["lon1"].astype(float),
        "silence_lat1": s["lat1"].astype(float),
    })


# ---------------------------------------------------------------- the stage


def unloading_candidates(
    stays: pd.DataFrame, fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(hauls, stay candidates, silence candidates, track candidates with ``FEATURES``): everything the
    steps decide from. Track candidates are those of hauls steps 1-2 leave undecided (no sensor reading,
    no receiver stay): only there the track decides, so only there are features built. ``wastetrack
    train`` labels the same track candidates, so training and the night see one code path."""
    from wastetrack.features import FEATURES

    quiet = silences(fixes, params.stay_silence_split_s)  # one pass over the fixes for every use of silences
    fx = FixIndex(fixes)  # one index of the fixes for every look-up by time
    hauls = haul_frames(stays, fixes, params, quiet, fx)
    if hauls.empty:
        empty = pd.DataFrame()
        return hauls, empty, empty, empty
    hauls["haul_reach_m"] = haul_reach(hauls, fx)
    rcv = receiver_visits(stays, params)  # once, for the stays' evidence and for deliveries after a park
    stay_c = stay_candidates(stays, fixes, hauls, params, fx, rcv)
    silence_c = silence_candidates(fixes, hauls, params, quiet)
    track_c = track_candidates(stay_c, silence_c, hauls)
    if len(track_c) and len(stay_c):
        ruled = stay_c.loc[stay_c["sensor"] | stay_c["receiver"], "haul_id"].unique()
        track_c = track_c.loc[~track_c["haul_id"].isin(ruled)].reset_index(drop=True)
    if len(track_c):
        feats = candidate_features(track_c, fixes, stays, params, fx)
        track_c = pd.concat([track_c, feats.add_prefix("f_")], axis=1)
        later = hauls.loc[delivered_after_home(hauls, rcv), "haul_id"]
        track_c["delivered_later"] = track_c["haul_id"].isin(later).to_numpy()  # step 4 (went_home_unloadings)
        track_c["sensor"] = sensor_silences(track_c, fixes, params, fx)  # step 1 (sensor_unloadings)
    else:
        track_c = track_c.assign(**{f"f_{f}": pd.Series(dtype=float) for f in FEATURES})
    return hauls, stay_c, silence_c, track_c


def reported_here(c: pd.DataFrame, reports: pd.DataFrame | None, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Per track candidate: a dumping report lies within ``report_near_m`` of it (where a truck that dumped
    there stood) and its window, widened by half an hour each way (as a lead explains a report), covers it.
    ``reports``: the night's, with their windows ``w0``/``w1`` (``trace.report_windows``)."""
    out = np.zeros(len(c), dtype=bool)
    if reports is None or not len(reports) or c.empty or not {"w0", "w1"} <= set(reports.columns):
        return out
    from wastetrack.spacetime import REPORT_TIME_SLACK_S, near_pairs

    r = reports.reset_index(drop=True)
    ci, ri = near_pairs(c["lon"].to_numpy(float), c["lat"].to_numpy(float), r, params.report_near_m)
    if ci.size == 0:
        return out
    s, e = epoch_seconds(c["start"])[ci], epoch_seconds(c["end"])[ci]
    slack = REPORT_TIME_SLACK_S
    ok = (s <= r["w1"].to_numpy(float)[ri] + slack) & (e >= r["w0"].to_numpy(float)[ri] - slack)
    out[ci[ok]] = True
    return out


def build_hauls(stays: pd.DataFrame, fixes: pd.DataFrame, params: Params = DEFAULT_PARAMS,
                reports: pd.DataFrame | None = None) -> pd.DataFrame:
    """Hauls (``models.HAUL_COLUMNS`` and context) of every vehicle, the unloading chosen as described above.
    ``reports``: the night's dumping reports with their windows, if any (a pile reported at one of a haul's
    likely stops makes it the one: ``_likeliest``)."""
    from wastetrack.unloading import score_candidates

    require_columns(stays, [*STAY_COLUMNS, *PLACE_COLUMNS], "labelled stays")
    hauls, stay_c, silence_c, track_c = unloading_candidates(stays, fixes, params)
    if hauls.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in HAUL_COLUMNS})
    if len(track_c):
        track_c["unload_p"] = score_candidates(track_c)
        track_c["reported"] = reported_here(track_c, reports, params)
    best = choose_unloading([
        sensor_unloadings(stay_c, track_c),
        receiver_unloadings(stay_c, params) if len(stay_c) else stay_c,
        track_unloadings(track_c, params) if len(track_c) else track_c,
        went_home_unloadings(track_c, params) if len(track_c) else track_c,
    ])
    chosen = _unloading_columns(best, params)
    h = hauls.merge(chosen, on="haul_id", how="left").merge(receiver_silence(silence_c), on="haul_id", how="left")
    for col in HAUL_COLUMNS:
        if col not in h:
            h[col] = np.nan if col.endswith(("_lon", "_lat", "_m")) else pd.NA
    # a haul placed in a silence is judged by that silence
    tz = h["depart"].dtype
    for a in ("silence_start", "silence_end", "gap_start", "gap_end"):
        h[a] = pd.to_datetime(h[a], utc=True).dt.tz_convert(tz.tz).astype(tz) if a in h else pd.NaT
    for a in (*SILENCE_SLOT[2:], "gap_lon", "gap_lat", "gap_max_reach_m"):
        h[a] = pd.to_numeric(h[a], errors="coerce").astype(float) if a in h else np.nan
    gap = (h["unload_evidence"] == "gap").fillna(False).to_numpy(bool)
    if gap.any():
        h["silence_start"] = h["silence_start"].mask(gap, h["gap_start"])
        h["silence_end"] = h["silence_end"].mask(gap, h["gap_end"])
        for a in ("silence_lon0", "silence_lat0", "silence_lon1", "silence_lat1"):
            h[a] = h[a].mask(gap, h[f"_{a}"])
        h["silence_s"] = h["silence_s"].mask(gap, (h["gap_end"] - h["gap_start"]).dt.total_seconds())
    h = h.drop(columns=[c for c in h.columns if c.startswith("_silence_")])
    if "decided_at" not in h:
        h["decided_at"] = pd.Series(pd.NaT, index=h.index, dtype=h["depart"].dtype)
    h["returned_empty"] = h["haul_end_at"].notna()
    h["end"] = h["haul_end_at"].where(h["haul_end_at"].notna(), h["last_fix"])
    for col in ("unload_stay_id", "unload_site_id", "unload_county_adcode", "unload_province_adcode",
                "unload_evidence"):
        h[col] = h[col].fillna("").astype(object)
    extra = ["decided_at", "origin_county_adcode", "origin_lon", "origin_lat", "load_start", "unload_p",
             "ended_by", "haul_end_at", *SILENCE_SLOT]
    for col in extra:
        if col not in h:
            h[col] = np.nan
    return h[[*HAUL_COLUMNS, *extra]]


def _unloading_columns(best: pd.DataFrame, params: Params) -> pd.DataFrame:
    """The chosen candidate of each haul as ``unload_*`` (and ``gap_*`` for a silence) columns."""
    if best.empty:
        return pd.DataFrame(columns=["haul_id"])
    is_gap = (best["unload_evidence"] == "gap").to_numpy()
    is_stay = ~is_gap
    col = best.get
    start = col("start")
    end = col("end")
    lon = col("lon").astype(float)
    lat = col("lat").astype(float)
    out = pd.DataFrame({
        "haul_id": best["haul_id"].to_numpy(object),
        "decided_at": best["decided_at"].array,
        "unload_stay_id": np.where(is_stay, best["stay_id"].fillna("").astype(str), ""),
        "unload_start": start.array,
        "unload_end": end.array,
        "unload_lon": lon.to_numpy(),
        "unload_lat": lat.to_numpy(),
        "unload_site_id": np.where(is_stay, best["site_id"].fillna("").astype(str), "")
        if "site_id" in best else "",
        "unload_county_adcode": np.where(is_stay, best["county_adcode"].fillna("").astype(str), "")
        if "county_adcode" in best else "",
        "unload_province_adcode": np.where(is_stay, best["province_adcode"].fillna("").astype(str), "")
        if "province_adcode" in best else "",
        "unload_evidence": best["unload_evidence"].to_numpy(object),
        "unload_p": best["unload_p"].astype(float).to_numpy() if "unload_p" in best else np.nan,
    })
    for k in ("lon0", "lat0", "lon1", "lat1"):  # where a chosen silence began and ended
        out[f"_silence_{k}"] = np.where(is_gap, best[k].astype(float), np.nan) if k in best else np.nan
    gap_s = (epoch_seconds(end) - epoch_seconds(start)) if len(best) else np.zeros(0)
    out["gap_start"] = start.where(is_gap).array
    out["gap_end"] = end.where(is_gap).array
    out["gap_lon"] = np.where(is_gap, lon, np.nan)
    out["gap_lat"] = np.where(is_gap, lat, np.nan)
    out["gap_max_reach_m"] = np.where(is_gap, gap_s * params.reach_speed_kmh / 3.6 / 2.0, np.nan)
    return out
