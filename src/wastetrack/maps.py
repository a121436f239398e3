"""Folium maps that draw on a network without internet: the notebooks' maps.

Analysts open the notebooks on a government network with no internet. A stock
``folium.Map`` loads Leaflet, jQuery, Bootstrap and the marker plugins from CDNs and
its basemap from OpenStreetMap, so there it shows an empty grey box. This module
makes the maps self-contained:

* **Assets from the installed package.** ``self_contained(m)`` swaps every CDN link
  folium puts in the page for an inline copy of the file shipped in
  ``wastetrack/mapassets/`` (built from pinned npm packages, see its ``NOTICE``).
  Inline, because a notebook shows a map in an ``<iframe srcdoc>``, which cannot load
  files relative to anything; the same HTML works saved to disk or exported. Only
  what the map uses is inlined (awesome-markers and its icon fonts only with an
  ``Icon``), Bootstrap not at all (folium links it, none of its elements needs it).
  A CDN link to anything else (a folium plugin wastetrack does not ship) raises
  ``RemoteAssetError`` at render time: a map that would be blank offline fails loudly.
* **Vector context instead of a basemap.** ``add_borders`` draws the province and
  county borders shipped in ``wastetrack.boundaries`` (hover a county for its name),
  ``add_fences`` the site fences, so a map is readable with no tiles at all.
* **No basemap unless one is configured.** ``base_map`` draws tiles only when
  ``WASTETRACK_TILES`` names a tile server, e.g. an intranet one:
  ``http://tiles.example.gov.cn/{z}/{x}/{y}.png`` (``WASTETRACK_TILES_ATTRIBUTION``
  gives its credit line; default "Tiles: <host>"), or a provider name folium knows
  (``OpenStreetMap``) on a machine with internet. Coordinates here are WGS-84: tiles
  in GCJ-02 (AMap, Tencent) or BD-09 (Baidu) would show every layer ~500 m off.
"""

from __future__ import annotations

import html
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import CssLink, Element, Figure, JavascriptLink

from wastetrack import boundaries as bnd
from wastetrack.coords import METRIC_CRS, WGS84_CRS

__all__ = [
    "FENCE_COLOURS",
    "TILES_ATTRIBUTION_ENV",
    "TILES_ENV",
    "RemoteAssetError",
    "TileSetting",
    "add_borders",
    "add_fences",
    "asset_manifest",
    "base_map",
    "self_contained",
    "square_marker",
    "tiles_from_env",
]

TILES_ENV = "WASTETRACK_TILES"
TILES_ATTRIBUTION_ENV = "WASTETRACK_TILES_ATTRIBUTION"
#: Fence outline colours by site kind: construction sites orange, approved receivers green.
FENCE_COLOURS: dict[str, str] = {
    "construction": "#ff7f0e",
    "disposal": "#2ca02c",
    "recycling": "#2ca02c",
    "transfer": "#2ca02c",
}
#: Background of a map without tiles: a pale land colour, so borders and tracks stand out.
NO_TILES_BACKGROUND = "#f2efe9"
#: Borders are simplified to this fraction of the shown area's diagonal (≈ 1.5 px on a map 1000 px wide) …
_SIMPLIFY_FRACTION = 1 / 1000
#: … but never below the shipped data's own ~10 m.
_MIN_SIMPLIFY_M = 15.0
#: Border styles as in the lead sheets: counties grey, provinces black, dashed (cities, if asked for, between).
_BORDER_STYLE: dict[str, dict[str, Any]] = {
    "county": {"color": "#777777", "weight": 1.5, "dashArray": "4 4"},
    "city": {"color": "#444444", "weight": 2, "dashArray": "6 4"},
    "province": {"color": "#000000", "weight": 3, "dashArray": "4 4"},
}
#: Counties as hover targets: invisible until the pointer is in one, then tinted (and named by a tooltip).
_COUNTY_HOVER: dict[str, Any] = {
    "stroke": False, "fill": True, "fillOpacity": 0, "className": "wastetrack-border wastetrack-county",
}
_COUNTY_HIGHLIGHT: dict[str, Any] = {"fillColor": "#555555", "fillOpacity": 0.08}


class RemoteAssetError(RuntimeError):
    """A map needs a file from the internet that wastetrack does not ship; offline it would not draw."""


# --------------------------------------------------------------------------- assets


def _assets_dir() -> Path:
    """Where the installed package keeps the assets (a plain directory: the package is never zipped)."""
    return Path(str(resources.files("wastetrack").joinpath("mapassets")))


