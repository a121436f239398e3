"""Which truck-nights violate, and the ground-truth record of each violation that happened.

The schedule deals every (kind, subkind) once first, in a seeded order, so
that even a small scenario contains each of them; the rest follow the world's
own mix (a Dirichlet draw around ``BASE_WEIGHTS``). Specs are spread over
trucks and nights; some straddle midnight and some illegal dumps are the last
haul of the shift (each world draws how many, and has at least one of each
when it can). A spec the planner cannot honour (the haul would fall outside
the observable window) is simply dropped: the truth lists only what the data
shows.

Each truth event says which night must report it (``report_night``), by the
contract's rule: the run of the day on which it ended, unless deciding needs
the next day's data. A sensor reading or a receiver visit decides at once; an
off-site stop or a silence of a truck *without* sensors only once the truck is
seen loading again (``decided_at``: the next loading plus the 5 minutes that
make a loading). An event that cannot be decided before the scenario ends is
marked ``decidable: false`` (no run of this scenario could report it), and so is
an unmanifested haul of the first night that left before the evening: the
contract forbids the first night to judge what the missing previous day would
have decided, and the manifest may be in that day's batch
(``undecidable_reason`` says which).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from wastetrack.simulate.admin import locate
from wastetrack.simulate.nights import MIN, TZ, Haul, ViolationSpec, World, local_epoch
from wastetrack.simulate.routing import route

#: Every kind and subkind the simulator injects.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("illegal_dump", "same_county"),
    ("illegal_dump", "other_county"),
    ("illegal_dump", "other_province"),
    ("diverted", "other_receiver"),
    ("diverted", "not_accepted"),
    ("diverted", "permit_invalid"),
    ("unmanifested", ""),
    ("track_gap", ""),
)
#: The mix around which each world draws its own (Dirichlet, concentration 4 × these).
BASE_WEIGHTS: tuple[float, ...] = (3.0, 2.0, 2.0, 1.5, 0.7, 0.7, 1.5, 1.5)
#: A loading is a loading after this long at the site: a sensorless event is decided then.
LOADING_DECIDES_S = 300.0


def schedule(rng: np.random.Generator, world: World, n_trucks: int) -> list[ViolationSpec]:
    """Violation specs over (truck, night) pairs; at most one per truck-night."""
    k = world.knobs
    assert k is not None
    n_nights = len(world.nights)
    days = len(world.dates)
    pairs = [(kk, n) for kk in range(n_trucks) for n in range(n_nights)]
    n_viol = min(len(pairs), max(len(VARIANTS) + 4, round(k.violation_rate * n_trucks * days)))
    # nights fully inside the window first; the first night (after midnight only) and last (evening only) next
    weight = np.array([1.0 if 0 < n < n_nights - 1 else 0.6 for _, n in pairs])
    chosen = list(rng.choice(len(pairs), size=n_viol, replace=False, p=weight / weight.sum()))
    mix = rng.dirichlet(np.asarray(BASE_WEIGHTS) * 4.0)
    order = [VARIANTS[int(i)] for i in rng.permutation(len(VARIANTS))]
    order += [VARIANTS[int(i)] for i in rng.choice(len(VARIANTS), size=max(0, n_viol - len(order)), p=mix)]
    specs = []
    owed = {"cross": True, "last": True}  # each world gets at least one of each, when it can
    for i in range(n_viol):
        kind, sub = order[i]
        if sub in ("other_province", "permit_invalid") and n_nights > 1:
            # long hauls: not on the last night, which is only observable until midnight
            j = next((j for j in range(i, n_viol) if pairs[int(chosen[j])][1] < n_nights - 1), i)
            chosen[i], chosen[j] = chosen[j], chosen[i]
        kk, n = pairs[int(chosen[i])]
        night = world.nights[n]
        if n == 0:
            earliest = world.win_start + float(rng.uniform(15, 90)) * MIN
        elif n == n_nights - 1:
            earliest = local_epoch(night, 19)
        else:
            earliest = local_epoch(night, 20) + float(rng.uniform(0, 5)) * 3600
        inner = 0 < n < n_nights - 1
        cross = inner and (bool(rng.random() < k.cross_midnight_p) or (owed["cross"] and i % 4 == 1))
        last = (
            kind == "illegal_dump"
            and not cross
            and n < n_nights - 1
            and (bool(rng.random() < k.last_haul_p) or owed["last"])
        )
        owed["cross"] &= not cross
        owed["last"] &= not last
        target = local_epoch(night + timedelta(days=1)) + float(rng.uniform(-2, 2)) * MIN
        if cross:
            earliest = local_epoch(night, 19)
        if last:
            earliest = min(earliest, local_epoch(night, 20))
        specs.append(ViolationSpec(kind, sub, kk, n, earliest, cross, target, last_haul=last))
    return specs


def _iso(t: float) -> str:
    return datetime.fromtimestamp(round(t), TZ).isoformat()


def decided_at(h: Haul) -> float | None:
    """When the evidence of a violating haul was complete (None: not within the scenario's data)."""
    if h.kind in ("illegal_dump", "track_gap") and not h.sensors:
        return None if h.next_load is None else h.next_load + LOADING_DECIDES_S
    return h.event_end


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, TZ).date().isoformat()


