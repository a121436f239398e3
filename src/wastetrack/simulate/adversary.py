"""Adversarial realism: what a real muck-truck fleet does to a detector, injected on purpose.

* **Fences and multipath** (``fence_geometries``, ``point_off_fence``): some
  sites sit in urban canyons; there a loading or unloading dwell's fixes sit off
  the fence although the truck is inside (the truth keeps the true position).
  How far is drawn per visit from the scenario's distribution
  (``Knobs.drift_m``: a gamma whose mean and shape each world draws), not from
  one fixed range a detector could mirror.
* **Sensor faults** (``sensor_faults``, ``apply_sensor_faults``): on some
  sensor-equipped trucks the tipping sensor is stuck at false for the whole
  scenario; on others the load sensor flaps (random true/false) for a few
  minutes during loaded drives.
* **Receiver access roads** (``make_approaches``): the last kilometres to a
  receiver are shared by every truck that goes there, from any site, through a
  junction (the hub). Lay-bys on them are where honest trucks wait for the gate,
  and the verge beside them is where a cheat tips a load in passing — so
  innocent trucks pass and stop next to dump spots.
* **Decks** (``Deck``): each world draws weights for the dump styles and
  extras; a seeded shuffle of every option is dealt first so that even a small
  scenario has each variant, then the world's weights decide.

Everything is drawn from the scenario's seeded generators: same seed, same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely

from wastetrack.simulate.geography import Place, Site, county_full_name, nearest_town, to_lonlat, to_xy
from wastetrack.simulate.trips import RouteBook, _cumlen

#: Chance that one loaded drive (longer than 6 min) of a flapping truck has a flap episode.
FLAP_PER_DRIVE = 0.3


class Deck:
    """Options dealt from a seeded shuffle first (every option once), then drawn by the world's weights.

    ``next`` proposes; ``used`` confirms that the proposal happened (a forced
    option stays at the top until it does, or until it failed three times — some
    options cannot happen in some worlds, e.g. a red-light spot with no lights).
    """

    def __init__(self, rng: np.random.Generator, options: Sequence[str], weights: Sequence[float]):
        self.options = list(options)
        w = np.asarray(weights, dtype=float)
        self.p = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
        self.forced = [self.options[int(i)] for i in rng.permutation(len(self.options))]
        self._fails = 0

    def next(self, rng: np.random.Generator) -> str:
        draw = self.options[int(rng.choice(len(self.options), p=self.p))]  # always drawn: stable streams
        return self.forced[0] if self.forced else draw

    def forced_next(self) -> str | None:
        """The option still owed to this world, if any (without drawing)."""
        return self.forced[0] if self.forced else None

    def used(self, option: str | None) -> None:
        if option is not None and self.forced and self.forced[0] == option:
            self.forced.pop(0)
            self._fails = 0

    def failed(self, option: str | None) -> None:
        if option is not None and self.forced and self.forced[0] == option:
            self._fails += 1
            if self._fails >= 3:
                self.forced.pop(0)
                self._fails = 0


@dataclass
class Approach:
    """A receiver's shared access road: from the hub (a junction 1.5-4 km out) to the gate."""

    receiver_id: str
    hub: Place
    #: lay-bys on the hub→receiver road: (vertex index on that road, x, y) in simulator metres
    laybys: list[tuple[int, float, float]] = field(default_factory=list)


def fence_geometries(sites: list[Site]) -> dict[str, shapely.Geometry]:
    """Each site's fence in simulator metres, as the pipeline will see it (ring, or circle of radius_m)."""
    out = {}
    for s in sites:
        if s.shape == "polygon" and s.ring:
            lon = np.array([p[0] for p in s.ring])
            lat = np.array([p[1] for p in s.ring])
            x, y = to_xy(lon, lat)
            out[s.site_id] = shapely.polygons(np.column_stack([x, y]))
        else:
            x, y = s.xy
            out[s.site_id] = shapely.buffer(shapely.points(x, y), s.radius_m, quad_segs=16)
    return out


def point_off_fence(
    fence: shapely.Geometry, origin: tuple[float, float], direction: float, target_m: float
) -> tuple[float, float, float]:
    """The first point on the ray from ``origin`` (angle ``direction``) that lies ``target_m`` or more
    outside ``fence``; returns (x, y, its distance to the fence)."""
    ox, oy = origin
    c, n = np.cos(direction), np.sin(direction)
    coarse = np.arange(0.0, 6000.0, 20.0)  # coarse pass, then 2 m steps inside the crossing interval
    d = shapely.distance(fence, shapely.points(ox + coarse * c, oy + coarse * n))
    k = int(np.argmax(d >= target_m)) if (d >= target_m).any() else len(coarse) - 1
    fine = np.arange(max(0.0, coarse[k] - 20.0), coarse[k] + 2.0, 2.0)
    px, py = ox + fine * c, oy + fine * n
    d = shapely.distance(fence, shapely.points(px, py))
    i = int(np.argmax(d >= target_m)) if (d >= target_m).any() else len(fine) - 1
    return float(px[i]), float(py[i]), float(d[i])


def clear_of_other_fences(fences: dict[str, shapely.Geometry], own: str, x: float, y: float, m: float) -> bool:
    """True when (x, y) is more than ``m`` metres from every fence but ``own``."""
    others = [g for k, g in fences.items() if k != own]
    return not others or bool(shapely.distance(np.array(others), shapely.points(x, y)).min() > m)


