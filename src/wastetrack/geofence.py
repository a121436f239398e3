"""Put stays on the map: which site fence (if any) and which county, city and province.

Fences are matched in the metric CRS with a tolerance (``fence_tolerance_m``)
because trucks queue at the gate and GPS noise is tens of metres; counties come
from ``wastetrack.boundaries.locate`` (a vectorised point-in-polygon on the
shipped boundaries or the landing's override).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wastetrack import boundaries as bnd
from wastetrack.clean import _ts_i8
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import METRIC_CRS
from wastetrack.models import PLACE_COLUMNS, STAY_COLUMNS, require_columns


def metric_points(lon: np.ndarray, lat: np.ndarray) -> gpd.GeoSeries:
    return gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(METRIC_CRS)


def site_fences(site_ids: np.ndarray | pd.Series, sites: gpd.GeoDataFrame, crs: str = METRIC_CRS) -> np.ndarray:
    """The fence of each named site in ``crs`` (None where the id is empty or not in ``sites``)."""
    ids = pd.Series(np.asarray(site_ids, dtype=object)).fillna("").astype(str)
    out = np.full(len(ids), None, dtype=object)
    if len(ids) == 0 or sites is None or len(sites) == 0:
        return out
    by_id = sites.drop_duplicates("site_id")
    geoms = pd.Series(np.asarray(by_id.to_crs(crs).geometry.values), index=by_id["site_id"].astype(str).to_numpy())
    known = ids.isin(geoms.index).to_numpy()
    out[known] = geoms.loc[ids[known]].to_numpy()
    return out


def distance_to_site(lon: np.ndarray, lat: np.ndarray, site_ids: np.ndarray | pd.Series,
                     sites: gpd.GeoDataFrame) -> np.ndarray:
    """Metres from each point to the fence of the site named beside it (0 inside; NaN where the site is
    unknown): how near a stop was to its manifest's receiver, a silence to the site it loaded at."""
    fences = site_fences(site_ids, sites)
    if len(fences) == 0:
        return np.zeros(0)
    pts = np.asarray(metric_points(np.asarray(lon, float), np.asarray(lat, float)).values)
    return shapely.distance(fences, pts).astype(float)


