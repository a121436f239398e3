"""Which truck-nights violate, and the ground-truth record of each violation that happened.

The schedule cycles through every kind and subkind so that even a small
scenario contains each of them, spreads them over trucks and nights, and marks
some to straddle midnight (reported once, on the day they end). A spec the
planner cannot honour (the haul would fall outside the observable window) is
simply dropped: the truth lists only what the data shows.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from wastetrack.simulate.admin import locate
from wastetrack.simulate.nights import MIN, TZ, Haul, ViolationSpec, World, local_epoch
from wastetrack.simulate.routing import route

#: Cycled in this order so a scenario with few violations still covers every kind.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("illegal_dump", "same_county"),
    ("illegal_dump", "other_county"),
    ("illegal_dump", "other_province"),
    ("diverted", "other_receiver"),
    ("unmanifested", ""),
    ("track_gap", ""),
    ("diverted", "not_accepted"),
    ("diverted", "permit_invalid"),
    ("illegal_dump", "other_province"),
    ("track_gap", ""),
    ("illegal_dump", "same_county"),
    ("unmanifested", ""),
    ("illegal_dump", "other_county"),
    ("diverted", "other_receiver"),
)


def schedule(
    rng: np.random.Generator, world: World, n_trucks: int, rate: float = 0.22
) -> list[ViolationSpec]:
    """Violation specs over (truck, night) pairs; at most one per truck-night."""
    n_nights = len(world.nights)
    days = len(world.dates)
    pairs = [(k, n) for k in range(n_trucks) for n in range(n_nights)]
    n_viol = min(len(pairs), max(len(VARIANTS[:9]) + 3, round(rate * n_trucks * days)))
    # nights fully inside the window first; the first night (after midnight only) and last (evening only) next
    weight = np.array([1.0 if 0 < n < n_nights - 1 else 0.6 for _, n in pairs])
    chosen = list(rng.choice(len(pairs), size=n_viol, replace=False, p=weight / weight.sum()))
    specs = []
    for i in range(n_viol):
        kind, sub = VARIANTS[i % len(VARIANTS)]
        if sub in ("other_province", "permit_invalid") and n_nights > 1:
            # long hauls: not on the last night, which is only observable until midnight
            j = next((j for j in range(i, n_viol) if pairs[int(chosen[j])][1] < n_nights - 1), i)
            chosen[i], chosen[j] = chosen[j], chosen[i]
        k, n = pairs[int(chosen[i])]
        night = world.nights[n]
        if n == 0:
            earliest = world.win_start + float(rng.uniform(15, 90)) * MIN
        elif n == n_nights - 1:
            earliest = local_epoch(night, 19)
        else:
            earliest = local_epoch(night, 20) + float(rng.uniform(0, 5)) * 3600
        cross = 0 < n < n_nights - 1 and i % 3 == 1
        target = local_epoch(night + timedelta(days=1)) + float(rng.uniform(-2, 2)) * MIN
        if cross:
            earliest = local_epoch(night, 19)
        specs.append(ViolationSpec(kind, sub, k, n, earliest, cross, target))
    return specs


def _iso(t: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(round(t), TZ).isoformat()


def events_from_hauls(hauls: list[Haul], liaisons, county_city: dict[str, str]) -> list[dict]:
    """Truth events of the violating hauls, located with the project's boundaries."""
    bad = [h for h in hauls if h.kind != "legit"]
    if not bad:
        return []
    loc = locate([h.unload_lon for h in bad], [h.unload_lat for h in bad])
    org = locate([h.origin.lon for h in bad], [h.origin.lat for h in bad])
    events = []
    for i, h in enumerate(bad):
        county = loc.at[i, "county_adcode"] or (h.unload_site.county_adcode if h.unload_site else "")
        prov = loc.at[i, "province_adcode"] or (county[:2] + "0000" if county else "")
        ocounty = org.at[i, "county_adcode"] or h.origin.county_adcode
        oprov = org.at[i, "province_adcode"] or ocounty[:2] + "0000"
        sub = h.subkind
        if h.kind == "illegal_dump":
            sub = (
                "same_county" if county == ocounty else "other_province" if prov != oprov else "other_county"
            )
        end = h.event_end
        from datetime import datetime

        events.append(
            {
                "event_id": f"EV-{datetime.fromtimestamp(end, TZ):%Y%m%d}-{i + 1:04d}",
                "kind": h.kind,
                "subkind": sub,
                "vehicle_id": h.vehicle_id,
                "carrier_id": h.carrier_id,
                "date": datetime.fromtimestamp(end, TZ).date().isoformat(),
                "start": _iso(h.event_start),
                "end": _iso(end),
                "lon": round(h.unload_lon, 6),
                "lat": round(h.unload_lat, 6),
                "county_adcode": county,
                "province_adcode": prov,
                "cross_border": bool(prov != oprov),
                "origin_site_id": h.origin.site_id,
                "origin_county_adcode": ocounty,
                "manifest_id": h.manifest_id,
                "unload_site_id": h.unload_site.site_id if h.unload_site else "",
                "crosses_midnight": datetime.fromtimestamp(h.event_start, TZ).date()
                != datetime.fromtimestamp(end, TZ).date(),
                "primary_liaison_id": route(county, liaisons, county_city),
                "report_ids": [],
                "features": list(dict.fromkeys([*h.features, *(["cross_midnight"] if h.cross_midnight else [])])),
                "notes": {k: v for k, v in h.notes.items() if k not in ("light_x", "light_y")},
                "_haul": h,
            }
        )
    events.sort(key=lambda e: (e["end"], e["vehicle_id"]))
    for i, e in enumerate(events):
        e["event_id"] = f"EV-{e['date'].replace('-', '')}-{i + 1:04d}"
    return events
