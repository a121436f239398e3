"""The four-level liaison directory (联络员网络), built so that every routing fallback occurs.

Most counties have an active primary (and often a backup), but the counties the
simulator's trucks actually visit include the awkward cases on purpose: a
county with only a backup, one whose primary is inactive, one with nobody (its
city answers), and a city with nobody either (the province answers). A few
random other counties get the same treatment, and some town-level rows are
added because real directories carry them (v1 routes at county level).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wastetrack.models import LIAISON_COLUMNS
from wastetrack.simulate.admin import admin_units
from wastetrack.simulate.geography import PROVINCES, TOWNS

#: county adcode -> arrangement, for counties where trucks go (see module doc).
SPECIAL = {
    "330421": "backup_only",  # 嘉善: primary post vacant
    "320585": "primary_inactive",  # 太仓: primary on leave, backup acts
    "310120": "all_inactive",  # 奉贤: both inactive -> 上海市 (310100)
    "320509": "none",  # 吴江: no county liaison -> 苏州市
    "330482": "none",  # 平湖: none, and 嘉兴市 none -> 浙江省
    "330400": "none",
    "341882": "none",  # 广德: none, and 宣城市 none -> 安徽省
    "341800": "none",
}
_PROVINCE_UNIT = {
    "310000": "上海市绿化和市容管理局",
    "320000": "江苏省住房和城乡建设厅",
    "330000": "浙江省住房和城乡建设厅",
    "340000": "安徽省住房和城乡建设厅",
}
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶"
)
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红文斌玉萍建华海燕晨宇浩轩涵欣怡俊峰玲"


def _name(rng: np.random.Generator) -> str:
    n = 1 + int(rng.random() < 0.6)
    return _SURNAMES[int(rng.integers(len(_SURNAMES)))] + "".join(
        _GIVEN[int(i)] for i in rng.integers(0, len(_GIVEN), n)
    )


def _phone(rng: np.random.Generator) -> str:
    return f"1{int(rng.choice([3, 5, 8]))}{int(rng.integers(0, 10))}{int(rng.integers(1000_0000, 9999_9999))}"


def make_liaisons(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    """The directory (LIAISON_COLUMNS, all strings) and the county -> city adcode map used for routing."""
    units = admin_units()
    counties = units[units["level"] == "county"].sort_values("adcode")
    county_city = dict(
        zip(
            counties["adcode"],
            counties["city_adcode"].where(counties["city_adcode"] != "", counties["adcode"].str[:4] + "00"),
            strict=True,
        )
    )
    city_names = dict(
        zip(
            units.loc[units["level"] == "city", "adcode"],
            units.loc[units["level"] == "city", "name"],
            strict=True,
        )
    )
    city_names.setdefault("310100", "上海市")
    rows: list[dict] = []
    serial = [0]

    def add(level: str, adcode: str, unit: str, role: str, active: bool, lid: str | None = None) -> None:
        k = sum(1 for r in rows if r["adcode"] == adcode) + 1
        serial[0] += 1
        rows.append(
            {
                "liaison_id": lid or f"LN-{adcode}-{k:02d}",
                "level": level,
                "adcode": adcode,
                "unit": unit,
                "name": _name(rng),
                "email": f"ln{adcode[:6]}{serial[0] % 100:02d}@cgzf.example.cn",
                "phone": _phone(rng),
                "role": role,
                "active": "true" if active else "false",
            }
        )

    for p in sorted(PROVINCES):
        add("province", p, _PROVINCE_UNIT[p], "primary", True)
        add("province", p, _PROVINCE_UNIT[p], "backup", True)
    for c in sorted(set(county_city.values())):
        if SPECIAL.get(c) == "none" or c[:2] not in {p[:2] for p in PROVINCES}:
            continue
        nm = city_names.get(c, "")
        unit = "上海市城市管理行政执法局" if c == "310100" else f"{nm}城市管理局"
        add("city", c, unit, "primary", True)
        if rng.random() < 0.5 or c == "310100":
            add(
                "city",
                c,
                "上海市绿化和市容管理局" if c == "310100" else f"{nm}建筑垃圾管理处",
                "backup",
                True,
            )
    for adcode, nm in zip(counties["adcode"], counties["name"], strict=True):
        mode = SPECIAL.get(adcode)
        if mode is None:
            r = rng.random()
            mode = (
                "none"
                if r < 0.04
                else "backup_only"
                if r < 0.08
                else "primary_inactive"
                if r < 0.11
                else "both"
                if r < 0.5
                else "primary"
            )
        u1, u2 = f"{nm}城市管理行政执法局", f"{nm}绿化和市容管理局"
        if mode == "none":
            continue
        if mode in ("primary", "both"):
            add("county", adcode, u1, "primary", True)
        if mode == "both":
            add("county", adcode, u2, "backup", True)
        if mode == "backup_only":
            add("county", adcode, u2, "backup", True)
        if mode == "primary_inactive":
            add("county", adcode, u1, "primary", False)
            add("county", adcode, u2, "backup", True)
        if mode == "all_inactive":
            add("county", adcode, u1, "primary", False)
            add("county", adcode, u2, "backup", False)
    picks = rng.choice(len(TOWNS), size=min(8, len(TOWNS)), replace=False)
    for i in sorted(int(p) for p in picks):
        county, town, _, _ = TOWNS[i]
        code = f"{county}{100 + i:03d}"
        add("town", code, f"{town}综合行政执法队", "primary", True, lid=f"LN-{code}")
    frame = pd.DataFrame(rows, columns=list(LIAISON_COLUMNS))
    return frame, county_city
