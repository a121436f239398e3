"""The evidence map of a lead sheet: an inline SVG drawn from the data alone.

Liaison officers often open sheets on a government network with no internet,
so the map cannot use tiles, Leaflet or web fonts: it is drawn here from what the
pipeline already holds — the truck's track around the event, the site fences,
the county and province borders, the report points — projected to local metres
around the event (``coords.local_xy_m``, exact to <0.1 % at this scale) with
north up, a scale bar of a round length and a north arrow, so it can be measured
on paper.

Geometry work is vectorised with shapely 2 (``transform``, ``clip_by_rect``,
``simplify`` over arrays, STRtree queries to pick the rows in view); borders are
clipped to the viewport before they are written, so a detailed county polygon
costs a few hundred bytes, not megabytes. Every text drawn is escaped.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

from wastetrack.coords import haversine_m, local_xy_m
from wastetrack.sheets.labels import (
    SITE_KIND_LABELS,
    as_dict,
    as_float,
    as_list,
    as_local_ts,
    fmt_clock,
    fmt_distance,
    text,
)

if TYPE_CHECKING:
    from wastetrack.sheets.render import SheetContext

#: Half of the largest view (30 km across): beyond that a stop is a dot and nothing can be read.
MAX_HALF_EXTENT_M = 15_000.0
#: Half of the smallest view (1 km across): below that the fences fill the map and context is lost.
MIN_HALF_EXTENT_M = 500.0
#: Track context used to choose the zoom: this long before the event's start and after its end.
ZOOM_WINDOW = pd.Timedelta(minutes=30)
#: A silence longer than this between two fixes, while the truck moved, is drawn dashed (short drop-outs
#: are normal, and a parked truck reports only every few minutes).
GAP_DASH_S = 180.0
#: Moving at least this far during a silence makes it a gap (below: a parked truck's heartbeat).
GAP_MOVED_M = 250.0
#: A silence this long is a gap even without moving.
GAP_LONG_S = 1800.0
#: Faster than this between two fixes is a position jump, not driving.
MAX_PLAUSIBLE_KMH = 180.0
#: Free pixels around the fitted points, so markers and labels at the edge stay readable.
PAD_PX = 40.0
LEGEND_H = 46
_CLEANED = "wastetrack.sheets.cleaned"
FONT = "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC','SimHei',sans-serif"

SITE_COLOURS: dict[str, tuple[str, str]] = {  # kind -> (stroke, fill)
    "construction": ("#b35806", "#fdb863"),
    "disposal": ("#1b7837", "#a6dba0"),
    "recycling": ("#01665e", "#80cdc1"),
    "transfer": ("#2166ac", "#92c5de"),
}
TRACK_COLOURS = {1: "#d7301f", 0: "#2b8cbe", -1: "#777777"}  # loaded, empty, unknown
TIPPING_COLOUR = "#7a0177"
EVENT_COLOUR = "#e31a1c"
REPORT_COLOUR = "#ff7f00"
#: What the event point is, per lead kind (the contract: where it unloaded / best estimate / report place).
EVENT_WORDS = {
    "illegal_dump": "卸载点",
    "diverted": "卸载点",
    "unmanifested": "卸载点",
    "track_gap": "推测卸载点",
    "report_trace": "举报地点",
}


def _t(value: object) -> str:
    return html.escape(str(value), quote=True)


class _View:
    """Local-metre frame around (lon0, lat0) and its mapping to SVG pixels (north up)."""

    def __init__(self, lon0: float, lat0: float, cx: float, cy: float, scale: float, w: int, h: int):
        self.lon0, self.lat0, self.cx, self.cy, self.scale, self.w, self.h = lon0, lat0, cx, cy, scale, w, h
        self.half_w_m = w / 2.0 / scale
        self.half_h_m = h / 2.0 / scale
        self.xmin, self.xmax = cx - self.half_w_m, cx + self.half_w_m
        self.ymin, self.ymax = cy - self.half_h_m, cy + self.half_h_m

    def xy(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        return local_xy_m(lon, lat, self.lon0, self.lat0)

    def px(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        return self.w / 2.0 + (x - self.cx) * self.scale, self.h / 2.0 - (y - self.cy) * self.scale

    def to_metres(self, coords: np.ndarray) -> np.ndarray:
        """shapely.transform callback: lon/lat array (N, 2) to local metres."""
        x, y = local_xy_m(coords[:, 0], coords[:, 1], self.lon0, self.lat0)
        return np.column_stack([x, y])

    def bbox_deg(self, pad: float = 1.05) -> tuple[float, float, float, float]:
        """The view in degrees (slightly padded) for spatial-index queries."""
        k = math.pi / 180.0 * 6371008.8
        kx = k * math.cos(math.radians(self.lat0))
        return (
            self.lon0 + self.xmin * pad / kx,
            self.lat0 + self.ymin * pad / k,
            self.lon0 + self.xmax * pad / kx,
            self.lat0 + self.ymax * pad / k,
        )


def nice_length_m(target_m: float) -> float:
    """Largest 1/2/5 × 10^k not above ``target_m``: a scale bar must read as a round number."""
    if target_m <= 0:
        return 1.0
    exp = math.floor(math.log10(target_m))
    for m in (5, 2, 1):
        if m * 10**exp <= target_m:
            return float(m * 10**exp)
    return float(10**exp)


def _fmt_pts(px: np.ndarray, py: np.ndarray) -> str:
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px.tolist(), py.tolist(), strict=True))


def _geom_path(geoms: Any, view: _View) -> str:
    """SVG path data of (multi)polygons/lines already in local metres; rings become closed subpaths."""
    parts = shapely.get_parts(np.atleast_1d(np.asarray(geoms, dtype=object)))
    if len(parts) == 0:
        return ""
    types = shapely.get_type_id(parts)
    polys = parts[types == 3]
    lines = parts[(types == 1) | (types == 2)]
    poly_rings = shapely.get_rings(polys) if len(polys) else np.zeros(0, dtype=object)
    rings = np.concatenate([poly_rings, lines])
    if len(rings) == 0:
        return ""
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    if len(coords) == 0:
        return ""
    closed = np.r_[np.ones(len(poly_rings), dtype=bool), np.zeros(len(lines), dtype=bool)]
    px, py = view.px(coords[:, 0], coords[:, 1])
    cuts = np.flatnonzero(np.diff(idx)) + 1
    out = []
    for seg_x, seg_y, ring_i in zip(np.split(px, cuts), np.split(py, cuts), idx[np.r_[0, cuts]], strict=True):
        if len(seg_x) < 2:
            continue
        pts = _fmt_pts(seg_x, seg_y).replace(" ", " L", len(seg_x))
        out.append(f"M{pts}{' Z' if closed[ring_i] else ''}")
    return " ".join(out)


def _text_width(s: str, size: float) -> float:
    """Rough rendered width: CJK characters are one em wide, Latin about 0.6 em."""
    return size * sum(1.0 if ord(c) >= 0x2E80 else 0.6 for c in s)


def _label(
    x: float,
    y: float,
    s: str,
    size: float = 11,
    fill: str = "#222",
    weight: str = "normal",
    anchor: str = "middle",
    halo: bool = True,
    fit_w: float | None = None,
) -> str:
    """A text label; with ``fit_w`` it is shifted to stay inside [0, fit_w] (names near the map edge)."""
    if fit_w is not None:
        tw = _text_width(s, size)
        lo = {"start": 0.0, "middle": tw / 2, "end": tw}[anchor] + 3
        hi = fit_w - {"start": tw, "middle": tw / 2, "end": 0.0}[anchor] - 3
        x = min(max(x, lo), hi) if lo <= hi else x
    halo_attr = ' stroke="#fff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"' if halo else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" font-weight="{weight}" '
        f'text-anchor="{anchor}"{halo_attr}>{_t(s)}</text>'
    )


class _Placer:
    """Greedy label placement: each label takes the first of its candidate spots that is still free.

    Labels are asked for in order of importance — the event, the reports, the
    sites the lead names, times along the track, then other sites and area
    names — so a less important name gives way instead of covering evidence. A
    label with no free spot is left out unless it must be shown.
    """

    def __init__(self, w: float, h: float):
        self.w, self.h = w, h
        self.boxes: list[tuple[float, float, float, float]] = []

    def reserve(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.boxes.append((x0, y0, x1, y1))

    @staticmethod
    def _box(x: float, y: float, s: str, size: float, anchor: str) -> tuple[float, float, float, float]:
        tw = _text_width(s, size)
        x0 = {"start": x, "middle": x - tw / 2, "end": x - tw}[anchor]
        return (x0 - 2, y - size * 0.95, x0 + tw + 2, y + size * 0.3)

    def _free(self, b: tuple[float, float, float, float]) -> bool:
        if b[0] < 0 or b[1] < 0 or b[2] > self.w or b[3] > self.h:
            return False
        return not any(b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3] for o in self.boxes)

    def place(
        self,
        spots: list[tuple[float, float, str]],
        s: str,
        size: float = 11,
        fill: str = "#222",
        weight: str = "normal",
        must: bool = False,
    ) -> str:
        for x, y, anchor in spots:
            b = self._box(x, y, s, size, anchor)
            if self._free(b):
                self.boxes.append(b)
                return _label(x, y, s, size, fill, weight, anchor)
        if not must or not spots:
            return ""
        x, y, anchor = spots[0]
        self.boxes.append(self._box(x, y, s, size, anchor))
        return _label(x, y, s, size, fill, weight, anchor, fit_w=self.w)


def _level_of(adcodes: pd.Series, levels: pd.Series | None) -> np.ndarray:
    """province/city/county by the 'level' column, or by the adcode pattern when it is absent."""
    codes = adcodes.astype(str).str.strip()
    by_code = np.where(
        codes.str.endswith("0000"), "province", np.where(codes.str.endswith("00"), "city", "county")
    )
    if levels is None:
        return by_code
    lv = levels.astype(str).str.strip().str.lower()
    return np.where(lv.isin(["province", "city", "county"]), lv, by_code)


def _in_view(frame: pd.DataFrame | None, view: _View) -> pd.DataFrame | None:
    """Rows of a GeoDataFrame whose geometry touches the view (STRtree query, no full scan)."""
    if frame is None or len(frame) == 0 or "geometry" not in frame:
        return None
    q = box(*view.bbox_deg())
    try:
        idx = frame.sindex.query(q, predicate="intersects")
    except (AttributeError, TypeError):  # a plain DataFrame of shapely objects
        geoms = np.asarray(frame["geometry"], dtype=object)
        idx = np.flatnonzero(shapely.intersects(geoms, q))
    if len(idx) == 0:
        return None
    return frame.iloc[np.sort(idx)]


def _boundaries_svg(ctx: SheetContext, view: _View, placer: _Placer, avoid: Any = None) -> tuple[str, str]:
    """County/city borders (thin), province borders (thick, dash-dot), and their name labels.

    Labels are placed inside the visible part of each area but outside ``avoid``
    (the event and report markers, in local metres) so a name never hides the evidence.
    """
    rows = _in_view(getattr(ctx, "boundaries", None), view)
    if rows is None:
        return "", ""
    level = _level_of(rows["adcode"], rows.get("level"))
    # Cut to a padded view in degrees first: a province has tens of thousands of vertices, the view a few.
    deg_box = view.bbox_deg(pad=1.3)
    geoms_deg = np.asarray(rows.geometry, dtype=object)
    lines_deg = shapely.clip_by_rect(shapely.boundary(geoms_deg), *deg_box)
    geoms = shapely.transform(shapely.clip_by_rect(geoms_deg, *deg_box), view.to_metres)
    tol = 0.6 / view.scale
    lines = shapely.simplify(
        shapely.clip_by_rect(
            shapely.transform(lines_deg, view.to_metres), view.xmin, view.ymin, view.xmax, view.ymax
        ),
        tol,
    )
    areas = shapely.clip_by_rect(geoms, view.xmin, view.ymin, view.xmax, view.ymax)
    view_area = (view.xmax - view.xmin) * (view.ymax - view.ymin)
    styles = {
        "county": 'stroke="#888" stroke-width="1" stroke-dasharray="5 3"',
        "city": 'stroke="#666" stroke-width="1.4" stroke-dasharray="7 3"',
        "province": 'stroke="#333" stroke-width="2.6" stroke-dasharray="10 3 2 3"',
    }
    paths, labels = [], []
    names = rows["name"].astype(str) if "name" in rows else rows["adcode"].astype(str)
    n_prov = int(np.sum(level == "province"))
    for lv in ("county", "city", "province"):
        sel = level == lv
        if not sel.any():
            continue
        d = _geom_path(lines[sel], view)
        if d:
            paths.append(f'<path d="{d}" fill="none" {styles[lv]}/>')
    # County names where a fair share of the county is visible; province names when the view spans several.
    for lv, size, colour, weight, min_share in (
        ("county", 12, "#555", "normal", 0.04),
        ("province", 15, "#222", "bold", 0.02),
    ):
        if lv == "province" and n_prov < 2:
            continue
        for geom, name in zip(areas[level == lv], names[level == lv], strict=True):
            if geom is None or geom.is_empty or shapely.area(geom) < min_share * view_area:
                continue
            if avoid is not None:
                free = shapely.difference(geom, avoid)
                geom = geom if free.is_empty else free
            p = shapely.point_on_surface(geom)
            x, y = (float(v) for v in view.px(p.x, p.y))
            y += 18 if lv == "province" else 0
            spots = [(x, y, "middle"), (x, y + 22, "middle"), (x, y - 22, "middle"), (x + 60, y, "middle")]
            labels.append(placer.place(spots, name, size, colour, weight))
    return "".join(paths), "".join(labels)


def _sites_svg(ctx: SheetContext, view: _View, highlight: set[str], placer: _Placer) -> tuple[str, str]:
    """Site fences coloured by kind, with names (all of them when few, else only the sites the lead names)."""
    rows = _in_view(getattr(ctx, "sites", None), view)
    if rows is None:
        return "", ""
    geoms = shapely.transform(np.asarray(rows.geometry, dtype=object), view.to_metres)
    kinds = rows["kind"].astype(str).to_numpy() if "kind" in rows else np.full(len(rows), "construction")
    ids = rows["site_id"].astype(str).to_numpy() if "site_id" in rows else np.full(len(rows), "")
    names = rows["name"].astype(str).to_numpy() if "name" in rows else ids
    radius = (
        pd.to_numeric(rows["radius_m"], errors="coerce").to_numpy()
        if "radius_m" in rows
        else np.full(len(rows), np.nan)
    )
    # Point sites the reader did not buffer: draw them with their fence radius (default 100 m).
    is_point = shapely.get_type_id(geoms) == 0
    if is_point.any():
        geoms = geoms.copy()
        geoms[is_point] = shapely.buffer(
            geoms[is_point], np.where(np.isnan(radius[is_point]), 100.0, radius[is_point])
        )
    clipped = shapely.clip_by_rect(geoms, view.xmin, view.ymin, view.xmax, view.ymax)
    b = shapely.bounds(geoms)
    size_px = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * view.scale
    centres = shapely.centroid(geoms)
    cx, cy = view.px(shapely.get_x(centres), shapely.get_y(centres))
    top_px = view.px(b[:, 0], b[:, 3])[1]
    bottom_px = view.px(b[:, 0], b[:, 1])[1]
    show_all_labels = len(rows) <= 12
    shapes = []
    label_todo = []
    for i in range(len(rows)):
        stroke, fill = SITE_COLOURS.get(kinds[i], ("#555", "#ccc"))
        hl = ids[i] in highlight
        width = 2.4 if hl else 1.2
        if size_px[i] < 6:  # too small to read as a fence: a marker the size of a fence on paper
            shapes.append(
                f'<rect x="{cx[i] - 4:.1f}" y="{cy[i] - 4:.1f}" width="8" height="8" fill="{fill}" '
                f'stroke="{stroke}" stroke-width="{width}"/>'
            )
            top, bottom = cy[i] - 7, cy[i] + 17
        else:
            d = _geom_path(clipped[i], view)
            if not d:
                continue
            shapes.append(
                f'<path d="{d}" fill="{fill}" fill-opacity="0.55" fill-rule="evenodd" '
                f'stroke="{stroke}" stroke-width="{width}"/>'
            )
            top, bottom = top_px[i] - 4, bottom_px[i] + 14
        if hl or show_all_labels:
            kind_label = SITE_KIND_LABELS.get(kinds[i], kinds[i])
            title = names[i] if names[i].endswith(kind_label) else f"{names[i]}（{kind_label}）"
            x = float(cx[i])
            spots = [
                (x, float(top), "middle"),
                (x, float(bottom), "middle"),
                (x + 8, float(cy[i]) + 4, "start"),
                (x - 8, float(cy[i]) + 4, "end"),
            ]
            label_todo.append(
                (
                    not hl,
                    spots,
                    title,
                    11 if hl else 10,
                    stroke,
                    "bold" if hl else "normal",
                )
            )
    labels = [
        placer.place(spots, name, size, colour, weight)
        for _, spots, name, size, colour, weight in sorted(label_todo, key=lambda r: r[0])
    ]
    return "".join(shapes), "".join(labels)


def _tri_state(values: pd.Series) -> np.ndarray:
    """1 / 0 / -1 (unknown) from a bool-ish column (bool, nullable boolean with NA, 0/1, "true"/"false").

    Sensors are missing on many trucks, so unknown must stay unknown, never become "empty".
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int8)
    if pd.api.types.is_bool_dtype(values.dtype):
        b = values.astype("boolean")
        return np.where(b.isna().to_numpy(), -1, b.fillna(False).to_numpy(dtype=bool).astype(np.int8)).astype(
            np.int8
        )
    words = values.astype(str).str.strip().str.lower()
    yes = words.isin(["true", "1", "1.0", "yes", "t"]).to_numpy()
    no = words.isin(["false", "0", "0.0", "no", "f"]).to_numpy()
    return np.where(yes, 1, np.where(no, 0, -1)).astype(np.int8)