def canyon_sites(
    rng: np.random.Generator, sites: list[Site], receivers: list[Site], site_share: float, receiver_share: float
) -> frozenset[str]:
    """Sites where GPS drifts (tall buildings, elevated roads): the world's shares, at least one receiver."""
    out = {s.site_id for s in sites if rng.random() < site_share}
    rec = [r.site_id for r in receivers if rng.random() < receiver_share]
    if not rec and receivers:
        rec = [receivers[int(rng.integers(len(receivers)))].site_id]
    return frozenset(out | set(rec))


def sensor_faults(
    rng: np.random.Generator, sensors: list[bool], stuck_share: float, flap_share: float
) -> tuple[set[int], set[int]]:
    """Truck indices with a stuck tipping sensor and with a flapping load sensor (among sensor trucks)."""
    fitted = [k for k, s in enumerate(sensors) if s]
    if not fitted:
        return set(), set()
    n_stuck = max(1, round(stuck_share * len(fitted)))
    n_flap = max(1, round(flap_share * len(fitted)))
    stuck = {int(k) for k in rng.choice(fitted, size=min(n_stuck, len(fitted)), replace=False)}
    flap = {int(k) for k in rng.choice(fitted, size=min(n_flap, len(fitted)), replace=False)}
    return stuck, flap


def flap_windows(rng: np.random.Generator, segs) -> list[tuple[float, float]]:
    """Flap episodes of 2-6 min inside loaded drives (a loose connector on a bumpy road)."""
    out = []
    for s in segs:
        if s.kind != "drive" or not s.loaded or s.t1 - s.t0 < 6 * 60 or rng.random() >= FLAP_PER_DRIVE:
            continue
        w = float(rng.uniform(2, 6)) * 60
        a = float(rng.uniform(s.t0 + 60, max(s.t0 + 61, s.t1 - w - 60)))
        out.append((a, min(a + w, s.t1 - 30)))
    return out


def apply_sensor_faults(
    rng: np.random.Generator,
    t: np.ndarray,
    loaded: np.ndarray,
    tipping: np.ndarray,
    stuck: bool,
    flaps: list[tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Sensor columns as a faulty truck reports them (vectorised over the truck's fixes)."""
    loaded = loaded.copy()
    tipping = np.zeros_like(tipping) if stuck else tipping
    if flaps:
        a = np.array([w[0] for w in flaps])
        b = np.array([w[1] for w in flaps])
        k = np.searchsorted(a, t, side="right") - 1
        inside = (k >= 0) & (t <= b[np.maximum(k, 0)])
        loaded[inside] = rng.random(int(inside.sum())) < 0.5
    return loaded, tipping


def make_approaches(
    rng: np.random.Generator,
    receivers: list[Site],
    sites: list[Site],
    fences: dict[str, shapely.Geometry],
) -> dict[str, Approach]:
    """A hub 1.5-4 km out of each receiver, towards where its trucks come from (lay-bys: ``place_laybys``).

    The hubs must be anchors of the world's ``RouteBook`` (so every truck to a
    receiver shares the hub→receiver road); lay-bys are placed on that road once
    the book exists.
    """
    out: dict[str, Approach] = {}
    if not sites:
        return out
    sx = np.array([s.xy[0] for s in sites])
    sy = np.array([s.xy[1] for s in sites])
    for r in receivers:
        rx, ry = r.xy
        d = np.hypot(sx - rx, sy - ry)
        w = 1.0 / np.maximum(d, 2000.0)
        base = float(np.arctan2(float((w * (sy - ry)).sum()), float((w * (sx - rx)).sum())))
        for _ in range(8):
            ang = base + float(rng.uniform(-0.6, 0.6))
            dist = float(rng.uniform(1500, 4000)) + r.radius_m
            hx, hy = rx + dist * np.cos(ang), ry + dist * np.sin(ang)
            if clear_of_other_fences(fences, "", hx, hy, 500.0):
                break
        lon, lat = to_lonlat(hx, hy)
        town = nearest_town(float(lon), float(lat))
        name = f"{county_full_name(town[0])}{town[1]}路口"
        hub = Place(f"HB-{r.site_id}", "hub", name, town[0], float(lon), float(lat))
        out[r.site_id] = Approach(r.site_id, hub)
    return out


def place_laybys(
    rng: np.random.Generator,
    approaches: dict[str, Approach],
    routes: RouteBook,
    receivers: list[Site],
    fences: dict[str, shapely.Geometry],
) -> None:
    """1-3 lay-bys per access road, 10-30 m off the road between 15 % and 85 % of its length."""
    by_id = {r.site_id: r for r in receivers}
    for rid, ap in approaches.items():
        got = routes.road_with_lights(ap.hub.xy, by_id[rid].xy)
        if got is None:
            continue
        px, py, _ = got
        cum = _cumlen(px, py)
        inner = np.flatnonzero((cum > 0.15 * cum[-1]) & (cum < 0.85 * cum[-1]))
        inner = inner[(inner > 0) & (inner < len(px) - 1)]
        if not len(inner):
            continue
        for i in sorted(rng.choice(inner, size=min(len(inner), int(rng.integers(1, 4))), replace=False)):
            i = int(i)
            hx, hy = px[i + 1] - px[i - 1], py[i + 1] - py[i - 1]
            n = max(1e-6, float(np.hypot(hx, hy)))
            off = float(rng.uniform(10, 30)) * (1 if rng.random() < 0.5 else -1)
            x, y = float(px[i] - hy / n * off), float(py[i] + hx / n * off)
            if clear_of_other_fences(fences, "", x, y, 200.0):
                ap.laybys.append((i, x, y))


__all__ = [
    "Approach",
    "Deck",
    "apply_sensor_faults",
    "canyon_sites",
    "clear_of_other_fences",
    "fence_geometries",
    "flap_windows",
    "make_approaches",
    "place_laybys",
    "point_off_fence",
    "sensor_faults",
]
