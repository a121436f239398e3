"""Coordinate systems of Chinese sources: WGS-84, GCJ-02 and BD-09, vectorised.

Feeds mix three systems that sit ~500 m apart in Shanghai, so every reader
normalises to WGS-84 at the edge (``to_wgs84``) and nothing downstream ever sees
GCJ-02 or BD-09. GCJ-02 is a published forward transform with no closed-form
inverse; the usual single-step inverse is ~1-3 m off, which is the width of a
site gate, so ``gcj02_to_wgs84`` iterates the forward transform until the
residual is below 1e-9 degrees (about 0.1 mm).

Distances are never taken in degrees: ``METRIC_CRS`` (CGCS2000 / 3-degree
Gauss-Kruger CM 120E, EPSG:4549) is the metric projection used for every
distance and buffer in the delta, and ``haversine_m`` is the vectorised
great-circle distance for point-to-point work on raw arrays.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

CoordSys = Literal["wgs84", "gcj02", "bd09"]
COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

#: Metric CRS for the delta (CGCS2000 / 3-degree Gauss-Kruger CM 120E); error < 0.1 % in the region.
METRIC_CRS = "EPSG:4549"
WGS84_CRS = "EPSG:4326"

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0
_EARTH_R_M = 6371008.8

FloatArray = NDArray[np.float64]


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where GCJ-02 does not apply (the offset is only defined inside China's bounding box)."""
    x, y = _arrays(lon, lat)
    return ~((x >= 72.004) & (x <= 137.8347) & (y >= 0.8293) & (y <= 55.8271))


def _delta(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS-84 position (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    t1 = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx
    dlat = dlat + t1
    dlat = dlat + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx
    dlon = dlon + t1
    dlon = dlon + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Forward GCJ-02 transform; identity outside China."""
    x, y = _arrays(lon, lat)
    dlon, dlat = _delta(x, y)
    outside = out_of_china(x, y)
    return np.where(outside, x, x + dlon), np.where(outside, y, y + dlat)


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, tol_deg: float = 1e-9, max_iter: int = 30
) -> tuple[FloatArray, FloatArray]:
    """Inverse GCJ-02 by fixed-point iteration: sub-millimetre, unlike the single-step inverse."""
    gx, gy = _arrays(lon, lat)
    x, y = gx.copy(), gy.copy()
    for _ in range(max_iter):
        fx, fy = wgs84_to_gcj02(x, y)
        ex, ey = fx - gx, fy - gy
        x = x - ex
        y = y - ey
        if not np.any((np.abs(ex) > tol_deg) | (np.abs(ey) > tol_deg)):
            break
    return x, y


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Baidu's BD-09 on top of GCJ-02."""
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Inverse of ``gcj02_to_bd09``, iterated like the GCJ-02 inverse (the textbook formula is ~1 m off)."""
    bx, by = _arrays(lon, lat)
    x = bx - 0.0065
    y = by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    gx, gy = z * np.cos(theta), z * np.sin(theta)
    for _ in range(10):
        fx, fy = gcj02_to_bd09(gx, gy)
        ex, ey = fx - bx, fy - by
        gx, gy = gx - ex, gy - ey
        if not np.any((np.abs(ex) > 1e-10) | (np.abs(ey) > 1e-10)):
            break
    return gx, gy


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: ArrayLike, lat: ArrayLike, coord_sys: str) -> tuple[FloatArray, FloatArray]:
    """Normalise arrays declared in ``coord_sys`` (``wgs84``/``gcj02``/``bd09``) to WGS-84."""
    cs = (coord_sys or "wgs84").strip().lower()
    if cs in ("wgs84", "cgcs2000"):
        return _arrays(lon, lat)
    if cs == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if cs == "bd09":
        return bd09_to_wgs84(lon, lat)
    raise ValueError(f"unknown coordinate system {coord_sys!r}; expected one of {COORD_SYSTEMS}")


def from_wgs84(lon: ArrayLike, lat: ArrayLike, coord_sys: str) -> tuple[FloatArray, FloatArray]:
    """WGS-84 to ``coord_sys``: used by the simulator to write feeds the way platforms do."""
    cs = (coord_sys or "wgs84").strip().lower()
    if cs in ("wgs84", "cgcs2000"):
        return _arrays(lon, lat)
    if cs == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if cs == "bd09":
        return wgs84_to_bd09(lon, lat)
    raise ValueError(f"unknown coordinate system {coord_sys!r}; expected one of {COORD_SYSTEMS}")


def haversine_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Great-circle distance in metres between WGS-84 points, element-wise."""
    x1, y1 = _arrays(lon1, lat1)
    x2, y2 = _arrays(lon2, lat2)
    p1, p2 = np.radians(y1), np.radians(y2)
    dp = p2 - p1
    dl = np.radians(x2 - x1)
    a = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return 2.0 * _EARTH_R_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def boxes_around(lon: ArrayLike, lat: ArrayLike, radius_m: float) -> list[tuple[float, float, float, float]]:
    """A WGS-84 ``(min_lon, min_lat, max_lon, max_lat)`` box holding the ``radius_m`` circle around each point,
    on the sphere ``haversine_m`` measures on (the longitude half-width taken at the box's poleward edge)."""
    x, y = _arrays(lon, lat)
    dlat = np.degrees(float(radius_m) / _EARTH_R_M)
    dlon = dlat / np.maximum(np.cos(np.radians(np.minimum(np.abs(y) + dlat, 90.0))), 1e-9)
    return list(zip((x - dlon).tolist(), (y - dlat).tolist(), (x + dlon).tolist(), (y + dlat).tolist(),
                    strict=True))


def local_xy_m(lon: ArrayLike, lat: ArrayLike, lon0: float, lat0: float) -> tuple[FloatArray, FloatArray]:
    """Equirectangular metres around (lon0, lat0): exact enough (<0.1 %) within tens of km, and cheap."""
    x, y = _arrays(lon, lat)
    k = np.pi / 180.0 * _EARTH_R_M
    return (x - lon0) * k * np.cos(np.radians(lat0)), (y - lat0) * k
