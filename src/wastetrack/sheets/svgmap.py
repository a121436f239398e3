"""The evidence map of a lead sheet: an inline SVG drawn from the data alone.

Liaison officers often open sheets on a government network with no internet,
so the map cannot use tiles, Leaflet or web fonts: it is drawn here from what the
pipeline already holds — the truck's track around the event, the site fences,
the county and province borders, the report points — projected to local metres
around the event (equirectangular, exact to <0.1 % at this scale) with north
up, a scale bar of a round length and a north arrow, so it can be measured on
paper. The scale bar and the legend sit in a strip under the map, where they
can never cover evidence.

The track is drawn so that nothing hides the haul: empty legs as a wide pale
band underneath, loaded legs as a narrow red line on top (where the truck came
back empty along the road it went loaded, both stay visible), the approach from
the origin site over everything else, and the silence the lead is about dashed
black. Every drawn element a sentence of the sheet may point to carries a
``data-role`` (``reach-circle``, ``lead-gap``) and every track run its
``data-state``/``data-leg``, so tests can check the text against the drawing.

Lon/lat → pixels is affine here, so borders and fences are clipped in degrees
and transformed with plain array arithmetic; borders are pre-cut into short
pieces (``context.GeoIndex``) and only the pieces in view are clipped. Every
text drawn is escaped.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import shapely

from wastetrack.coords import local_xy_m
from wastetrack.sheets.context import SheetContext
from wastetrack.sheets.labels import (
    SITE_KIND_LABELS,
    as_dict,
    as_float,
    as_list,
    fmt_clock,
    fmt_distance,
    text,
)
from wastetrack.sheets.track import (
    LeadTimes,
    Track,
    clean_track,
    lead_gap_segments,
    lead_times,
    local_ts,
    silent_segments,
)

#: Half of the largest view (30 km across): beyond that a stop is a dot and nothing can be read.
MAX_HALF_EXTENT_M = 15_000.0
#: Half of the smallest view (1 km across): below that the fences fill the map and context is lost.
MIN_HALF_EXTENT_M = 500.0
#: A track_gap overview widens to show the whole reach circle up to this radius (the sheet refers to it).
MAX_REACH_FIT_M = 25_000.0
#: Track context used to choose the zoom: this long before the event's start and after its end.
ZOOM_WINDOW_S = 1800.0
#: Free pixels around the fitted points, so markers and labels at the edge stay readable.
PAD_PX = 40.0
#: Height of the legend strip's first row block; the strip grows by rows as needed.
LEGEND_H = 46
_LEGEND_ROW_H = 20.0
_SCALE_AREA_W = 190.0
FONT = "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC','SimHei',sans-serif"
_EARTH_K = math.pi / 180.0 * 6371008.8

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
LEAD_GAP_COLOUR = "#222222"
#: What the event point is, per lead kind (the contract: where it unloaded / best estimate / report place).
EVENT_WORDS = {
    "illegal_dump": "卸载点",
    "diverted": "卸载点",
    "unmanifested": "卸载点",
    "track_gap": "推测卸载点",
    "report_trace": "举报地点",
}
_STATE_NAMES = {1: "loaded", 0: "empty", -1: "unknown"}
_LEG_NAMES = ("other", "event", "approach")
#: (state, leg) → (stroke, width, opacity): empty and "other unknown" are wide pale bands under the rest.
_RUN_STYLE: dict[tuple[int, int], tuple[str, float, float]] = {
    (1, 0): (TRACK_COLOURS[1], 2.8, 1.0),
    (1, 1): (TRACK_COLOURS[1], 3.2, 1.0),
    (1, 2): (TRACK_COLOURS[1], 3.4, 1.0),
    (0, 0): (TRACK_COLOURS[0], 6.5, 0.45),
    (0, 1): (TRACK_COLOURS[0], 6.5, 0.5),
    (0, 2): (TRACK_COLOURS[0], 6.5, 0.55),
    (-1, 0): ("#8c8c8c", 5.5, 0.45),
    (-1, 1): ("#4d4d4d", 3.2, 1.0),
    (-1, 2): ("#4d4d4d", 3.2, 1.0),
}


def _t(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass
class MapResult:
    """An evidence map and what it shows: the sheet's facts may only point to elements listed in ``roles``."""

    svg: str
    width_m: float
    roles: frozenset[str] = frozenset()
    legs: list[dict] = field(default_factory=list)


