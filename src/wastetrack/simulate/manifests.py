"""Electronic manifests (电子联单) of the simulated hauls, as a manifest platform exports them.

Legit hauls get a manifest issued before departure (sometimes the afternoon
before), a gate-out ``departed_at`` and a gate-in ``received_at`` (never later
than the end of the scenario: the last batch shows what was known then); some stay
``in_transit`` because the receiving platform never updated them, some were
cancelled and re-issued. Violating hauls get what a cheat leaves behind: a
manifest to a legit receiver that never receives it, one to the wrong receiver,
or none at all. Cross-province manifests carry a filing number.

Late manifests (``late_manifest_p``, drawn per world): some legit hauls' manifests
are entered after the truck left the site (补录), later the same day — the
night's batch has them, but their ``issued_at`` follows the departure and half
of them carry no gate-out scan. A detector that only pairs manifests issued
before departure turns these legit hauls into false ``unmanifested`` leads.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from wastetrack.models import MANIFEST_COLUMNS
from wastetrack.simulate.fleet import plate_variant
from wastetrack.simulate.geography import COUNTIES
from wastetrack.simulate.nights import MIN, TZ, Haul, World, local_epoch

_PREFIX = {"310000": "SH", "320000": "JS", "330000": "ZJ", "340000": "AH"}
_SHORT = {"310000": "沪", "320000": "苏", "330000": "浙", "340000": "皖"}
_REMARKS = ("", "", "", "夜间运输", "分批清运", "重新开单")


def _iso(t: float, naive: bool = False) -> str:
    dt = datetime.fromtimestamp(round(t), TZ)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") if naive else dt.isoformat()


def build_manifests(
    rng: np.random.Generator, hauls: list[Haul], world: World, late_manifest_p: float = 0.0
) -> pd.DataFrame:
    """All manifest rows (with a ``_issued`` epoch column for batching); sets ``haul.manifest_id``."""
    rows = []
    for h in hauls:
        if h.manifest_status == "none" or h.manifest_dest is None or h.unload_end < world.win_start:
            continue
        late_entry = h.load_start < world.win_start + 10 * MIN  # loaded before the first batch: 补录
        issued = h.load_start - float(rng.uniform(5, 100)) * MIN
        if rng.random() < 0.15:
            day = datetime.fromtimestamp(h.load_start - 6 * 3600, TZ).date()
            issued = local_epoch(day, 13) + float(rng.uniform(0, 4 * 60)) * MIN
        if late_entry:
            issued = world.win_start + float(rng.uniform(5, 240))
        else:
            issued = min(max(issued, world.win_start + float(rng.uniform(5, 300))), h.load_start)
        oprov = COUNTIES[h.origin.county_adcode].province_adcode
        dprov = COUNTIES[h.manifest_dest.county_adcode].province_adcode
        filing = (
            (
                f"跨备{_SHORT[oprov]}{_SHORT[dprov]}〔{datetime.fromtimestamp(issued, TZ).year}〕"
                f"{int(rng.integers(1000, 9999))}号"
            )
            if oprov != dprov
            else ""
        )
        status = h.manifest_status
        late = False
        if h.kind == "legit" and status in ("received", "in_transit") and not late_entry:
            draw = float(rng.random())
            day_end = local_epoch(datetime.fromtimestamp(h.load_end, TZ).date(), 23, 55)
            when = h.load_end + float(rng.uniform(5, 240)) * MIN
            when = min(when, day_end, world.win_end - 60.0)
            if draw < late_manifest_p and when > h.load_end + 120:
                issued, late = when, True
                h.late_manifest = True
                h.features.append("late_manifest")
        base = {
            "_prefix": _PREFIX[oprov],
            "_haul": h,
            "carrier_id": h.carrier_id,
            "origin_site_id": h.origin.site_id,
            "dest_site_id": h.manifest_dest.site_id,
            "waste_type": h.waste_type,
            "volume_m3": h.volume_m3,
            "cross_region_filing": filing,
            "vehicle_id": h.vehicle_id,
        }
        if status == "reissued":
            first = issued - float(rng.uniform(10, 40)) * MIN
            rows.append(
                {
                    **base,
                    "_haul": None,
                    "_issued": max(first, world.win_start + 1),
                    "departed_at": "",
                    "received_at": "",
                    "status": "cancelled",
                    "remark": "司机变更，作废",
                }
            )
            status = "received"
        depart_t = h.load_end + float(rng.uniform(0, 90))
        departed = "" if rng.random() < (0.5 if late else 0.1) else _iso(depart_t)
        received = _iso(h.gate_in) if status == "received" and h.gate_in is not None else ""
        # the last batch is exported at the end of the scenario: scans after it have not happened yet
        if depart_t >= world.win_end and status in ("received", "in_transit"):
            status, departed, received = "issued", "", ""
        elif status == "received" and h.gate_in is not None and h.gate_in >= world.win_end:
            status, received = "in_transit", ""
        rows.append(
            {
                **base,
                "_issued": issued,
                "departed_at": departed if status != "issued" else "",
                "received_at": received,
                "status": status,
                "remark": "补录" if late_entry or late else _REMARKS[int(rng.integers(len(_REMARKS)))],
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*MANIFEST_COLUMNS, "remark", "_issued", "_haul"])
    frame = frame.sort_values(["_issued", "vehicle_id"], kind="stable").reset_index(drop=True)
    day = frame["_issued"].map(lambda t: datetime.fromtimestamp(t, TZ).strftime("%Y%m%d"))
    seq = frame.groupby([frame["_prefix"], day]).cumcount() + 1
    frame["manifest_id"] = frame["_prefix"] + day + seq.map(lambda n: f"{n:05d}")
    for mid, h in zip(frame["manifest_id"], frame["_haul"], strict=True):
        if h is not None:
            h.manifest_id = mid
    naive = rng.random(len(frame)) < 0.03
    frame["issued_at"] = [_iso(t, bool(n)) for t, n in zip(frame["_issued"], naive, strict=True)]
    styles = rng.choice(3, size=len(frame), p=[0.5, 0.3, 0.2])
    frame["vehicle_id"] = [plate_variant(v, int(s)) for v, s in zip(frame["vehicle_id"], styles, strict=True)]
    pad = rng.random(len(frame)) < 0.03
    frame.loc[pad, "vehicle_id"] = " " + frame.loc[pad, "vehicle_id"] + " "
    return frame[[*MANIFEST_COLUMNS, "remark", "_issued"]]


def stray_cancelled(rng: np.random.Generator, world: World, trucks, sites, n: int) -> list[dict]:
    """Manifests opened and cancelled with no haul behind them (they must not become leads)."""
    out = []
    for _ in range(n):
        tr = trucks[int(rng.integers(len(trucks)))]
        s = sites[int(rng.integers(len(sites)))]
        day = world.dates[int(rng.integers(len(world.dates)))]
        out.append((tr, s, local_epoch(day, int(rng.integers(7, 18))) + float(rng.uniform(0, 3600))))
    return out


def add_stray(frame: pd.DataFrame, rng: np.random.Generator, stray, receivers) -> pd.DataFrame:
    if not stray:
        return frame
    rows = []
    for k, (tr, s, t) in enumerate(stray):
        rec = receivers[int(rng.integers(len(receivers)))]
        rows.append(
            {
                "manifest_id": f"SH{datetime.fromtimestamp(t, TZ):%Y%m%d}9{k:04d}",
                "vehicle_id": tr.plate,
                "carrier_id": tr.carrier.carrier_id,
                "origin_site_id": s.site_id,
                "dest_site_id": rec.site_id,
                "waste_type": s.waste_type,
                "volume_m3": tr.capacity_m3,
                "issued_at": _iso(t),
                "departed_at": "",
                "received_at": "",
                "status": "cancelled",
                "cross_region_filing": "",
                "remark": "司机变更，作废",
                "_issued": t,
            }
        )
    out = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    return out.sort_values(["_issued", "manifest_id"], kind="stable").reset_index(drop=True)


def manifest_day(frame: pd.DataFrame) -> pd.Series:
    return frame["_issued"].map(lambda t: datetime.fromtimestamp(t, TZ).date().isoformat())


__all__ = ["add_stray", "build_manifests", "manifest_day", "stray_cancelled"]
