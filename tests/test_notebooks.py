"""The analysts' notebooks run top to bottom against a small demo, so they cannot rot.

No Jupyter kernel: the code cells of a notebook are exec'd in order in one namespace, as "Run
all" would (cells starting with ``%`` or ``!`` are skipped), with the environment variables the
notebooks read pointing at a demo built in a temporary directory and the working directory set to
``notebooks/`` as Jupyter sets it. Folium maps are rendered to HTML, not displayed: rendering is
where an unserialisable property or a broken popup would fail. Then the numbers the notebooks
show are checked against the store.

The maps must also draw where the analysts work, on a network without internet: their HTML may
link nothing from the web, and headless Chromium, with every request other than ``file:`` and
``data:`` refused, must find a working Leaflet map with the borders, fences and leads drawn. That
test needs Debian's ``chromium`` (``scripts/chromium.sh``, run by ``scripts/test.sh``): missing,
it fails under CI and is skipped elsewhere.
"""

from __future__ import annotations

import ast
import base64
import fcntl
import hashlib
import html
import json
import os
import select
import struct
import subprocess
import tempfile
import time
import tomllib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import pandas as pd
import pytest
import shapely

from wastetrack import maps
from wastetrack.cli import main
from wastetrack.models import LEAD_KINDS
from wastetrack.store import open_store, read_table

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("01_leads.ipynb", "02_tracks.ipynb", "03_flows.ipynb")
#: every variable the notebooks read; cleared first so a developer's own settings cannot leak in
ENV_VARS = (
    "WASTETRACK_STORE", "WASTETRACK_LANDING", "WASTETRACK_DATE", "WASTETRACK_LEAD",
    maps.TILES_ENV, maps.TILES_ATTRIBUTION_ENV,
)
CHROMIUM = Path("/usr/bin/chromium")


def _cells(name: str) -> list[dict[str, Any]]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))["cells"]