class _View:
    """Local-metre frame around (lon0, lat0) and its mapping to SVG pixels (north up)."""

    def __init__(self, lon0: float, lat0: float, cx: float, cy: float, scale: float, w: int, h: int):
        self.lon0, self.lat0, self.cx, self.cy, self.scale, self.w, self.h = lon0, lat0, cx, cy, scale, w, h
        self.ky = _EARTH_K
        self.kx = _EARTH_K * math.cos(math.radians(lat0))
        self.half_w_m = w / 2.0 / scale
        self.half_h_m = h / 2.0 / scale
        self.xmin, self.xmax = cx - self.half_w_m, cx + self.half_w_m
        self.ymin, self.ymax = cy - self.half_h_m, cy + self.half_h_m

    def px(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        return self.w / 2.0 + (x - self.cx) * self.scale, self.h / 2.0 - (y - self.cy) * self.scale

    def lonlat_px(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        return self.px((lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky)

    def bbox_deg(self, pad: float = 1.02) -> tuple[float, float, float, float]:
        """The view in degrees (slightly padded) for spatial-index queries and clipping."""
        return (
            self.lon0 + self.xmin * pad / self.kx,
            self.lat0 + self.ymin * pad / self.ky,
            self.lon0 + self.xmax * pad / self.kx,
            self.lat0 + self.ymax * pad / self.ky,
        )

    def deg_per_px(self) -> float:
        return 1.0 / (self.scale * self.ky)


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
    """ "x,y x,y …" with one formatting call (a track has hundreds of points, a night thousands of maps)."""
    n = len(px)
    if n == 0:
        return ""
    flat = np.empty(2 * n)
    flat[0::2], flat[1::2] = px, py
    return (("%.1f,%.1f " * n) % tuple(flat.tolist()))[:-1]


def _path_d(coords: np.ndarray, which: np.ndarray, closed: bool = False) -> str:
    """SVG path data for pixel coordinates grouped by ``which``: one subpath (M x y …) per group.

    Whole pixels: borders and fences are 1–2.6 px lines, so sub-pixel digits
    only cost bytes and formatting time; points that round onto their
    predecessor are dropped.
    """
    n = len(coords)
    if n == 0:
        return ""
    q = np.rint(coords).astype(np.int64)
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(which[1:], which[:-1], out=starts[1:])
    keep = starts.copy()
    keep[1:] |= (q[1:] != q[:-1]).any(axis=1)
    q, starts, group = q[keep], starts[keep], which[keep]
    first = np.flatnonzero(starts)
    sizes = np.diff(np.append(first, len(q)))
    if (sizes < 2).any():
        ok = np.repeat(sizes >= 2, sizes)
        q, starts, group = q[ok], starts[ok], group[ok]
        if len(q) == 0:
            return ""
    tmpl = np.where(starts, "M%d %d", "%d %d")
    if closed:
        ends = np.append(starts[1:], True)
        tmpl = np.where(ends, np.char.add(tmpl, "Z"), tmpl)
    return " ".join(tmpl.tolist()) % tuple(q.ravel().tolist())


@lru_cache(maxsize=4096)
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
    label with no free spot is left out unless it must be shown; then it takes
    the candidate spot that overlaps least.
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

    def _overlap(self, b: tuple[float, float, float, float]) -> float:
        out = 0.0
        for o in self.boxes:
            w = min(b[2], o[2]) - max(b[0], o[0])
            h = min(b[3], o[3]) - max(b[1], o[1])
            if w > 0 and h > 0:
                out += w * h
        return out

    def _hits(self, b: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = b
        return any(x0 < o[2] and o[0] < x1 and y0 < o[3] and o[1] < y1 for o in self.boxes)

    def _inside(self, b: tuple[float, float, float, float]) -> bool:
        return b[0] >= 0 and b[1] >= 0 and b[2] <= self.w and b[3] <= self.h

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
            if self._inside(b) and not self._hits(b):
                self.boxes.append(b)
                return _label(x, y, s, size, fill, weight, anchor)
        if not must or not spots:
            return ""
        inside = [(x, y, a) for x, y, a in spots if self._inside(self._box(x, y, s, size, a))] or spots[:1]
        x, y, anchor = min(inside, key=lambda p: self._overlap(self._box(p[0], p[1], s, size, p[2])))
        self.boxes.append(self._box(x, y, s, size, anchor))
        return _label(x, y, s, size, fill, weight, anchor, fit_w=self.w)


# ------------------------------------------------------------------------------------------------ layers
_BORDER_STYLES = {
    "county": 'stroke="#888" stroke-width="1" stroke-dasharray="5 3"',
    "city": 'stroke="#666" stroke-width="1.4" stroke-dasharray="7 3"',
    "province": 'stroke="#333" stroke-width="2.6" stroke-dasharray="10 3 2 3"',
}


def _lines_px(geoms: np.ndarray, view: _View) -> str:
    parts = shapely.get_parts(geoms)
    if len(parts) == 0:
        return ""
    coords, which = shapely.get_coordinates(parts, return_index=True)
    if len(coords) == 0:
        return ""
    px, py = view.lonlat_px(coords[:, 0], coords[:, 1])
    return _path_d(np.column_stack([px, py]), which)


#: Name labels of areas are placed on a grid of this many cells across the view (and 3/4 as many down);
#: half as many in a close-up, where an area name has room anywhere.
_LABEL_GRID = 14
CLOSE_VIEW_M = 1_500.0


def _borders_svg(
    ctx: SheetContext, view: _View, placer: _Placer, avoid: tuple[np.ndarray, np.ndarray]
) -> tuple[str, str, set[str]]:
    """County/city borders (thin), province borders (thick, dash-dot), and their name labels.

    Borders come from the pre-cut pieces at the coarsest level of detail finer
    than 1.5 px (a border line is 1–2.6 px wide). Names go where a fair share of an area is visible: a grid of
    points over the view is tested against the (prepared) area polygons, and
    the name takes the area's grid point nearest its visible middle that is
    not near the event or a report, so a name never hides the evidence.
    Returns the paths, the labels and the levels drawn.
    """
    geo = ctx.geo()
    if geo.piece_tree is None:
        return "", "", set()
    bx = view.bbox_deg()
    q = shapely.box(*bx)
    paths, drawn = [], set()
    idx = geo.piece_tree.query(q)
    if len(idx):
        idx = np.sort(idx)
        m_per_px = 1.0 / view.scale
        pieces = geo.piece_geoms
        for tol, lod in geo.piece_lods:
            if tol <= 1.5 * m_per_px:
                pieces = lod
        clipped = shapely.clip_by_rect(pieces[idx], *bx)
        levels = geo.piece_level[idx]
        for lv in ("county", "city", "province"):
            sel = levels == lv
            if sel.any():
                d = _lines_px(clipped[sel], view)
                if d:
                    paths.append(f'<path d="{d}" fill="none" {_BORDER_STYLES[lv]} data-role="border-{lv}"/>')
                    drawn.add(lv)
    labels = []
    if geo.area_tree is not None:
        aidx = np.sort(geo.area_tree.query(q))
        if len(aidx):
            grid = _LABEL_GRID if view.w * 1.0 / view.scale > 3 * CLOSE_VIEW_M else _LABEL_GRID // 2
            nx, ny = grid, max(int(grid * view.h / view.w), 4)
            gx = (np.arange(nx) + 0.5) * view.w / nx
            gy = (np.arange(ny) + 0.5) * view.h / ny
            gx, gy = (a.ravel() for a in np.meshgrid(gx, gy))
            glon = view.lon0 + (view.cx + (gx - view.w / 2.0) / view.scale) / view.kx
            glat = view.lat0 + (view.cy - (gy - view.h / 2.0) / view.scale) / view.ky
            apx, apy = view.lonlat_px(avoid[0], avoid[1])
            far = np.ones(len(gx), dtype=bool)
            for ax, ay in zip(apx.tolist(), apy.tolist(), strict=True):
                far &= np.hypot(gx - ax, gy - ay) > 70.0
            level = geo.area_level[aidx]
            inside = {int(i): shapely.contains_xy(geo.area_geoms[i], glon, glat) for i in aidx.tolist()}
            share = {i: float(m.mean()) for i, m in inside.items()}
            n_prov = sum(
                1 for i, lv in zip(aidx.tolist(), level.tolist(), strict=True) if lv == "province" and share[i] > 0
            )
            for lv, size, colour, weight, min_share in (
                ("county", 12, "#555", "normal", 0.04),
                ("province", 15, "#222", "bold", 0.02),
            ):
                if lv == "province" and n_prov < 2:
                    continue
                for i in aidx[level == lv].tolist():
                    m = inside[i]
                    if share[i] < min_share:
                        continue
                    pick = m & far if (m & far).any() else m
                    k = m.sum()
                    mx, my = float(gx @ m) / k, float(gy @ m) / k
                    j = int(np.argmin(np.where(pick, np.hypot(gx - mx, gy - my), np.inf)))
                    x, y = float(gx[j]), float(gy[j]) + (18 if lv == "province" else 0)
                    spots = [(x, y, "middle"), (x, y + 22, "middle"), (x, y - 22, "middle"), (x + 60, y, "middle")]
                    labels.append(placer.place(spots, str(geo.area_names[i]), size, colour, weight))
    return "".join(paths), "".join(labels), drawn


def _sites_svg(ctx: SheetContext, view: _View, highlight: set[str], placer: _Placer) -> tuple[str, str, set[str]]:
    """Site fences coloured by kind, with names (all of them when few, else only the sites the lead names)."""
    geo = ctx.geo()
    if geo.site_tree is None:
        return "", "", set()
    bx = view.bbox_deg()
    idx = np.sort(geo.site_tree.query(shapely.box(*bx)))
    if len(idx) == 0:
        return "", "", set()
    geoms = geo.site_geoms[idx]
    kinds, ids, names = geo.site_kinds[idx], geo.site_ids[idx], geo.site_names[idx]
    b = shapely.bounds(geoms)
    x0, y1 = view.lonlat_px(b[:, 0], b[:, 1])
    x1, y0 = view.lonlat_px(b[:, 2], b[:, 3])  # y0 is the top edge (north), in pixels
    size_px = np.maximum(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    show_all_labels = len(idx) <= 12
    hl = np.isin(ids, list(highlight)) if highlight else np.zeros(len(idx), dtype=bool)
    small = size_px < 6
    shapes, todo = [], []
    # Fences: one path per (kind, highlighted) style, every ring of every site in it, in one pass.
    big = np.flatnonzero(~small)
    if len(big):
        parts, part_of = shapely.get_parts(shapely.clip_by_rect(geoms[big], *bx), return_index=True)
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        coords, which = shapely.get_coordinates(rings, return_index=True)
        site_of_ring = big[part_of[ring_of]]
        site_of_vertex = site_of_ring[which]
        px, py = view.lonlat_px(coords[:, 0], coords[:, 1])
        xy = np.column_stack([px, py])
        for kind in dict.fromkeys(kinds[big].tolist()):
            for lit in (False, True):
                sel = (kinds[site_of_vertex] == kind) & (hl[site_of_vertex] == lit)
                d = _path_d(xy[sel], which[sel], closed=True) if sel.any() else ""
                if d:
                    stroke, fill = SITE_COLOURS.get(kind, ("#555", "#ccc"))
                    shapes.append(
                        f'<path d="{d}" fill="{fill}" fill-opacity="0.55" fill-rule="evenodd" '
                        f'stroke="{stroke}" stroke-width="{2.4 if lit else 1.2}"/>'
                    )
    for i in np.flatnonzero(small).tolist():  # too small to read as a fence: a marker the size of a fence on paper
        stroke, fill = SITE_COLOURS.get(kinds[i], ("#555", "#ccc"))
        shapes.append(
            f'<rect x="{cx[i] - 4:.1f}" y="{cy[i] - 4:.1f}" width="8" height="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2.4 if hl[i] else 1.2}"/>'
        )
    kinds_drawn = {str(k) for k in kinds.tolist()}
    for i in np.flatnonzero(hl | show_all_labels).tolist():
        stroke = SITE_COLOURS.get(kinds[i], ("#555", "#ccc"))[0]
        top, bottom = (cy[i] - 7, cy[i] + 17) if small[i] else (y0[i] - 4, y1[i] + 14)
        kind_label = SITE_KIND_LABELS.get(kinds[i], kinds[i])
        title = names[i] if str(names[i]).endswith(kind_label) else f"{names[i]}（{kind_label}）"
        x = float(cx[i])
        spots = [
            (x, float(top), "middle"),
            (x, float(bottom), "middle"),
            (x + 8, float(cy[i]) + 4, "start"),
            (x - 8, float(cy[i]) + 4, "end"),
        ]
        todo.append((not hl[i], spots, str(title), 11 if hl[i] else 10, stroke, "bold" if hl[i] else "normal"))
    labels = [
        placer.place(spots, name, size, colour, weight)
        for _, spots, name, size, colour, weight in sorted(todo, key=lambda r: r[0])
    ]
    return "".join(shapes), "".join(labels), kinds_drawn


def _track_svg(
    tr: Track, view: _View, times: LeadTimes, kind: str
) -> tuple[str, list[dict], set[str], np.ndarray, np.ndarray]:
    """The track as polylines, one per run of equal style, drawn so that loaded legs lie on top.

    Each segment (between two fixes) gets a load state (the sensor at its first
    fix), a leg (``approach``: from leaving the origin to the event; ``event``;
    ``other``) and a kind of line (continuous, a short signal loss, or the
    lead's own silence). Runs are drawn bottom to top: empty, unknown, loaded,
    then the lead's silence. Returns the SVG, the runs drawn, the styles drawn
    (for the legend) and the pixel positions of the fixes.
    """
    n = len(tr)
    px, py = view.lonlat_px(tr.lon, tr.lat)
    if n < 2:
        return "", [], set(), px, py
    t = tr.t
    mid = (t[:-1] + t[1:]) / 2.0
    leg = np.zeros(n - 1, dtype=np.int8)
    ev0 = times.gap[0] if kind == "track_gap" and times.gap else times.start
    ev1 = times.gap[1] if kind == "track_gap" and times.gap else times.end
    if ev0 is not None and ev1 is not None:
        leg[(mid >= ev0.timestamp()) & (mid <= ev1.timestamp())] = 1
    if times.depart is not None and ev0 is not None:
        leg[(mid >= times.depart.timestamp()) & (mid < ev0.timestamp())] = 2
    line = tr.silent().astype(np.int8)  # 1: a signal loss
    line[lead_gap_segments(tr, times.gap)] = 2  # the lead's own silence
    state = tr.loaded[:-1].astype(np.int8)
    # Segments far outside the view are not written (the close-up shows a few hundred metres of a long track).
    ax, bx_ = px[:-1], px[1:]
    ay, by = py[:-1], py[1:]
    w, h = view.w, view.h
    shown = (
        (np.minimum(ax, bx_) <= 1.5 * w)
        & (np.maximum(ax, bx_) >= -0.5 * w)
        & (np.minimum(ay, by) <= 1.5 * h)
        & (np.maximum(ay, by) >= -0.5 * h)
    )
    key = (state.astype(np.int16) + 1) * 100 + leg.astype(np.int16) * 10 + line + np.where(shown, 0, 1000)
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))
    ends = np.append(cuts[1:], n - 1)
    runs = []
    for a, e in zip(cuts.tolist(), ends.tolist(), strict=True):
        if not shown[a]:
            continue
        st, lg, ln = int(state[a]), int(leg[a]), int(line[a])
        rank = 3.0 if ln == 2 else {0: 0.0, -1: 1.0, 1: 2.0}[st] + (0.1 * lg if st != 0 else 0.0)
        if st == -1 and lg > 0:
            rank += 0.5  # the approach/event without sensors above other unknown legs
        runs.append((rank, a, e, st, lg, ln))
    runs.sort(key=lambda r: (r[0], r[1]))
    # Every run simplified in one vectorised call: points that change nothing on screen are dropped.
    if runs:
        idx = np.concatenate([np.arange(a, e + 1) for _, a, e, *_ in runs])
        owner = np.repeat(np.arange(len(runs)), [e - a + 1 for _, a, e, *_ in runs])
        lines = shapely.simplify(
            shapely.linestrings(px[idx], py[idx], indices=owner), 0.5, preserve_topology=False
        )
        coords, which = shapely.get_coordinates(lines, return_index=True)
        bounds = np.searchsorted(which, np.arange(len(runs) + 1))
    parts, legs, styles = [], [], set()
    for k, (_, a, e, st, lg, ln) in enumerate(runs):
        c = coords[bounds[k] : bounds[k + 1]]
        pts = _fmt_pts(c[:, 0], c[:, 1]) if len(c) >= 2 else _fmt_pts(px[a : e + 1], py[a : e + 1])
        attrs = (
            f'data-state="{_STATE_NAMES[st]}" data-leg="{_LEG_NAMES[lg]}" data-t0="{int(t[a])}" data-t1="{int(t[e])}"'
        )
        if ln == 2:
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{LEAD_GAP_COLOUR}" stroke-width="2.6" '
                f'stroke-dasharray="7 4" stroke-linecap="round" data-role="lead-gap" {attrs}/>'
            )
            styles.add("lead-gap")
        elif ln == 1:
            colour = TRACK_COLOURS[st]
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2" '
                f'stroke-dasharray="3 4" data-role="silence" {attrs}/>'
            )
            styles.add("silence")
        else:
            colour, width, opacity = _RUN_STYLE[(st, lg)]
            op = f' stroke-opacity="{opacity}"' if opacity < 1 else ""
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width}"{op} '
                f'stroke-linejoin="round" stroke-linecap="round" {attrs}/>'
            )
            styles.add(f"{_STATE_NAMES[st]}-{'band' if (st == 0 or (st == -1 and lg == 0)) else 'line'}")
        legs.append(
            {
                "state": _STATE_NAMES[st],
                "leg": _LEG_NAMES[lg],
                "line": ("track", "silence", "lead-gap")[ln],
                "t0": float(t[a]),
                "t1": float(t[e]),
            }
        )
    return "".join(parts), legs, styles, px, py