def _spikes(t: pd.DataFrame) -> np.ndarray:
    """Single fixes that jump away and back (feeds have kilometre jumps in seconds): drawn, they read as a
    detour to the dump site. A fix is a spike when reaching it and leaving it both need > 180 km/h."""
    if len(t) < 3:
        return np.zeros(len(t), dtype=bool)
    lon, lat = t["lon"].to_numpy(), t["lat"].to_numpy()
    dt = np.maximum(t["ts"].diff().dt.total_seconds().to_numpy()[1:], 1.0)
    v = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]) / dt * 3.6
    v_in, v_out = np.r_[0.0, v], np.r_[v, 0.0]
    return (v_in > MAX_PLAUSIBLE_KMH) & (v_out > MAX_PLAUSIBLE_KMH)


def clean_track(track: pd.DataFrame | None) -> pd.DataFrame:
    """Fixes with usable coordinates, in time order, with ``loaded_s``/``tipping_s`` as 1/0/-1."""
    if track is None or len(track) == 0 or not {"lon", "lat"} <= set(track.columns):
        return pd.DataFrame(columns=["ts", "lon", "lat", "speed_kmh", "loaded_s", "tipping_s"])
    if track.attrs.get(_CLEANED):  # a sheet cleans its track once and hands it to the map and the table
        return track
    t = track.copy()
    t["lon"] = pd.to_numeric(t["lon"], errors="coerce")
    t["lat"] = pd.to_numeric(t["lat"], errors="coerce")
    t = t[t["lon"].between(-180, 180) & t["lat"].between(-90, 90) & ~((t["lon"] == 0) & (t["lat"] == 0))]
    if "ts" in t:
        ts = pd.to_datetime(t["ts"], errors="coerce", utc=True).dt.tz_convert("Asia/Shanghai")
        t = t.assign(ts=ts).dropna(subset=["ts"]).sort_values("ts", kind="stable")
        t = t.drop_duplicates(subset="ts", keep="first")
        t = t[~_spikes(t)]
    else:
        t = t.assign(ts=pd.NaT)
    for col in ("loaded", "tipping"):
        t[f"{col}_s"] = _tri_state(t[col]) if col in t else np.full(len(t), -1, dtype=np.int8)
    if "speed_kmh" not in t:
        t["speed_kmh"] = np.nan
    t = t.reset_index(drop=True)
    t.attrs[_CLEANED] = True
    return t


