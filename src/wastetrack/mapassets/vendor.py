"""Rebuild the browser assets that make wastetrack's folium maps work without internet.

Run by a maintainer when a pinned version changes, never by the pipeline or the notebooks::

    python -m wastetrack.mapassets.vendor          # needs `npm` and the npm registry

Why it is built this way:

* **Source.** folium's maps load Leaflet, jQuery, Leaflet.awesome-markers,
  Bootstrap 3's Glyphicons and Font Awesome from CDNs; on the analysts' network
  (no internet) the map stays blank. The same files are published on the npm
  registry, which is reachable from the developers' machines: each package is
  fetched with ``npm pack NAME@VERSION`` and its tarball checked against the
  pinned sha512 below (the registry's ``dist.integrity``), so a rebuild gives the
  same bytes or fails.
* **Ready to inline.** ``wastetrack.maps`` pastes these files into the map's HTML
  (a notebook shows a folium map in an ``<iframe srcdoc>``, which can load nothing
  relative to itself). So every image and font a stylesheet refers to is embedded
  here as a ``data:`` URI, and references to files that are not shipped (old font
  formats, retina sprites) are removed: the page then asks for nothing at all.
* **Small.** Only what folium's own elements use: no Bootstrap CSS/JS (folium
  links them but none of its elements needs them), Glyphicons cut out of
  Bootstrap 3's stylesheet, Font Awesome's solid style only (the one ``fa``
  icons use), WOFF2 fonts only (every browser of the last years reads them), the
  awesome-markers sprite at 1x only (a 165 kB retina copy is not worth it).

``MANIFEST.json`` (written here) lists each file with its sha256 and sources;
``NOTICE`` gives the licences.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Package:
    """One npm package, pinned by version and by the sha512 of its tarball."""

    name: str
    version: str
    integrity: str  # "sha512-<base64>" as the registry publishes it
    licence: str
    licence_file: str = "LICENSE"  # inside the tarball's package/ directory


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package("leaflet", "1.9.4",
                "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
                "BSD-2-Clause"),
        Package("jquery", "3.7.1",
                "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
                "MIT", "LICENSE.txt"),
        Package("leaflet.awesome-markers", "2.0.5",
                "sha512-Ne/xDjkGyaujwNVVkv2tyXQUV0ZW7gZ0Mo0FuQY4jp2qWrvXi0hwDBvmZyF/8YOvybyMabTMM/mFWCTd1jZIQA==",
                "MIT"),
        Package("bootstrap", "3.4.1",
                "sha512-yN5oZVmRCwe5aKwzRj6736nSmKDX7pLYwsXiCj/EYmo16hODaBiT4En5btW/jhBF/seV+XMx3aYwukYC3A49DA==",
                "MIT"),
        Package("@fortawesome/fontawesome-free", "6.7.2",
                "sha512-JUOtgFW6k9u4Y+xeIaEiLr3+cjoUPiAuLXoyKOJSia6Duzb7pq+A76P9ZdPDoAoxHdHzq6gE9/jKBGXlZT8FbA==",
                "CC-BY-4.0 (icons), OFL-1.1 (fonts), MIT (code)", "LICENSE.txt"),
    )
}

NOTICE_HEAD = """\
wastetrack map assets (src/wastetrack/mapassets/)
=================================================

