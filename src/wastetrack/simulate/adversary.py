"""Adversarial realism: what a real muck-truck fleet does to a detector, injected on purpose.

* **Fences and multipath** (``fence_geometries``, ``point_off_fence``): some
  sites sit in urban canyons; there a loading or unloading dwell's fixes sit
  60-150 m outside the fence although the truck is inside (the truth keeps the
  true position).
* **Sensor faults** (``sensor_faults``, ``apply_sensor_faults``): on some
  sensor-equipped trucks the tipping sensor is stuck at false for the whole
  scenario; on others the load sensor flaps (random true/false) for a few
  minutes during loaded drives.
* **Cycles of adversarial dump variants** (``SPOT_STYLES``, ``SENSORLESS_EXTRAS``,
  ``assign_adversary``): dumps 300-900 m from a receiver's fence, dumps beside a
  traffic light on a shared road, and — on trucks without sensors — a legit
  fuel stop or jam before/after the dump, or the terminal going dark on the way
  back. Cycled (over the dumps that happen, ``World.cycle``) like
  ``violations.VARIANTS``, so a small scenario has each.

Everything is drawn from the scenario's seeded generators: same seed, same bytes.
"""

from __future__ import annotations

import numpy as np
import shapely

from wastetrack.simulate.geography import Site, to_xy

#: Dump-spot styles cycled over illegal dumps that stay in their province.
SPOT_STYLES: tuple[str, ...] = ("near_receiver", "red_light", "listed", "near_receiver", "listed", "red_light")
#: Extras cycled over illegal dumps of trucks without sensors.
SENSORLESS_EXTRAS: tuple[tuple[str, ...], ...] = (
    ("fuel_before",),
    ("dark_after",),
    ("jam_after",),
    ("fuel_after",),
    (),
    ("jam_before",),
    ("dark_after",),
    (),
)
#: Share of sensor-equipped trucks with a stuck tipping sensor / a flapping load sensor (at least one each).
TIPPING_STUCK_SHARE = 0.12
LOAD_FLAP_SHARE = 0.15
#: Chance that one loaded drive (longer than 6 min) of a flapping truck has a flap episode.
FLAP_PER_DRIVE = 0.3
#: Chance of multipath drift at a visit: at a canyon site / anywhere else.
DRIFT_P_CANYON = 0.3
DRIFT_P_ELSEWHERE = 0.012
#: Chance that the empty drive back after a legit unloading has the terminal off 15-45 min.
EMPTY_SILENCE_P = 0.06


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
    s = np.arange(0.0, 4000.0, 2.0)
    px, py = ox + s * np.cos(direction), oy + s * np.sin(direction)
    d = shapely.distance(fence, shapely.points(px, py))
    i = int(np.argmax(d >= target_m)) if (d >= target_m).any() else len(s) - 1
    return float(px[i]), float(py[i]), float(d[i])


def clear_of_other_fences(fences: dict[str, shapely.Geometry], own: str, x: float, y: float, m: float) -> bool:
    """True when (x, y) is more than ``m`` metres from every fence but ``own``."""
    others = [g for k, g in fences.items() if k != own]
    return not others or bool(shapely.distance(np.array(others), shapely.points(x, y)).min() > m)


def canyon_sites(rng: np.random.Generator, sites: list[Site], receivers: list[Site]) -> frozenset[str]:
    """Sites where GPS drifts (tall buildings, elevated roads): 10 % of sites, 20 % of receivers (>= 1)."""
    out = {s.site_id for s in sites if rng.random() < 0.10}
    rec = [r.site_id for r in receivers if rng.random() < 0.20]
    if not rec and receivers:
        rec = [receivers[int(rng.integers(len(receivers)))].site_id]
    return frozenset(out | set(rec))


def sensor_faults(rng: np.random.Generator, sensors: list[bool]) -> tuple[set[int], set[int]]:
    """Truck indices with a stuck tipping sensor and with a flapping load sensor (among sensor trucks)."""
    fitted = [k for k, s in enumerate(sensors) if s]
    if not fitted:
        return set(), set()
    n_stuck = max(1, round(TIPPING_STUCK_SHARE * len(fitted)))
    n_flap = max(1, round(LOAD_FLAP_SHARE * len(fitted)))
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


__all__ = [
    "SENSORLESS_EXTRAS",
    "SPOT_STYLES",
    "apply_sensor_faults",
    "canyon_sites",
    "clear_of_other_fences",
    "fence_geometries",
    "flap_windows",
    "point_off_fence",
    "sensor_faults",
]