def silent_segments(t: pd.DataFrame) -> np.ndarray:
    """For each pair of consecutive fixes of a cleaned track: was the terminal silent in between?

    Silent means no fix for more than ``GAP_DASH_S`` while the truck moved
    ``GAP_MOVED_M`` or more, or no fix for ``GAP_LONG_S``: parked trucks report
    only every few minutes, and that is not a gap.
    """
    if len(t) < 2 or not t["ts"].notna().all():
        return np.zeros(max(len(t) - 1, 0), dtype=bool)
    dt = t["ts"].diff().dt.total_seconds().to_numpy()[1:]
    lon, lat = t["lon"].to_numpy(), t["lat"].to_numpy()
    moved = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    return ((dt > GAP_DASH_S) & (moved >= GAP_MOVED_M)) | (dt > GAP_LONG_S)


def _track_svg(
    t: pd.DataFrame,
    view: _View,
    gap: tuple[pd.Timestamp | None, pd.Timestamp | None],
    ref: pd.Timestamp | None,
    placer: _Placer,
) -> tuple[str, str]:
    """The track as polylines, one per run of equal style (loaded/empty/unknown × continuous/gap)."""
    if len(t) < 1:
        return "", ""
    x, y = view.xy(t["lon"].to_numpy(), t["lat"].to_numpy())
    px, py = view.px(x, y)
    parts, marks = [], []
    if len(t) >= 2:
        ts = t["ts"]
        is_gap = silent_segments(t)
        g0, g1 = gap
        if g0 is not None and g1 is not None and ts.notna().all():
            epoch = pd.Timestamp(0, tz="UTC")
            sec = (ts - epoch).dt.total_seconds().to_numpy()
            s0, s1 = (g0 - epoch).total_seconds(), (g1 - epoch).total_seconds()
            is_gap |= (sec[:-1] < s1) & (sec[1:] > s0)  # segments overlapping the reported silence
        loaded = t["loaded_s"].to_numpy()[:-1]
        style = loaded.astype(np.int16) * 2 + is_gap
        starts = np.r_[0, np.flatnonzero(np.diff(style)) + 1]
        ends = np.r_[starts[1:], len(style)]
        for a, e in zip(starts.tolist(), ends.tolist(), strict=True):
            colour = TRACK_COLOURS[int(loaded[a])]
            dash = ' stroke-dasharray="6 5"' if is_gap[a] else ""
            width = 2.0 if is_gap[a] else 3.0
            parts.append(
                f'<polyline points="{_fmt_pts(px[a : e + 1], py[a : e + 1])}" fill="none" '
                f'stroke="{colour}" stroke-width="{width}" stroke-linejoin="round" '
                f'stroke-linecap="round"{dash}/>'
            )
    tip = t["tipping_s"].to_numpy() == 1
    if tip.any():
        marks.append(
            "".join(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{TIPPING_COLOUR}" stroke="#fff" '
                f'stroke-width="1"/>'
                for a, b in zip(px[tip].tolist(), py[tip].tolist(), strict=True)
            )
        )
    marks.append(_time_ticks(t, px, py, view, ref, placer))
    return "".join(parts), "".join(marks)