What they are
  The browser libraries folium's maps need, shipped inside the wastetrack package so
  that wastetrack.maps can paste them into a map's HTML: the maps then draw on a
  network without internet (folium's default is to load them from CDNs).

Origin
  The npm registry packages below, fetched with `npm pack NAME@VERSION` and checked
  against the pinned sha512 of their tarballs by vendor.py, which rebuilds this
  directory (`python -m wastetrack.mapassets.vendor`). MANIFEST.json lists every
  file with its size, sha256 and package.

Changes made by wastetrack (vendor.py)
  * leaflet.js, jquery.min.js, leaflet.awesome-markers.js: as published
    (dist/leaflet.js, dist/jquery.min.js, dist/leaflet.awesome-markers.min.js).
  * leaflet.css: dist/leaflet.css with its images (dist/images/*.png) embedded as
    data: URIs. leaflet-default-icon.js: written by wastetrack, gives Leaflet's
    default marker its three images (dist/images/marker-*.png) as data: URIs.
  * leaflet.awesome-markers.css: dist/leaflet.awesome-markers.css without its
    retina @media block, markers-soft.png and markers-shadow.png embedded.
  * glyphicons.css: the Glyphicons Halflings rules of Bootstrap 3.4.1's
    dist/css/bootstrap.css, WOFF2 source only, the font embedded.
  * fontawesome.css: css/fontawesome.min.css and css/solid.min.css of Font Awesome
    Free 6.7.2, WOFF2 source only, webfonts/fa-solid-900.woff2 embedded. The font
    is the unmodified original, under its Reserved Font Name "Font Awesome".

"""
_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_MIME = {".png": "image/png", ".woff2": "font/woff2"}


def fetch(pkg: Package, into: Path) -> Path:
    """``npm pack`` one package into ``into``, check its sha512 and unpack it; returns its ``package/`` dir."""
    out = subprocess.run(
        ["npm", "pack", f"{pkg.name}@{pkg.version}", "--pack-destination", str(into), "--json"],
        check=True, capture_output=True, text=True,
    )
    tarball = into / json.loads(out.stdout)[0]["filename"]
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != pkg.integrity:
        raise SystemExit(f"{pkg.name}@{pkg.version}: tarball {digest} is not the pinned {pkg.integrity}")
    dest = into / tarball.stem
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths out of dest
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)  # a tarball whose sha512 was just checked
    return dest / "package"


def data_uri(path: Path) -> str:
    """The file as a ``data:`` URI, so the page embedding it requests nothing."""
    return f"data:{_MIME[path.suffix]};base64,{base64.b64encode(path.read_bytes()).decode()}"


def inline_urls(css: str, base: Path) -> str:
    """Replace every ``url(relative/file)`` of ``css`` by the file's ``data:`` URI; a missing file is an error."""

    def one(m: re.Match[str]) -> str:
        target = m.group(2)
        if target.startswith(("data:", "#")):
            return m.group(0)
        path = (base / target.split("?")[0].split("#")[0]).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{target} (from {base}) is referenced but not shipped")
        return f'url("{data_uri(path)}")'

    return _URL.sub(one, css)


def woff2_only(css: str) -> str:
    """Keep only the WOFF2 source of every ``@font-face`` (EOT/TTF/WOFF/SVG fallbacks are not shipped)."""

    def face(m: re.Match[str]) -> str:
        body = m.group(1)
        woff2 = re.search(r"""url\(\s*["']?[^)"']*\.woff2["']?\s*\)\s*format\(["']woff2["']\)""", body)
        if woff2 is None:
            raise ValueError(f"@font-face without a WOFF2 source: {body[:120]}")
        body = re.sub(r"src\s*:[^;}]*;?", "", body)
        return "@font-face{" + body.strip().rstrip(";") + ";src:" + woff2.group(0) + "}"

    return re.sub(r"@font-face\s*\{([^}]*)\}", face, css)


def build_leaflet(pkg: Path) -> dict[str, str]:
    """Leaflet as published; its stylesheet with the layer-control and marker images embedded."""
    dist = pkg / "dist"
    images = dist / "images"
    icons = {k: data_uri(images / f) for k, f in (
        ("iconUrl", "marker-icon.png"), ("iconRetinaUrl", "marker-icon-2x.png"), ("shadowUrl", "marker-shadow.png"))}
    # L.Icon.Default finds its images next to leaflet.css, which an inlined stylesheet does not have:
    # give it the images themselves (imagePath "" keeps it from prefixing a directory)
    default_icon = (
        "/* wastetrack: Leaflet 1.9.4's default marker images (dist/images/*.png, BSD-2-Clause) as data URIs */\n"
        f"L.Icon.Default.imagePath = \"\";\nL.Icon.Default.mergeOptions({json.dumps(icons)});\n"
    )
    return {
        "leaflet.js": (dist / "leaflet.js").read_text(encoding="utf-8"),
        "leaflet.css": inline_urls((dist / "leaflet.css").read_text(encoding="utf-8"), dist),
        "leaflet-default-icon.js": default_icon,
    }


def build_awesome_markers(pkg: Path) -> dict[str, str]:
    """The plugin as published; its stylesheet without the retina block, with the 1x sprites embedded."""
    dist = pkg / "dist"
    css = (dist / "leaflet.awesome-markers.css").read_text(encoding="utf-8")
    retina = re.compile(r"/\* Retina displays \*/\s*@media[^{]*\{(?:[^{}]*\{[^}]*\})*\s*\}")
    css, n = retina.subn("", css)
    if n != 1:
        raise ValueError("leaflet.awesome-markers.css: expected one retina @media block")
    return {
        "leaflet.awesome-markers.js": (dist / "leaflet.awesome-markers.min.js").read_text(encoding="utf-8"),
        "leaflet.awesome-markers.css": inline_urls(css, dist),
    }


def build_glyphicons(pkg: Path) -> dict[str, str]:
    """The Glyphicons part of Bootstrap 3's stylesheet (the icons folium's ``Icon`` uses by default)."""
    css_dir = pkg / "dist" / "css"
    full = (css_dir / "bootstrap.css").read_text(encoding="utf-8")
    # one contiguous block: the @font-face, .glyphicon, then one .glyphicon-NAME:before rule per icon
    start = full.index('@font-face {\n  font-family: "Glyphicons Halflings"')
    block = full[start:full.index("\n* {\n", start)]
    icons = len(re.findall(r"\.glyphicon-[\w-]+:before", block))
    if icons < 250 or re.search(r"^(?!\.glyphicon|@font-face|\s|\}|$)", block, re.MULTILINE):
        raise ValueError(f"bootstrap.css: the Glyphicons block is not where it was ({icons} icons)")
    header = "/*! Glyphicons Halflings rules of Bootstrap v3.4.1 (c) 2011-2019 Twitter, Inc., MIT licence */\n"
    return {"glyphicons.css": header + inline_urls(woff2_only(block), css_dir)}


def build_fontawesome(pkg: Path) -> dict[str, str]:
    """Font Awesome's classes and its solid font (what ``folium.Icon(prefix="fa")`` draws with)."""
    css_dir = pkg / "css"
    css = "\n".join((css_dir / f).read_text(encoding="utf-8") for f in ("fontawesome.min.css", "solid.min.css"))
    return {"fontawesome.css": inline_urls(woff2_only(css), css_dir)}


def build(out: Path = HERE) -> dict[str, dict[str, object]]:
    """Fetch, check and rebuild every asset into ``out``; write and return the manifest."""
    if shutil.which("npm") is None:
        raise SystemExit("npm not found: it fetches the pinned packages from the npm registry")
    with tempfile.TemporaryDirectory() as tmp:
        root = {name: fetch(pkg, Path(tmp)) for name, pkg in PACKAGES.items()}
        licences = []
        for name, pkg in PACKAGES.items():
            title = f"{pkg.name} {pkg.version}: {pkg.licence} (copied from its {pkg.licence_file})"
            text = (root[name] / pkg.licence_file).read_text(encoding="utf-8").strip()
            licences.append(f"{title}\n{'-' * len(title)}\n{text}\n\n")
        built: dict[str, tuple[str, str]] = {}
        for name, builder in (
            ("leaflet", build_leaflet),
            ("jquery", lambda p: {"jquery.min.js": (p / "dist" / "jquery.min.js").read_text(encoding="utf-8")}),
            ("leaflet.awesome-markers", build_awesome_markers),
            ("bootstrap", build_glyphicons),
            ("@fortawesome/fontawesome-free", build_fontawesome),
        ):
            for file, text in builder(root[name]).items():
                built[file] = (name, text)
    manifest: dict[str, dict[str, object]] = {}
    for file, (name, text) in sorted(built.items()):
        if re.search(r"</(script|style)", text, re.IGNORECASE):
            raise ValueError(f"{file} contains a closing tag and cannot be inlined")
        data = text.encode("utf-8")
        (out / file).write_bytes(data)
        pkg = PACKAGES[name]
        manifest[file] = {
            "package": pkg.name, "version": pkg.version, "licence": pkg.licence,
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (out / "NOTICE").write_text(NOTICE_HEAD + "".join(licences), encoding="utf-8")
    return manifest


def main() -> int:
    """Rebuild in place and print what was written."""
    for file, entry in build().items():
        print(f"{file:32s} {entry['bytes']:>8,d} B  {entry['package']}@{entry['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