def _marks_svg(tr: Track, px: np.ndarray, py: np.ndarray, view: _View, ref: Any, placer: _Placer) -> tuple[str, bool]:
    """Tipping markers and clock times along the track (first/last fix, round minutes in view)."""
    out = []
    if len(tr) == 0:
        return "", False
    inside = (px >= 0) & (px <= view.w) & (py >= 0) & (py <= view.h)
    tip = (tr.tipping == 1) & inside
    if tip.any():
        q = np.unique(np.column_stack([np.round(px[tip]), np.round(py[tip])]), axis=0)
        out.extend(
            f'<circle cx="{a:.0f}" cy="{b:.0f}" r="4" fill="{TIPPING_COLOUR}" stroke="#fff" stroke-width="1"/>'
            for a, b in q.tolist()
        )
    if inside.any():
        t = tr.t
        vis = np.flatnonzero(inside)
        span_min = (t[vis[-1]] - t[vis[0]]) / 60.0
        step = next((m for m in (5, 10, 15, 20, 30, 60, 120) if span_min / m <= 8), 240) * 60.0
        # ticks on round local minutes (UTC+8 has whole-hour offset: round minutes agree)
        grid = np.arange(math.ceil(t[vis[0]] / step) * step, t[vis[-1]] + 1e-6, step)
        idx = np.clip(np.searchsorted(t, grid), 0, len(t) - 1)
        near = np.abs(t[idx] - grid) <= 120.0
        last = len(t) - 1
        ticks = dict.fromkeys(int(i) for i in idx[near].tolist() if 0 < i < last)
        candidates = [(i, w) for i, w in [(0, "起 "), (last, "止 "), *((i, "") for i in ticks)] if inside[i]]
        for i, _ in candidates:  # no label may cover another tick's dot
            placer.reserve(float(px[i]) - 4, float(py[i]) - 4, float(px[i]) + 4, float(py[i]) + 4)
        for i, word in candidates:
            x, y = float(px[i]), float(py[i])
            lab = placer.place(
                [(x + 7, y + 4, "start"), (x - 7, y + 4, "end"), (x, y - 8, "middle"), (x, y + 16, "middle")],
                f"{word}{fmt_clock(local_ts(float(t[i])), ref)}",
                9.5,
                "#333",
            )
            if not lab:
                continue
            r, sw = (4.5, 2) if word else (3, 1.5)
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="#fff" stroke="#333" stroke-width="{sw}"/>')
            out.append(lab)
    return "".join(out), bool(tip.any())