def complete_site_counties(sites: gpd.GeoDataFrame, boundaries: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fill a site's missing ``county_adcode`` from its fence (the contract makes it optional)."""
    sites = sites.copy()
    if len(sites) == 0:
        sites["province_adcode"] = pd.Series(dtype=str)
        return sites
    rep = sites.geometry.representative_point()
    where = bnd.locate(rep.x.to_numpy(), rep.y.to_numpy(), boundaries)
    have = sites["county_adcode"].fillna("").astype(str).str.strip()
    sites["county_adcode"] = np.where(have != "", have, where["county_adcode"].to_numpy())
    sites["province_adcode"] = sites["county_adcode"].str[:2] + "0000"
    sites.loc[sites["county_adcode"] == "", "province_adcode"] = ""
    return sites


def match_sites(
    lon: np.ndarray, lat: np.ndarray, sites: gpd.GeoDataFrame, tolerance_m: float
) -> pd.DataFrame:
    """For each point, the nearest site fence within ``tolerance_m``: columns site_id, site_kind, distance_m."""
    n = len(lon)
    out = pd.DataFrame({"site_id": [""] * n, "site_kind": [""] * n, "distance_m": np.full(n, np.inf)})
    if n == 0 or len(sites) == 0:
        return out
    pts = np.asarray(metric_points(lon, lat).values)
    fences = np.asarray(sites.to_crs(METRIC_CRS).geometry.values)
    tree = shapely.STRtree(fences)
    p_idx, f_idx = tree.query(pts, predicate="dwithin", distance=tolerance_m)
    if len(p_idx) == 0:
        return out
    d = shapely.distance(pts[p_idx], fences[f_idx])
    pairs = pd.DataFrame({"p": p_idx, "f": f_idx, "d": d}).sort_values(["p", "d"], kind="stable")
    best = pairs.drop_duplicates("p")
    out.loc[best["p"].to_numpy(), "site_id"] = sites["site_id"].to_numpy()[best["f"].to_numpy()]
    out.loc[best["p"].to_numpy(), "site_kind"] = sites["kind"].to_numpy()[best["f"].to_numpy()]
    out.loc[best["p"].to_numpy(), "distance_m"] = best["d"].to_numpy()
    return out


def nearest_site(lon: np.ndarray, lat: np.ndarray, sites: gpd.GeoDataFrame) -> pd.DataFrame:
    """Nearest fence of ``sites`` to each point (any distance): site_id, distance_m. Evidence for sheets."""
    n = len(lon)
    if n == 0 or len(sites) == 0:
        return pd.DataFrame({"site_id": [""] * n, "distance_m": np.full(n, np.nan)})
    pts = np.asarray(metric_points(lon, lat).values)
    fences = np.asarray(sites.to_crs(METRIC_CRS).geometry.values)
    tree = shapely.STRtree(fences)
    (p_idx, f_idx), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    site_id = np.full(n, "", dtype=object)
    d = np.full(n, np.nan)
    site_id[p_idx] = sites["site_id"].to_numpy()[f_idx]
    d[p_idx] = dist
    return pd.DataFrame({"site_id": site_id, "distance_m": d})


def place_breaks(fixes: pd.DataFrame, stays: pd.DataFrame, sites: gpd.GeoDataFrame | None,
                 params: Params = DEFAULT_PARAMS) -> np.ndarray | None:
    """Per fix: where a stay must end because the truck moved from a construction site's fence to a
    receiver's, or back (None: nowhere).

    A recycling yard or a disposal pit can lie next door to a site (an on-site crusher, a pit across the
    lane). A truck shuttling between the two, crawling the few hundred metres in a queue, looks to the
    speed test like one stay of hours — every loading and every unloading in it lost, or one of them
    taken for the other. A loading and an unloading are different events, so the place decides: a stay
    breaks at the first fix inside (within ``fence_tolerance_m`` of) a fence of the other role, when the
    next fix placed at a fence is of that role too (one fix thrown across by noise moves nothing).
    Neighbouring fences of one role (two sites, two yards) stay one visit, as they were.

    Only stays with fences of both roles within ``stay_site_split_m`` of them are looked at, fix by fix.
    """
    from wastetrack.features import FixIndex
    from wastetrack.models import RECEIVER_KINDS

    if stays is None or stays.empty or sites is None or len(sites) == 0 or len(fixes) == 0:
        return None
    kinds = sites["kind"].astype(str).to_numpy()
    role = np.where(kinds == "construction", 1, np.where(np.isin(kinds, RECEIVER_KINDS), 2, 0))
    if not ((role == 1).any() and (role == 2).any()):
        return None
    fences = np.asarray(sites.to_crs(METRIC_CRS).geometry.values)
    tree = shapely.STRtree(fences)
    pts = np.asarray(metric_points(stays["lon"].to_numpy(float), stays["lat"].to_numpy(float)).values)
    s_idx, f_idx = tree.query(pts, predicate="dwithin", distance=params.stay_site_split_m)
    near = np.zeros((len(stays), 3), dtype=bool)
    near[s_idx, role[f_idx]] = True
    cand = np.flatnonzero(near[:, 1] & near[:, 2])
    if cand.size == 0:
        return None
    fx = FixIndex(fixes)
    c = stays.iloc[cand]
    lo, hi = fx.range_of(fx.code_of(c["vehicle_id"]), _ts_i8(c["start"]), _ts_i8(c["end"]) + 1)
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(lo) else np.zeros(0, int)
    owner = np.repeat(np.arange(len(cand)), hi - lo)
    if idx.size == 0:
        return None
    at = match_sites(fixes["lon"].to_numpy(float)[idx], fixes["lat"].to_numpy(float)[idx], sites,
                     params.fence_tolerance_m)["site_id"]
    role_of = pd.Series(role, index=sites["site_id"].astype(str).to_numpy()).groupby(level=0).max()
    r = at.astype(str).map(role_of).fillna(0).to_numpy(np.int8)
    out = np.zeros(len(fixes), dtype=bool)
    placed = np.flatnonzero(r > 0)  # fixes at some fence, in order; each stay's own run of them
    # a fix placed at the other role's fence between two (or beside one, at a stay's end) of its own is noise
    rp, ow = r[placed], owner[placed]
    prev_same = np.r_[False, ow[1:] == ow[:-1]]
    next_same = np.r_[ow[1:] == ow[:-1], False]
    prev_r = np.r_[0, rp[:-1]]
    next_r = np.r_[rp[1:], 0]
    odd = (prev_same | next_same) & (~prev_same | (rp != prev_r)) & (~next_same | (rp != next_r))
    placed = placed[~odd]
    rp, ow = r[placed], owner[placed]
    # ... what remains changes role between runs of two or more: the stay breaks at each new run's first fix
    k = np.flatnonzero((ow[1:] == ow[:-1]) & (rp[1:] != rp[:-1])) + 1
    out[idx[placed[k]]] = True
    return out if out.any() else None


def detect_placed_stays(fixes: pd.DataFrame, sites: gpd.GeoDataFrame | None, boundaries: gpd.GeoDataFrame,
                        params: Params = DEFAULT_PARAMS, manifests: pd.DataFrame | None = None) -> pd.DataFrame:
    """Stays of these fixes, split where the truck moved between a site and a receiver next door
    (``place_breaks``), placed at fences and in counties (``label_stays``), and — given the manifests —
    at the site whose gate scanned the truck out while it stood just outside
    (``reconcile.place_loadings_by_gate_out``). The night's shards and the model's training both call this."""
    from wastetrack.reconcile import place_loadings_by_gate_out
    from wastetrack.stays import detect_stays

    stays = detect_stays(fixes, params)
    breaks = place_breaks(fixes, stays, sites, params)
    if breaks is not None:
        stays = detect_stays(fixes, params, breaks)
    return place_loadings_by_gate_out(label_stays(stays, sites, boundaries, params), manifests, sites, params)


def label_stays(
    stays: pd.DataFrame,
    sites: gpd.GeoDataFrame,
    boundaries: gpd.GeoDataFrame,
    params: Params = DEFAULT_PARAMS,
) -> pd.DataFrame:
    """Stays with ``models.PLACE_COLUMNS`` added: the site they stood at and the admin units."""
    require_columns(stays, STAY_COLUMNS, "stays")
    lon = stays["lon"].to_numpy(float)
    lat = stays["lat"].to_numpy(float)
    site = match_sites(lon, lat, sites, params.fence_tolerance_m)
    # a stay also counts at a site when it began or ended there (queue at the gate, then inside)
    for a, b in (("last_lon", "last_lat"), ("first_lon", "first_lat")):
        if a in stays:
            alt = match_sites(
                stays[a].to_numpy(float), stays[b].to_numpy(float), sites, params.fence_tolerance_m
            )
            better = alt["distance_m"].to_numpy() < site["distance_m"].to_numpy()
            site.loc[better] = alt.loc[better]
    where = bnd.locate(lon, lat, boundaries)
    out = stays.copy()
    out["site_id"] = site["site_id"].to_numpy()
    out["site_kind"] = site["site_kind"].to_numpy()
    for col in ("county_adcode", "city_adcode", "province_adcode"):
        out[col] = where[col].to_numpy() if len(out) else pd.Series(dtype=str)
    extra = [c for c in out.columns if c not in STAY_COLUMNS and c not in PLACE_COLUMNS]
    return out[[*STAY_COLUMNS, *PLACE_COLUMNS, *extra]]
