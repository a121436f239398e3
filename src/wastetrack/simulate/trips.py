"""Track generation: road-like paths, speed profiles with lights and jams, and fix sampling.

A truck's night is a list of ``Segment``s (drive, dwell, park). Positions are a
piecewise-linear function of time: a drive has a polyline path and time/distance
knots (cruise pieces, traffic-light stops, stop-and-go jams, a slow creep in the
queue at a gate); a dwell sits at a point with a little jitter. Fixes are then
sampled per segment with numpy (``sample_segments``): no Python loop per fix.

Paths are not straight lines: waypoints are spread around the chord with a
Brownian bridge, some turns are squared off like a road grid, the result is
Chaikin-smoothed and given a gentle perpendicular wiggle, so a detector that
assumes straight chords or constant speed fails here as it would on real data.

Shared roads (``RouteBook``) carry fixed traffic lights: every truck that drives
that road stops at the same intersections (30-150 s, sometimes a queue through
two cycles of 2.5-3.5 min), so a roadside dump spot next to a light is also a
spot where honest trucks stand still. A dwell may carry a ``bias``: the fixes
sit off the true position (multipath in an urban canyon, a drifting receiver).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

KMH = 1 / 3.6


@dataclass
class Segment:
    """One piece of a truck's timeline, in absolute epoch seconds."""

    kind: str  # "drive" | "dwell" | "park"
    t0: float
    t1: float
    x: float = 0.0  # dwell/park position (simulator metres)
    y: float = 0.0
    path_x: np.ndarray | None = None  # drive: polyline vertices
    path_y: np.ndarray | None = None
    tk: np.ndarray | None = None  # drive: knot times relative to t0
    dk: np.ndarray | None = None  # drive: distance along the path at the knots
    loaded: bool = False  # state at t0
    loaded_switch: float | None = None  # absolute time when ``loaded`` flips (loading/unloading)
    tipping: tuple[float, float] | None = None  # absolute window of the body lift
    tags: dict = field(default_factory=dict)
    bias: tuple[float, float] | None = None  # dwell: offset of every fix from the true position (metres)

    def shift(self, dt: float) -> Segment:
        self.t0 += dt
        self.t1 += dt
        if self.loaded_switch is not None:
            self.loaded_switch += dt
        if self.tipping is not None:
            self.tipping = (self.tipping[0] + dt, self.tipping[1] + dt)
        return self

    def end_xy(self) -> tuple[float, float]:
        if self.kind == "drive":
            return float(self.path_x[-1]), float(self.path_y[-1])
        return self.x, self.y

    def position_at(self, t: float) -> tuple[float, float]:
        """Where the truck is at absolute time ``t`` (drives: interpolated on the path)."""
        if self.kind != "drive":
            return self.x, self.y
        d = np.interp(t - self.t0, self.tk, self.dk)
        cum = _cumlen(self.path_x, self.path_y)
        return float(np.interp(d, cum, self.path_x)), float(np.interp(d, cum, self.path_y))


def _cumlen(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])