def _report_points(lead: Mapping[str, Any], ctx: SheetContext) -> list[tuple[str, float, float]]:
    """WGS-84 positions of the lead's reports (looked up by id in the context)."""
    rows = []
    for rid in as_list(lead.get("report_ids")):
        rep = ctx.report(rid)
        lon, lat = (as_float(rep.get("lon")), as_float(rep.get("lat"))) if rep else (None, None)
        if lon is not None and lat is not None:
            rows.append((text(rid), lon, lat))
    return rows


def _north_arrow(w: int) -> str:
    x, y = w - 30, 16
    return (
        f'<g><polygon points="{x},{y} {x - 8},{y + 24} {x},{y + 18}" fill="#222"/>'
        f'<polygon points="{x},{y} {x + 8},{y + 24} {x},{y + 18}" fill="#fff" stroke="#222" '
        f'stroke-width="1"/>{_label(x, y + 38, "北", 12, "#222", "bold")}</g>'
    )


def _scale_bar(view: _View, x0: float, y0: float, max_px: float) -> str:
    length_m = nice_length_m(min((view.xmax - view.xmin) * 0.25, max_px / view.scale))
    length_px = length_m * view.scale
    word = f"{length_m:.0f} 米" if length_m < 1000 else f"{length_m / 1000:g} 公里"
    half = length_px / 2
    return (
        f'<g data-role="scale-bar"><rect x="{x0}" y="{y0}" width="{half:.1f}" height="5" fill="#222"/>'
        f'<rect x="{x0 + half:.1f}" y="{y0}" width="{half:.1f}" height="5" fill="#fff" stroke="#222" '
        f'stroke-width="1"/>'
        f'<rect x="{x0}" y="{y0}" width="{length_px:.1f}" height="5" fill="none" stroke="#222" stroke-width="1"/>'
        f"{_label(x0, y0 - 4, '0', 10, '#222', anchor='start', halo=False)}"
        f"{_label(x0 + length_px, y0 - 4, word, 10, '#222', anchor='end', halo=False)}</g>"
    )