def _source(cell: dict[str, Any]) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def run_notebook(name: str, env: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Exec the notebook's code cells in order in one namespace; returns the namespace."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, str(value))
    monkeypatch.chdir(NOTEBOOKS)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for i, cell in enumerate(_cells(name)):
        source = _source(cell)
        if cell["cell_type"] != "code" or source.lstrip().startswith(("%", "!")):
            continue
        exec(compile(source, f"{name} cell {i}", "exec"), namespace)
    return namespace


def render(m: folium.Map) -> str:
    return m.get_root().render()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("notebooks")
    assert main(["demo", "--dir", str(base), "--trucks", "8", "--days", "2", "-q"]) == 0
    store = base / "out" / "wastetrack.db"
    # the simulator writes no liaison replies: add one, with markup in its free text, so the
    # registry and feedback cells run on real rows
    lead = read_table(store, "leads").sort_values(["score", "lead_id"]).iloc[0]
    reply = pd.DataFrame({
        "lead_id": [lead["lead_id"]],
        "liaison_id": [lead["primary_liaison_id"]],
        "at": [pd.Timestamp("2026-11-21 09:30", tz="Asia/Shanghai")],
        "status": ["case_filed"],
        "case_no": ["沪城管罚〔2026〕17号"],
        "penalty_cny": [float("nan")],
        "note": ["<script>alert(1)</script>已立案"],
    })
    with open_store(store) as s:
        assert s.apply_feedback(reply) == 1
    return {"store": store, "landing": base / "landing", "replied": lead["lead_id"]}


@pytest.fixture(scope="module")
def runs(demo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """01, 02 (its default lead) and 03 run once, for the tests of their numbers and of their maps."""
    both = {"WASTETRACK_STORE": demo["store"], "WASTETRACK_LANDING": demo["landing"]}
    out: dict[str, dict[str, Any]] = {}
    # 01 without WASTETRACK_LANDING: the notebook finds the demo's landing beside its store
    for key, name, env in (("01", NAMES[0], {"WASTETRACK_STORE": demo["store"]}), ("02", NAMES[1], both),
                           ("03", NAMES[2], both)):
        with pytest.MonkeyPatch.context() as mp:
            out[key] = run_notebook(name, env, mp)
    return out


# --- the files themselves ------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean_nbformat4(name: str) -> None:
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    cells = nb["cells"]
    kinds = [c["cell_type"] for c in cells]
    assert kinds[0] == "markdown", "a notebook opens by saying what it is for"
    assert kinds.count("markdown") >= 4 and kinds.count("code") >= 4
    ids = [c.get("id") for c in cells]
    assert all(ids) and len(set(ids)) == len(ids)
    for cell in cells:
        assert isinstance(cell["metadata"], dict)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "stored outputs: clear them"
            ast.parse(_source(cell))


@pytest.mark.parametrize("name", NAMES)
def test_missing_store_says_run_the_demo(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match=r"bash scripts/demo\.sh"):
        run_notebook(name, {"WASTETRACK_STORE": tmp_path / "missing.db"}, monkeypatch)


# --- running them ---------------------------------------------------------------------------------

def test_01_leads(demo: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
    ns = runs["01"]
    stored = read_table(demo["store"], "leads")
    last = stored["date"].max()
    assert ns["NIGHT"] == last
    assert len(ns["night"]) == (stored["date"] == last).sum() > 0
    per_night = ns["per_night"]
    assert (per_night["total"] == per_night["run.json total"]).all()
    assert per_night["total"].sum() == len(stored)
    assert ns["cross"]["cross_border"].sum() == stored["cross_border"].sum()
    assert ns["score_dist"]["all"].sum() == len(stored)
    assert ns["carrier_names"], "carrier names come from the landing found beside the store"
    assert set(ns["carriers"]["name"]) <= set(ns["carrier_names"].values())

    html = render(ns["lead_map"])
    assert all(lead_id in html for lead_id in ns["night"]["lead_id"])

    assert ns["status_by_kind"]["case_filed 已立案"].sum() == 1
    assert ns["status_by_kind"].to_numpy().sum() == stored["lead_id"].nunique()
    assert demo["replied"] not in set(ns["waiting"]["lead_id"])
    assert len(ns["waiting"]) == stored["lead_id"].nunique() - 1

    hostile = ns["night"].iloc[0].copy()
    hostile["vehicle_id"] = "<img src=x onerror=alert(1)>"
    popup = ns["lead_popup"](hostile)
    assert "<img" not in popup and "&lt;img src=x" in popup


@pytest.mark.parametrize("pick", ["default", "report_trace"])
def test_02_tracks(
    demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, pick: str
) -> None:
    stored = read_table(demo["store"], "leads")
    env: dict[str, object] = {"WASTETRACK_STORE": demo["store"], "WASTETRACK_LANDING": demo["landing"]}
    if pick == "default":  # the highest-scoring lead that comes from a haul
        expected = stored[stored["kind"] != "report_trace"].sort_values(
            ["score", "lead_id"], ascending=[False, True]).iloc[0]
    else:
        traces = stored[stored["kind"] == "report_trace"]
        if traces.empty:
            pytest.skip("the demo scenario has no report_trace lead")
        expected = traces.iloc[0]
        env["WASTETRACK_LEAD"] = expected["lead_id"]
    ns = request.getfixturevalue("runs")["02"] if pick == "default" else run_notebook(NAMES[1], env, monkeypatch)

    assert ns["lead"]["lead_id"] == expected["lead_id"]
    assert ns["reproduced"], "re-running the night must find the stored lead again"
    track = ns["track"]
    assert len(track) > 0 and (track["vehicle_id"] == expected["vehicle_id"]).all()
    assert track["ts"].between(ns["T0"], ns["T1"]).all()
    if pick == "default":
        assert ns["haul_table"]["this_lead"].sum() == 1
        assert expected["manifest_id"] in set(ns["vmanifests"]["manifest_id"]) | {""}

    stays_all = ns["stay_sensitivity"]["stays, all vehicles"]
    assert stays_all.is_monotonic_decreasing and stays_all.iloc[0] > stays_all.iloc[-1]
    counts = ns["lead_counts"]
    assert counts.loc["total", "default"] == len(ns["result"]["leads"])
    assert counts.loc["total"].iloc[1] == len(ns["alt"]["leads"])

    html = render(ns["track_map"])
    assert expected["lead_id"] in html and "L.polyline" in html


def test_03_flows(demo: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
    ns = runs["03"]
    stored = read_table(demo["store"], "hauls")
    flows = ns["flows"]
    # each haul once, even when it was stored on both nights around midnight
    assert len(flows) == stored["haul_id"].nunique() and set(flows["haul_id"]) == set(stored["haul_id"])
    latest = stored.sort_values("date").drop_duplicates("haul_id", keep="last").set_index("haul_id")["date"]
    assert (flows.set_index("haul_id")["date"] == latest.reindex(flows["haul_id"])).all()
    assert ns["trips"].loc["total", "total"] == len(flows)
    assert ns["flow_table"]["hauls"].sum() == len(flows)
    assert ns["by_receiver"]["hauls"].sum() == len(flows)
    assert (flows["origin_county"] != "").all(), "every haul starts at a construction site with a county"
    assert flows["manifest_id"].ne("").mean() > 0.5

    # the re-done manifest match and the cross-province flag agree with what the night put on its leads
    leads = read_table(demo["store"], "leads")
    of_hauls = leads[leads["kind"].isin(["illegal_dump", "diverted", "unmanifested"])]
    by_haul = flows.set_index("haul_id")
    checked = 0
    for lead in of_hauls.itertuples(index=False):
        haul_id = (lead.evidence or {}).get("haul_id")
        if haul_id in by_haul.index:
            assert by_haul.at[haul_id, "manifest_id"] == lead.manifest_id, lead.lead_id
            assert bool(by_haul.at[haul_id, "cross_province"]) == bool(lead.cross_border), lead.lead_id
            checked += 1
    assert checked >= 3

    html = render(ns["flow_map"])
    assert "L.polyline" in html


# --- offline maps: what the page links ------------------------------------------------------------

#: (tag, attribute) pairs through which a page loads something by itself
_LOADING = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("source", "src"),
            ("embed", "src"), ("object", "data"), ("audio", "src"), ("video", "src")}


class _Refs(HTMLParser):
    """Every URL a page (and any ``<iframe srcdoc>`` in it) would load, plus its ``<a href>`` links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[str] = []
        self.links: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if (tag, name) in _LOADING:
                self.loads.append(value)
            elif tag == "a" and name == "href":
                self.links.append(value)
            elif name == "srcdoc":
                inner = _refs(value)
                self.loads += inner.loads
                self.links += inner.links
                self.inline_scripts += inner.inline_scripts
        if tag == "script" and not dict(attrs).get("src"):
            self.inline_scripts += 1


def _refs(page: str) -> _Refs:
    parser = _Refs()
    parser.feed(page)
    parser.close()
    return parser


def _is_web(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//"))


def _jupyter_page(m: folium.Map) -> str:
    """The map as a notebook shows it: folium's ``_repr_html_`` (an ``<iframe srcdoc>``) in a page."""
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{m._repr_html_()}</body></html>"


@pytest.fixture(scope="module")
def map_pages(runs: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The notebooks' maps saved as HTML files, and 01's map as Jupyter embeds it."""
    out = tmp_path_factory.mktemp("maps")
    pages = {"01": runs["01"]["lead_map"], "02": runs["02"]["track_map"], "03": runs["03"]["flow_map"]}
    paths: dict[str, Path] = {}
    for key, m in pages.items():
        paths[key] = out / f"{key}.html"
        m.save(paths[key])
    paths["01-jupyter"] = out / "01-jupyter.html"
    paths["01-jupyter"].write_text(_jupyter_page(pages["01"]), encoding="utf-8")
    return paths


def test_the_link_check_sees_a_stock_folium_map_needs_the_web() -> None:
    stock = folium.Map(location=[31.2, 121.5])
    folium.Marker([31.2, 121.5], icon=folium.Icon(), popup="x").add_to(stock)
    loads = _refs(_jupyter_page(stock)).loads
    assert any(_is_web(u) and u.endswith("leaflet.js") for u in loads), loads
    assert "https://tile.openstreetmap.org/" in render(stock), "and its basemap from OpenStreetMap"


@pytest.mark.parametrize("key", ["01", "02", "03", "01-jupyter"])
def test_map_html_links_nothing_from_the_web(map_pages: dict[str, Path], key: str) -> None:
    page = map_pages[key].read_text(encoding="utf-8")
    refs = _refs(page)
    assert not [u for u in refs.loads if _is_web(u)], "the page would load these from the internet"
    assert not refs.loads, "everything is inline: an <iframe srcdoc> has nothing to load relative files from"
    assert refs.inline_scripts >= 3  # Leaflet, its default icon, jQuery (and the map itself)
    assert "L.tileLayer" not in page, "no basemap unless WASTETRACK_TILES says so"
    inner = html.unescape(page) if key.endswith("jupyter") else page
    assert "Leaflet 1.9.4" in inner and "jQuery v3.7.1" in inner


def test_shipped_assets_are_the_manifest_and_go_into_the_wheel() -> None:
    manifest = maps.asset_manifest()
    assets = Path(maps.__file__).parent / "mapassets"
    notice = (assets / "NOTICE").read_text(encoding="utf-8")
    packages = {(e["package"], e["version"]) for e in manifest.values()}
    assert {"leaflet", "jquery", "leaflet.awesome-markers", "bootstrap"} <= {p for p, _ in packages}
    for name, entry in manifest.items():
        data = (assets / name).read_bytes()
        assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"], name
    for package, version in packages:
        assert f"{package} {version}: " in notice, f"NOTICE gives no licence for {package}"
    assert sum(e["bytes"] for e in manifest.values()) < 1_000_000
    # package-data: setuptools would leave files out of a wheel that no pattern matches
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["wastetrack"]
    rel = [f"mapassets/{f}" for f in [*manifest, "MANIFEST.json", "NOTICE"]]
    assert all(any(Path(r).match(p) for p in patterns) for r in rel), patterns


def test_icons_bring_their_fonts_only_when_used() -> None:
    plain = maps.base_map([31.2, 121.5], 10)
    folium.CircleMarker([31.2, 121.5], radius=5).add_to(plain)
    glyph = maps.base_map([31.2, 121.5], 10)
    folium.Marker([31.2, 121.5], icon=folium.Icon(icon="exclamation-sign")).add_to(glyph)
    fa = maps.base_map([31.2, 121.5], 10)
    folium.Marker([31.2, 121.5], icon=folium.Icon(icon="truck", prefix="fa", angle=30)).add_to(fa)
    pages = {k: render(m) for k, m in (("plain", plain), ("glyph", glyph), ("fa", fa))}
    assert "Glyphicons Halflings" not in pages["plain"] and "AwesomeMarkers" not in pages["plain"]
    assert "Glyphicons Halflings" in pages["glyph"] and "Font Awesome 6 Free" not in pages["glyph"]
    assert "Font Awesome 6 Free" in pages["fa"] and ".fa-rotate-30{transform:rotate(30deg)}" in pages["fa"]
    assert len(pages["plain"]) < 300_000, "a map without icons carries Leaflet and jQuery only"


def test_tiles_come_only_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(maps.TILES_ENV, raising=False)
    assert maps.tiles_from_env() is None
    assert "L.tileLayer" not in render(maps.base_map([31.2, 121.5]))
    monkeypatch.setenv(maps.TILES_ENV, "http://tiles.intranet.example/yrd/{z}/{x}/{y}.png")
    page = render(maps.base_map([31.2, 121.5]))
    assert "L.tileLayer" in page and "http://tiles.intranet.example/yrd/{z}/{x}/{y}.png" in page
    assert "Tiles: tiles.intranet.example" in page
    monkeypatch.setenv(maps.TILES_ATTRIBUTION_ENV, "© 市测绘院 <内网>")
    layer = next(c for c in maps.base_map([31.2, 121.5])._children.values() if isinstance(c, folium.TileLayer))
    assert layer.options["attribution"] == "© 市测绘院 &lt;内网&gt;", "shown as HTML by Leaflet: escaped"
    assert "L.tileLayer" not in render(maps.base_map([31.2, 121.5], tiles=""))
    assert "tile.openstreetmap.org" in render(maps.base_map([31.2, 121.5], tiles="OpenStreetMap"))


def test_a_plugin_wastetrack_does_not_ship_fails_loudly() -> None:
    m = maps.base_map([31.2, 121.5])
    folium.plugins.MarkerCluster().add_to(m)
    with pytest.raises(maps.RemoteAssetError, match=r"leaflet\.markercluster"):
        render(m)
    with pytest.warns(UserWarning, match="wastetrack does not ship"):
        page = render(maps.self_contained(m, strict=False))
    assert any(_is_web(u) for u in _refs(page).loads), "strict=False keeps the plugin's links"
    assert not any(_is_web(u) and u.endswith("leaflet.js") for u in _refs(page).loads)


def _features(group: folium.FeatureGroup) -> list[dict[str, Any]]:
    return [f for layer in group._children.values() for f in layer.data["features"]]


def test_borders_and_fences_are_simplified_escaped_and_kept_near_the_view(runs: dict[str, dict[str, Any]]) -> None:
    ns = runs["03"]
    sites = ns["sites"].reset_index()
    box = (121.3, 31.1, 121.5, 31.3)
    hostile = gpd.GeoDataFrame({"site_id": ["X1"], "name": ["<script>alert(1)</script>"], "kind": ["construction"]},
                               geometry=[shapely.box(121.40, 31.20, 121.401, 31.201)], crs=sites.crs)
    near = maps.base_map([31.2, 121.5])
    layers = maps.add_borders(near, ns["boundaries"], box=box)
    fences = maps.add_fences(near, pd.concat([sites, hostile]), box=box)
    assert [layer.layer_name for layer in layers] == ["county borders", "province borders"]
    counties = {f["properties"]["adcode"] for f in _features(layers[0]) if "adcode" in f["properties"]}
    assert "310115" in counties and not any(c.startswith("34") for c in counties), "Anhui is far from Pudong"
    whole = maps.add_borders(maps.base_map([31.2, 121.5]))
    assert len([f for f in _features(whole[0]) if "adcode" in f["properties"]]) == 305
    size = sum(len(json.dumps(g.data)) for layer in whole for g in layer._children.values())
    assert size < 800_000, "the whole delta's borders stay a few hundred kB"
    # each border once: a line shared by two counties drawn twice would show as solid, not dashed
    lines = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in _features(layers[0])
                               if "adcode" not in f["properties"]])
    total = sum(shapely.geometry.shape(f["geometry"]).length for f in _features(layers[0])
                if "adcode" not in f["properties"])
    assert total == pytest.approx(lines.length, rel=1e-6)
    assert fences is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in [f["properties"]["name"] for f in fences.data["features"]]
    assert "<script>alert(1)" not in render(near)
    assert maps.add_fences(near, sites, box=(100.0, 20.0, 100.1, 20.1)) is None


# --- offline maps: headless Chromium with the network cut ------------------------------------------

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1000,700",
    # belt and braces besides the request interception below: no name resolves
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
#: schemes a page may load from; anything else is refused and reported
LOCAL_SCHEMES = ("file:", "data:", "about:")


def require_chromium(path: Path, ci: bool) -> Path:
    """The browser, or a skip with the reason — but under CI a failure: CI must run the browser test."""
    if path.is_file() and os.access(path, os.X_OK):
        return path
    reason = f"{path} not found: `bash scripts/chromium.sh` installs Debian's chromium for the browser test"
    if ci:
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class PageLoad:
    """What one page did in the browser."""

    probe: dict[str, Any]
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    screenshot: bytes = field(default=b"", repr=False)


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4): no websocket, no
    dependency. Every request is paused; those for ``file:`` and ``data:`` go on, the rest are refused."""

    def __init__(self, binary: Path, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="wastetrack-chromium-")
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def onto_3_and_4() -> None:  # the child reads commands on fd 3 and answers on fd 4
            high_r, high_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r, from_w))  # neither is 3 or 4
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        args = [str(binary), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", "--remote-debugging-pipe",
                "about:blank"]
        # its log goes to a file: a pipe nobody reads would fill up and stall the browser
        self._log = open(Path(self._profile.name) / "chromium.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, preexec_fn=onto_3_and_4, pass_fds=(3, 4),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(to_r)
        os.close(from_w)
        self._buffer = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self._send("Browser.close")
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            self._log.close()
            os.close(self._to_w)
            os.close(self._from_r)
            self._profile.cleanup()

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_w, json.dumps(message).encode() + b"\0")
        return self._id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                log = (Path(self._profile.name) / "chromium.log").read_text(errors="replace")
                raise EOFError(f"chromium exited: {log[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        event = json.loads(message)
        if event.get("method") == "Fetch.requestPaused":  # the network cut: local schemes only
            params = event["params"]
            url = params["request"]["url"]
            if url.startswith(LOCAL_SCHEMES):
                self._send("Fetch.continueRequest", {"requestId": params["requestId"]}, event["sessionId"])
            else:
                self._send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                           event["sessionId"])
        return event

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        sent = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._receive(deadline)
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def _events_until(self, method: str, session: str) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._events.pop(0) if self._events else self._receive(deadline)
            if message.get("sessionId") == session:
                yield message
                if message.get("method") == method:
                    return

    def load(self, url: str, probe_js: str, hover_at: tuple[int, int] | None = None) -> PageLoad:
        """Open ``url`` in a new tab, wait for its load event (and, to ``hover_at`` a point, for the map to
        settle and the pointer to get there), then run ``probe_js`` (a promise of JSON) there."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        seen = list(self._events_until("Page.loadEventFired", session))
        if hover_at is not None:
            self.call("Runtime.evaluate", {"expression": SETTLE_JS, "awaitPromise": True}, session=session)
            self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": hover_at[0], "y": hover_at[1]},
                      session=session)
        result = self.call("Runtime.evaluate", {"expression": probe_js, "awaitPromise": True, "returnByValue": True},
                           session=session)
        if "exceptionDetails" in result:
            raise AssertionError(f"the probe failed: {result['exceptionDetails']}")
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=session)
        seen += [m for m in self._events if m.get("sessionId") == session]
        self._events = [m for m in self._events if m.get("sessionId") != session]
        self.call("Target.closeTarget", {"targetId": target})
        load = PageLoad(json.loads(result["result"]["value"]), screenshot=base64.b64decode(shot["data"]))
        for m in seen:
            method, params = m.get("method"), m.get("params", {})
            if method == "Network.requestWillBeSent":
                load.requests.append(params["request"]["url"])
            elif method == "Fetch.requestPaused" and not params["request"]["url"].startswith(LOCAL_SCHEMES):
                load.refused.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                load.errors.append(f"{details.get('text')} {details.get('exception', {}).get('description', '')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                load.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                load.errors.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
        return load


#: Waits, in the page or in the map's iframe (as Jupyter shows it), for the fonts and for the map to settle.
SETTLE_JS = """(async () => {
  const frame = document.querySelector('iframe');
  const win = frame ? frame.contentWindow : window;
  const doc = win.document;
  await doc.fonts.ready;
  const nextFrame = () => new Promise(done => win.requestAnimationFrame(done));
  // fit_bounds may animate the zoom: Leaflet redraws the vectors for the new view when it ends
  for (let waited = 0; doc.querySelector('.leaflet-zoom-anim') && waited < 3000; waited += 50) {
    await new Promise(done => win.setTimeout(done, 50));
  }
  await nextFrame();
  await nextFrame();
})()"""

#: Then tells what is on the page, as JSON.
PROBE_JS = """(async () => {
  await """ + SETTLE_JS + """;
  const frame = document.querySelector('iframe');
  const win = frame ? frame.contentWindow : window;
  const doc = win.document;
  const count = selector => doc.querySelectorAll(selector).length;
  const container = doc.querySelector('.leaflet-container');
  const glyph = doc.querySelector('.awesome-marker i');
  const attr = (el, name) => el.getAttribute(name) || '';
  const urls = [...doc.querySelectorAll('[src], [href]')].map(el => [el.tagName, attr(el, 'src') || attr(el, 'href'),
      !!el.closest('.leaflet-control-attribution')]);
  return JSON.stringify({
    leaflet: win.L ? win.L.version : null,
    maps: count('.leaflet-container'),
    size: container ? [container.clientWidth, container.clientHeight] : null,
    panes: ['map', 'tile', 'overlay', 'marker', 'tooltip', 'popup'].filter(p => count('.leaflet-' + p + '-pane')),
    county: count('svg path.wastetrack-county'),
    county_lines: count('svg path.wastetrack-county-line'),
    province: count('svg path.wastetrack-province-line'),
    fences: count('svg path.wastetrack-fence'),
    drawn: count('svg path.leaflet-interactive:not(.wastetrack-border):not(.wastetrack-fence)'),
    squares: count('.wastetrack-square'),
    awesome: count('.awesome-marker:not(.awesome-marker-shadow)'),
    credit: (doc.querySelector('.leaflet-control-attribution') || {}).textContent || '',
    tooltip: [...doc.querySelectorAll('.leaflet-tooltip')].map(t => t.textContent).join(' | '),
    glyph: glyph ? win.getComputedStyle(glyph, '::before').content : null,
    fonts: [...doc.fonts].filter(f => f.status === 'loaded').map(f => f.family.replace(/"/g, '')),
    tiles: count('img.leaflet-tile-loaded'),
    layers: count('.leaflet-control-layers-overlays label'),
    urls: urls,
    stylesheets: [...doc.styleSheets].map(s => s.href).filter(Boolean),
  });
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    chromium = Chromium(require_chromium(CHROMIUM, ci=bool(os.environ.get("CI"))))
    try:
        yield chromium
    finally:
        chromium.close()


def test_without_chromium_ci_fails_and_a_developer_skips(tmp_path: Path) -> None:
    missing = tmp_path / "chromium"
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_chromium(missing, ci=True)
    with pytest.raises(pytest.skip.Exception, match=r"scripts/chromium\.sh"):
        require_chromium(missing, ci=False)


def _assert_drawn_offline(load: PageLoad, where: Path) -> dict[str, Any]:
    shot = where.with_suffix(".png")
    shot.write_bytes(load.screenshot)
    probe = load.probe
    assert not load.refused, f"the page asked the internet for {load.refused}"
    assert all(u.startswith(LOCAL_SCHEMES) for u in load.requests), load.requests
    assert not load.errors, f"errors in the page ({shot}): {load.errors}"
    assert probe["leaflet"] == "1.9.4" and probe["maps"] == 1, probe
    assert probe["size"][0] > 300 and probe["size"][1] > 200, "the map has no size"
    assert probe["panes"] == ["map", "tile", "overlay", "marker", "tooltip", "popup"]
    assert probe["county"] > 0 and probe["county_lines"] == 1, "county borders drawn, and hover targets"
    web = [(tag, url) for tag, url, credit in probe["urls"] if _is_web(url) and not (tag == "A" and credit)]
    assert not web and not probe["stylesheets"], "only Leaflet's credit may link the web"
    return probe


@pytest.mark.parametrize("key", ["01", "01-jupyter", "02", "03"])
def test_maps_draw_in_chromium_without_network(
    browser: Chromium, map_pages: dict[str, Path], runs: dict[str, dict[str, Any]], key: str
) -> None:
    probe = _assert_drawn_offline(browser.load(map_pages[key].as_uri(), PROBE_JS), map_pages[key])
    if key.startswith("01"):
        ns = runs["01"]
        assert probe["drawn"] == len(ns["pts"]), "one circle per lead with a place"
        assert probe["fences"] == len(maps.add_fences(folium.Map(), ns["sites"], box=ns["view"]).data["features"])
        overlays = [c for c in ns["lead_map"]._children.values() if isinstance(c, folium.map.Layer) and c.control]
        assert probe["layers"] == len(overlays) == len(LEAD_KINDS) + 3, "kinds, borders ×2, fences"
    elif key == "02":
        assert probe["drawn"] >= 3, "track, stays and first/last fix"
        assert probe["awesome"] == 1 and probe["glyph"] not in (None, "none", "normal"), "the lead's marker glyph"
        assert "Glyphicons Halflings" in probe["fonts"]
        assert probe["fences"] > 0
    else:
        ns = runs["03"]
        receivers = ns["by_receiver"]["kind"].isin(maps.FENCE_COLOURS.keys() - {"construction"}).sum()
        assert probe["squares"] == receivers > 0
        assert probe["drawn"] >= len(ns["drawable"])
        assert probe["province"] > 0


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain PNG tile, written with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_a_configured_tile_server_draws_under_the_borders(
    browser: Chromium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an intranet tile server stands in as a file: every {z}/{x}/{y} gets the same local tile
    tile = tmp_path / "tile.png"
    tile.write_bytes(_png(256, 256, (200, 220, 235)))
    monkeypatch.setenv(maps.TILES_ENV, tile.as_uri() + "?z={z}&x={x}&y={y}")
    monkeypatch.setenv(maps.TILES_ATTRIBUTION_ENV, "市测绘院")
    m = maps.base_map([31.23, 121.47], zoom_start=10)
    maps.add_borders(m, box=(121.3, 31.1, 121.6, 31.35))
    page = tmp_path / "tiles.html"
    m.save(page)
    load = browser.load(page.as_uri(), PROBE_JS, hover_at=(500, 350))  # the map's centre, in Shanghai
    probe = _assert_drawn_offline(load, page)
    assert probe["tiles"] >= 4 and "市测绘院" in probe["credit"]
    assert "上海市" in probe["tooltip"], "no basemap names the place: the county under the pointer does"
    assert sum(u.startswith(tile.as_uri()) for u in load.requests) == probe["tiles"]


# --- in a real kernel ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_notebooks_show_self_contained_maps_in_a_jupyter_kernel(
    demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an analyst gets from "Run all" in Jupyter: each map cell displays an iframe that loads nothing."""
    nbclient = pytest.importorskip("nbclient", reason="no notebooks extra: bash scripts/setup.sh notebooks")
    nbformat = pytest.importorskip("nbformat")
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WASTETRACK_STORE", str(demo["store"]))
    monkeypatch.setenv("WASTETRACK_LANDING", str(demo["landing"]))
    for name, variable in zip(NAMES, ("lead_map", "track_map", "flow_map"), strict=True):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        shown = [
            output["data"]["text/html"]
            for cell in nb.cells if cell.cell_type == "code" and cell.source.rstrip().endswith(variable)
            for output in cell.outputs if "text/html" in output.get("data", {})
        ]
        assert len(shown) == 1 and "<iframe srcdoc=" in shown[0], f"{name}: the map cell shows no map"
        refs = _refs(shown[0])
        assert refs.inline_scripts >= 3 and not [u for u in refs.loads if _is_web(u)], name
        assert "Leaflet 1.9.4" in html.unescape(shown[0])