def _time_ticks(
    t: pd.DataFrame, px: np.ndarray, py: np.ndarray, view: _View, ref: pd.Timestamp | None, placer: _Placer
) -> str:
    """Clock times along the track (first/last fix, round minutes): direction and timing at a glance.

    The interval is chosen so that about eight ticks fall in view; a tick whose
    label finds no free spot is left out.
    """
    if len(t) == 0 or not t["ts"].notna().all():
        return ""
    inside = (px >= 0) & (px <= view.w) & (py >= 0) & (py <= view.h)
    if not inside.any():
        return ""
    ts = t["ts"]
    vis = ts[inside]
    span_min = (vis.iloc[-1] - vis.iloc[0]).total_seconds() / 60.0
    step = next((m for m in (5, 10, 15, 20, 30, 60, 120) if span_min / m <= 8), 240)
    grid = pd.date_range(vis.iloc[0].ceil(f"{step}min"), vis.iloc[-1], freq=f"{step}min")
    idx = np.searchsorted(ts.to_numpy(), grid.to_numpy())
    idx = idx[(idx < len(t))]
    near = np.abs((ts.to_numpy()[idx] - grid.to_numpy()[: len(idx)]) / np.timedelta64(1, "s")) <= 120
    candidates = [(0, "起 "), (len(t) - 1, "止 ")] + [(int(i), "") for i in idx[near]]
    candidates = [(i, word) for i, word in candidates if inside[i]]
    for i, _ in candidates:  # no label may cover another tick's dot
        placer.reserve(float(px[i]) - 4, float(py[i]) - 4, float(px[i]) + 4, float(py[i]) + 4)
    out = []
    for i, word in candidates:  # a dozen ticks at most
        x, y = float(px[i]), float(py[i])
        label = placer.place(
            [(x + 7, y + 4, "start"), (x - 7, y + 4, "end"), (x, y - 8, "middle"), (x, y + 16, "middle")],
            f"{word}{fmt_clock(as_local_ts(ts.iloc[i]), ref)}",
            9.5,
            "#333",
        )
        if not label:
            continue
        r, sw = (4.5, 2) if word else (3, 1.5)
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="#fff" stroke="#333" stroke-width="{sw}"/>'
        )
        out.append(label)
    return "".join(out)


