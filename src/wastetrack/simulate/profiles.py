"""Scenario profiles, and the world parameters each scenario draws from its profile.

A detector tuned against one simulated world learns that world's constants (a
drift of 60-150 m, a dump 300-900 m from a receiver, a fix every 10-30 s). So
no single constant defines a world here: a *profile* gives, for every knob, the
range it may take, and each scenario draws its own values from those ranges
with its seed (``draw_knobs``). A knob that is itself a range (fix intervals,
GPS noise, dump durations) is drawn as a sub-range, from which trucks and
events then draw. The drawn values are written to the truth (``world``), so a
miss can be read against the world that produced it.

Profiles:

* ``standard`` — dense feeds (a fix every 10-30 s, 3-12 m noise), about half the
  trucks with load/tipping sensors, the defects real platforms have.
* ``hard`` — the fleet of ``standard`` behind a worse feed: a fix every 30-90 s,
  10-40 m noise, more outliers, rows with lon/lat swapped, longer drop-outs,
  reports placed less precisely.
* ``sparse`` — sensorless: no load/tipping sensors at all, a fix every 60-120 s
  moving and 120-300 s standing, 15-50 m noise, 3-6 min dumps (some split
  between two spots), dump spots beside busy roads where innocent trucks pass
  and stop, legit odd stops and dead-zone gaps, late manifests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

#: names accepted by ``simulate(..., profile=...)`` and ``wastetrack simulate --profile``
PROFILE_NAMES: tuple[str, ...] = ("standard", "hard", "sparse")

#: the dump-spot styles (``nights.NightPlanner.build_violation``) and what each means
SPOT_STYLES: tuple[str, ...] = (
    "listed",  # a field or riverbank off a town (the classic dump spot)
    "adhoc",  # a field a few km off the loading site
    "near_receiver",  # a verge outside an approved receiver's fence, at any distance from 150 m
    "red_light",  # a verge beside a traffic light where honest trucks stand at red
    "busy_road",  # beside a receiver's shared access road, near a lay-by where honest trucks stop
)

#: decoy report placements: far from every truck, beside a road trucks use, beside an innocent truck's stop
DECOY_KINDS: tuple[str, ...] = ("remote", "road", "stop")

Range = tuple[float, float]


@dataclass(frozen=True)
class Profile:
    """For each knob, the interval a scenario draws it from (``lo == hi``: fixed)."""

    name: str
    # ---- feed -----------------------------------------------------------------------------------
    interval_moving_s: Range = (10.0, 30.0)  # fix interval with the engine on (sub-range per scenario)
    interval_parked_s: Range = (240.0, 330.0)  # ACC off / standing on motion-based terminals
    motion_based_share: Range = (0.0, 0.15)  # trucks whose terminal drops to the parked rate when standing
    noise_m: Range = (3.0, 12.0)  # GPS noise sigma per truck (sub-range per scenario)
    outlier_share: Range = (0.001, 0.004)  # fixes thrown 30-80 m off
    sensor_share: Range = (0.35, 0.75)  # trucks with load/tipping sensors
    tipping_stuck_share: Range = (0.05, 0.2)  # of sensor trucks: tipping sensor stuck at false
    load_flap_share: Range = (0.05, 0.25)  # of sensor trucks: load sensor flaps on bumpy roads
    swapped_share: Range = (0.0, 0.0)  # rows written with lon and lat swapped
    dropouts_per_truck_day: Range = (0.5, 2.0)
    dropout_s: Range = (60.0, 120.0)  # sub-range per scenario
    late_run_share: Range = (0.0004, 0.001)  # runs of held-back fixes re-uploaded next day (per fix)
    dead_zone_p: Range = (0.01, 0.04)  # per legit drive >= 10 min: terminal silent a while
    dead_zone_min: Range = (3.0, 25.0)  # sub-range per scenario
    dead_zone_receiver_p: Range = (0.0, 0.01)  # per legit receiver visit: silent through the unloading
    empty_silence_p: Range = (0.02, 0.08)  # empty drive back from a receiver silent 15-45 min
    # ---- places ---------------------------------------------------------------------------------
    canyon_site_share: Range = (0.05, 0.15)
    canyon_receiver_share: Range = (0.1, 0.35)
    drift_p_canyon: Range = (0.15, 0.45)
    drift_p_elsewhere: Range = (0.004, 0.02)
    drift_mean_m: Range = (40.0, 140.0)  # multipath offset from the fence: gamma, mean and shape drawn
    drift_shape: Range = (1.5, 6.0)
    near_receiver_close_p: Range = (0.3, 0.7)  # near-receiver dumps 150-600 m off the fence, else farther
    near_receiver_far_max_m: Range = (900.0, 2000.0)
    # ---- behaviour ------------------------------------------------------------------------------
    violation_rate: Range = (0.15, 0.3)  # violating truck-nights per truck-day
    cross_midnight_p: Range = (0.2, 0.4)
    last_haul_p: Range = (0.1, 0.35)  # of illegal dumps: the last haul of the shift
    style_weights: tuple[float, ...] = (3.0, 1.0, 2.0, 1.5, 1.5)  # Dirichlet base over SPOT_STYLES
    dump_min: Range = (3.0, 15.0)  # dwell of an illegal dump (sub-range per scenario)
    split_dump_p: Range = (0.02, 0.12)
    split_distance_m: Range = (60.0, 800.0)
    side_stop_p: Range = (0.2, 0.6)  # a dump comes with a legit fuel stop / jam / odd stop
    side_stop_before_p: Range = (0.25, 0.75)  # ...before (loaded) rather than after (empty)
    dark_after_dump_p: Range = (0.05, 0.25)
    odd_stop_p: Range = (0.02, 0.08)  # legit haul: a 3-12 min stop on the way (call, meal, toilet)
    layby_stop_p: Range = (0.03, 0.1)  # legit haul: waits at a lay-by on the receiver's access road
    late_manifest_p: Range = (0.0, 0.04)  # legit manifest entered after departure (补录)
    roadside_per_100_truck_days: Range = (1.0, 3.0)  # small roadside dumps only a report reveals
    # ---- reports --------------------------------------------------------------------------------
    report_p: Range = (0.3, 0.7)  # illegal dumps someone reports
    report_same_day_p: Range = (0.3, 0.7)  # else 1-3 days later
    report_window_p: Range = (0.3, 0.8)  # the report gives observed_from/to
    report_offset_m: Range = (5.0, 60.0)  # where the report says vs where the waste lies
    decoys_per_100_truck_days: Range = (1.0, 3.0)
    decoy_weights: tuple[float, ...] = (1.0, 1.5, 1.5)  # Dirichlet base over DECOY_KINDS
    #: of track gaps: the terminal off only around the spot (a minute or three before arriving to a minute
    #: or three after leaving) rather than for the whole detour out and back
    gap_at_spot_share: Range = (0.2, 0.8)


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard"),
    "hard": Profile(  # the feed degrades; the fleet behaves as in standard
        "hard",
        interval_moving_s=(30.0, 90.0),
        interval_parked_s=(180.0, 330.0),
        motion_based_share=(0.0, 0.3),
        noise_m=(10.0, 40.0),
        outlier_share=(0.003, 0.01),
        swapped_share=(0.001, 0.006),
        dropouts_per_truck_day=(1.0, 3.0),
        dropout_s=(60.0, 240.0),
        report_offset_m=(5.0, 120.0),
    ),
    "sparse": Profile(
        "sparse",
        interval_moving_s=(60.0, 120.0),
        interval_parked_s=(120.0, 300.0),
        motion_based_share=(0.6, 1.0),
        noise_m=(15.0, 50.0),
        outlier_share=(0.003, 0.01),
        sensor_share=(0.0, 0.0),
        dropouts_per_truck_day=(1.0, 3.0),
        dropout_s=(120.0, 480.0),
        dead_zone_p=(0.05, 0.12),
        dead_zone_receiver_p=(0.01, 0.03),
        style_weights=(1.5, 0.5, 1.5, 1.5, 4.0),
        dump_min=(3.0, 6.0),
        split_dump_p=(0.15, 0.35),
        side_stop_p=(0.3, 0.7),
        odd_stop_p=(0.1, 0.25),
        layby_stop_p=(0.1, 0.3),
        late_manifest_p=(0.1, 0.25),
        report_offset_m=(5.0, 120.0),
    ),
}


@dataclass(frozen=True)
class Knobs:
    """The values one scenario drew from its profile (ranges are sub-ranges of the profile's)."""

    profile: str
    interval_moving_s: Range
    interval_parked_s: Range
    motion_based_share: float
    noise_m: Range
    outlier_share: float
    sensor_share: float
    tipping_stuck_share: float
    load_flap_share: float
    swapped_share: float
    dropouts_per_truck_day: float
    dropout_s: Range
    late_run_share: float
    dead_zone_p: float
    dead_zone_min: Range
    dead_zone_receiver_p: float
    empty_silence_p: float
    canyon_site_share: float
    canyon_receiver_share: float
    drift_p_canyon: float
    drift_p_elsewhere: float
    drift_mean_m: float
    drift_shape: float
    near_receiver_close_p: float
    near_receiver_far_max_m: float
    violation_rate: float
    cross_midnight_p: float
    last_haul_p: float
    style_weights: tuple[float, ...]
    dump_min: Range
    split_dump_p: float
    split_distance_m: Range
    side_stop_p: float
    side_stop_before_p: float
    dark_after_dump_p: float
    odd_stop_p: float
    layby_stop_p: float
    late_manifest_p: float
    roadside_per_100_truck_days: float
    report_p: float
    report_same_day_p: float
    report_window_p: float
    report_offset_m: Range
    decoys_per_100_truck_days: float
    decoy_weights: tuple[float, ...]
    gap_at_spot_share: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready (tuples as lists, floats rounded) for the truth file."""

        def clean(v: object) -> object:
            if isinstance(v, float):
                return round(v, 6)
            if isinstance(v, (tuple, list)):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return {k: clean(v) for k, v in asdict(self).items()}

    def drift_m(self, rng: np.random.Generator) -> float:
        """One multipath offset from a fence: gamma with the scenario's mean and shape, 10-320 m."""
        return float(np.clip(rng.gamma(self.drift_shape, self.drift_mean_m / self.drift_shape), 10.0, 320.0))

    def near_receiver_m(self, rng: np.random.Generator) -> float:
        """How far outside a receiver's fence a near-receiver dump lies (from 150 m: any distance)."""
        if rng.random() < self.near_receiver_close_p:
            return float(rng.uniform(150.0, 600.0))
        return float(rng.uniform(600.0, self.near_receiver_far_max_m))


def _scalar(rng: np.random.Generator, r: Range) -> float:
    lo, hi = r
    return float(lo) if hi <= lo else float(rng.uniform(lo, hi))


def _sub_range(rng: np.random.Generator, r: Range) -> Range:
    """A sub-range covering at least 20 % of ``r``: trucks of one world differ, worlds differ more."""
    lo, hi = r
    if hi <= lo:
        return (float(lo), float(hi))
    w = hi - lo
    return (float(lo + w * rng.uniform(0.0, 0.4)), float(hi - w * rng.uniform(0.0, 0.4)))


#: knobs drawn as a sub-range of the profile's range (trucks and events then draw inside it)
_SUB_RANGES = frozenset(
    {"interval_moving_s", "interval_parked_s", "noise_m", "dropout_s", "dead_zone_min", "dump_min"}
    | {"split_distance_m", "report_offset_m"}
)


def draw_knobs(profile: str | Profile, rng: np.random.Generator) -> Knobs:
    """The scenario's knobs, drawn from ``profile`` with ``rng`` (seeded: same seed, same world)."""
    p = PROFILES[profile] if isinstance(profile, str) else profile
    values: dict[str, object] = {"profile": p.name}
    for f in fields(Profile):
        if f.name == "name":
            continue
        v = getattr(p, f.name)
        if f.name in ("style_weights", "decoy_weights"):
            values[f.name] = tuple(float(x) for x in rng.dirichlet(np.asarray(v, dtype=float) * 2.0))
        elif f.name in _SUB_RANGES:
            values[f.name] = _sub_range(rng, v)
        else:
            values[f.name] = _scalar(rng, v)
    return Knobs(**values)  # type: ignore[arg-type]


def profile_of(name: str) -> Profile:
    """The named profile, or a ValueError naming the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)}") from None


__all__ = ["DECOY_KINDS", "PROFILES", "PROFILE_NAMES", "SPOT_STYLES", "Knobs", "Profile", "draw_knobs", "profile_of"]
