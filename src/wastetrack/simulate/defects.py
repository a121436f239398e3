"""Feed defects: what platforms do to a clean track before it lands.

Applied to the clean fixes of all trucks (one frame, vectorised), counted in
``counts`` so the truth can say exactly how dirty the feed is: terminal
drop-outs of 1-2 minutes, (0,0) fixes, teleports (kilometres in seconds),
duplicates, rows re-uploaded late in the next day's batch (``upload_note=补传``),
rows spread over another part, rows out of order, plate spelling variants,
mixed time formats, extra columns and a few invalid rows a reader must
quarantine. Nothing here touches the protected windows around injected
violations, so a defect never erases the evidence the truth promises.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from wastetrack.simulate.fleet import plate_variant
from wastetrack.simulate.geography import to_lonlat, to_xy


def _protected_mask(
    vid_code: np.ndarray, t: np.ndarray, windows: dict[int, list[tuple[float, float]]]
) -> np.ndarray:
    mask = np.zeros(len(t), dtype=bool)
    for code, wins in windows.items():
        sel = np.flatnonzero(vid_code == code)
        if len(sel) == 0:
            continue
        tt = t[sel]
        for a, b in wins:
            mask[sel[(tt >= a) & (tt <= b)]] = True
    return mask


def apply_track_defects(
    rng: np.random.Generator,
    fx: pd.DataFrame,
    protected: dict[int, list[tuple[float, float]]],
    counts: Counter,
) -> pd.DataFrame:
    """Drop-outs, (0,0), teleports and duplicates on the clean fixes (sorted by vehicle, time)."""
    fx = fx.reset_index(drop=True)
    code = fx["vcode"].to_numpy()
    t = fx["t"].to_numpy(dtype=float)
    prot = _protected_mask(code, t, protected)
    keep = np.ones(len(fx), dtype=bool)
    # terminal drop-outs of 60-120 s, 0-2 per truck-day
    day = fx["day"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, (code[1:] != code[:-1]) | (day[1:] != day[:-1])])
    ends = np.r_[starts[1:], len(fx)]
    for a, b in zip(starts, ends, strict=True):
        for _ in range(int(rng.integers(0, 3))):
            if b - a < 50:
                continue
            i = int(rng.integers(a + 10, b - 10))
            w = t[i] + float(rng.uniform(60, 120))
            j = int(np.searchsorted(t[i:b], w)) + i
            if j - i >= 2 and not prot[i:j].any() and fx.at[i, "speed_kmh"] > 0:
                keep[i + 1 : j] = False
                counts["dropouts"] += 1
                counts["dropout_fixes_removed"] += j - i - 1
    cand = np.flatnonzero(keep & ~prot)
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


def pick_late(
    rng: np.random.Generator, fx: pd.DataFrame, last_day: str, protected: dict[int, list[tuple[float, float]]]
) -> np.ndarray:
    """Runs of 5-20 consecutive fixes of one truck held back and re-uploaded in the next day's batch."""
    code = fx["vcode"].to_numpy()
    t = fx["t"].to_numpy(dtype=float)
    prot = _protected_mask(code, t, protected)
    day = fx["day"].to_numpy(dtype=object)
    ok = (day != last_day) & ~prot
    late = np.zeros(len(fx), dtype=bool)
    n_runs = max(1, len(fx) // 1500)
    starts = rng.choice(np.flatnonzero(ok), size=min(n_runs, int(ok.sum())), replace=False)
    for s in starts:
        k = int(rng.integers(5, 21))
        e = min(len(fx), s + k)
        same = (code[s:e] == code[s]) & ok[s:e] & (day[s:e] == day[s])
        late[s:e] |= same
    return late


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
    return pd.Series([plate_variant(v, int(s)) for v, s in zip(vids, styles, strict=True)], index=vids.index)


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