def _chaikin(x: np.ndarray, y: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    for _ in range(iterations):
        if len(x) < 3:
            break
        qx = 0.75 * x[:-1] + 0.25 * x[1:]
        qy = 0.75 * y[:-1] + 0.25 * y[1:]
        rx = 0.25 * x[:-1] + 0.75 * x[1:]
        ry = 0.25 * y[:-1] + 0.75 * y[1:]
        x = np.concatenate([[x[0]], np.column_stack([qx, rx]).ravel()[1:-1], [x[-1]]])
        y = np.concatenate([[y[0]], np.column_stack([qy, ry]).ravel()[1:-1], [y[-1]]])
    return x, y


def road_path(
    rng: np.random.Generator, a: tuple[float, float], b: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """A road-like polyline from a to b (simulator metres), 1.1-1.4x the chord length."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    d = float(np.hypot(dx, dy))
    if d < 80:
        return np.array([ax, bx]), np.array([ay, by])
    ux, uy = dx / d, dy / d
    px, py = -uy, ux
    n = int(np.clip(d / 2500, 1, 14))
    f = np.sort(rng.uniform(0.08, 0.92, n))
    steps = rng.normal(0, 1, n + 1)
    walk = np.cumsum(steps)
    bridge = walk[:-1] - f * walk[-1]
    off = bridge / max(1.0, np.sqrt(n)) * 0.09 * d
    wx = ax + f * dx + off * px
    wy = ay + f * dy + off * py
    xs, ys = [ax], [ay]
    for i in range(n):
        if rng.random() < 0.45:  # square the turn like a street grid
            if rng.random() < 0.5:
                xs.append(wx[i])
                ys.append(ys[-1])
            else:
                xs.append(xs[-1])
                ys.append(wy[i])
        xs.append(wx[i])
        ys.append(wy[i])
    xs.append(bx)
    ys.append(by)
    x, y = _chaikin(np.array(xs), np.array(ys), 2)
    # densify to ~60 m and add a smooth perpendicular wiggle (lanes, bends) that vanishes at both ends
    cum = _cumlen(x, y)
    total = cum[-1]
    m = max(2, int(total / 60))
    s = np.linspace(0, total, m)
    x, y = np.interp(s, cum, x), np.interp(s, cum, y)
    hx, hy = np.gradient(x), np.gradient(y)
    hn = np.hypot(hx, hy) + 1e-9
    env = np.sin(np.pi * s / total)
    amp = rng.uniform(4, 14)
    wav = rng.uniform(300, 1500)
    ph = rng.uniform(0, 2 * np.pi)
    w = amp * env * np.sin(2 * np.pi * s / wav + ph)
    return x + w * (-hy / hn), y + w * (hx / hn)


def drive_knots(
    rng: np.random.Generator,
    length_m: float,
    cruise_kmh: float,
    creep_tail_m: float = 0.0,
    jam_p: float = 0.25,
    light_p: float = 0.45,
) -> tuple[np.ndarray, np.ndarray]:
    """Time/distance knots of a drive: cruise pieces, light stops (30-120 s), jams, gate creep."""
    pieces: list[tuple[float, float]] = []  # (length m, duration s)
    road = max(0.0, length_m - creep_tail_m)
    done = 0.0
    jam_at = rng.uniform(0.2, 0.8) * road if (road > 2500 and rng.random() < jam_p) else -1.0
    while done < road - 1e-6:
        chunk = min(float(rng.uniform(400, 1800)), road - done)
        if 0 <= jam_at - done < chunk and chunk > 50:
            jam_len = min(float(rng.uniform(150, 450)), chunk)
            for _ in range(int(rng.integers(3, 7))):  # stop-and-go below 5 km/h
                part = jam_len / 6
                pieces.append((part, part / (rng.uniform(1.0, 4.5) * KMH)))
                pieces.append((0.0, float(rng.uniform(15, 60))))
            jam_at = -1.0
            chunk -= jam_len
            done += jam_len
        v = min(60.0, max(25.0, cruise_kmh * float(rng.uniform(0.75, 1.15)))) * KMH
        if chunk > 0:
            pieces.append((chunk, chunk / v))
            done += chunk
        if done < road - 1e-6 and rng.random() < light_p:
            pieces.append((0.0, float(rng.uniform(30, 120))))
    tail = length_m - road
    while tail > 1e-6:  # queue at the gate: creep 10-40 m at 1-4 km/h, wait 15-60 s
        step = min(float(rng.uniform(10, 40)), tail)
        pieces.append((step, step / (rng.uniform(1.0, 4.0) * KMH)))
        pieces.append((0.0, float(rng.uniform(15, 60))))
        tail -= step
    if not pieces:
        pieces = [(length_m, max(1.0, length_m / (20 * KMH)))]
    lens = np.array([p[0] for p in pieces])
    durs = np.array([p[1] for p in pieces])
    return np.concatenate([[0.0], np.cumsum(durs)]), np.concatenate([[0.0], np.cumsum(lens)])


class RouteBook:
    """The roads between known places: every trip from A to B follows the same road (either way).

    Anchors are place centres (sites, parks, fuel stations, dump spots); a drive
    whose ends lie within ``snap_m`` of two different anchors reuses the road
    between them, generated once from a seed derived from the two keys, so the
    book does not depend on the order in which trips are planned.
    """

    def __init__(self, seed: int, anchors: list[tuple[str, float, float, float]], snap_m: float = 400.0):
        self.seed = seed
        self.keys = [a[0] for a in anchors]
        self.xy = np.array([[a[1], a[2]] for a in anchors]) if anchors else np.zeros((0, 2))
        self.snap = np.array([max(snap_m, a[3]) for a in anchors]) if anchors else np.zeros(0)
        self.cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def anchor(self, p: tuple[float, float]) -> int | None:
        if not len(self.xy):
            return None
        d = np.hypot(self.xy[:, 0] - p[0], self.xy[:, 1] - p[1])
        i = int(np.argmin(d))
        return i if d[i] <= self.snap[i] else None

    def road(self, a: tuple[float, float], b: tuple[float, float]) -> tuple[np.ndarray, np.ndarray] | None:
        got = self.road_with_lights(a, b)
        return None if got is None else (got[0], got[1])

    def road_with_lights(
        self, a: tuple[float, float], b: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The shared road from a to b and the vertex indices of its traffic lights (None: no known road)."""
        ia, ib = self.anchor(a), self.anchor(b)
        if ia is None or ib is None or ia == ib:
            return None
        ka, kb = self.keys[ia], self.keys[ib]
        lo, hi = (ia, ib) if ka < kb else (ib, ia)
        key = (self.keys[lo], self.keys[hi])
        if key not in self.cache:
            rng = np.random.default_rng([self.seed, zlib.crc32(f"{key[0]}|{key[1]}".encode())])
            x, y = road_path(rng, tuple(self.xy[lo]), tuple(self.xy[hi]))
            cum = _cumlen(x, y)
            # intersections with lights: about one per 3 km, never in the first/last 600 m (site gates)
            n_l = int(rng.poisson(cum[-1] / 3000.0))
            inner = np.flatnonzero((cum > 600) & (cum < cum[-1] - 600))
            lights = np.sort(rng.choice(inner, size=min(n_l, len(inner)), replace=False)) if n_l else inner[:0]
            self.cache[key] = (x, y, lights)
        x, y, lights = self.cache[key]
        if lo != ia:
            x, y, lights = x[::-1], y[::-1], np.sort(len(x) - 1 - lights)
        # leave the base road where the actual start/end points are (inside the fence)
        return (
            np.concatenate([[a[0]], x[1:-1], [b[0]]]),
            np.concatenate([[a[1]], y[1:-1], [b[1]]]),
            lights,
        )


def _insert_stop(tk: np.ndarray, dk: np.ndarray, d: float, dur: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Knots with a stop of ``dur`` seconds inserted at distance ``d``; also the stop's start (relative s)."""
    i = int(np.searchsorted(dk, d, side="left"))
    i = min(max(i, 1), len(dk) - 1)
    span = dk[i] - dk[i - 1]
    td = tk[i - 1] + ((d - dk[i - 1]) / span * (tk[i] - tk[i - 1]) if span > 0 else 0.0)
    tk = np.concatenate([tk[:i], [td, td + dur], tk[i:] + dur])
    dk = np.concatenate([dk[:i], [d, d], dk[i:]])
    return tk, dk, float(td)


def light_stop_duration(rng: np.random.Generator) -> float | None:
    """A pass through a light: green (None), a red of 30-150 s, or a queue through two cycles."""
    u = rng.random()
    if u < 0.45:
        return None
    if u < 0.96:
        return float(rng.uniform(30, 140))
    return float(rng.uniform(150, 210))


def drive(
    rng: np.random.Generator,
    t0: float,
    a: tuple[float, float],
    b: tuple[float, float],
    cruise_kmh: float,
    loaded: bool,
    creep_tail_m: float = 0.0,
    routes: RouteBook | None = None,
) -> Segment:
    """A drive segment from a to b starting at t0 (on the road book's road when both ends are known)."""
    known = routes.road_with_lights(a, b) if routes is not None else None
    if known is not None:
        px, py, lights = known
    else:
        (px, py), lights = road_path(rng, a, b), None
    return drive_path(rng, t0, px, py, cruise_kmh, loaded, creep_tail_m, lights)


def drive_path(
    rng: np.random.Generator,
    t0: float,
    px: np.ndarray,
    py: np.ndarray,
    cruise_kmh: float,
    loaded: bool,
    creep_tail_m: float = 0.0,
    lights: np.ndarray | None = None,
) -> Segment:
    """A drive along a given polyline; a stop at each light vertex the truck catches on red.

    The stops are kept in ``tags["light_stops"]`` as (start, end, x, y) relative to t0, so the
    planner can list the long ones as legit stops.
    """
    cum = _cumlen(px, py)
    tk, dk = drive_knots(rng, float(cum[-1]), cruise_kmh, min(creep_tail_m, float(cum[-1]) * 0.5))
    stops = []
    if lights is not None:
        for i in lights:
            dur = light_stop_duration(rng)
            if dur is None or not 0 < cum[i] < dk[-1]:
                continue
            tk, dk, td = _insert_stop(tk, dk, float(cum[i]), dur)
            stops.append((td, td + dur, float(px[i]), float(py[i])))
    seg = Segment("drive", t0, t0 + float(tk[-1]), path_x=px, path_y=py, tk=tk, dk=dk, loaded=loaded)
    if stops:
        seg.tags["light_stops"] = stops
    return seg


def dwell(
    t0: float,
    duration_s: float,
    xy: tuple[float, float],
    loaded: bool,
    kind: str = "dwell",
    loaded_switch: float | None = None,
    tipping: tuple[float, float] | None = None,
    **tags,
) -> Segment:
    return Segment(
        kind,
        t0,
        t0 + duration_s,
        x=xy[0],
        y=xy[1],
        loaded=loaded,
        loaded_switch=loaded_switch,
        tipping=tipping,
        tags=dict(tags),
    )


def sample_segments(
    rng: np.random.Generator,
    segs: list[Segment],
    interval_s: float,
    park_interval_s: float = 300.0,
    dwell_interval_s: float | None = None,
) -> dict[str, np.ndarray]:
    """Fix times and true states along a timeline (no GPS noise yet).

    ``dwell_interval_s`` is the interval while the truck stands with the engine
    on (loading, unloading, waiting); a motion-based terminal reports then at its
    parked rate, so a 4-minute dump may leave a single fix. Default: ``interval_s``.

    Returns arrays ``t`` (epoch s, float), ``x``, ``y`` (metres), ``speed_kmh``,
    ``heading`` (degrees from north), ``loaded``, ``tipping`` (bool).
    """
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("t", "x", "y", "speed_kmh", "heading", "loaded", "tipping")
    }
    dwell_step = interval_s if dwell_interval_s is None else dwell_interval_s
    next_t = segs[0].t0 if segs else 0.0
    last_heading = float(rng.uniform(0, 360))
    for seg in segs:
        step = park_interval_s if seg.kind == "park" else dwell_step if seg.kind == "dwell" else interval_s
        if next_t < seg.t0:
            next_t = seg.t0 + float(rng.uniform(0, min(step, 5.0)))
        elif next_t > seg.t0 + step:  # leaving a slow-reporting stretch: the terminal speeds up at once
            next_t = seg.t0 + float(rng.uniform(0, step))
        span = seg.t1 - next_t
        if span <= 0:
            continue
        n = int(span / step) + 3
        jitter = rng.normal(0, max(0.6, 0.03 * step) if seg.kind != "park" else 1.0, n)
        t = next_t + np.cumsum(np.concatenate([[0.0], np.full(n - 1, step) + jitter[1:]]))
        t = t[t < seg.t1]
        if len(t) == 0:
            continue
        next_t = float(t[-1] + step + jitter[0])
        if seg.kind == "drive":
            rel = t - seg.t0
            d = np.interp(rel, seg.tk, seg.dk)
            cum = _cumlen(seg.path_x, seg.path_y)
            x = np.interp(d, cum, seg.path_x)
            y = np.interp(d, cum, seg.path_y)
            k = np.clip(np.searchsorted(seg.tk, rel, side="right") - 1, 0, len(seg.tk) - 2)
            v = np.diff(seg.dk)[k] / np.maximum(np.diff(seg.tk)[k], 1e-6) * 3.6
            v = np.where(v > 0.05, np.maximum(0.0, v + rng.normal(0, 1.2, len(t))), 0.0)
            j = np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(cum) - 2)
            hd = (np.degrees(np.arctan2(np.diff(seg.path_x)[j], np.diff(seg.path_y)[j])) + 360.0) % 360.0
            # stopped fixes keep the last heading of motion, as terminals do
            moving = v > 0
            idx = np.where(moving, np.arange(len(t)), -1)
            idx = np.maximum.accumulate(idx)
            hd = np.where(idx >= 0, hd[np.maximum(idx, 0)], last_heading)
            last_heading = float(hd[-1])
        else:
            walk = rng.normal(0, 0.8 if seg.kind == "dwell" else 0.3, (2, len(t)))
            bx, by = seg.bias if seg.bias is not None else (0.0, 0.0)
            x = seg.x + bx + np.clip(np.cumsum(walk[0]), -6, 6)
            y = seg.y + by + np.clip(np.cumsum(walk[1]), -6, 6)
            v = np.zeros(len(t))
            hd = np.full(len(t), last_heading)
        loaded = np.full(len(t), seg.loaded)
        if seg.loaded_switch is not None:
            loaded = np.where(t >= seg.loaded_switch, not seg.loaded, seg.loaded)
        tip = np.zeros(len(t), dtype=bool)
        if seg.tipping is not None:
            tip = (t >= seg.tipping[0]) & (t <= seg.tipping[1])
        for key, arr in (
            ("t", t),
            ("x", x),
            ("y", y),
            ("speed_kmh", v),
            ("heading", hd),
            ("loaded", loaded),
            ("tipping", tip),
        ):
            out[key].append(arr)
    return {k: (np.concatenate(v) if v else np.array([])) for k, v in out.items()}
