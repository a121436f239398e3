"""Administrative look-ups for the simulator: the shipped boundaries when present, else a fallback.

The truth's ``county_adcode`` of an event must be what the pipeline will derive
from the geometry, so whenever ``wastetrack.boundaries`` is importable and has
its data the simulator asks it (``locate``). Without it (early development,
minimal installs) the county of the nearest simulator town is used, which is
right for every place the simulator generates (they sit within 2.5 km of a
town centre well inside its county).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from wastetrack.simulate.geography import COUNTIES, PROVINCES, TOWNS, to_xy


@lru_cache(maxsize=1)
def load_boundaries() -> pd.DataFrame | None:
    """The project's boundary table (adcode, name, level, parent/province/city adcodes), or None."""
    try:
        from wastetrack import boundaries  # type: ignore[attr-defined]

        frame = boundaries.load_boundaries()
    except Exception:  # not shipped yet or data missing: fall back
        return None
    if frame is None or len(frame) == 0:
        return None
    return pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))


def locate(lon, lat) -> pd.DataFrame:
    """county/city/province adcodes of WGS-84 points (empty string when outside every county)."""
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    if load_boundaries() is not None:
        from wastetrack import boundaries  # type: ignore[attr-defined]

        got = boundaries.locate(lon, lat).reset_index(drop=True)
        out = pd.DataFrame(
            {c: got[c].fillna("").astype(str) for c in ("county_adcode", "city_adcode", "province_adcode")}
        )
        return out
    tx, ty = to_xy([t[2] for t in TOWNS], [t[3] for t in TOWNS])
    px, py = to_xy(lon, lat)
    nearest = np.argmin(np.hypot(px[:, None] - tx[None, :], py[:, None] - ty[None, :]), axis=1)
    county = [TOWNS[i][0] for i in nearest]
    return pd.DataFrame(
        {
            "county_adcode": county,
            "city_adcode": [COUNTIES[c].city_adcode for c in county],
            "province_adcode": [COUNTIES[c].province_adcode for c in county],
        }
    )


def admin_units() -> pd.DataFrame:
    """Province, city and county units of the four provinces (adcode, name, level, parent/city/province)."""
    b = load_boundaries()
    if b is not None:
        keep = b[b["province_adcode"].astype(str).isin(PROVINCES)]
        cols = ["adcode", "name", "level", "parent_adcode", "city_adcode", "province_adcode"]
        return keep[cols].fillna("").astype(str).reset_index(drop=True)
    rows = [
        {
            "adcode": a,
            "name": n,
            "level": "province",
            "parent_adcode": "",
            "city_adcode": "",
            "province_adcode": a,
        }
        for a, n in PROVINCES.items()
    ]
    cities = {}
    for c in COUNTIES.values():
        cities[c.city_adcode] = (c.city_name, c.province_adcode)
    rows += [
        {"adcode": a, "name": n, "level": "city", "parent_adcode": p, "city_adcode": a, "province_adcode": p}
        for a, (n, p) in sorted(cities.items())
    ]
    rows += [
        {
            "adcode": c.adcode,
            "name": c.name,
            "level": "county",
            "parent_adcode": c.city_adcode,
            "city_adcode": c.city_adcode,
            "province_adcode": c.province_adcode,
        }
        for c in COUNTIES.values()
    ]
    return pd.DataFrame(rows)
