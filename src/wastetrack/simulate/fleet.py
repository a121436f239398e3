"""Trucks, carriers and their habits: plates, credit codes, shifts, fix intervals, sensors.

Every truck gets the traits that make real feeds heterogeneous, drawn from the
scenario's knobs (``profiles.Knobs``): its own fix interval while the engine
runs and while parked, whether its terminal also drops to the parked rate
whenever the truck stands still (motion-based reporting), its own GPS noise,
load/tipping sensors on some trucks only, and a home truck park where it sleeps
between night shifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wastetrack.simulate.geography import COUNTIES, Place
from wastetrack.simulate.profiles import Knobs

#: GB 32100-2015 character set (no I, O, S, V, Z) and weights of the 18th check character.
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
#: GB 11714 organisation code weights (characters 9-17 of the credit code).
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _org_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10


def credit_check_char(first17: str) -> str:
    """The GB 32100 check character of a 17-character prefix."""
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARS[(31 - total % 31) % 31]


def is_valid_credit_code(code: str) -> bool:
    return (
        len(code) == 18 and all(c in _CREDIT_CHARS for c in code) and credit_check_char(code[:17]) == code[17]
    )


def make_credit_code(rng: np.random.Generator, adcode: str) -> str:
    """A well-formed unified social credit code of an enterprise (91) registered in ``adcode``."""
    if rng.random() < 0.5:  # newer codes: MA + 6 characters
        body = "MA" + "".join(_CREDIT_CHARS[int(i)] for i in rng.integers(0, 31, 6))
    else:
        body = "".join(str(int(i)) for i in rng.integers(0, 10, 8))
    s = sum(_org_value(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    c9 = 11 - s % 11
    org = body + ("X" if c9 == 10 else "0" if c9 == 11 else str(c9))
    first17 = "91" + adcode + org
    return first17 + credit_check_char(first17)


_CARRIER_WORDS = (
    "顺达",
    "鸿运",
    "捷安",
    "通运",
    "华诚",
    "金盛",
    "新华诚",
    "恒通",
    "宏达",
    "安顺",
    "永盛",
    "众鑫",
)
_CARRIER_KINDS = ("建筑垃圾清运有限公司", "渣土运输有限公司", "运输有限公司", "土方运输有限公司")
_PLATE_LETTERS = {"沪": "ABCDEF", "苏": "E", "浙": "F", "皖": "P"}
_PLATE_CHARS = "0123456789" * 4 + "ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass
class Carrier:
    carrier_id: str
    name: str
    county_adcode: str
    contact_phone: str


@dataclass
class Truck:
    vehicle_id: str  # normalised plate
    plate: str  # as the registry writes it
    carrier: Carrier
    terminal_id: str
    capacity_m3: float
    registered_adcode: str
    permit_valid_to: str
    interval_s: float  # fix interval with the engine on
    noise_m: float  # GPS noise sigma
    sensors: bool  # loaded/tipping sensors fitted
    base: Place  # truck park where it sleeps
    speed_factor: float  # driver habit
    parked_interval_s: float = 300.0  # fix interval when parked (ACC off)
    motion_based: bool = False  # the terminal also reports at the parked rate while standing (dumps, loading)


def _phone(rng: np.random.Generator, county: str) -> str:
    if county.startswith("31") and rng.random() < 0.7:
        return f"021-{int(rng.integers(5000_0000, 6999_9999))}"
    return (
        f"1{int(rng.choice([3, 5, 7, 8]))}{int(rng.integers(0, 10))}{int(rng.integers(1000_0000, 9999_9999))}"
    )


def make_carriers(rng: np.random.Generator, counties: list[str]) -> list[Carrier]:
    out, seen = [], set()
    for county in counties:
        c = COUNTIES[county]
        prefix = c.city_name[:-1] if c.province_adcode != "310000" else "上海"
        while True:
            name = (
                f"{prefix}{c.name[:-1] if len(c.name) > 2 else c.name}"
                f"{_CARRIER_WORDS[int(rng.integers(len(_CARRIER_WORDS)))]}"
                f"{_CARRIER_KINDS[int(rng.integers(len(_CARRIER_KINDS)))]}"
            )
            if name not in seen:
                break
        seen.add(name)
        out.append(Carrier(make_credit_code(rng, county), name, county, _phone(rng, county)))
    return out


def make_plate(rng: np.random.Generator, short: str, taken: set[str]) -> str:
    while True:
        letter = _PLATE_LETTERS[short][int(rng.integers(len(_PLATE_LETTERS[short])))]
        tail = "".join(_PLATE_CHARS[int(i)] for i in rng.integers(0, len(_PLATE_CHARS), 5))
        if sum(ch.isalpha() for ch in tail) > 2:
            continue
        vid = f"{short}{letter}{tail}"
        if vid not in taken:
            taken.add(vid)
            return vid


def plate_variant(vid: str, style: int) -> str:
    """沪AD1234 written as 沪A·D1234 (1), 沪A D1234 (2) or as is (0): one vehicle, three spellings."""
    if style == 1:
        return f"{vid[:2]}·{vid[2:]}"
    if style == 2:
        return f"{vid[:2]} {vid[2:]}"
    return vid


def make_trucks(
    rng: np.random.Generator,
    n: int,
    carriers: list[Carrier],
    parks: dict[str, list[Place]],
    start_year: int,
    knobs: Knobs,
) -> list[Truck]:
    """The fleet; feed traits (intervals, noise, sensors) come from the scenario's knobs."""
    taken: set[str] = set()
    trucks = []
    for i in range(n):
        carrier = (
            carriers[i % len(carriers)] if i < len(carriers) else carriers[int(rng.integers(len(carriers)))]
        )
        short = COUNTIES[carrier.county_adcode].short
        vid = make_plate(rng, short, taken)
        cand = parks.get(carrier.county_adcode) or [p for ps in parks.values() for p in ps]
        style = int(rng.choice(3, p=[0.4, 0.45, 0.15]))
        trucks.append(
            Truck(
                vehicle_id=vid,
                plate=plate_variant(vid, style),
                carrier=carrier,
                terminal_id=f"01{int(rng.integers(3, 5))}{int(rng.integers(1000_0000, 9999_9999)):08d}"[:12],
                capacity_m3=float(
                    rng.choice([10.0, 12.0, 14.0, 16.0, 18.0, 25.0], p=[0.15, 0.2, 0.25, 0.2, 0.15, 0.05])
                ),
                registered_adcode=carrier.county_adcode,
                permit_valid_to=""
                if rng.random() < 0.3
                else f"{start_year + int(rng.integers(0, 3))}-{int(rng.integers(1, 13)):02d}-"
                f"{int(rng.integers(1, 29)):02d}",
                interval_s=float(rng.uniform(*knobs.interval_moving_s)),
                noise_m=float(rng.uniform(*knobs.noise_m)),
                sensors=bool(rng.random() < knobs.sensor_share),
                base=cand[int(rng.integers(len(cand)))],
                speed_factor=float(rng.uniform(0.85, 1.1)),
                parked_interval_s=float(rng.uniform(*knobs.interval_parked_s)),
                motion_based=bool(rng.random() < knobs.motion_based_share),
            )
        )
    return trucks