#: a manifest may be issued this long before departure (the afternoon before a night haul): on the first night,
#: a haul departing earlier than this after midnight may have its manifest in the missing previous batch
FIRST_NIGHT_MANIFEST_S = 18 * 3600.0


def undecidable_reason(h: Haul, decided: float | None, win_start: float, win_end: float) -> str:
    """Why no run of the scenario can decide this event ("" when one can)."""
    if decided is None or decided >= win_end:
        return "decided only by data after the last batch"
    if h.kind == "unmanifested" and h.load_end < win_start + FIRST_NIGHT_MANIFEST_S:
        # the contract: the first night must not judge what the missing previous day would have decided
        return "first night: its manifest may be in the missing previous day's batch"
    return ""


def events_from_hauls(
    hauls: list[Haul], liaisons, county_city: dict[str, str], win_start: float, win_end: float
) -> list[dict]:
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
        decided = decided_at(h)
        why = undecidable_reason(h, decided, win_start, win_end)
        events.append(
            {
                "event_id": "",
                "kind": h.kind,
                "subkind": sub,
                "vehicle_id": h.vehicle_id,
                "carrier_id": h.carrier_id,
                "date": _day(end),
                "start": _iso(h.event_start),
                "end": _iso(end),
                "lon": round(h.unload_lon, 6),
                "lat": round(h.unload_lat, 6),
                "spots": [[round(a, 6), round(b, 6)] for a, b in (h.spots or [(h.unload_lon, h.unload_lat)])],
                "county_adcode": county,
                "province_adcode": prov,
                "cross_border": bool(prov != oprov),
                "origin_site_id": h.origin.site_id,
                "origin_county_adcode": ocounty,
                "manifest_id": h.manifest_id,
                "unload_site_id": h.unload_site.site_id if h.unload_site else "",
                "crosses_midnight": _day(h.event_start) != _day(end),
                "sensors": bool(h.sensors),
                "last_haul": bool(h.last_haul),
                "style": h.style,
                "decided_at": _iso(decided) if decided is not None else None,
                "report_night": _day(max(end, decided)) if decided is not None else None,
                "decidable": not why,
                "undecidable_reason": why,
                "primary_liaison_id": route(county, liaisons, county_city),
                "report_ids": [],
                "features": list(dict.fromkeys([*h.features, *(["cross_midnight"] if h.cross_midnight else [])])),
                "notes": {
                    k: v for k, v in h.notes.items() if k not in ("light_x", "light_y") and not k.startswith("_")
                },
                "_haul": h,
            }
        )
    return events


def number_events(events: list[dict]) -> None:
    """Stable ids in order of end time: EV-<end date>-<seq>."""
    events.sort(key=lambda e: (e["end"], e["vehicle_id"], e["kind"]))
    for i, e in enumerate(events):
        e["event_id"] = f"EV-{e['date'].replace('-', '')}-{i + 1:04d}"