def _zoom_points(
    lead: Mapping[str, Any], t: pd.DataFrame, report_xy: np.ndarray, lon0: float, lat0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points the view must show: the event, the reports and the track within ±30 min of the event."""
    xs, ys = [np.zeros(1)], [np.zeros(1)]
    if len(t):
        start, end = as_local_ts(lead.get("start")), as_local_ts(lead.get("end"))
        near = t
        if start is not None and end is not None and t["ts"].notna().all():
            near = t[(t["ts"] >= start - ZOOM_WINDOW) & (t["ts"] <= end + ZOOM_WINDOW)]
            if len(near) == 0:
                near = t
        x, y = local_xy_m(near["lon"].to_numpy(), near["lat"].to_numpy(), lon0, lat0)
        xs.append(x)
        ys.append(y)
    if len(report_xy):
        xs.append(report_xy[:, 0])
        ys.append(report_xy[:, 1])
    return np.concatenate(xs), np.concatenate(ys)


def _report_points(lead: Mapping[str, Any], ctx: SheetContext) -> pd.DataFrame:
    """WGS-84 positions of the lead's reports (looked up by id in the context)."""
    rows = []
    for rid in as_list(lead.get("report_ids")):
        rep = ctx.report(rid) if hasattr(ctx, "report") else None
        lon, lat = (as_float(rep.get("lon")), as_float(rep.get("lat"))) if rep else (None, None)
        if lon is not None and lat is not None:
            rows.append((text(rid), lon, lat))
    return pd.DataFrame(rows, columns=["report_id", "lon", "lat"])


def _north_arrow(w: int) -> str:
    x, y = w - 30, 16
    return (
        f'<g><polygon points="{x},{y} {x - 8},{y + 24} {x},{y + 18}" fill="#222"/>'
        f'<polygon points="{x},{y} {x + 8},{y + 24} {x},{y + 18}" fill="#fff" stroke="#222" '
        f'stroke-width="1"/>{_label(x, y + 38, "北", 12, "#222", "bold")}</g>'
    )


def _scale_bar(view: _View) -> str:
    length_m = nice_length_m((view.xmax - view.xmin) * 0.25)
    length_px = length_m * view.scale
    x0, y0 = 14.0, view.h - 16.0
    word = f"{length_m:.0f} 米" if length_m < 1000 else f"{length_m / 1000:g} 公里"
    half = length_px / 2
    return (
        f'<g><rect x="{x0 - 6}" y="{y0 - 22}" width="{length_px + 12:.1f}" height="30" fill="#fff" '
        f'fill-opacity="0.8"/>'
        f'<rect x="{x0}" y="{y0}" width="{half:.1f}" height="5" fill="#222"/>'
        f'<rect x="{x0 + half:.1f}" y="{y0}" width="{half:.1f}" height="5" fill="#fff" stroke="#222" '
        f'stroke-width="1"/>'
        f'<rect x="{x0}" y="{y0}" width="{length_px:.1f}" height="5" fill="none" stroke="#222" '
        f'stroke-width="1"/>'
        f"{_label(x0, y0 - 5, '0', 10, '#222', anchor='start', halo=False)}"
        f"{_label(x0 + length_px, y0 - 5, word, 10, '#222', anchor='end', halo=False)}</g>"
    )


def _legend(w: int, y0: float, items: list[tuple[str, str]]) -> str:
    """Legend strip under the map; ``items`` are (swatch svg at origin, text)."""
    out = [f'<rect x="0" y="{y0}" width="{w}" height="{LEGEND_H}" fill="#fafafa" stroke="#bbb"/>']
    x, y = 10.0, y0 + 16.0
    for swatch, label in items:
        item_w = 30 + 12.5 * len(label)
        if x + item_w > w - 6:
            x, y = 10.0, y + 20.0
        out.append(f'<g transform="translate({x:.1f},{y:.1f})">{swatch}</g>')
        out.append(_label(x + 26, y + 4, label, 10.5, "#222", anchor="start", halo=False))
        x += item_w
    return "".join(out)


def _swatch_line(colour: str, dash: str = "") -> str:
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="0" y1="0" x2="22" y2="0" stroke="{colour}" stroke-width="3"{d}/>'


def _swatch_area(kind: str) -> str:
    stroke, fill = SITE_COLOURS[kind]
    return f'<rect x="2" y="-6" width="18" height="12" fill="{fill}" stroke="{stroke}"/>'


def _view_for(
    xs: np.ndarray, ys: np.ndarray, lon0: float, lat0: float, w: int, h: int, extent_m: float | None
) -> _View:
    """Fit the points (capped at ±15 km of the event, at least 1 km across) into the map area.

    With ``extent_m`` the view is that many metres wide, centred on the event.
    """
    if extent_m is not None:
        return _View(lon0, lat0, 0.0, 0.0, w / max(float(extent_m), 100.0), w, h)
    # Points beyond the cap are left out of the fit (they are drawn, clipped), the event is always in.
    keep = (
        np.isfinite(xs)
        & np.isfinite(ys)
        & (np.abs(xs) <= MAX_HALF_EXTENT_M)
        & (np.abs(ys) <= MAX_HALF_EXTENT_M)
    )
    xs, ys = np.r_[0.0, xs[keep]], np.r_[0.0, ys[keep]]
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half_x = max((x1 - x0) / 2.0, MIN_HALF_EXTENT_M)
    half_y = max((y1 - y0) / 2.0, MIN_HALF_EXTENT_M)
    scale = min((w - 2 * PAD_PX) / (2 * half_x), (h - 2 * PAD_PX) / (2 * half_y))
    return _View(lon0, lat0, cx, cy, scale, w, h)


def _event_lonlat(
    lead: Mapping[str, Any], t: pd.DataFrame, reports: pd.DataFrame
) -> tuple[float, float] | None:
    lon, lat = as_float(lead.get("lon")), as_float(lead.get("lat"))
    if lon is not None and lat is not None and -180 <= lon <= 180 and -90 <= lat <= 90:
        return lon, lat
    if len(reports):
        return float(reports["lon"].iloc[0]), float(reports["lat"].iloc[0])
    if len(t):
        return float(t["lon"].median()), float(t["lat"].median())
    return None


def _highlight_sites(lead: Mapping[str, Any], ev: dict) -> set[str]:
    ids = {
        text(lead.get("origin_site_id")),
        text(ev.get("unload_site_id")),
        text(ev.get("manifest_dest_site_id")),
        text(ev.get("nearest_receiver_id")),
    }
    return {i for i in ids if i}


def _reach_svg(t: pd.DataFrame, view: _View, reach_km: float | None, gap_start: pd.Timestamp | None) -> str:
    """track_gap: how far the silent truck could have gone, drawn around its last fix before the silence."""
    if not reach_km or gap_start is None or len(t) == 0 or not t["ts"].notna().all():
        return ""
    before = t[t["ts"] <= gap_start]
    if len(before) == 0:
        return ""
    gx, gy = view.px(*view.xy(before["lon"].iloc[-1], before["lat"].iloc[-1]))
    return (
        f'<circle cx="{float(gx):.1f}" cy="{float(gy):.1f}" r="{reach_km * 1000 * view.scale:.1f}" '
        f'fill="{TRACK_COLOURS[1]}" fill-opacity="0.06" stroke="{TRACK_COLOURS[1]}" stroke-width="1.2" '
        f'stroke-dasharray="3 4"/>'
    )


def _reports_svg(reports: pd.DataFrame, rep_xy: np.ndarray, view: _View, placer: _Placer) -> str:
    out = []
    for rid, (rx, ry) in zip(reports["report_id"], rep_xy, strict=True):
        qx, qy = (float(v) for v in view.px(rx, ry))
        out.append(
            f'<polygon points="{qx:.1f},{qy - 9:.1f} {qx + 8:.1f},{qy + 6:.1f} {qx - 8:.1f},{qy + 6:.1f}" '
            f'fill="{REPORT_COLOUR}" stroke="#fff" stroke-width="1.2"/>'
        )
        spots = [
            (qx - 11, qy + 5, "end"),
            (qx + 11, qy + 5, "start"),
            (qx, qy + 22, "middle"),
            (qx, qy - 13, "middle"),
        ]
        out.append(placer.place(spots, f"举报 {rid}", 10, "#a63603", must=True))
    return "".join(out)


def _uid(lead: Mapping[str, Any], extent_m: float | None, w: int, h: int) -> str:
    return hashlib.sha1(f"{lead.get('lead_id')}|{extent_m}|{w}|{h}".encode()).hexdigest()[:10]


def render_map_svg(
    lead: Mapping[str, Any],
    track: pd.DataFrame | None,
    ctx: SheetContext,
    width: int = 640,
    height: int = 480,
    *,
    extent_m: float | None = None,
    standalone: bool = False,
) -> str:
    """The evidence map of one lead as an SVG string (north up, metric scale bar, legend strip).

    The zoom fits the event, the lead's reports and the track within ±30 min of
    the event (at most 30 km, at least 1 km across); ``extent_m`` instead fixes the
    width of a view centred on the event (the sheet's close-up). ``standalone``
    adds the SVG namespace for use as a separate .svg file; inline in HTML it is
    not needed, and leaving it out keeps the page free of any URL.
    """
    ev = as_dict(lead.get("evidence"))
    t = clean_track(track)
    reports = _report_points(lead, ctx)
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    map_h = height - LEGEND_H
    head = (
        f'<svg{ns} viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'font-family="{FONT}" class="evidence-map">'
    )
    centre = _event_lonlat(lead, t, reports)
    if centre is None:
        return (
            f'{head}<rect width="{width}" height="{height}" fill="#f4f4f4" stroke="#999"/>'
            f"{_label(width / 2, height / 2, '无位置数据，无法绘制证据图', 14, '#666')}</svg>"
        )
    lon0, lat0 = centre
    rep_xy = (
        np.column_stack(local_xy_m(reports["lon"].to_numpy(), reports["lat"].to_numpy(), lon0, lat0))
        if len(reports)
        else np.zeros((0, 2))
    )
    xs, ys = _zoom_points(lead, t, rep_xy, lon0, lat0)
    view = _view_for(xs, ys, lon0, lat0, width, map_h, extent_m)
    ref = as_local_ts(lead.get("start"))
    uid = _uid(lead, extent_m, width, height)

    ex, ey = (float(v) for v in view.px(0.0, 0.0))
    placer = _Placer(width, map_h)
    length_px = nice_length_m((view.xmax - view.xmin) * 0.25) * view.scale
    placer.reserve(width - 48, 0, width, 64)  # north arrow
    placer.reserve(0, map_h - 42, length_px + 24, map_h)  # scale bar
    placer.reserve(width - 150, map_h - 22, width, map_h)  # datum and width note
    placer.reserve(ex - 16, ey - 16, ex + 16, ey + 16)  # event marker
    for qx, qy in zip(*view.px(rep_xy[:, 0], rep_xy[:, 1]), strict=True):
        placer.reserve(float(qx) - 9, float(qy) - 10, float(qx) + 9, float(qy) + 7)

    # Labels in order of importance: the event, the reports, the sites, track times, area names.
    event_word = EVENT_WORDS.get(text(lead.get("kind")), "事件点") + (f" {fmt_clock(ref)}" if ref else "")
    event_label = placer.place(
        [
            (ex + 19, ey - 8, "start"),
            (ex - 19, ey - 8, "end"),
            (ex + 19, ey + 20, "start"),
            (ex - 19, ey + 20, "end"),
            (ex, ey - 22, "middle"),
            (ex, ey + 32, "middle"),
        ],
        event_word,
        12,
        EVENT_COLOUR,
        "bold",
        must=True,
    )
    report_marks = _reports_svg(reports, rep_xy, view, placer)
    site_shapes, site_labels = _sites_svg(ctx, view, _highlight_sites(lead, ev), placer)
    gap = (as_local_ts(ev.get("gap_start")), as_local_ts(ev.get("gap_end")))
    track_lines, track_marks = _track_svg(t, view, gap, ref, placer)
    avoid = shapely.buffer(shapely.multipoints(np.vstack([np.zeros((1, 2)), rep_xy])), 70.0 / view.scale)
    border_paths, border_labels = _boundaries_svg(ctx, view, placer, avoid)
    reach = _reach_svg(t, view, as_float(ev.get("max_reach_km")), gap[0])
    event_ring = (
        f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="15" fill="#fff" fill-opacity="0.35" '
        f'stroke="{EVENT_COLOUR}" stroke-width="2.5"/>'
        f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="3" fill="{EVENT_COLOUR}"/>'
    )

    legend_items = [
        (_swatch_line(TRACK_COLOURS[1]), "重车轨迹"),
        (_swatch_line(TRACK_COLOURS[0]), "空车轨迹"),
        (_swatch_line(TRACK_COLOURS[-1]), "载重未知"),
        (_swatch_line("#555", "6 5"), "定位中断"),
        (f'<circle cx="11" cy="0" r="4" fill="{TIPPING_COLOUR}"/>', "举升"),
        (f'<circle cx="11" cy="0" r="6" fill="none" stroke="{EVENT_COLOUR}" stroke-width="2"/>', "事件点"),
        (f'<polygon points="11,-7 17,5 5,5" fill="{REPORT_COLOUR}"/>', "举报点"),
        (_swatch_area("construction"), "工地"),
        (_swatch_area("disposal"), "消纳场"),
        (_swatch_area("recycling"), "资源化利用厂"),
        (_swatch_area("transfer"), "中转站"),
        (
            '<line x1="0" y1="0" x2="22" y2="0" stroke="#333" stroke-width="2.6" '
            'stroke-dasharray="10 3 2 3"/>',
            "省界",
        ),
        (
            '<line x1="0" y1="0" x2="22" y2="0" stroke="#888" stroke-width="1" stroke-dasharray="5 3"/>',
            "区县界",
        ),
    ]
    across = fmt_distance(view.xmax - view.xmin)
    return "".join(
        [
            head,
            f"<title>{_t('证据图：' + text(lead.get('lead_id')) + '，图幅宽 ' + across)}</title>",
            f'<defs><clipPath id="clip-{uid}"><rect width="{width}" height="{map_h}"/></clipPath></defs>',
            f'<rect width="{width}" height="{map_h}" fill="#fdfdf8"/>',
            f'<g clip-path="url(#clip-{uid})">',
            border_paths,
            site_shapes,
            border_labels,
            reach,
            track_lines,
            event_ring,
            track_marks,
            report_marks,
            event_label,
            site_labels,
            "</g>",
            _north_arrow(width),
            _scale_bar(view),
            f'<rect x="{width - 150}" y="{map_h - 22}" width="150" height="22" fill="#fff" '
            'fill-opacity="0.85"/>',
            _label(width - 8, map_h - 8, f"WGS-84 · 图幅宽 {across}", 9.5, "#555", anchor="end"),
            f'<rect width="{width}" height="{map_h}" fill="none" stroke="#999"/>',
            _legend(width, map_h, legend_items),
            "</svg>",
        ]
    )


__all__ = ["clean_track", "nice_length_m", "render_map_svg", "silent_segments"]
