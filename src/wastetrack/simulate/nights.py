"""Night shifts: each truck's itinerary of hauls, legit stops and injected violations.

A truck sleeps in its park, leaves around 20:00, and shuttles between a
construction site and a receiver until about 06:00: queue and creep at the
gate, load 8-20 min, drive, (sometimes) wait loaded at a truck park or fuel
station, queue and unload 5-15 min with the body lifted. A violation spec turns
one haul of a night into an illegal dump, a diverted or unmanifested haul or a
silent terminal (``ViolationSpec``); everything else stays legit, including the
long stops that look suspicious but are not (parks, fuel, jams, parking between
shifts). The planner records every haul (``Haul``) for manifests and truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import numpy as np

from wastetrack.simulate.fleet import Truck
from wastetrack.simulate.geography import (
    COUNTIES,
    Place,
    Site,
    county_full_name,
    nearest_town,
    to_lonlat,
    to_xy,
)
from wastetrack.simulate.trips import RouteBook, Segment, drive, dwell

TZ = timezone(timedelta(hours=8))
_FIELDS = ("村农田边", "村河道旁", "村鱼塘边", "村林地边", "村路边空地")
MIN = 60.0


def local_epoch(d: date, hh: int = 0, mm: int = 0) -> float:
    return datetime.combine(d, time(hh, mm), tzinfo=TZ).timestamp()


def local_date(t: float) -> date:
    return datetime.fromtimestamp(t, TZ).date()


@dataclass
class ViolationSpec:
    kind: str
    subkind: str
    truck: int
    night: int
    earliest: float  # the violating haul loads no earlier than this
    cross_midnight: bool = False
    target: float = 0.0  # cross-midnight: the event's middle should sit here
    used: bool = False


@dataclass
class Haul:
    """One load carried from a construction site, legit or not (manifests and truth are built from it)."""

    vehicle_id: str
    carrier_id: str
    origin: Site
    waste_type: str
    volume_m3: float
    load_start: float
    load_end: float
    kind: str = "legit"  # legit | illegal_dump | diverted | unmanifested | track_gap
    subkind: str = ""
    manifest_dest: Site | None = None
    manifest_status: str = "received"  # received | in_transit | issued | none | reissued
    unload_site: Site | None = None
    unload_lon: float = 0.0
    unload_lat: float = 0.0
    unload_start: float = 0.0
    unload_end: float = 0.0
    gate_in: float | None = None
    event_start: float = 0.0
    event_end: float = 0.0
    roadside: tuple[float, float, float, float] | None = None  # (t0, t1, lon, lat) of a small roadside dump
    cross_midnight: bool = False
    haul_id: str = ""
    manifest_id: str = ""
    spot_name: str = ""


@dataclass
class LongStop:
    vehicle_id: str
    start: float
    end: float
    lon: float
    lat: float
    loaded: bool
    kind: str  # park | fuel | shift_park | site_wait


@dataclass
class World:
    dates: list[date]
    sites: list[Site]
    receivers: list[Site]
    dumps: dict[str, list[Place]]  # county -> dump spots
    parks: dict[str, list[Place]]  # county -> truck parks
    fuel: list[Place]
    win_start: float = 0.0
    win_end: float = 0.0
    nights: list[date] = field(default_factory=list)
    all_days: list[date] = field(default_factory=list)
    routes: RouteBook | None = None

    def __post_init__(self) -> None:
        self.win_start = local_epoch(self.dates[0])
        self.win_end = local_epoch(self.dates[-1] + timedelta(days=1))
        self.nights = [self.dates[0] - timedelta(days=1), *self.dates]
        self.all_days = [*self.nights, self.dates[-1] + timedelta(days=1)]


def _province(site_or_county: str) -> str:
    return COUNTIES[site_or_county].province_adcode


def _point_in(rng: np.random.Generator, site: Site, frac: float = 0.35) -> tuple[float, float]:
    x, y = site.xy
    ang = rng.uniform(0, 2 * np.pi)
    r = rng.uniform(0, frac) * site.radius_m
    return x + r * np.cos(ang), y + r * np.sin(ang)


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


class NightPlanner:
    """Plans all nights of one truck: ``plan()`` returns segments, hauls and legit long stops."""

    def __init__(
        self,
        truck: Truck,
        world: World,
        rng: np.random.Generator,
        specs: dict[int, ViolationSpec],
        roadside_nights: set[int],
        job_site: Site,
        receivers_for: Callable[[Site], list[Site]],
    ):
        self.truck = truck
        self.w = world
        self.rng = rng
        self.specs = specs
        self.roadside_nights = roadside_nights
        self.site = job_site
        self.receivers_for = receivers_for
        self.legit_receivers = receivers_for(job_site)
        self.segs: list[Segment] = []
        self.hauls: list[Haul] = []
        self.stops: list[LongStop] = []
        self.cruise = 45.0 * truck.speed_factor

    # ---- helpers -------------------------------------------------------------------------------------
    def _drive(self, *args, **kwargs) -> Segment:
        """``trips.drive`` on the world's road book, so repeated trips between two places share a road."""
        return drive(*args, routes=self.w.routes, **kwargs)

    def _stop(self, seg: Segment, loaded: bool, kind: str) -> None:
        lon, lat = to_lonlat(seg.x, seg.y)
        self.stops.append(
            LongStop(self.truck.vehicle_id, seg.t0, seg.t1, float(lon), float(lat), loaded, kind)
        )

    def _receiver_for(self, when: float) -> Site:
        """The truck's usual receiver that is valid on the unloading date (nearest first)."""
        d0, d1 = local_date(when), local_date(when + 3 * 3600)
        for r in self.legit_receivers:
            if r.valid_on(d0) and r.valid_on(d1):
                return r
        return self.legit_receivers[-1]

    def _nearest(self, cands: list, k: int = 3):
        sx = self.site.xy
        cands = sorted(cands, key=lambda c: _dist(c.xy, sx))
        return cands[int(self.rng.integers(min(k, len(cands))))] if cands else None

    # ---- building blocks -----------------------------------------------------------------------------
    def _to_site_and_load(self, t: float, pos: tuple[float, float]) -> list[Segment]:
        rng = self.rng
        load_pt = _point_in(rng, self.site)
        creep = float(rng.uniform(80, 260)) if rng.random() < 0.6 else 0.0
        s1 = self._drive(rng, t, pos, load_pt, self.cruise, loaded=False, creep_tail_m=creep)
        dur = float(rng.uniform(8, 20)) * MIN
        s2 = dwell(s1.t1, dur, load_pt, loaded=False, loaded_switch=s1.t1 + dur * rng.uniform(0.6, 0.85))
        s2.tags["load"] = True
        return [s1, s2]

    def _unload_at(
        self,
        t: float,
        pos: tuple[float, float],
        pt: tuple[float, float],
        minutes: tuple[float, float],
        creep: float,
    ) -> list[Segment]:
        rng = self.rng
        s1 = self._drive(rng, t, pos, pt, self.cruise, loaded=True, creep_tail_m=creep)
        dur = float(rng.uniform(*minutes)) * MIN
        tip0 = s1.t1 + dur * rng.uniform(0.15, 0.35)
        tip1 = tip0 + min(dur * 0.4, float(rng.uniform(60, 180)))
        s2 = dwell(s1.t1, dur, pt, loaded=True, loaded_switch=tip1, tipping=(tip0, tip1))
        s2.tags["unload"] = True
        return [s1, s2]

    def _maybe_park_stop(
        self, t: float, pos: tuple[float, float], dest: Site, segs: list[Segment]
    ) -> tuple[float, tuple]:
        """Cross-province hauls sometimes wait loaded at a truck park near the receiver (legit)."""
        rng = self.rng
        parks = [
            p
            for p in self.w.parks.get(dest.county_adcode, [])
            if _dist(p.xy, dest.xy) < 8000 and _dist(pos, p.xy) < _dist(pos, dest.xy)
        ]
        cross = dest.county_adcode[:2] != self.site.county_adcode[:2]
        if parks and rng.random() < (0.5 if cross else 0.12):
            park = parks[int(rng.integers(len(parks)))]
            d1 = self._drive(rng, t, pos, park.xy, self.cruise, loaded=True, creep_tail_m=40)
            st = dwell(d1.t1, float(rng.uniform(15, 45)) * MIN, park.xy, loaded=True)
            st.tags["legit_stop"] = ("park", True)
            segs += [d1, st]
            return st.t1, park.xy
        if rng.random() < 0.07 and self.w.fuel:
            mid = ((pos[0] + dest.xy[0]) / 2, (pos[1] + dest.xy[1]) / 2)
            fuel = min(self.w.fuel, key=lambda f: _dist(f.xy, mid))
            if _dist(fuel.xy, mid) < 0.35 * _dist(pos, dest.xy) + 2000:
                d1 = self._drive(rng, t, pos, fuel.xy, self.cruise, loaded=True, creep_tail_m=30)
                st = dwell(d1.t1, float(rng.uniform(8, 15)) * MIN, fuel.xy, loaded=True)
                st.tags["legit_stop"] = ("fuel", True)
                segs += [d1, st]
                return st.t1, fuel.xy
        return t, pos

    def _new_haul(self, segs: list[Segment], kind: str, subkind: str) -> Haul:
        load = segs[1]
        return Haul(
            self.truck.vehicle_id,
            self.truck.carrier.carrier_id,
            self.site,
            self.site.waste_type,
            round(self.truck.capacity_m3 * float(self.rng.uniform(0.85, 1.0)), 1),
            load.t0,
            load.t1,
            kind=kind,
            subkind=subkind,
        )

    def _finish_receiver(self, haul: Haul, segs: list[Segment], receiver: Site) -> None:
        unload = segs[-1]
        lon, lat = to_lonlat(unload.x, unload.y)
        haul.unload_site = receiver
        haul.unload_lon, haul.unload_lat = float(lon), float(lat)
        haul.unload_start, haul.unload_end = unload.t0, unload.t1
        haul.gate_in = unload.t0 - float(self.rng.uniform(0, 90))
        haul.event_start, haul.event_end = unload.t0, unload.t1

    # ---- hauls ---------------------------------------------------------------------------------------
    def haul_receiver(
        self, t: float, pos, receiver: Site, kind: str = "legit", subkind: str = "", roadside: bool = False
    ) -> tuple[list[Segment], Haul]:
        rng = self.rng
        segs = self._to_site_and_load(t, pos)
        haul = self._new_haul(segs, kind, subkind)
        cur_t, cur = segs[-1].t1, segs[-1].end_xy()
        if roadside:
            rx, ry = receiver.xy
            mx, my = (cur[0] + rx) / 2, (cur[1] + ry) / 2
            dx, dy = rx - cur[0], ry - cur[1]
            n = max(1.0, float(np.hypot(dx, dy)))
            off = float(rng.uniform(150, 500)) * (1 if rng.random() < 0.5 else -1)
            spot = (mx - dy / n * off, my + dx / n * off)
            d1 = self._drive(rng, cur_t, cur, spot, self.cruise, loaded=True)
            st = dwell(d1.t1, float(rng.uniform(5, 8)) * MIN, spot, loaded=True)
            segs += [d1, st]
            lon, lat = to_lonlat(*spot)
            haul.roadside = (st.t0, st.t1, float(lon), float(lat))
            cur_t, cur = st.t1, spot
        else:
            cur_t, cur = self._maybe_park_stop(cur_t, cur, receiver, segs)
        segs += self._unload_at(cur_t, cur, _point_in(rng, receiver), (5, 15), float(rng.uniform(40, 200)))
        self._finish_receiver(haul, segs, receiver)
        return segs, haul

    def haul_dump(self, t: float, pos, spot: Place, subkind: str) -> tuple[list[Segment], Haul]:
        rng = self.rng
        segs = self._to_site_and_load(t, pos)
        haul = self._new_haul(segs, "illegal_dump", subkind)
        haul.spot_name = spot.name
        segs += self._unload_at(segs[-1].t1, segs[-1].end_xy(), spot.xy, (4, 15), float(rng.uniform(30, 120)))
        unload = segs[-1]
        lon, lat = to_lonlat(unload.x, unload.y)
        haul.unload_lon, haul.unload_lat = float(lon), float(lat)
        haul.unload_start, haul.unload_end = unload.t0, unload.t1
        haul.event_start, haul.event_end = unload.t0, unload.t1
        return segs, haul

    def haul_gap(self, t: float, pos, spot: Place) -> tuple[list[Segment], Haul]:
        """Terminal silent 15-60 min while loaded: drive to a spot, unload, drive back towards the site."""
        rng = self.rng
        segs = self._to_site_and_load(t, pos)
        haul = self._new_haul(segs, "track_gap", "")
        haul.spot_name = spot.name
        segs += self._unload_at(segs[-1].t1, segs[-1].end_xy(), spot.xy, (5, 12), float(rng.uniform(30, 100)))
        unload = segs[-1]
        back = self._drive(rng, unload.t1, spot.xy, _point_in(rng, self.site), self.cruise, loaded=False)
        segs.append(back)
        to_spot = segs[-3]
        g0 = to_spot.t0 + (to_spot.t1 - to_spot.t0) * float(rng.uniform(0.1, 0.35))
        g1 = back.t0 + (back.t1 - back.t0) * float(rng.uniform(0.3, 0.8))
        want = float(rng.uniform(15, 60)) * MIN
        if g1 - g0 > want:
            g1 = max(back.t0 + 60.0, g0 + want)
            if g1 - g0 > 60 * MIN:
                g0 = g1 - want
        if g1 - g0 < 15 * MIN:  # too quick: the driver lingers at the spot with the terminal off
            extra = 15 * MIN - (g1 - g0) + float(rng.uniform(1, 8)) * MIN
            unload.t1 += extra
            back.shift(extra)
            g1 += extra
        lon, lat = to_lonlat(unload.x, unload.y)
        haul.unload_lon, haul.unload_lat = float(lon), float(lat)
        haul.unload_start, haul.unload_end = unload.t0, unload.t1
        haul.event_start, haul.event_end = g0, g1
        for s in segs:
            s.tags.setdefault("silent", (g0, g1))
        return segs, haul

    # ---- violations ----------------------------------------------------------------------------------
    def _dump_spot(self, subkind: str) -> Place | None:
        origin = self.site.county_adcode
        prov = _province(origin)
        if subkind == "same_county":
            cands = self.w.dumps.get(origin, [])
        elif subkind == "other_county":
            cands = [p for c, ps in self.w.dumps.items() if c != origin and _province(c) == prov for p in ps]
        else:
            cands = [
                p for c, ps in self.w.dumps.items() if _province(c) != prov and c != "341882" for p in ps
            ]
        sx = self.site.xy
        cands = [p for p in cands if 1500 < _dist(p.xy, sx) < (12000 if subkind == "same_county" else 80000)]
        return self._nearest(cands, 3)

    def _adhoc_spot(self) -> Place:
        """A field 2.5-6 km off the site, for when no listed dump spot is close enough."""
        rng = self.rng
        ang, r = rng.uniform(0, 2 * np.pi), rng.uniform(2500, 6000)
        x, y = self.site.xy
        lon, lat = to_lonlat(x + r * np.cos(ang), y + r * np.sin(ang))
        town = nearest_town(float(lon), float(lat))
        name = f"{county_full_name(town[0])}{town[1]}{_FIELDS[int(rng.integers(len(_FIELDS)))]}"
        return Place(f"AD{int(rng.integers(1e6)):06d}", "dump", name, town[0], float(lon), float(lat))

    def build_violation(self, spec: ViolationSpec, t: float, pos) -> tuple[list[Segment], Haul] | None:
        when = t + 2 * 3600
        d = local_date(when)
        legit = self._receiver_for(when)
        if spec.kind == "illegal_dump":
            spot = self._dump_spot(spec.subkind)
            if spot is None and spec.subkind == "same_county":
                spot = self._adhoc_spot()
            if spot is None:
                return None
            segs, haul = self.haul_dump(t, pos, spot, spec.subkind)
            if self.rng.random() < 0.55:
                haul.manifest_dest = legit
                haul.manifest_status = "in_transit" if self.rng.random() < 0.7 else "issued"
            else:
                haul.manifest_status = "none"
            return segs, haul
        if spec.kind == "track_gap":
            spot = self._dump_spot("same_county")
            if spot is None or _dist(spot.xy, self.site.xy) > 9000:
                spot = self._adhoc_spot()
            segs, haul = self.haul_gap(t, pos, spot)
            if self.rng.random() < 0.5:
                haul.manifest_dest = legit
                haul.manifest_status = "in_transit"
            else:
                haul.manifest_status = "none"
            return segs, haul
        if spec.kind == "unmanifested":
            segs, haul = self.haul_receiver(t, pos, legit, "unmanifested", "")
            haul.manifest_status = "none"
            return segs, haul
        # diverted
        wt = self.site.waste_type
        days = (d, d + timedelta(days=1))
        if spec.subkind == "other_receiver":
            cands = [
                r
                for r in self.w.receivers
                if r is not legit and wt in r.accepts and all(r.valid_on(x) for x in days)
            ]
            dest, manifest_dest, status = self._nearest(cands, 2), legit, "in_transit"
        elif spec.subkind == "not_accepted":
            cands = [r for r in self.w.receivers if wt not in r.accepts and all(r.valid_on(x) for x in days)]
            dest = self._nearest(cands, 2)
            manifest_dest, status = dest, "received"
        else:  # permit_invalid
            cands = [r for r in self.w.receivers if not any(r.valid_on(x) for x in days)]
            dest = self._nearest(cands, 1)
            manifest_dest, status = dest, "received"
        if dest is None or _dist(dest.xy, self.site.xy) > 90000:
            return None
        segs, haul = self.haul_receiver(t, pos, dest, "diverted", spec.subkind)
        valid = dest.valid_on(local_date(haul.unload_start))
        if valid == (
            spec.subkind == "permit_invalid"
        ):  # the unloading fell on a day that changes the verdict
            return None
        haul.manifest_dest, haul.manifest_status = manifest_dest, status
        return segs, haul

    # ---- the nights ----------------------------------------------------------------------------------
    def _commit(self, segs: list[Segment], haul: Haul | None) -> None:
        for s in segs:
            if "legit_stop" in s.tags:
                kind, loaded = s.tags["legit_stop"]
                self._stop(s, loaded, kind)
        self.segs += segs
        if haul is not None:
            self.hauls.append(haul)

    def _window_ok(self, haul: Haul) -> bool:
        return haul.load_start >= self.w.win_start + 10 * MIN and haul.event_end + 45 * MIN <= self.w.win_end

    def _try_violation(self, spec: ViolationSpec, t: float, pos, shift_end: float):
        """The violating haul of ``spec`` starting at ``t``, or None if it cannot happen now."""
        built = self.build_violation(spec, t, pos)
        if built is None:
            return None
        segs, haul = built
        if haul.load_start < spec.earliest:
            return None
        if spec.cross_midnight:
            pad = spec.target - (haul.event_start + haul.event_end) / 2
            if pad > 4 * 3600:
                return None  # too early: do a legit haul first
            if pad > 0:  # wait at the site (for the excavator) so that the event straddles midnight
                wait = dwell(segs[0].t1, pad, segs[0].end_xy(), loaded=False)
                wait.tags["legit_stop"] = ("site_wait", False)
                for sg in segs[1:]:
                    sg.shift(pad)
                    if "silent" in sg.tags:
                        g0, g1 = sg.tags["silent"]
                        sg.tags["silent"] = (g0 + pad, g1 + pad)
                for attr in (
                    "load_start",
                    "load_end",
                    "unload_start",
                    "unload_end",
                    "event_start",
                    "event_end",
                ):
                    setattr(haul, attr, getattr(haul, attr) + pad)
                if haul.gate_in is not None:
                    haul.gate_in += pad
                segs.insert(1, wait)
                haul.cross_midnight = True
        if not self._window_ok(haul) or segs[-1].t1 > shift_end - 30 * MIN:
            return None
        return segs, haul

    def _legit(self, t: float, pos, roadside: bool) -> tuple[list[Segment], Haul]:
        rec = self._receiver_for(t + 2 * 3600)
        segs, haul = self.haul_receiver(t, pos, rec, roadside=roadside)
        if not rec.valid_on(local_date(haul.unload_start)):  # permit lapsed by the time it arrived
            safe = [r for r in self.legit_receivers if all(r.valid_on(d) for d in self.w.all_days)]
            rec = safe[0] if safe else rec
            segs, haul = self.haul_receiver(t, pos, rec)
        r = self.rng.random()
        haul.manifest_dest = rec
        haul.manifest_status = "received" if r < 0.82 else "in_transit" if r < 0.9 else "reissued"
        return segs, haul

    def _shift(self, t: float, pos, shift_end: float, spec: ViolationSpec | None, roadside: bool):
        """Hauls until the shift ends; returns where and when the truck is afterwards (back at its park)."""
        rng = self.rng
        if rng.random() < 0.25 and self.w.fuel:
            fuel = min(self.w.fuel, key=lambda f: _dist(f.xy, pos) + _dist(f.xy, self.site.xy))
            d1 = self._drive(rng, t, pos, fuel.xy, self.cruise, loaded=False, creep_tail_m=30)
            st = dwell(d1.t1, float(rng.uniform(8, 15)) * MIN, fuel.xy, loaded=False)
            st.tags["legit_stop"] = ("fuel", False)
            self._commit([d1, st], None)
            t, pos = st.t1, fuel.xy
        first = True
        while True:
            built = None
            if spec is not None and not spec.used:
                built = self._try_violation(spec, t, pos, shift_end)
                spec.used = built is not None
            if built is None:
                # after midnight, so that the report comes in later the same day
                hour = datetime.fromtimestamp(t, TZ).hour
                use_roadside = (
                    roadside and t > self.w.win_start and hour < 4 and t + 5 * 3600 < self.w.win_end
                )
                segs, haul = self._legit(t, pos, use_roadside)
                if haul.roadside is not None and haul.roadside[1] + 3600 < self.w.win_end:
                    roadside = False
                else:
                    haul.roadside = None
                if segs[-1].t1 > shift_end and not first:
                    break
            else:
                segs, haul = built
            self._commit(segs, haul)
            t, pos = segs[-1].t1, segs[-1].end_xy()
            first = built is not None  # after a violation the truck always goes back to load again
            if t > shift_end - 45 * MIN:
                break
        home = self._drive(rng, t, pos, self.truck.base.xy, self.cruise, loaded=False, creep_tail_m=50)
        self._commit([home], None)
        return home.t1, self.truck.base.xy

    def _park(self, t: float, until: float, pos) -> float:
        park = dwell(t, max(60.0, until - t), pos, loaded=False, kind="park")
        self.segs.append(park)
        if park.t1 - park.t0 > 3600:
            self._stop(park, False, "shift_park")
        return park.t1

    def plan(self, day_worker: bool = False) -> None:
        """All shifts: nights 20:00-06:00, and for day workers some 08:00-16:00 shifts (legit only)."""
        rng = self.rng
        t = self.w.win_start - 12 * 3600
        pos = self.truck.base.xy
        for n, night in enumerate(self.w.nights):
            if day_worker and n > 0 and rng.random() < 0.6:
                start = local_epoch(night, 8) + float(rng.uniform(-30, 40)) * MIN
                t = self._park(t, start, pos)
                t, pos = self._shift(t, pos, local_epoch(night, 15, 30), None, False)
            shift_start = local_epoch(night, 20) + float(np.clip(rng.normal(0, 25), -60, 60)) * MIN
            shift_end = local_epoch(night + timedelta(days=1), 5, 40) + float(rng.uniform(-40, 40)) * MIN
            t = self._park(t, max(shift_start, t + 30 * MIN), pos)
            if rng.random() < 0.15 and len(self.w.sites) > 1:  # moved to another site of the carrier's area
                self.site = min(
                    self.w.sites, key=lambda s: _dist(s.xy, self.truck.base.xy) + rng.uniform(0, 15000)
                )
                self.legit_receivers = self.receivers_for(self.site)
            t, pos = self._shift(t, pos, shift_end, self.specs.get(n), n in self.roadside_nights)
        self.segs.append(dwell(t, max(60.0, self.w.win_end + 3600 - t), pos, loaded=False, kind="park"))

    def silent_windows(self) -> list[tuple[float, float]]:
        return sorted({s.tags["silent"] for s in self.segs if "silent" in s.tags})


def to_xy_place(lon: float, lat: float) -> tuple[float, float]:
    x, y = to_xy(lon, lat)
    return float(x), float(y)
