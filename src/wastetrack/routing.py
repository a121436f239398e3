"""Route each lead through the liaison network (联络员网络).

Primary (who must act): the county where it happened — its active ``primary``
liaison, else its active ``backup``; a county without an active liaison falls
back to its city, then its province (same rule at each level). Copies (who is
informed): the origin site's county (it traces the source), the carrier's
registered county, and for a cross-border event the province-level liaisons of
both provinces. Town liaisons are in the directory but v1 routes at county
level, as the contract says.

A track gap happened somewhere in a region, not at a point: its lead is placed
in the county most likely affected (``evidence.candidate_counties[0]``, see
``gaps``), which acts; the other counties of the region with a share are
copied in, and when the region reaches into another province than the load's
origin (``cross_border_possible``) the province-level liaisons of every
province involved are copied as for a cross-border event — a load that may
have left its province is the case the network exists for.
"""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd
import pandas as pd


class LiaisonDirectory:
    """Resolved routing table: adcode → the liaison who answers for it (after the primary/backup rule)."""

    def __init__(self, liaisons: pd.DataFrame, boundaries: gpd.GeoDataFrame | None = None) -> None:
        # v1 routes at county level: a town liaison filed under its county's code never answers for it
        county_up = liaisons["level"].astype(str) != "town" if "level" in liaisons else True
        act = liaisons.loc[liaisons["active"].astype(bool) & county_up].copy()
        act["_rank"] = act["role"].map({"primary": 0, "backup": 1}).fillna(2)
        act = act.sort_values(["adcode", "_rank", "liaison_id"], kind="stable").drop_duplicates("adcode")
        self.by_adcode: dict[str, str] = dict(zip(act["adcode"].astype(str), act["liaison_id"], strict=True))
        self.city_of: dict[str, str] = {}
        if boundaries is not None and len(boundaries):
            b = boundaries.loc[boundaries["level"] == "county"]
            self.city_of = dict(zip(b["adcode"].astype(str), b["city_adcode"].astype(str), strict=True))

    def _city(self, county: str) -> str:
        if self.city_of.get(county):
            return self.city_of[county]
        if county.startswith(("11", "12", "31", "50")):  # municipalities: one city code per municipality
            return county[:2] + "0100"
        return county[:4] + "00"

    def resolve(self, adcode: str) -> str:
        """The liaison for an adcode at any level, walking county → city → province."""
        adcode = (adcode or "").strip()
        if not adcode:
            return ""
        chain = [adcode]
        if not adcode.endswith("00"):
            chain.append(self._city(adcode))
        if not adcode.endswith("0000"):
            chain.append(adcode[:2] + "0000")
        for code in chain:
            if code in self.by_adcode:
                return self.by_adcode[code]
        return ""

    def province(self, adcode: str) -> str:
        adcode = (adcode or "").strip()
        return self.by_adcode.get(adcode[:2] + "0000", "") if adcode else ""


def _unique(ids: Iterable[str], exclude: str) -> list[str]:
    seen: list[str] = []
    for i in ids:
        if i and i != exclude and i not in seen:
            seen.append(i)
    return seen


def _region_copies(directory: LiaisonDirectory, lead: object, primary: str) -> list[str]:
    """Copies a track gap's region adds: its other candidate counties; provinces when it may cross a border."""
    if getattr(lead, "kind", "") != "track_gap":
        return []
    ev = getattr(lead, "evidence", None)
    counties = ev.get("candidate_counties") if isinstance(ev, dict) else None
    if not counties:
        return []
    own = str(getattr(lead, "county_adcode", "") or "")
    out = [directory.resolve(str(c.get("county_adcode") or "")) for c in counties
           if str(c.get("county_adcode") or "") != own]
    origin = str(getattr(lead, "origin_county_adcode", "") or "")
    provinces = [str(c.get("province_adcode") or "")[:2] for c in counties]
    if origin and any(p and p != origin[:2] for p in provinces):
        out += [directory.province(origin)] + [directory.province(f"{p}0000") for p in dict.fromkeys(provinces) if p]
    return [x for x in out if x and x != primary]


def route_leads(leads: pd.DataFrame, directory: LiaisonDirectory, carriers: pd.DataFrame) -> pd.DataFrame:
    """Leads with ``primary_liaison_id`` and ``cc_liaison_ids`` set (a few hundred rows: a plain loop)."""
    if leads.empty:
        return leads
    carrier_county = dict(zip(carriers["carrier_id"], carriers["county_adcode"].astype(str), strict=False))
    prim, ccs = [], []
    for r in leads.itertuples(index=False):
        p = directory.resolve(r.county_adcode)
        cc = [
            directory.resolve(r.origin_county_adcode),
            directory.resolve(carrier_county.get(r.carrier_id, "")),
        ]
        if r.cross_border:
            cc += [directory.province(r.province_adcode), directory.province(r.origin_county_adcode)]
        cc += _region_copies(directory, r, p)
        prim.append(p)
        ccs.append(_unique(cc, p))
    out = leads.copy()
    out["primary_liaison_id"] = prim
    out["cc_liaison_ids"] = ccs
    return out
