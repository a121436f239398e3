"""Feed defects: what platforms do to a clean track before it lands.

Applied to the clean fixes of all trucks (one frame, vectorised), counted in
``counts`` so the truth can say exactly how dirty the feed is: terminal
drop-outs (how many and how long is the world's: ``Knobs.dropouts_per_truck_day``,
``Knobs.dropout_s``), (0,0) fixes, teleports (kilometres in seconds),
duplicates, rows re-uploaded late in the next day's batch
(``upload_note=补传``), rows spread over another part, rows out of order, plate
spelling variants, mixed time formats, extra columns, rows with lon and lat
swapped, and a few invalid rows a reader must quarantine.

Defects fall on violating trips exactly as on any other: a real platform does
not know which trip is a violation. The truth records, per event, how many
fixes survived at its place (``evidence_fixes``), so a miss on an event the
feed erased can be told from a miss the detector should not make.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from wastetrack.simulate.fleet import plate_variant
from wastetrack.simulate.geography import to_lonlat, to_xy
from wastetrack.simulate.profiles import Knobs


def apply_track_defects(rng: np.random.Generator, fx: pd.DataFrame, counts: Counter, knobs: Knobs) -> pd.DataFrame:
    """Drop-outs, (0,0), teleports and duplicates on the clean fixes (sorted by vehicle, time)."""
    fx = fx.reset_index(drop=True)
    code = fx["vcode"].to_numpy()
    t = fx["t"].to_numpy(dtype=float)
    keep = np.ones(len(fx), dtype=bool)
    day = fx["day"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, (code[1:] != code[:-1]) | (day[1:] != day[:-1])])
    ends = np.r_[starts[1:], len(fx)]
    for a, b in zip(starts, ends, strict=True):
        for _ in range(int(rng.poisson(knobs.dropouts_per_truck_day))):
            if b - a < 30:
                continue
            i = int(rng.integers(a + 5, b - 5))
            w = t[i] + float(rng.uniform(*knobs.dropout_s))
            j = int(np.searchsorted(t[i:b], w)) + i
            if j - i >= 2:
                keep[i + 1 : j] = False
                counts["dropouts"] += 1
                counts["dropout_fixes_removed"] += j - i - 1
    cand = np.flatnonzero(keep)
    n = len(fx)
    zero = rng.choice(cand, size=max(1, n // 1500), replace=False)
    fx.loc[zero, ["lon", "lat"]] = 0.0
    counts["zero_fixes"] += len(zero)
    cand2 = np.setdiff1d(cand, zero)
    tele = rng.choice(cand2, size=max(1, n // 4000), replace=False)
    x, y = to_xy(fx.loc[tele, "lon"].to_numpy(), fx.loc[tele, "lat"].to_numpy())
    ang = rng.uniform(0, 2 * np.pi, len(tele))
    r = rng.uniform(5000, 30000, len(tele))
    lo, la = to_lonlat(x + r * np.cos(ang), y + r * np.sin(ang))
    fx.loc[tele, "lon"] = lo
    fx.loc[tele, "lat"] = la
    counts["teleports"] += len(tele)
    fx = fx[keep]
    dup = rng.choice(len(fx), size=max(1, len(fx) // 250), replace=False)
    counts["duplicates"] += len(dup)
    fx = pd.concat([fx, fx.iloc[dup]], ignore_index=True)
    return fx.sort_values(["vcode", "t"], kind="stable").reset_index(drop=True)


def pick_late(rng: np.random.Generator, fx: pd.DataFrame, last_day: str, knobs: Knobs) -> np.ndarray:
    """Runs of 5-20 consecutive fixes of one truck held back and re-uploaded in the next day's batch."""
    code = fx["vcode"].to_numpy()
    day = fx["day"].to_numpy(dtype=object)
    ok = day != last_day
    late = np.zeros(len(fx), dtype=bool)
    n_runs = max(1, round(len(fx) * knobs.late_run_share))
    starts = rng.choice(np.flatnonzero(ok), size=min(n_runs, int(ok.sum())), replace=False)
    for s in starts:
        k = int(rng.integers(5, 21))
        e = min(len(fx), s + k)
        same = (code[s:e] == code[s]) & ok[s:e] & (day[s:e] == day[s])
        late[s:e] |= same
    return late


def swap_lonlat(rng: np.random.Generator, fx: pd.DataFrame, share: float, counts: Counter) -> pd.DataFrame:
    """Rows written with lon and lat swapped (a platform's export bug): a reader must not take them."""
    if share <= 0 or fx.empty:
        return fx
    swap = rng.random(len(fx)) < share
    if swap.any():
        fx = fx.copy()
        fx.loc[swap, ["lon", "lat"]] = fx.loc[swap, ["lat", "lon"]].to_numpy()
        counts["swapped_lonlat"] += int(swap.sum())
    return fx


def shuffle_rows(rng: np.random.Generator, frame: pd.DataFrame, frac: float, counts: Counter) -> pd.DataFrame:
    """Swap a fraction of rows with a neighbour up to 30 rows away (rows out of order)."""
    n = len(frame)
    if n < 40:
        return frame
    order = np.arange(n)
    k = max(1, int(n * frac))
    src = rng.choice(n - 31, size=k, replace=False)
    dst = src + rng.integers(1, 31, size=k)
    for a, b in zip(src, dst, strict=True):
        order[a], order[b] = order[b], order[a]
    counts["out_of_order_swaps"] += k
    return frame.iloc[order].reset_index(drop=True)


def plate_column(rng: np.random.Generator, vids: pd.Series, style: int, counts: Counter) -> pd.Series:
    """A part's plate spelling, with ~3 % of rows spelt another way."""
    styles = np.where(rng.random(len(vids)) < 0.03, rng.integers(0, 3, len(vids)), style)
    counts["plate_variant_rows"] += int((styles != style).sum())
    raw = vids.to_numpy(dtype=object)
    spelt = {(v, s): plate_variant(v, s) for v in set(raw) for s in range(3)}  # few plates, many rows
    return pd.Series([spelt[(v, int(s))] for v, s in zip(raw, styles, strict=True)], index=vids.index)


def invalid_rows(
    rng: np.random.Generator, day: str, plates: list[str], columns: list[str], counts: Counter
) -> pd.DataFrame:
    """Rows a reader must quarantine: bad time, bad enum, bad plate, out-of-range latitude."""
    rows = []
    base = {
        "lon": "121.301234",
        "lat": "31.112233",
        "speed_kmh": "12.0",
        "heading": "90",
        "loaded": "",
        "tipping": "",
    }
    p = plates[int(rng.integers(len(plates)))]
    rows.append({**base, "vehicle_id": p, "ts": f"{day}T25:61:00+08:00"})
    counts["invalid_bad_time"] += 1
    rows.append({**base, "vehicle_id": p, "ts": "昨天晚上"})
    counts["invalid_bad_time"] += 1
    rows.append({**base, "vehicle_id": p, "ts": f"{day}T03:12:09+08:00", "loaded": "maybe"})
    counts["invalid_bad_enum"] += 1
    rows.append({**base, "vehicle_id": "", "ts": f"{day}T02:10:00+08:00"})
    rows.append({**base, "vehicle_id": "UNKNOWN", "ts": f"{day}T02:10:30+08:00"})
    counts["invalid_bad_plate"] += 2
    rows.append({**base, "vehicle_id": p, "ts": f"{day}T04:00:00+08:00", "lat": "95.5"})
    counts["invalid_out_of_range"] += 1
    out = pd.DataFrame(rows)
    for c in columns:
        if c not in out:
            out[c] = ""
    return out[columns]
