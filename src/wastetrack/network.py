"""The liaison network (联络员网络) as the liaison loop needs it: who a liaison is and where, whom to write.

The nightly routing (``routing.LiaisonDirectory``) answers "who acts for this county"; the loop
also needs each liaison's e-mail, level and jurisdiction, the liaison of the city and the
province above a county (escalation), and place names for Chinese text. One object, built
from ``LANDING/reference/liaisons.csv`` and the boundaries (the landing's, else the shipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from wastetrack.routing import LiaisonDirectory
from wastetrack.sheets.context import PlaceNamer

LEVEL_ZH = {"province": "省级", "city": "市级", "county": "县级", "town": "街镇"}


@dataclass
class Network:
    """Liaisons by id, the routing directory and the admin hierarchy (county → city → province)."""

    liaisons: pd.DataFrame
    boundaries: pd.DataFrame | None = None
    directory: LiaisonDirectory = field(init=False)
    by_id: dict[str, dict] = field(init=False)
    namer: PlaceNamer = field(init=False)

    def __post_init__(self) -> None:
        self.directory = LiaisonDirectory(self.liaisons, self.boundaries)
        self.by_id = {str(r["liaison_id"]): r for r in self.liaisons.to_dict("records")}
        self.namer = PlaceNamer(self.boundaries)

    @classmethod
    def from_landing(cls, landing: str | Path) -> Network:
        """Read ``liaisons.csv`` (rows the contract rejects are left out, as in the nightly run)."""
        from wastetrack.boundaries import load_boundaries
        from wastetrack.contract.quarantine import Quarantine
        from wastetrack.contract.reference import read_liaisons

        landing = Path(landing)
        liaisons = read_liaisons(landing, Quarantine(), [])
        gpkg = landing / "reference" / "boundaries.gpkg"
        boundaries = load_boundaries(gpkg if gpkg.is_file() else None)
        return cls(liaisons, pd.DataFrame(boundaries.drop(columns="geometry")))

    # -- one liaison
    def record(self, liaison_id: str) -> dict | None:
        return self.by_id.get(str(liaison_id))

    def email(self, liaison_id: str) -> str:
        rec = self.record(liaison_id)
        return str(rec.get("email") or "").strip() if rec else ""

    def adcode(self, liaison_id: str) -> str:
        """The liaison's jurisdiction (a town liaison answers for its county here)."""
        rec = self.record(liaison_id)
        code = str(rec.get("adcode") or "") if rec else ""
        return code[:6]

    def level(self, liaison_id: str) -> str:
        rec = self.record(liaison_id)
        return str(rec.get("level") or "") if rec else ""

    def label(self, liaison_id: str) -> str:
        """"张三（昆山市城市管理行政执法局）" for Chinese text; the id when the liaison is unknown."""
        rec = self.record(liaison_id)
        if not rec:
            return str(liaison_id) if liaison_id else "—"
        return f"{rec.get('name') or liaison_id}（{rec.get('unit') or self.place(self.adcode(liaison_id))}）"

    # -- places and levels
    def place(self, adcode: str) -> str:
        return self.namer(adcode) if adcode else "地点不详"

    def resolve(self, adcode: str) -> str:
        """Who acts for ``adcode`` (county → city → province fallback, as the nightly routing)."""
        return self.directory.resolve(adcode)

    def city_of(self, adcode: str) -> str:
        adcode = (adcode or "")[:6]
        if not adcode or adcode.endswith("0000"):
            return ""
        return adcode if adcode.endswith("00") else self.directory._city(adcode)

    def above(self, liaison_id: str) -> list[str]:
        """The rungs above a liaison, lowest first: the city's liaison, then the province's (each once,
        never the liaison itself). Escalation climbs them one per step."""
        code = self.adcode(liaison_id)
        if not code:
            return []
        rungs: list[str] = []
        if self.level(liaison_id) in ("county", "town"):
            city = self.city_of(code)
            if city:
                rungs.append(self.directory.by_adcode.get(city, ""))
        rungs.append(self.directory.by_adcode.get(code[:2] + "0000", ""))
        out: list[str] = []
        for r in rungs:
            if r and r != liaison_id and r not in out:
                out.append(r)
        return out

    def common_above(self, codes: list[str]) -> list[str]:
        """Liaisons of the lowest level above all ``codes`` (a dispute's referee): the shared city, else
        the shared province; counties of different provinces go to both provinces (the delta has no
        level above its provinces: they settle it by consultation, as the framework agreement says)."""
        codes = [c[:6] for c in codes if c]
        if not codes:
            return []
        cities = {self.city_of(c) for c in codes}
        if len(cities) == 1 and "" not in cities:
            city = cities.pop()
            if lid := self.directory.by_adcode.get(city, ""):
                return [lid]
        out: list[str] = []
        for prov in sorted({c[:2] + "0000" for c in codes}):
            lid = self.directory.by_adcode.get(prov, "")
            if lid and lid not in out:
                out.append(lid)
        return out