@cache
def asset_manifest() -> dict[str, dict[str, Any]]:
    """The shipped asset files (name → package, version, licence, bytes, sha256), from ``MANIFEST.json``."""
    return json.loads((_assets_dir() / "MANIFEST.json").read_text(encoding="utf-8"))


@cache
def _asset(name: str) -> str:
    if name not in asset_manifest():
        raise KeyError(f"{name} is not a shipped map asset")
    return (_assets_dir() / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class _Local:
    """How one of folium's CDN resources is served without internet."""

    url: re.Pattern[str]  # what its URL's file name must look like (a plugin may reuse the name)
    files: tuple[str, ...]  # shipped files inlined in its place, in order; () = nothing
    needs: str = "always"  # "always", "icons" (an awesome-markers Icon), "glyph"/"fa" (an Icon of that prefix)


def _pattern(expr: str) -> re.Pattern[str]:
    return re.compile(expr + r"$")


#: folium's resource names (``folium.Map.default_js`` / ``default_css``, plugins reuse them) → local copies.
_LOCAL: dict[str, _Local] = {
    "leaflet": _Local(_pattern(r"leaflet(-src)?(\.min)?\.js"), ("leaflet.js", "leaflet-default-icon.js")),
    "leaflet_css": _Local(_pattern(r"leaflet\.css"), ("leaflet.css",)),
    # folium's popups parse their HTML with jQuery: needed by any map with a popup
    "jquery": _Local(_pattern(r"jquery[-.\d]*(\.min)?\.js"), ("jquery.min.js",)),
    "awesome_markers": _Local(_pattern(r"leaflet\.awesome-markers(\.min)?\.js"), ("leaflet.awesome-markers.js",),
                              "icons"),
    "awesome_markers_css": _Local(_pattern(r"leaflet\.awesome-markers(\.min)?\.css"),
                                  ("leaflet.awesome-markers.css",), "icons"),
    "glyphicons_css": _Local(_pattern(r"bootstrap-glyphicons(\.min)?\.css"), ("glyphicons.css",), "glyph"),
    "awesome_markers_font_css": _Local(_pattern(r"all(\.min)?\.css"), ("fontawesome.css",), "fa"),
    # rotation classes of rotated icons: generated for the angles used (folium's file has all 360)
    "awesome_rotate_css": _Local(_pattern(r"leaflet\.awesome\.rotate(\.min)?\.css"), (), "icons"),
    # Bootstrap 5: linked by folium, used by none of its elements
    "bootstrap": _Local(_pattern(r"bootstrap(\.bundle)?(\.min)?\.js"), ()),
    "bootstrap_css": _Local(_pattern(r"bootstrap(\.min)?\.css"), ()),
}


def _is_remote(url: str) -> bool:
    """Whether the browser would fetch ``url`` from the network (protocol-relative ``//host`` included)."""
    return url.strip().lower().startswith(("http://", "https://", "//"))


class _Raw(Element):
    """A piece of HTML rendered verbatim (branca's ``Element(template)`` would parse it as Jinja)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


def _inline(link: JavascriptLink | CssLink, files: Sequence[str], extra: str = "") -> _Raw:
    """The shipped files (and ``extra``) in a ``<script>`` or ``<style>`` standing in for ``link``; "" if none."""
    tag = "script" if isinstance(link, JavascriptLink) else "style"
    body = "\n".join(_asset(f) for f in files) + extra
    return _Raw(f"<{tag}>\n{body}\n</{tag}>" if body else "")


def _walk(element: Element) -> Iterator[Element]:
    """The element and all its descendants, to find what the map draws with."""
    yield element
    for child in element._children.values():
        yield from _walk(child)


def _icon_needs(figure: Figure) -> tuple[set[str], set[int]]:
    """What the figure's awesome-markers icons need ({"icons", "glyph", "fa"}) and their rotation angles."""
    needs: set[str] = set()
    angles: set[int] = set()
    for element in _walk(figure):
        if isinstance(element, folium.Icon):
            needs.add("icons")
            prefix = str(element.options.get("prefix", "glyphicon"))
            needs.add("fa" if prefix.startswith("fa") else "glyph")
            # folium 0.17 keeps option names camelised, later versions as given
            extra = element.options.get("extra_classes", element.options.get("extraClasses", ""))
            match = re.fullmatch(r"fa-rotate-(-?\d+)", str(extra))
            if match and int(match.group(1)) % 360:
                angles.add(int(match.group(1)))
    return needs, angles


class _SelfContainedHeader(Element):
    """Stands in for a figure's ``<head>``: when rendered, CDN links become inline copies of shipped files.

    folium adds its links to the head while the map renders, and the figure renders
    the head last, so every link of the map and of its plugins is here by then.
    """

    def __init__(self, header: Element, strict: bool) -> None:
        super().__init__()
        self._children = header._children
        self._name = "SelfContainedHeader"
        self.strict = strict

    def render(self, **kwargs: Any) -> str:
        needs, angles = _icon_needs(self.get_root())
        needs.add("always")
        for name, child in list(self._children.items()):
            if not (isinstance(child, JavascriptLink | CssLink) and _is_remote(child.url)):
                continue
            local = _LOCAL.get(name)
            path = urlsplit(child.url if not child.url.startswith("//") else "https:" + child.url).path
            if local is None or not local.url.match(path.rsplit("/", 1)[-1]):
                message = (
                    f"the map links {name!r} from {child.url}, which wastetrack does not ship: without internet "
                    "the map would not draw. Draw it with plain Leaflet elements (see wastetrack.maps), or pass "
                    "strict=False to keep the link on a machine with internet."
                )
                if self.strict:
                    raise RemoteAssetError(message)
                warnings.warn(message, stacklevel=2)
                continue
            extra = ""
            if name == "awesome_rotate_css":
                extra = "".join(f".fa-rotate-{a}{{transform:rotate({a}deg)}}" for a in sorted(angles))
            used = local.needs in needs
            self._children[name] = _inline(child, local.files if used else (), extra if used else "")
        return super().render(**kwargs)


def self_contained(m: folium.Map, strict: bool = True) -> folium.Map:
    """Make ``m`` render without internet: CDN links become inline copies of the files wastetrack ships.

    Works on any folium map (and anything added to it later): the swap happens each
    time the map is rendered (shown in a notebook, ``m.save``, ``m.get_root().render()``).
    ``strict`` (default) raises ``RemoteAssetError`` at render time for a link to a
    file wastetrack does not ship (a folium plugin); ``strict=False`` keeps such links
    with a warning, for a machine with internet. Tiles are not touched: see ``base_map``.
    """
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise TypeError(f"{m!r} is not in a folium/branca Figure")
    if isinstance(figure.header, _SelfContainedHeader):
        figure.header.strict = strict
    else:
        header = _SelfContainedHeader(figure.header, strict)
        header._parent = figure
        figure.header = header
    return m


# --------------------------------------------------------------------------- basemap


@dataclass(frozen=True)
class TileSetting:
    """A basemap: a tile URL template (``…/{z}/{x}/{y}.png``) or a provider name folium knows, with its credit."""

    tiles: str
    attribution: str | None = None

    def layer(self) -> folium.TileLayer:
        """The folium tile layer; a URL template without an attribution is credited to its host."""
        if "{" not in self.tiles:  # a named provider ("OpenStreetMap"): folium knows its credit line
            attr = html.escape(self.attribution) if self.attribution else None
            return folium.TileLayer(self.tiles, attr=attr, name="basemap", control=False)
        host = urlsplit(self.tiles).netloc or "local files"
        return folium.TileLayer(
            self.tiles, attr=html.escape(self.attribution or f"Tiles: {host}"), name="basemap", control=False
        )


def tiles_from_env(environ: Mapping[str, str] | None = None) -> TileSetting | None:
    """The basemap configured in ``WASTETRACK_TILES`` / ``WASTETRACK_TILES_ATTRIBUTION``; None when unset or empty."""
    env = os.environ if environ is None else environ
    tiles = env.get(TILES_ENV, "").strip()
    if not tiles:
        return None
    return TileSetting(tiles, env.get(TILES_ATTRIBUTION_ENV, "").strip() or None)


def base_map(
    location: Sequence[float],
    zoom_start: int = 10,
    *,
    tiles: TileSetting | str | None = None,
    strict: bool = True,
    **kwargs: Any,
) -> folium.Map:
    """A self-contained ``folium.Map`` with a scale bar and, only if configured, a basemap.

    ``tiles=None`` takes the basemap from the environment (``tiles_from_env``: none
    by default, as on a network without internet); ``tiles=""`` forces none; a string
    or ``TileSetting`` gives one. Without tiles the map gets a pale background: add
    ``add_borders`` / ``add_fences`` for context. ``strict`` as in ``self_contained``;
    other arguments go to ``folium.Map``.
    """
    setting = tiles_from_env() if tiles is None else (TileSetting(tiles) if isinstance(tiles, str) else tiles)
    if setting is not None and not setting.tiles:
        setting = None
    kwargs.setdefault("control_scale", True)
    m = folium.Map(location=list(location), zoom_start=zoom_start, tiles=None, **kwargs)
    if setting is None:
        m.get_root().header.add_child(
            _Raw(f"<style>#{m.get_name()}{{background:{NO_TILES_BACKGROUND}}}</style>"), name="wastetrack_background"
        )
    else:
        setting.layer().add_to(m)
    return self_contained(m, strict=strict)


# --------------------------------------------------------------------------- vector layers


def _expanded(box: Sequence[float], by: float) -> tuple[float, float, float, float]:
    """``box`` grown on every side by ``by`` times its longer side: a map fitted to a tall box is wide."""
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    if not (xmin <= xmax and ymin <= ymax):
        raise ValueError(f"box must be (min_lon, min_lat, max_lon, max_lat), got {tuple(box)!r}")
    pad = max(xmax - xmin, ymax - ymin, 0.02) * by
    return xmin - pad, ymin - pad, xmax + pad, ymax + pad


def _simplified(units: gpd.GeoDataFrame, tolerance_m: float) -> np.ndarray:
    """The units' polygons in metres, simplified together so that neighbours keep one shared edge."""
    metric = units.geometry.to_crs(METRIC_CRS).values
    if tolerance_m <= _MIN_SIMPLIFY_M:
        return metric
    if hasattr(shapely, "coverage_simplify"):  # shapely >= 2.1
        return shapely.coverage_simplify(metric, tolerance_m)
    return shapely.simplify(metric, tolerance_m, preserve_topology=True)  # edges may then differ a little


def _to_wgs84(metric: np.ndarray, tolerance_m: float) -> np.ndarray:
    wgs = gpd.GeoSeries(metric, crs=METRIC_CRS).to_crs(WGS84_CRS).values
    # coordinates rounded to ~1 m (~10 m for coarse borders): shorter numbers, a third less JSON
    return shapely.set_precision(wgs, 1e-5 if tolerance_m < 100 else 1e-4)


def _coarser(polygons: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Polygons simplified a step further: a hover target need not follow the border closely."""
    coarse = max(3 * tolerance_m, 100.0)
    if hasattr(shapely, "coverage_simplify"):
        return shapely.coverage_simplify(polygons, coarse)
    return shapely.simplify(polygons, coarse, preserve_topology=True)


def _edges(polygons: np.ndarray) -> shapely.Geometry:
    """Every border once, as one multi-line: two units' shared edge drawn twice shows its dashes out of
    step, as a solid line; and one feature rather than one per edge saves a third of the JSON."""
    return shapely.line_merge(shapely.union_all(shapely.boundary(polygons)))


def add_borders(
    m: folium.Map,
    boundaries: gpd.GeoDataFrame | None = None,
    *,
    box: Sequence[float] | None = None,
    levels: Sequence[str] = ("county", "province"),
    simplify_m: float | None = None,
) -> list[folium.FeatureGroup]:
    """Draw county and province borders on ``m``: the context a map without basemap needs.

    ``box`` (min_lon, min_lat, max_lon, max_lat) is the area the map shows; the
    counties within half its longer side around it are drawn whole, so zooming out a
    step still has context (None: all units). Each level is one layer (a
    ``FeatureGroup``, "county borders" / "province borders") of dashed lines, each
    shared border drawn once, provinces cut to the drawn counties; counties also name
    themselves on hover (no basemap labels them).

    To keep the page small (a few hundred kB for the whole delta), borders are
    simplified together (shared edges stay shared) to about 1.5 px at the first view:
    1/1000 of the box's diagonal, never finer than the shipped ~10 m (``simplify_m``
    sets it in metres). A lead's county is the pipeline's, not what a simplified line
    suggests. ``boundaries`` defaults to the shipped ones; pass
    ``pipeline.load_boundaries_for(landing)`` to honour a landing's override.
    Returns the layers, bottom first.
    """
    b = bnd.load_boundaries() if boundaries is None else boundaries
    view = tuple(float(v) for v in (b.total_bounds if box is None else box))
    area = _expanded(view, 0.5) if box is not None else view
    diagonal_m = float(
        gpd.GeoSeries([shapely.LineString([view[:2], view[2:]])], crs=WGS84_CRS).to_crs(METRIC_CRS).length.iloc[0]
    )
    tolerance = diagonal_m * _SIMPLIFY_FRACTION if simplify_m is None else float(simplify_m)
    selected = {level: bnd.clip_box(area, b, level=level) for level in levels}
    polygons = {level: _simplified(units, tolerance) for level, units in selected.items() if len(units)}
    # counties are drawn whole, so the drawn area ends along their outline; larger units' borders
    # are cut to the same outline (to the area's rectangle when no county is drawn)
    cover = (
        shapely.buffer(shapely.union_all(polygons["county"]), max(tolerance, 50.0)) if "county" in polygons else None
    )
    groups: list[folium.FeatureGroup] = []
    for level in levels:
        if level not in polygons:
            continue
        units = selected[level]
        group = folium.FeatureGroup(name=f"{level} borders")
        edges = _edges(polygons[level])
        if level != "county" and cover is not None:
            edges = shapely.intersection(edges, cover)
        lines = _to_wgs84(np.array([edges]), tolerance)
        if cover is None:
            lines = shapely.clip_by_rect(lines, *area)
        lines = lines[~shapely.is_empty(lines)]
        if len(lines):
            style = dict(_BORDER_STYLE[level], className=f"wastetrack-border wastetrack-{level}-line")
            folium.GeoJson(
                gpd.GeoDataFrame(geometry=lines, crs=WGS84_CRS),
                style_function=lambda _f, s=style: s,
                interactive=False,  # passed to Leaflet: the hover goes to the county under the line
                control=False,
            ).add_to(group)
        if level == "county":
            # no basemap labels the counties: hover anywhere in one names it (coarser: only a hover target)
            names = [
                html.escape((bnd.full_name(a) if boundaries is None else bnd.full_name(a, b)) or str(n))
                for a, n in zip(units["adcode"], units["name"], strict=True)
            ]
            folium.GeoJson(
                gpd.GeoDataFrame(
                    {"adcode": units["adcode"].to_numpy(), "name": names},
                    geometry=_to_wgs84(_coarser(polygons[level], tolerance), tolerance),
                    crs=WGS84_CRS,
                ),
                style_function=lambda _f: _COUNTY_HOVER,
                highlight_function=lambda _f: _COUNTY_HIGHLIGHT,
                tooltip=folium.GeoJsonTooltip(["name", "adcode"], labels=False, sticky=True),
                control=False,
            ).add_to(group)
        group.add_to(m)
        groups.append(group)
    return groups


def add_fences(
    m: folium.Map,
    sites: gpd.GeoDataFrame,
    *,
    box: Sequence[float] | None = None,
    name: str = "site fences",
) -> folium.GeoJson | None:
    """Draw the site fences of ``sites`` (a reference sites frame: site_id, name, kind, geometry) on ``m``.

    Construction sites orange, approved receivers green (``FENCE_COLOURS``), with the
    id, name and kind on hover; names come from feeds we do not control, so they are
    escaped. ``box`` keeps the fences within it (plus half its longer side around). Returns
    the layer, or None when no fence is in the box.
    """
    if box is not None:
        xmin, ymin, xmax, ymax = _expanded(box, 0.5)
        sites = sites.cx[xmin:xmax, ymin:ymax]
    sites = sites[sites.geometry.notna() & ~sites.geometry.is_empty]
    if sites.empty:
        return None
    frame = sites[["site_id", "name", "kind", "geometry"]].assign(
        site_id=sites["site_id"].astype(str).map(html.escape),
        name=sites["name"].fillna("").astype(str).map(html.escape),
        kind=sites["kind"].astype(str).map(html.escape),
    )
    layer = folium.GeoJson(
        frame,
        name=name,
        tooltip=folium.GeoJsonTooltip(["site_id", "name", "kind"]),
        style_function=lambda f: {
            "color": FENCE_COLOURS.get(f["properties"]["kind"], "#555555"),
            "weight": 2,
            "fillOpacity": 0.15,
            "className": "wastetrack-fence",
        },
    )
    layer.add_to(m)
    return layer


def square_marker(
    location: Sequence[float],
    size_px: float,
    colour: str,
    *,
    popup: folium.Popup | str | None = None,
    tooltip: str | None = None,
    opacity: float = 0.7,
) -> folium.Marker:
    """A filled square of ``size_px`` pixels at ``location`` (lat, lon), drawn with plain Leaflet.

    folium's ``RegularPolygonMarker`` needs the unmaintained leaflet-dvf plugin (88 kB,
    from a CDN); a ``DivIcon`` draws the same square with nothing to load.
    """
    size = max(round(float(size_px)), 2)
    box = (
        f"<div style='width:{size}px;height:{size}px;background:{colour};opacity:{opacity};"
        f"border:1px solid {colour};box-sizing:border-box'></div>"
    )
    icon = folium.DivIcon(html=box, icon_size=(size, size), icon_anchor=(size // 2, size // 2),
                          class_name="wastetrack-square")
    return folium.Marker(list(location), icon=icon, popup=popup, tooltip=tooltip)
