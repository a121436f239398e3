"""Night shifts: each truck's itinerary of hauls, legit stops and injected violations.

A truck sleeps in its park, leaves around 20:00, and shuttles between a
construction site and a receiver until about 06:00: queue and creep at the
gate, load 8-20 min, drive, (sometimes) wait loaded at a truck park or fuel
station, queue and unload 5-15 min with the body lifted. A violation spec turns
one haul of a night into an illegal dump, a diverted or unmanifested haul or a
silent terminal (``ViolationSpec``); everything else stays legit, including the
long stops that look suspicious but are not (parks, fuel, jams, parking between
shifts). The planner records every haul (``Haul``) for manifests and truth.

Adversarial realism (see ``adversary``): multipath drift at canyon sites, dumps
beside a receiver or a traffic light, legit fuel stops and jams around the dumps
of trucks without sensors, terminals that go dark after a dump, and silences on
the empty drive back from a receiver. Each haul lists what it was given in
``Haul.features`` so the evaluator can say which feature a miss is due to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import numpy as np

from wastetrack.simulate import adversary as adv
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
from wastetrack.simulate.trips import RouteBook, Segment, _cumlen, drive, drive_path, dwell

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
    features: list[str] = field(default_factory=list)  # adversarial features of this haul
    notes: dict = field(default_factory=dict)  # numbers behind the features (distances, counts)
    dark: tuple[float, float] | None = None  # terminal off after the dump (event stays the dump)
    end_t: float = 0.0  # end of the haul's last segment (before the next loading)


@dataclass
class LongStop:
    vehicle_id: str
    start: float
    end: float
    lon: float
    lat: float
    loaded: bool
    kind: str  # park | fuel | shift_park | site_wait | jam | red_light


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
    fences: dict = field(default_factory=dict)  # site_id -> fence in simulator metres
    canyon: frozenset = frozenset()  # site ids where GPS drifts off the fence
    #: positions in the adversarial cycles (``adversary.SPOT_STYLES``, ``SENSORLESS_EXTRAS``), advanced by
    #: dumps that happened, so even a small scenario gets each variant (planners run in a fixed order)
    cycle: dict = field(default_factory=lambda: {"style": 0, "extras": 0})

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
        self.drifts: list[dict] = []
        self.light_stops: list[tuple[float, float, float, float, bool]] = []  # (t0, t1, x, y, loaded)
        self.empty_silences: list[tuple[float, float]] = []
        self._spot_note: dict = {}
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
    def _maybe_drift(self, seg: Segment, site: Site, what: str) -> None:
        """Multipath: at canyon sites (and rarely elsewhere) the dwell's fixes sit 60-150 m off the fence."""
        rng = self.rng
        fence = self.w.fences.get(site.site_id)
        p = adv.DRIFT_P_CANYON if site.site_id in self.w.canyon else adv.DRIFT_P_ELSEWHERE
        if fence is None or rng.random() >= p:
            return
        cx, cy = site.xy
        base = float(np.arctan2(seg.y - cy, seg.x - cx)) if _dist((seg.x, seg.y), (cx, cy)) > 1 else 0.0
        for _ in range(6):  # off this fence, but not into a neighbour's (that would be another site's visit)
            ang = base + float(rng.uniform(-0.8, 0.8))
            x, y, d = adv.point_off_fence(fence, (cx, cy), ang, float(rng.uniform(60, 150)))
            if adv.clear_of_other_fences(self.w.fences, site.site_id, x, y, 200.0):
                seg.bias = (x - seg.x, y - seg.y)
                seg.tags["drift"] = (what, site.site_id, round(d, 1))
                return

    def _to_site_and_load(self, t: float, pos: tuple[float, float]) -> list[Segment]:
        rng = self.rng
        load_pt = _point_in(rng, self.site)
        creep = float(rng.uniform(80, 260)) if rng.random() < 0.6 else 0.0
        s1 = self._drive(rng, t, pos, load_pt, self.cruise, loaded=False, creep_tail_m=creep)
        dur = float(rng.uniform(8, 20)) * MIN
        s2 = dwell(s1.t1, dur, load_pt, loaded=False, loaded_switch=s1.t1 + dur * rng.uniform(0.6, 0.85))
        s2.tags["load"] = True
        self._maybe_drift(s2, self.site, "load")
        return [s1, s2]

    def _unload_at(
        self,
        t: float,
        pos: tuple[float, float],
        pt: tuple[float, float],
        minutes: tuple[float, float],
        creep: float,
        site: Site | None = None,
        path: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> list[Segment]:
        rng = self.rng
        if path is None:
            s1 = self._drive(rng, t, pos, pt, self.cruise, loaded=True, creep_tail_m=creep)
        else:
            s1 = drive_path(rng, t, path[0], path[1], self.cruise, True, creep, path[2])
        dur = float(rng.uniform(*minutes)) * MIN
        tip0 = s1.t1 + dur * rng.uniform(0.15, 0.35)
        tip1 = tip0 + min(dur * 0.4, float(rng.uniform(60, 180)))
        s2 = dwell(s1.t1, dur, pt, loaded=True, loaded_switch=tip1, tipping=(tip0, tip1))
        s2.tags["unload"] = True
        if site is not None:
            self._maybe_drift(s2, site, "unload")
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
        haul = Haul(
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
        if "drift" in load.tags:
            haul.features.append("gps_drift_load")
            haul.notes["drift_load_fence_m"] = load.tags["drift"][2]
        return haul

    def _finish_receiver(self, haul: Haul, segs: list[Segment], receiver: Site) -> None:
        unload = segs[-1]
        lon, lat = to_lonlat(unload.x, unload.y)
        haul.unload_site = receiver
        haul.unload_lon, haul.unload_lat = float(lon), float(lat)
        haul.unload_start, haul.unload_end = unload.t0, unload.t1
        haul.gate_in = unload.t0 - float(self.rng.uniform(0, 90))
        haul.event_start, haul.event_end = unload.t0, unload.t1
        if "drift" in unload.tags:
            haul.features.append("gps_drift_unload")
            haul.notes["drift_unload_fence_m"] = unload.tags["drift"][2]
        for s in segs:
            if "legit_stop" in s.tags and s.tags["legit_stop"][1]:
                haul.features.append(f"{s.tags['legit_stop'][0]}_stop_loaded")

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
            haul.features.append("roadside_small_dump")
        else:
            cur_t, cur = self._maybe_park_stop(cur_t, cur, receiver, segs)
        segs += self._unload_at(
            cur_t, cur, _point_in(rng, receiver), (5, 15), float(rng.uniform(40, 200)), site=receiver
        )
        self._finish_receiver(haul, segs, receiver)
        return segs, haul

    def _side_stop(
        self, kind: str, t: float, pos, toward, loaded: bool, segs: list[Segment], haul: Haul
    ) -> tuple[float, tuple[float, float]]:
        """A legit fuel stop (5-15 min) or jam (3-6 min) before (loaded) or after (empty) a dump."""
        rng = self.rng
        what, when = kind.split("_")
        stop, dur, creep = None, 0.0, 0.0
        if what == "fuel" and self.w.fuel:
            ref = ((pos[0] + toward[0]) / 2, (pos[1] + toward[1]) / 2) if when == "before" else pos
            cands = [
                f
                for f in self.w.fuel
                if _dist(f.xy, pos) > 600 and _dist(f.xy, toward) > 600 and _dist(f.xy, ref) < 6000
            ]
            if cands:
                stop = min(cands, key=lambda f: _dist(f.xy, ref)).xy
                dur, creep = float(rng.uniform(5, 15)) * MIN, 30.0
        if stop is None:  # a jam, or a small fuel station that is in no list, on the way
            span = _dist(pos, toward)
            if span < 1500:
                return t, pos
            f = float(rng.uniform(0.4, 0.8) if when == "before" else rng.uniform(0.15, 0.5))
            ang = rng.uniform(0, 2 * np.pi)
            lat = float(rng.uniform(0, 150))
            stop = (
                pos[0] + f * (toward[0] - pos[0]) + lat * np.cos(ang),
                pos[1] + f * (toward[1] - pos[1]) + lat * np.sin(ang),
            )
            if what == "fuel":
                dur, creep = float(rng.uniform(5, 15)) * MIN, 30.0
            else:
                dur = float(rng.uniform(3, 6)) * MIN
        d1 = self._drive(rng, t, pos, stop, self.cruise, loaded=loaded, creep_tail_m=creep)
        st = dwell(d1.t1, dur, stop, loaded=loaded)
        st.tags["legit_stop"] = (what, loaded)
        segs += [d1, st]
        haul.features.append(f"{what}_stop_{when}_dump")
        return st.t1, stop

    def _dark_return(self, t: float, pos, segs: list[Segment], haul: Haul) -> None:
        """Empty after the dump, the driver switches the terminal off for 20-40 min on the way back."""
        rng = self.rng
        target = _point_in(rng, self.site)
        f = float(rng.uniform(0.3, 0.6))
        mid = (pos[0] + f * (target[0] - pos[0]), pos[1] + f * (target[1] - pos[1]))
        d1 = self._drive(rng, t, pos, mid, self.cruise, loaded=False)
        d2 = self._drive(rng, d1.t1, mid, target, self.cruise, loaded=False)
        g0 = t + min(float(rng.uniform(60, 300)), 0.5 * (d1.t1 - t))
        want = float(rng.uniform(20, 40)) * MIN
        new = [d1]
        if d1.t1 - g0 < want:  # a rest (meal, smoke) off the air, then the rest of the way
            rest = want - (d1.t1 - g0) - float(rng.uniform(0.2, 0.6)) * (d2.t1 - d2.t0)
            if rest > 0:
                new.append(dwell(d1.t1, rest, mid, loaded=False))
                d2.shift(rest)
        new.append(d2)
        g1 = g0 + want
        segs += new
        haul.dark = (g0, g1)
        haul.features.append("dark_after_dump")
        for sg in segs[2:]:
            sg.tags["silent"] = (g0, g1)

    def _near_receiver_spot(self, rec: Site) -> Place | None:
        """A verge 300-900 m outside an approved receiver's fence, on the side the truck comes from."""
        rng = self.rng
        fence = self.w.fences.get(rec.site_id)
        if fence is None:
            return None
        cx, cy = rec.xy
        sx, sy = self.site.xy
        base = float(np.arctan2(sy - cy, sx - cx))
        others = [s for s in (*self.w.sites, *self.w.receivers) if s is not rec]
        for _ in range(10):
            ang = base + float(rng.uniform(-1.0, 1.0))
            x, y, d = adv.point_off_fence(fence, (cx, cy), ang, float(rng.uniform(300, 900)))
            if all(_dist((x, y), o.xy) > o.radius_m + 400 for o in others):
                lon, lat = to_lonlat(x, y)
                town = nearest_town(float(lon), float(lat))
                name = f"{county_full_name(town[0])}{town[1]}{rec.name}附近路边"
                place = Place(f"NR{int(rng.integers(1e6)):06d}", "dump", name, town[0], float(lon), float(lat))
                self._spot_note = {"near_receiver_id": rec.site_id, "near_receiver_fence_m": round(d, 1)}
                return place
        return None

    def _light_spot(self, rec: Site) -> tuple[Place, tuple[Site, int]] | None:
        """A verge 12-35 m off a traffic light on the shared road from the site to its receiver."""
        rng = self.rng
        got = self.w.routes.road_with_lights(self.site.xy, rec.xy) if self.w.routes is not None else None
        if got is None:
            return None
        px, py, lights = got
        cum = _cumlen(px, py)
        ok = lights[cum[lights] > 1500] if len(lights) else lights
        if not len(ok):
            return None
        i = int(ok[int(rng.integers(len(ok)))])
        hx, hy = px[i + 1] - px[i - 1], py[i + 1] - py[i - 1]
        n = max(1e-6, float(np.hypot(hx, hy)))
        off = float(rng.uniform(12, 35)) * (1 if rng.random() < 0.5 else -1)
        x, y = float(px[i] - hy / n * off), float(py[i] + hx / n * off)
        lon, lat = to_lonlat(x, y)
        town = nearest_town(float(lon), float(lat))
        name = f"{county_full_name(town[0])}{town[1]}路口旁空地"
        place = Place(f"RL{int(rng.integers(1e6)):06d}", "dump", name, town[0], float(lon), float(lat))
        self._spot_note = {"light_x": float(px[i]), "light_y": float(py[i])}
        return place, (rec, i)

    def haul_dump(
        self,
        t: float,
        pos,
        spot: Place,
        subkind: str,
        extras: tuple[str, ...] = (),
        approach: tuple[Site, int] | None = None,
    ) -> tuple[list[Segment], Haul]:
        rng = self.rng
        segs = self._to_site_and_load(t, pos)
        haul = self._new_haul(segs, "illegal_dump", subkind)
        haul.spot_name = spot.name
        cur_t, cur = segs[-1].t1, segs[-1].end_xy()
        for e in extras:
            if e in ("fuel_before", "jam_before"):
                cur_t, cur = self._side_stop(e, cur_t, cur, spot.xy, True, segs, haul)
                approach = None
        path = None
        if approach is not None and self.w.routes is not None:
            rec, i = approach
            got = self.w.routes.road_with_lights(cur, rec.xy)
            if got is not None and 0 < i < len(got[0]) - 1:
                px, py, lights = got
                path = (np.r_[px[: i + 1], spot.xy[0]], np.r_[py[: i + 1], spot.xy[1]], lights[lights < i])
        segs += self._unload_at(cur_t, cur, spot.xy, (4, 15), float(rng.uniform(30, 120)), path=path)
        unload = segs[-1]
        lon, lat = to_lonlat(unload.x, unload.y)
        haul.unload_lon, haul.unload_lat = float(lon), float(lat)
        haul.unload_start, haul.unload_end = unload.t0, unload.t1
        haul.event_start, haul.event_end = unload.t0, unload.t1
        cur_t, cur = unload.t1, spot.xy
        for e in extras:
            if e in ("fuel_after", "jam_after"):
                cur_t, cur = self._side_stop(e, cur_t, cur, self.site.xy, False, segs, haul)
        if "dark_after" in extras:
            self._dark_return(cur_t, cur, segs, haul)
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
        for s in segs[2:]:  # after loading: these are the segments a cross-midnight pad shifts
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
            spot, approach, self._spot_note = None, None, {}
            want = "listed"
            if spec.subkind != "other_province":
                want = adv.SPOT_STYLES[self.w.cycle["style"] % len(adv.SPOT_STYLES)]
            if want == "near_receiver":
                spot = self._near_receiver_spot(legit)
            elif want == "red_light":
                got = self._light_spot(legit)
                spot, approach = got if got is not None else (None, None)
            style = want if spot is not None else "listed"
            if spot is None:
                spot = self._dump_spot(spec.subkind)
            if spot is None and spec.subkind == "same_county":
                spot = self._adhoc_spot()
            if spot is None:
                return None
            extras = (
                ()
                if self.truck.sensors
                else adv.SENSORLESS_EXTRAS[self.w.cycle["extras"] % len(adv.SENSORLESS_EXTRAS)]
            )
            segs, haul = self.haul_dump(t, pos, spot, spec.subkind, extras, approach)
            if style != "listed":
                haul.features.insert(0, f"{style}_dump")
                haul.notes.update(self._spot_note)
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
            if haul is not None:
                s.tags["haul"] = haul
        self.segs += segs
        if haul is not None:
            haul.end_t = segs[-1].t1
            self.hauls.append(haul)

    def _window_ok(self, haul: Haul) -> bool:
        return (
            haul.load_start >= self.w.win_start + 10 * MIN
            and haul.event_end + 45 * MIN <= self.w.win_end
            and (haul.dark is None or haul.dark[1] + 15 * MIN <= self.w.win_end)
        )

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
                if haul.dark is not None:
                    haul.dark = (haul.dark[0] + pad, haul.dark[1] + pad)
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
                if built is not None and spec.kind == "illegal_dump":
                    self.w.cycle["style"] += spec.subkind != "other_province"
                    self.w.cycle["extras"] += not self.truck.sensors
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
        self._annotate()

    def _annotate(self) -> None:
        """After planning: long red lights as legit stops, drifts, silences on empty drives back."""
        rng = self.rng
        vid = self.truck.vehicle_id
        for i, s in enumerate(self.segs):
            haul = s.tags.get("haul")
            for a, b, x, y in s.tags.get("light_stops", ()):
                t0, t1 = s.t0 + a, s.t0 + b
                self.light_stops.append((t0, t1, x, y, s.loaded))
                g = s.tags.get("silent")
                if b - a >= 150 and (g is None or t1 < g[0] or t0 > g[1]):  # a stop nobody saw is no stop
                    lon, lat = to_lonlat(x, y)
                    self.stops.append(LongStop(vid, t0, t1, float(lon), float(lat), s.loaded, "red_light"))
                    if haul is not None and s.loaded and "long_red_light_loaded" not in haul.features:
                        haul.features.append("long_red_light_loaded")
            if "drift" in s.tags:
                what, site_id, d = s.tags["drift"]
                lon, lat = to_lonlat(s.x + s.bias[0], s.y + s.bias[1])
                self.drifts.append(
                    {
                        "vehicle_id": vid,
                        "what": what,
                        "site_id": site_id,
                        "t0": s.t0,
                        "t1": s.t1,
                        "lon": float(lon),
                        "lat": float(lat),
                        "fence_distance_m": d,
                        "haul_kind": haul.kind if haul is not None else "",
                    }
                )
            # the empty drive back from a legit unloading at a receiver: terminal off 15-45 min
            nxt = self.segs[i + 1] if i + 1 < len(self.segs) else None
            if (
                s.tags.get("unload")
                and haul is not None
                and haul.kind == "legit"
                and haul.unload_site is not None
                and nxt is not None
                and nxt.kind == "drive"
                and not nxt.loaded
                and "silent" not in nxt.tags
                and rng.random() < adv.EMPTY_SILENCE_P
            ):
                want = float(rng.uniform(15, 45)) * MIN
                room = (nxt.t1 - 10 * MIN) - (nxt.t0 + 60.0)
                if room < want:
                    continue
                g0 = nxt.t0 + 60.0 + float(rng.uniform(0, min(8 * MIN, room - want)))
                g1 = g0 + want
                if g0 < self.w.win_start or g1 > self.w.win_end:
                    continue
                nxt.tags["silent"] = (g0, g1)
                self.empty_silences.append((g0, g1))
                haul.features.append("empty_silence_after_unload")

    def silent_windows(self) -> list[tuple[float, float]]:
        return sorted({s.tags["silent"] for s in self.segs if "silent" in s.tags})


def to_xy_place(lon: float, lat: float) -> tuple[float, float]:
    x, y = to_xy(lon, lat)
    return float(x), float(y)
