"""Night shifts: each truck's itinerary of hauls, legit stops and injected violations.

A truck sleeps in its park, leaves around 20:00, and shuttles between a
construction site and a receiver until about 06:00: queue and creep at the
gate, load 8-20 min, drive (the last kilometres on the receiver's shared access
road, through its hub), sometimes stop on the way (truck park, fuel, a lay-by
before the gate, an odd stop for a call or a meal), queue and unload 5-15 min
with the body lifted. A violation spec turns one haul of a night into an
illegal dump, a diverted or unmanifested haul or a silent terminal
(``ViolationSpec``); everything else stays legit, including the long stops that
look suspicious but are not. The planner records every haul (``Haul``) for
manifests and truth.

What is randomised per world (``profiles.Knobs``) rather than fixed: where a
dump lies (``SPOT_STYLES``: a listed field, an ad-hoc field, a verge at any
distance from 150 m outside a receiver's fence, beside a traffic light, beside
a receiver's busy access road), how long it takes, whether it is split between
two spots, whether legit side stops come before or after it (on any truck),
whether the terminal goes dark after it, whether it is the last haul of the
shift (the truck goes home and loads again only the next evening), how far
multipath drift throws a dwell off its fence, and how often legit drives go
through dead zones (terminal silent, loaded or empty, even through a whole
unloading at a receiver). Each haul lists what it was given in
``Haul.features`` so the evaluator can say which feature a miss is due to.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import shapely

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
from wastetrack.simulate.profiles import Knobs
from wastetrack.simulate.trips import RouteBook, Segment, _cumlen, drive_path, dwell, road_path

TZ = timezone(timedelta(hours=8))
_FIELDS = ("村农田边", "村河道旁", "村鱼塘边", "村林地边", "村路边空地")
MIN = 60.0
#: a last-haul dump is tried once the shift has this long left (a haul takes 1-3 h)
LAST_HAUL_WINDOW_S = 3.5 * 3600.0
#: legit stops around a dump: a fuel station, a jam, an odd stop (call, meal, toilet)
SIDE_STOP_KINDS: tuple[str, ...] = ("fuel", "jam", "odd")
#: extras every world gets at least once (dealt by ``adversary.Deck`` before the world's own rates apply)
DUMP_EXTRAS: tuple[str, ...] = ("split", "side_before", "side_after", "dark_after")

Path = tuple[np.ndarray, np.ndarray, np.ndarray]  # polyline x, y and the vertex indices of its lights


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
    last_haul: bool = False  # the violating haul is the shift's last (the truck goes home afterwards)


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
    spots: list[tuple[float, float]] = field(default_factory=list)  # (lon, lat) of every unloading spot
    style: str = ""  # illegal dumps: the spot style (``profiles.SPOT_STYLES``)
    sensors: bool = False  # the truck has load/tipping sensors
    last_haul: bool = False
    next_load: float | None = None  # when the truck next started loading (decides sensorless events)
    late_manifest: bool = False  # the manifest was entered after departure


@dataclass
class LongStop:
    vehicle_id: str
    start: float
    end: float
    lon: float
    lat: float
    loaded: bool
    kind: str  # park | fuel | shift_park | site_wait | jam | odd | layby | red_light


@dataclass
class DumpPlan:
    """What comes with one illegal dump (drawn from the world's rates; one deck option forced)."""

    before: list[str]  # side-stop kinds on the way to the dump (loaded)
    after: list[str]  # side-stop kinds after it (empty)
    split: bool
    dark_after: bool
    forced: str | None


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
    knobs: Knobs | None = None
    approaches: dict[str, adv.Approach] = field(default_factory=dict)  # receiver id -> access road
    #: ``adversary.Deck``s shared by all planners (they run in a fixed order): "style", "extras"
    decks: dict[str, adv.Deck] = field(default_factory=dict)
    #: receiver id -> how many construction sites send there first (busy access roads)
    popularity: dict[str, int] = field(default_factory=dict)

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


def arrived_to_load(segs: list[Segment], j: int, step_s: float = 10.0) -> float:
    """When the truck of load segment ``j`` arrived inside its site, to stay until it loaded.

    Why not the load segment's start: a truck queues at the gate (the drive's creep tail) or waits for the
    excavator inside the fence first, and a track shows only that it is at the site. The loading that decides
    a sensorless truck's earlier dump is observable from the arrival (the truth's ``decided_at``).
    """
    seg = segs[j]
    cx, cy, r = seg.tags.get("site_at", (seg.x, seg.y, 0.0))
    t = seg.t0
    k = j - 1
    while k >= 0 and segs[k].kind == "dwell" and _dist((segs[k].x, segs[k].y), (cx, cy)) <= r:
        t, k = segs[k].t0, k - 1
    if k >= 0 and segs[k].kind == "drive" and abs(segs[k].t1 - t) < 1.0 and r > 0:
        d = segs[k]
        for tt in np.arange(d.t1, d.t0, -step_s):  # back from the end while still inside
            if _dist(d.position_at(float(tt)), (cx, cy)) > r:
                break
            t = float(tt)
    return t


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(float(a[0]) - float(b[0]), float(a[1]) - float(b[1]))


def _load_index(segs: list[Segment]) -> int:
    """Index of the loading dwell in a haul's segments (odd stops may come before the drive to the site)."""
    return next(i for i, s in enumerate(segs) if s.tags.get("load"))


def _join(legs: list[Path]) -> Path:
    """One polyline from consecutive legs (each leg starts where the previous one ended)."""
    px, py, lights = legs[0]
    for qx, qy, ql in legs[1:]:
        off = len(px) - 1
        px, py = np.r_[px, qx[1:]], np.r_[py, qy[1:]]
        lights = np.r_[lights, np.asarray(ql, dtype=int) + off]
    return px, py, np.asarray(lights, dtype=int)


def _place(rng: np.random.Generator, prefix: str, x: float, y: float, suffix: str) -> Place:
    lon, lat = to_lonlat(x, y)
    town = nearest_town(float(lon), float(lat))
    name = f"{county_full_name(town[0])}{town[1]}{suffix}"
    return Place(f"{prefix}{int(rng.integers(1e6)):06d}", "dump", name, town[0], float(lon), float(lat))


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
        assert world.knobs is not None, "the world needs its knobs"
        self.k: Knobs = world.knobs
        self.rng = rng
        self._gap_rng: np.random.Generator | None = None
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
        self.dead_zones: list[tuple[float, float, str]] = []  # (start, end, where)
        self._spot_note: dict = {}
        self.cruise = 45.0 * truck.speed_factor
        self._rxy = np.array([r.xy for r in world.receivers]).reshape(-1, 2)  # receiver centres, for look-ups
        self._rreach = np.array([r.radius_m * 1.3 + 150 for r in world.receivers])

    # ---- roads ---------------------------------------------------------------------------------------
    def _receiver_near(self, p: tuple[float, float]) -> Site | None:
        d = np.hypot(self._rxy[:, 0] - p[0], self._rxy[:, 1] - p[1])
        hit = np.flatnonzero(d <= self._rreach)
        return self.w.receivers[int(hit[0])] if len(hit) else None

    def _hub_between(self, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float] | None:
        """The access-road hub a drive to (or from) a receiver goes through, when it lies on the way."""
        for end, other in ((b, a), (a, b)):
            rec = self._receiver_near(end)
            ap = self.w.approaches.get(rec.site_id) if rec is not None else None
            if ap is None:
                continue
            h, rxy = ap.hub.xy, rec.xy
            if _dist(other, rxy) > _dist(h, rxy) + 300 and _dist(other, h) + _dist(h, end) < 1.4 * _dist(
                other, end
            ):
                return h
        return None

    def _road(self, a: tuple[float, float], b: tuple[float, float]) -> Path:
        """The road book's road from a to b, or a fresh road-like path when neither end is a known place."""
        got = self.w.routes.road_with_lights(a, b) if self.w.routes is not None else None
        if got is None:
            px, py = road_path(self.rng, a, b)
            return px, py, np.zeros(0, dtype=int)
        return got

    def _legs(self, a: tuple[float, float], b: tuple[float, float]) -> list[Path]:
        hub = self._hub_between(a, b)
        return [self._road(a, b)] if hub is None else [self._road(a, hub), self._road(hub, b)]

    def _drive(self, rng, t0: float, a, b, cruise_kmh: float, loaded: bool, creep_tail_m: float = 0.0) -> Segment:
        """A drive on the world's roads: shared between known places, through a receiver's hub."""
        px, py, lights = _join(self._legs(a, b))
        return drive_path(rng, t0, px, py, cruise_kmh, loaded, creep_tail_m, lights if len(lights) else None)

    # ---- helpers -------------------------------------------------------------------------------------
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
        """Multipath: at canyon sites (and rarely elsewhere) the dwell's fixes sit off the fence.

        How far is the world's drift distribution (``Knobs.drift_m``), so some
        visits drift a few dozen metres and a few more than 200 m.
        """
        rng = self.rng
        fence = self.w.fences.get(site.site_id)
        p = self.k.drift_p_canyon if site.site_id in self.w.canyon else self.k.drift_p_elsewhere
        if fence is None or rng.random() >= p:
            return
        want = self.k.drift_m(rng)
        cx, cy = site.xy
        base = float(np.arctan2(seg.y - cy, seg.x - cx)) if _dist((seg.x, seg.y), (cx, cy)) > 1 else 0.0
        for _ in range(6):  # off this fence, but not into a neighbour's (that would be another site's visit)
            ang = base + float(rng.uniform(-0.8, 0.8))
            x, y, d = adv.point_off_fence(fence, (cx, cy), ang, want)
            if adv.clear_of_other_fences(self.w.fences, site.site_id, x, y, 200.0):
                seg.bias = (x - seg.x, y - seg.y)
                seg.tags["drift"] = (what, site.site_id, round(d, 1))
                return

    def _to_site_and_load(self, t: float, pos) -> list[Segment]:
        rng = self.rng
        segs: list[Segment] = []
        if rng.random() < 0.5 * self.k.odd_stop_p and _dist(pos, self.site.xy) > 3000:
            t, pos = self._side_stop("odd", "after", t, pos, self.site.xy, False, segs, None)
        load_pt = _point_in(rng, self.site)
        creep = float(rng.uniform(80, 260)) if rng.random() < 0.6 else 0.0
        s1 = self._drive(rng, t, pos, load_pt, self.cruise, loaded=False, creep_tail_m=creep)
        dur = float(rng.uniform(8, 20)) * MIN
        s2 = dwell(s1.t1, dur, load_pt, loaded=False, loaded_switch=s1.t1 + dur * rng.uniform(0.6, 0.85))
        s2.tags["load"] = True
        s2.tags["site_at"] = (*self.site.xy, self.site.radius_m)
        self._maybe_drift(s2, self.site, "load")
        return [*segs, s1, s2]

    def _unload_at(
        self,
        t: float,
        pos: tuple[float, float],
        pt: tuple[float, float],
        dur_s: float,
        creep: float,
        site: Site | None = None,
        path: Path | None = None,
        partial: bool = False,
    ) -> list[Segment]:
        """Drive to ``pt`` and unload there for ``dur_s``; ``partial``: tip part of the load, stay loaded."""
        rng = self.rng
        if path is None:
            s1 = self._drive(rng, t, pos, pt, self.cruise, loaded=True, creep_tail_m=creep)
        else:
            lights = path[2] if len(path[2]) else None
            s1 = drive_path(rng, t, path[0], path[1], self.cruise, True, creep, lights)
        tip0 = s1.t1 + dur_s * rng.uniform(0.15, 0.35)
        tip1 = tip0 + min(dur_s * 0.4, float(rng.uniform(60, 180)))
        switch = None if partial else tip1
        s2 = dwell(s1.t1, dur_s, pt, loaded=True, loaded_switch=switch, tipping=(tip0, tip1))
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

    def _layby_stop(
        self, t: float, pos: tuple[float, float], receiver: Site, segs: list[Segment]
    ) -> tuple[float, tuple[float, float], Path | None]:
        """Wait loaded 3-15 min at a lay-by of the receiver's access road (gate not open yet, queue).

        Returns the new time and place, and the rest of the access road to the gate.
        """
        rng = self.rng
        ap = self.w.approaches.get(receiver.site_id)
        if ap is None or not ap.laybys or self._hub_between(pos, receiver.xy) is None:
            return t, pos, None
        i, lx, ly = ap.laybys[int(rng.integers(len(ap.laybys)))]
        r1 = self._road(pos, ap.hub.xy)
        r2 = self._road(ap.hub.xy, receiver.xy)
        if not 0 < i < len(r2[0]) - 1:
            return t, pos, None
        px, py, lights = _join([r1, (r2[0][: i + 1], r2[1][: i + 1], r2[2][r2[2] < i])])
        d1 = drive_path(rng, t, np.r_[px, lx], np.r_[py, ly], self.cruise, True, 20.0, lights if len(lights) else None)
        st = dwell(d1.t1, float(rng.uniform(3, 15)) * MIN, (lx, ly), loaded=True)
        st.tags["legit_stop"] = ("layby", True)
        segs += [d1, st]
        rest = (np.r_[lx, r2[0][i + 1 :]], np.r_[ly, r2[1][i + 1 :]], r2[2][r2[2] > i] - i)
        return st.t1, (lx, ly), rest

    def _new_haul(self, segs: list[Segment], kind: str, subkind: str) -> Haul:
        load = segs[_load_index(segs)]
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
            sensors=self.truck.sensors,
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
        haul.spots = [(float(lon), float(lat))]
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
        unload_pt = _point_in(rng, receiver)
        path: Path | None = None
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
            if rng.random() < self.k.odd_stop_p:
                cur_t, cur = self._side_stop("odd", "before", cur_t, cur, receiver.xy, True, segs, None)
            if rng.random() < self.k.layby_stop_p:
                cur_t, cur, path = self._layby_stop(cur_t, cur, receiver, segs)
        if path is not None:  # the access road ends at the receiver's centre: end it where the truck unloads
            path = (np.r_[path[0][:-1], unload_pt[0]], np.r_[path[1][:-1], unload_pt[1]], path[2])
        segs += self._unload_at(
            cur_t, cur, unload_pt, float(rng.uniform(5, 15)) * MIN, float(rng.uniform(40, 200)), receiver, path
        )
        self._finish_receiver(haul, segs, receiver)
        return segs, haul

    def _side_stop(
        self, what: str, when: str, t: float, pos, toward, loaded: bool, segs: list[Segment], haul: Haul | None
    ) -> tuple[float, tuple[float, float]]:
        """A legit fuel stop (5-15 min), jam (3-6 min) or odd stop (3-12 min) on the way ``toward``.

        Around a dump it may come before (loaded) or after (empty) it, on any
        truck: a detector must not take the first or the last off-site stop of a
        haul as its unloading.
        """
        rng = self.rng
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
        if stop is None:  # a jam, an odd stop, or a small fuel station that is in no list, on the way
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
            if self._receiver_near(stop) is not None:
                return t, pos
            if what == "fuel":
                dur, creep = float(rng.uniform(5, 15)) * MIN, 30.0
            elif what == "odd":
                dur = float(rng.uniform(3, 12)) * MIN
            else:
                dur = float(rng.uniform(3, 6)) * MIN
        d1 = self._drive(rng, t, pos, stop, self.cruise, loaded=loaded, creep_tail_m=creep)
        st = dwell(d1.t1, dur, stop, loaded=loaded)
        st.tags["legit_stop"] = (what, loaded)
        segs += [d1, st]
        if haul is not None:
            haul.features.append(f"{what}_stop_{when}_dump")
        return st.t1, stop

    def _dark_return(self, t: float, pos, target: tuple[float, float], segs: list[Segment], haul: Haul) -> None:
        """Empty after the dump, the driver switches the terminal off for 20-40 min on the way back."""
        rng = self.rng
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
        for sg in segs[_load_index(segs) + 1 :]:
            sg.tags["silent"] = (g0, g1)

    # ---- dump spots ----------------------------------------------------------------------------------
    def _near_receiver_spot(self, rec: Site) -> Place | None:
        """A verge outside an approved receiver's fence, on the side the truck comes from.

        How far is the world's distribution (``Knobs.near_receiver_m``): from
        150 m, often within 600 m, sometimes 2 km — never one band a detector
        could keep clear of.
        """
        rng = self.rng
        fence = self.w.fences.get(rec.site_id)
        if fence is None:
            return None
        cx, cy = rec.xy
        sx, sy = self.site.xy
        base = float(np.arctan2(sy - cy, sx - cx))
        others = [s for s in (*self.w.sites, *self.w.receivers) if s is not rec]
        want = self.k.near_receiver_m(rng)
        for _ in range(10):
            ang = base + float(rng.uniform(-1.2, 1.2))
            x, y, d = adv.point_off_fence(fence, (cx, cy), ang, want)
            if all(_dist((x, y), o.xy) > o.radius_m + 400 for o in others):
                place = _place(rng, "NR", x, y, f"{rec.name}附近路边")
                self._spot_note = {"near_receiver_id": rec.site_id, "near_receiver_fence_m": round(d, 1)}
                return place
        return None

    def _route_to(self, rec: Site) -> tuple[Path, int | None]:
        """The route from the job site to ``rec`` and the index of its hub vertex (None: no hub)."""
        legs = self._legs(self.site.xy, rec.xy)
        return _join(legs), (len(legs[0][0]) - 1 if len(legs) == 2 else None)

    def _light_spot(self, rec: Site) -> tuple[Place, Path] | None:
        """A verge 12-35 m off a traffic light on the route to the receiver (honest trucks stand there)."""
        rng = self.rng
        (px, py, lights), _ = self._route_to(rec)
        cum = _cumlen(px, py)
        ok = lights[cum[lights] > 1500] if len(lights) else lights
        ok = ok[(ok > 0) & (ok < len(px) - 1)] if len(ok) else ok
        if not len(ok):
            return None
        i = int(ok[int(rng.integers(len(ok)))])
        hx, hy = px[i + 1] - px[i - 1], py[i + 1] - py[i - 1]
        n = max(1e-6, float(np.hypot(hx, hy)))
        off = float(rng.uniform(12, 35)) * (1 if rng.random() < 0.5 else -1)
        x, y = float(px[i] - hy / n * off), float(py[i] + hx / n * off)
        if not adv.clear_of_other_fences(self.w.fences, "", x, y, 300.0):
            return None
        self._spot_note = {"light_x": float(px[i]), "light_y": float(py[i])}
        approach = (np.r_[px[: i + 1], x], np.r_[py[: i + 1], y], lights[lights < i])
        return _place(rng, "RL", x, y, "路口旁空地"), approach

    def _busy_road_spot(self, rec: Site) -> tuple[Place, Path] | None:
        """A field 15-150 m off the receiver's shared access road, often beside a lay-by.

        Every truck bound for this receiver — from any site — passes within a
        stone's throw, and some wait at the lay-by: the innocent candidates a
        report about this spot will also find.
        """
        rng = self.rng
        rec = self._busy_receiver(rec)
        ap = self.w.approaches.get(rec.site_id) if rec is not None else None
        if ap is None:
            return None
        (px, py, lights), hub_i = self._route_to(rec)
        if hub_i is None:
            return None
        fence = self.w.fences.get(rec.site_id)
        lay = [hub_i + i for i, _, _ in ap.laybys if 0 < hub_i + i < len(px) - 1]
        for _ in range(6):
            at_layby = bool(lay) and rng.random() < 0.6
            if at_layby:
                i = int(lay[int(rng.integers(len(lay)))] + rng.integers(-1, 2))
            else:
                cum = _cumlen(px[hub_i:], py[hub_i:])
                inner = np.flatnonzero((cum > 0.15 * cum[-1]) & (cum < 0.85 * cum[-1]))
                if not len(inner):
                    return None
                i = hub_i + int(inner[int(rng.integers(len(inner)))])
            if not hub_i < i < len(px) - 1:
                continue
            hx, hy = px[i + 1] - px[i - 1], py[i + 1] - py[i - 1]
            n = max(1e-6, float(np.hypot(hx, hy)))
            off = float(rng.uniform(15, 80 if at_layby else 150)) * (1 if rng.random() < 0.5 else -1)
            x, y = float(px[i] - hy / n * off), float(py[i] + hx / n * off)
            far_from_gate = fence is None or float(shapely.distance(fence, shapely.points(x, y))) > 250.0
            if far_from_gate and adv.clear_of_other_fences(self.w.fences, rec.site_id, x, y, 300.0):
                self._spot_note = {"busy_road_receiver_id": rec.site_id, "road_offset_m": round(abs(off), 1)}
                approach = (np.r_[px[: i + 1], x], np.r_[py[: i + 1], y], lights[lights < i])
                return _place(rng, "BR", x, y, f"{rec.name}进场道路旁空地"), approach
        return None

    def _busy_receiver(self, usual: Site) -> Site | None:
        """The receiver whose access road a roadside cheat uses: the usual one if many sites send there,
        else the busiest within 30 km of the site (the truck detours to where it will not stand out)."""
        busy = self.w.popularity
        if busy.get(usual.site_id, 0) >= 3:
            return usual
        near = [r for r in self.w.receivers if _dist(r.xy, self.site.xy) < 30000 and busy.get(r.site_id, 0) >= 3]
        return max(near, key=lambda r: (busy.get(r.site_id, 0), r.site_id)) if near else None

    def _split_spot(self, xy: tuple[float, float]) -> tuple[float, float] | None:
        """The second spot of a split dump: the world's split distance away, clear of every fence."""
        rng = self.rng
        for _ in range(8):
            r, ang = float(rng.uniform(*self.k.split_distance_m)), float(rng.uniform(0, 2 * np.pi))
            x, y = xy[0] + r * np.cos(ang), xy[1] + r * np.sin(ang)
            if adv.clear_of_other_fences(self.w.fences, "", x, y, 250.0):
                return float(x), float(y)
        return None

    def _dump_plan(self) -> DumpPlan:
        """Side stops (before and/or after), split, dark return: the world's rates, plus one forced extra."""
        rng, k = self.rng, self.k
        forced = self.w.decks["extras"].forced_next() if "extras" in self.w.decks else None
        n_side = int(rng.random() < k.side_stop_p) + int(rng.random() < 0.3 * k.side_stop_p)
        whens = ["before" if rng.random() < k.side_stop_before_p else "after" for _ in range(n_side)]
        kinds = [SIDE_STOP_KINDS[int(rng.choice(3, p=[0.35, 0.35, 0.3]))] for _ in range(n_side + 1)]
        split = bool(rng.random() < k.split_dump_p)
        dark = bool(rng.random() < k.dark_after_dump_p)
        if forced == "split":
            split = True
        elif forced == "dark_after":
            dark = True
        elif forced in ("side_before", "side_after") and forced[5:] not in whens:
            whens.append(forced[5:])
        before = [kd for kd, w in zip(kinds, whens, strict=False) if w == "before"]
        after = [kd for kd, w in zip(kinds, whens, strict=False) if w == "after"]
        return DumpPlan(before, after, split, dark, forced)

    def haul_dump(
        self,
        t: float,
        pos,
        spot: Place,
        subkind: str,
        plan: DumpPlan,
        approach: Path | None = None,
        last_haul: bool = False,
    ) -> tuple[list[Segment], Haul]:
        rng = self.rng
        segs = self._to_site_and_load(t, pos)
        haul = self._new_haul(segs, "illegal_dump", subkind)
        haul.spot_name = spot.name
        cur_t, cur = segs[-1].t1, segs[-1].end_xy()
        for what in plan.before:
            cur_t, cur = self._side_stop(what, "before", cur_t, cur, spot.xy, True, segs, haul)
            approach = None
        path = None
        if approach is not None:
            px, py, lights = approach
            path = (np.r_[cur[0], px[1:]], np.r_[cur[1], py[1:]], lights)
        total = float(rng.uniform(*self.k.dump_min)) * MIN
        creep = float(rng.uniform(30, 120))
        second = self._split_spot(spot.xy) if plan.split else None
        if second is None:
            segs += self._unload_at(cur_t, cur, spot.xy, total, creep, path=path)
            spots, main = [spot.xy], spot.xy
            first_unload = segs[-1]
        else:
            first = total * float(rng.uniform(0.35, 0.65))
            a = self._unload_at(cur_t, cur, spot.xy, first, creep, path=path, partial=True)
            b = self._unload_at(a[-1].t1, spot.xy, second, total - first, float(rng.uniform(0, 40)))
            segs += a + b
            spots = [spot.xy, second]
            main = spot.xy if first >= total - first else second
            first_unload = a[-1]
            haul.features.append("split_dump")
            haul.notes["split_distance_m"] = round(_dist(spot.xy, second), 1)
        last_unload = segs[-1]
        lon, lat = to_lonlat(*main)
        haul.unload_lon, haul.unload_lat = float(lon), float(lat)
        haul.spots = [(float(a), float(b)) for a, b in (to_lonlat(*p) for p in spots)]
        haul.unload_start, haul.unload_end = first_unload.t0, last_unload.t1
        haul.event_start, haul.event_end = first_unload.t0, last_unload.t1
        haul.notes["dump_min"] = round((last_unload.t1 - first_unload.t0) / MIN, 1)  # the event's window
        haul.notes["dwell_min"] = round(total / MIN, 2)  # standing still, over all spots
        cur_t, cur = last_unload.t1, (last_unload.x, last_unload.y)
        home = self.truck.base.xy if last_haul else self.site.xy
        for what in plan.after:
            cur_t, cur = self._side_stop(what, "after", cur_t, cur, home, False, segs, haul)
        if plan.dark_after:
            target = home if last_haul else _point_in(rng, self.site)
            self._dark_return(cur_t, cur, target, segs, haul)
        return segs, haul

    def haul_gap(self, t: float, pos, spot: Place) -> tuple[list[Segment], Haul]:
        """Terminal silent 15-60 min while loaded: drive to a spot, unload, drive back towards the site.

        Two ways to go dark, mixed per world (``gap_at_spot_share``): for the whole detour (off early on the
        way out, on again well into the way back: the silence's ends say little about the spot), or only
        around the spot (off a minute or three before it, on a minute or three after: the ends bracket it).
        A placement tuned on one of them alone would be tuned to a constant of this simulator.
        """
        rng = self.rng
        segs = self._to_site_and_load(t, pos)
        haul = self._new_haul(segs, "track_gap", "")
        haul.spot_name = spot.name
        segs += self._unload_at(
            segs[-1].t1, segs[-1].end_xy(), spot.xy, float(rng.uniform(5, 12)) * MIN, float(rng.uniform(30, 100))
        )
        unload = segs[-1]
        back = self._drive(rng, unload.t1, spot.xy, _point_in(rng, self.site), self.cruise, loaded=False)
        segs.append(back)
        to_spot = segs[-3]
        # drawn apart from the truck's own stream, so that worlds without this draw are unchanged by it
        if self._gap_rng is None:
            self._gap_rng = rng.spawn(1)[0]
        at_spot = bool(self._gap_rng.random() < self.k.gap_at_spot_share)
        if at_spot:  # switched off a minute or three before the spot, on again a minute or three after
            g0 = max(to_spot.t0, to_spot.t1 - float(rng.uniform(0.3, 3.0)) * MIN)
            g1 = min(back.t1, back.t0 + float(rng.uniform(0.3, 3.0)) * MIN)
            haul.features.append("gap_at_spot")
        else:  # dark for the whole detour: from early on the way out to well into the way back
            g0 = to_spot.t0 + (to_spot.t1 - to_spot.t0) * float(rng.uniform(0.1, 0.35))
            g1 = back.t0 + (back.t1 - back.t0) * float(rng.uniform(0.3, 0.8))
            haul.features.append("gap_out_and_back")
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
        haul.spots = [(float(lon), float(lat))]
        haul.unload_start, haul.unload_end = unload.t0, unload.t1
        haul.event_start, haul.event_end = g0, g1
        for s in segs[_load_index(segs) + 1 :]:  # after loading: the segments a cross-midnight pad shifts
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

    def _build_dump(self, spec: ViolationSpec, t: float, pos, legit: Site) -> tuple[list[Segment], Haul] | None:
        deck = self.w.decks.get("style")
        want = "listed"
        if spec.subkind != "other_province" and deck is not None:
            want = deck.next(self.rng)
        spot: Place | None = None
        approach: Path | None = None
        self._spot_note = {}
        if want == "near_receiver":
            spot = self._near_receiver_spot(legit)
        elif want in ("red_light", "busy_road"):
            got = self._light_spot(legit) if want == "red_light" else self._busy_road_spot(legit)
            spot, approach = got if got is not None else (None, None)
        elif want == "adhoc":
            spot = self._adhoc_spot()
        style = want if spot is not None else "listed"
        if spot is None:
            if deck is not None and want != "listed":
                deck.failed(want)
            spot = self._dump_spot(spec.subkind)
        if spot is None and spec.subkind == "same_county":
            spot, style = self._adhoc_spot(), "adhoc"
        if spot is None:
            return None
        plan = self._dump_plan()
        segs, haul = self.haul_dump(t, pos, spot, spec.subkind, plan, approach, spec.last_haul)
        haul.style = style
        haul.notes["_decks"] = (want if style == want else None, plan.forced)
        if style != "listed":
            haul.features.insert(0, f"{style}_dump")
        haul.notes.update(self._spot_note)
        if self.rng.random() < 0.55:
            haul.manifest_dest = legit
            haul.manifest_status = "in_transit" if self.rng.random() < 0.7 else "issued"
        else:
            haul.manifest_status = "none"
        return segs, haul

    def build_violation(self, spec: ViolationSpec, t: float, pos) -> tuple[list[Segment], Haul] | None:
        when = t + 2 * 3600
        d = local_date(when)
        legit = self._receiver_for(when)
        if spec.kind == "illegal_dump":
            return self._build_dump(spec, t, pos, legit)
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
        if valid == (spec.subkind == "permit_invalid"):  # the unloading fell on a day that changes the verdict
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
                li = _load_index(segs)
                wait = dwell(segs[li - 1].t1, pad, segs[li - 1].end_xy(), loaded=False)
                wait.tags["legit_stop"] = ("site_wait", False)
                for sg in segs[li:]:
                    sg.shift(pad)
                    if "silent" in sg.tags:
                        g0, g1 = sg.tags["silent"]
                        sg.tags["silent"] = (g0 + pad, g1 + pad)
                for attr in ("load_start", "load_end", "unload_start", "unload_end", "event_start", "event_end"):
                    setattr(haul, attr, getattr(haul, attr) + pad)
                if haul.gate_in is not None:
                    haul.gate_in += pad
                if haul.dark is not None:
                    haul.dark = (haul.dark[0] + pad, haul.dark[1] + pad)
                segs.insert(li, wait)
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

    def _confirm_decks(self, haul: Haul) -> None:
        style, extra = haul.notes.pop("_decks", (None, None))
        if "style" in self.w.decks:
            self.w.decks["style"].used(style)
        if "extras" in self.w.decks:
            self.w.decks["extras"].used(extra)

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
            pending = spec is not None and not spec.used
            if pending and (not spec.last_haul or t >= shift_end - LAST_HAUL_WINDOW_S):
                limit = shift_end + (90 * MIN if spec.last_haul else 0.0)
                built = self._try_violation(spec, t, pos, limit)
                spec.used = built is not None
                if built is not None:
                    self._confirm_decks(built[1])
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
            if built is not None and spec is not None and spec.last_haul:
                haul.last_haul = True
                haul.features.append("last_haul")
                break  # straight home: the truck loads again only on its next shift
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
        loads = sorted(arrived_to_load(self.segs, j) for j, s in enumerate(self.segs) if s.tags.get("load"))
        for h in self.hauls:
            i = bisect.bisect_right(loads, h.event_end)
            h.next_load = loads[i] if i < len(loads) else None

    def _dead_zones(self) -> None:
        """Legit drives through dead zones: the terminal silent a while, loaded or empty, or through a
        whole unloading at a receiver (a pit, a basement yard) — silences that are not violations."""
        rng, k = self.rng, self.k
        for i, s in enumerate(self.segs):
            haul = s.tags.get("haul")
            if "silent" in s.tags or (haul is not None and haul.kind != "legit"):
                continue
            if s.kind == "drive" and s.t1 - s.t0 >= 10 * MIN and rng.random() < k.dead_zone_p:
                room = (s.t1 - s.t0) - 2 * MIN
                want = min(float(rng.uniform(*k.dead_zone_min)) * MIN, room)
                g0 = s.t0 + MIN + float(rng.uniform(0, max(0.0, room - want)))
                g1 = g0 + want
                if want < 2 * MIN or g0 < self.w.win_start or g1 > self.w.win_end:
                    continue
                where = "loaded_drive" if s.loaded else "empty_drive"
                s.tags["silent"] = (g0, g1)
                self.dead_zones.append((g0, g1, where))
                if haul is not None:
                    haul.features.append(f"dead_zone_{where}")
            elif (
                s.kind == "dwell"
                and s.tags.get("unload")
                and haul is not None
                and haul.unload_site is not None
                and 0 < i < len(self.segs) - 1
                and rng.random() < k.dead_zone_receiver_p
            ):
                prev, nxt = self.segs[i - 1], self.segs[i + 1]
                if prev.kind != "drive" or "silent" in prev.tags or "silent" in nxt.tags:
                    continue
                g0 = max(prev.t0 + MIN, s.t0 - float(rng.uniform(1, 6)) * MIN)
                g1 = s.t1 + float(rng.uniform(0.5, 4)) * MIN
                if g1 > nxt.t1 - MIN or g0 < self.w.win_start or g1 > self.w.win_end:
                    continue
                for seg in (prev, s, nxt):
                    seg.tags["silent"] = (g0, g1)
                self.dead_zones.append((g0, g1, "at_receiver"))
                haul.features.append("dead_zone_at_receiver")

    def _annotate(self) -> None:
        """After planning: dead zones, long red lights as legit stops, drifts, silences on empty drives back."""
        rng = self.rng
        vid = self.truck.vehicle_id
        self._dead_zones()
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
                and rng.random() < self.k.empty_silence_p
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