def _legend(w: int, y0: float, items: list[tuple[str, str]], view: _View, note: str) -> tuple[str, float]:
    """Legend strip under the map: items on the left, scale bar and datum note on the right."""
    avail = w - _SCALE_AREA_W
    out, x, y = [], 10.0, y0 + 16.0
    for swatch, words in items:
        item_w = 34 + _text_width(words, 10.5) + 8
        if x + item_w > avail and x > 10.0:
            x, y = 10.0, y + _LEGEND_ROW_H
        out.append(f'<g transform="translate({x:.1f},{y:.1f})">{swatch}</g>')
        out.append(_label(x + 26, y + 4, words, 10.5, "#222", anchor="start", halo=False))
        x += item_w
    height = max(float(LEGEND_H), y - y0 + 14.0)
    sx = w - _SCALE_AREA_W + 14
    body = "".join(out)
    return (
        f'<g data-role="legend"><rect x="0" y="{y0}" width="{w}" height="{height:.0f}" fill="#fafafa" stroke="#bbb"/>'
        f"{body}{_scale_bar(view, sx, y0 + 17, _SCALE_AREA_W - 30)}"
        f"{_label(w - 8, y0 + 38, note, 9.5, '#555', anchor='end', halo=False)}</g>",
        height,
    )


def _swatch_line(colour: str, width: float = 3, dash: str = "", opacity: float = 1.0) -> str:
    d = f' stroke-dasharray="{dash}"' if dash else ""
    op = f' stroke-opacity="{opacity}"' if opacity < 1 else ""
    return f'<line x1="0" y1="0" x2="22" y2="0" stroke="{colour}" stroke-width="{width}"{d}{op}/>'


def _swatch_area(kind: str) -> str:
    stroke, fill = SITE_COLOURS[kind]
    return f'<rect x="2" y="-6" width="18" height="12" fill="{fill}" stroke="{stroke}"/>'


def _view_for(
    xs: np.ndarray, ys: np.ndarray, lon0: float, lat0: float, w: int, h: int, extent_m: float | None, cap_m: float
) -> _View:
    """Fit the points (capped at ``cap_m`` of the event, at least 1 km across) into the map area.

    With ``extent_m`` the view is that many metres wide, centred on the event.
    """
    if extent_m is not None:
        return _View(lon0, lat0, 0.0, 0.0, w / max(float(extent_m), 100.0), w, h)
    keep = np.isfinite(xs) & np.isfinite(ys) & (np.abs(xs) <= cap_m) & (np.abs(ys) <= cap_m)
    xs, ys = np.append(0.0, xs[keep]), np.append(0.0, ys[keep])
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half_x = max((x1 - x0) / 2.0, MIN_HALF_EXTENT_M)
    half_y = max((y1 - y0) / 2.0, MIN_HALF_EXTENT_M)
    scale = min((w - 2 * PAD_PX) / (2 * half_x), (h - 2 * PAD_PX) / (2 * half_y))
    return _View(lon0, lat0, cx, cy, scale, w, h)


def _event_lonlat(lead: Mapping[str, Any], tr: Track, reports: list) -> tuple[float, float] | None:
    lon, lat = as_float(lead.get("lon")), as_float(lead.get("lat"))
    if lon is not None and lat is not None and -180 <= lon <= 180 and -90 <= lat <= 90:
        return lon, lat
    if reports:
        return reports[0][1], reports[0][2]
    if len(tr):
        return float(np.median(tr.lon)), float(np.median(tr.lat))
    return None


def _highlight_sites(lead: Mapping[str, Any], ev: dict) -> set[str]:
    ids = {
        text(lead.get("origin_site_id")),
        text(ev.get("unload_site_id")),
        text(ev.get("manifest_dest_site_id")),
        text(ev.get("nearest_receiver_id")),
    }
    return {i for i in ids if i}


def _uid(lead: Mapping[str, Any], extent_m: float | None, w: int, h: int) -> str:
    return hashlib.sha1(f"{lead.get('lead_id')}|{extent_m}|{w}|{h}".encode()).hexdigest()[:10]


def draw_map(
    lead: Mapping[str, Any],
    track: Any,
    ctx: SheetContext,
    width: int = 640,
    height: int = 480,
    *,
    extent_m: float | None = None,
    standalone: bool = False,
    times: LeadTimes | None = None,
) -> MapResult:
    """The evidence map of one lead (north up, metric scale bar, legend strip) and what it shows.

    The zoom fits the event, the lead's reports and the track within ±30 min of
    the event (at most 30 km, at least 1 km across; a track_gap overview widens
    to hold its reach circle up to 25 km radius); ``extent_m`` instead fixes the
    width of a view centred on the event (the sheet's close-up). ``standalone``
    adds the SVG namespace for use as a separate .svg file; inline in HTML it is
    not needed, and leaving it out keeps the page free of any URL.
    """
    ev = as_dict(lead.get("evidence"))
    tr = clean_track(track)
    times = times or lead_times(lead)
    kind = text(lead.get("kind"))
    reports = _report_points(lead, ctx)
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    map_h = height - LEGEND_H
    centre = _event_lonlat(lead, tr, reports)
    if centre is None:
        return MapResult(
            f'<svg{ns} viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'font-family="{FONT}" class="evidence-map"><rect width="{width}" height="{height}" fill="#f4f4f4" '
            f'stroke="#999"/>{_label(width / 2, height / 2, "无位置数据，无法绘制证据图", 14, "#666")}</svg>',
            0.0,
        )
    lon0, lat0 = centre
    rep_lon = np.array([r[1] for r in reports], dtype=float)
    rep_lat = np.array([r[2] for r in reports], dtype=float)
    xs, ys = [np.zeros(1)], [np.zeros(1)]
    if len(tr):
        near = np.ones(len(tr), dtype=bool)
        if times.start is not None and times.end is not None:
            near = (tr.t >= times.start.timestamp() - ZOOM_WINDOW_S) & (tr.t <= times.end.timestamp() + ZOOM_WINDOW_S)
            if not near.any():
                near[:] = True
        x, y = local_xy_m(tr.lon[near], tr.lat[near], lon0, lat0)
        xs.append(x)
        ys.append(y)
    if len(reports):
        x, y = local_xy_m(rep_lon, rep_lat, lon0, lat0)
        xs.append(x)
        ys.append(y)
    reach_km = as_float(ev.get("max_reach_km")) if kind == "track_gap" or "gap_start" in ev else None
    reach_m = reach_km * 1000.0 if reach_km and reach_km > 0 else None
    cap = MAX_HALF_EXTENT_M
    if reach_m is not None and reach_m <= MAX_REACH_FIT_M and extent_m is None:
        xs.append(np.array([-reach_m, reach_m]))
        ys.append(np.array([-reach_m, reach_m]))
        cap = max(cap, reach_m * 1.001)
    view = _view_for(np.concatenate(xs), np.concatenate(ys), lon0, lat0, width, map_h, extent_m, cap)
    ref = times.start
    uid = _uid(lead, extent_m, width, height)
    roles: set[str] = set()

    ex, ey = (float(v) for v in view.px(0.0, 0.0))
    rpx, rpy = view.lonlat_px(rep_lon, rep_lat)
    placer = _Placer(width, map_h)
    placer.reserve(width - 48, 0, width, 64)  # north arrow
    placer.reserve(ex - 16, ey - 16, ex + 16, ey + 16)  # event marker
    for qx, qy in zip(rpx.tolist(), rpy.tolist(), strict=True):
        placer.reserve(qx - 9, qy - 10, qx + 9, qy + 7)

    # Labels in order of importance: the event, the reports, the sites, track times, area names.
    event_word = EVENT_WORDS.get(kind, "事件点") + (f" {fmt_clock(ref)}" if ref else "")
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
    report_marks = []
    for (rid, _, _), qx, qy in zip(reports, rpx.tolist(), rpy.tolist(), strict=True):
        report_marks.append(
            f'<polygon points="{qx:.1f},{qy - 9:.1f} {qx + 8:.1f},{qy + 6:.1f} {qx - 8:.1f},{qy + 6:.1f}" '
            f'fill="{REPORT_COLOUR}" stroke="#fff" stroke-width="1.2" data-role="report"/>'
        )
        spots = [(qx - 11, qy + 5, "end"), (qx + 11, qy + 5, "start"), (qx, qy + 22, "middle"), (qx, qy - 13, "middle")]
        report_marks.append(placer.place(spots, f"举报 {rid}", 10, "#a63603", must=True))
    site_shapes, site_labels, site_kinds = _sites_svg(ctx, view, _highlight_sites(lead, ev), placer)
    track_lines, legs, styles, tpx, tpy = _track_svg(tr, view, times, kind)
    track_marks, tipped = _marks_svg(tr, tpx, tpy, view, ref, placer)
    avoid = (np.append(lon0, rep_lon), np.append(lat0, rep_lat))
    border_paths, border_labels, border_levels = _borders_svg(ctx, view, placer, avoid)
    reach = ""
    if reach_m is not None:
        r_px = reach_m * view.scale
        reach = (
            f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="{r_px:.1f}" fill="{TRACK_COLOURS[1]}" fill-opacity="0.05" '
            f'stroke="{TRACK_COLOURS[1]}" stroke-width="1.6" stroke-dasharray="3 4" data-role="reach-circle" '
            f'data-r-m="{reach_m:.0f}"/>'
        )
        if ex - r_px >= -1 and ex + r_px <= width + 1 and ey - r_px >= -1 and ey + r_px <= map_h + 1:
            roles.add("reach-circle")
    if "lead-gap" in styles:
        roles.add("lead-gap")
    if any(leg["leg"] == "approach" for leg in legs):
        roles.add("approach")
    event_ring = (
        f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="15" fill="#fff" fill-opacity="0.35" '
        f'stroke="{EVENT_COLOUR}" stroke-width="2.5" data-role="event"/>'
        f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="3" fill="{EVENT_COLOUR}"/>'
    )

    legend_items: list[tuple[str, str]] = []
    for key, swatch, words in (
        ("loaded-line", _swatch_line(TRACK_COLOURS[1], 3), "重车（载重传感器）"),
        ("empty-band", _swatch_line(TRACK_COLOURS[0], 6.5, opacity=0.45), "空车（载重传感器）"),
        ("unknown-line", _swatch_line("#4d4d4d", 3), "载重未知（本趟去程及事件）"),
        ("unknown-band", _swatch_line("#8c8c8c", 5.5, opacity=0.45), "载重未知（其他时段）"),
        ("lead-gap", _swatch_line(LEAD_GAP_COLOUR, 2.6, "7 4"), "定位中断（本线索）"),
        ("silence", _swatch_line("#777", 2, "3 4"), "信号缺失（短时）"),
    ):
        if key in styles:
            legend_items.append((swatch, words))
    if reach and "reach-circle" in roles:
        legend_items.append(
            (
                f'<circle cx="11" cy="0" r="6" fill="none" stroke="{TRACK_COLOURS[1]}" stroke-dasharray="3 2"/>',
                "中断期间可达范围",
            )
        )
    if tipped:
        legend_items.append((f'<circle cx="11" cy="0" r="4" fill="{TIPPING_COLOUR}"/>', "举升"))
    legend_items.append(
        (
            f'<circle cx="11" cy="0" r="6" fill="none" stroke="{EVENT_COLOUR}" stroke-width="2"/>',
            EVENT_WORDS.get(kind, "事件点"),
        )
    )
    if reports:
        legend_items.append((f'<polygon points="11,-7 17,5 5,5" fill="{REPORT_COLOUR}"/>', "举报点"))
    for k in ("construction", "disposal", "recycling", "transfer"):
        if k in site_kinds:
            legend_items.append((_swatch_area(k), SITE_KIND_LABELS[k]))
    if "province" in border_levels:
        legend_items.append((_swatch_line("#333", 2.6, "10 3 2 3"), "省界"))
    if "county" in border_levels or "city" in border_levels:
        legend_items.append((_swatch_line("#888", 1, "5 3"), "区县界"))
    across = fmt_distance(view.xmax - view.xmin)
    legend, legend_h = _legend(width, map_h, legend_items, view, f"WGS-84 · 图幅宽 {across}")
    total_h = round(map_h + legend_h)
    head = (
        f'<svg{ns} viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}" role="img" '
        f'font-family="{FONT}" class="evidence-map" data-width-m="{view.xmax - view.xmin:.0f}">'
    )
    svg = "".join(
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
            "".join(report_marks),
            event_label,
            site_labels,
            "</g>",
            _north_arrow(width),
            f'<rect width="{width}" height="{map_h}" fill="none" stroke="#999"/>',
            legend,
            "</svg>",
        ]
    )
    return MapResult(svg, float(view.xmax - view.xmin), frozenset(roles), legs)


def render_map_svg(
    lead: Mapping[str, Any],
    track: Any,
    ctx: SheetContext,
    width: int = 640,
    height: int = 480,
    *,
    extent_m: float | None = None,
    standalone: bool = False,
) -> str:
    """The evidence map of one lead as an SVG string (see ``draw_map``)."""
    return draw_map(lead, track, ctx, width, height, extent_m=extent_m, standalone=standalone).svg


__all__ = ["MapResult", "clean_track", "draw_map", "nice_length_m", "render_map_svg", "silent_segments"]
