"""Real places of the delta for the simulator: towns, sites, dump spots, truck parks.

Scenarios must look like the feeds the pipeline will meet, so everything is
anchored on real towns (WGS-84 centres, a few hundred metres accurate) in the
districts and counties where Shanghai's muck actually travels: construction
mostly in the outer Shanghai districts, approved receivers in Shanghai and the
neighbouring counties of Jiangsu, Zhejiang and Anhui, and illegal dump spots in
fields and on riverbanks one to a few kilometres off a town centre.

Positions are generated in a single local metric frame (``to_xy``/``to_lonlat``,
equirectangular around 31.1N 121.2E): the simulator only needs consistent
metres for paths and speeds, and the round trip is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

LON0, LAT0 = 121.2, 31.1
_KX = np.pi / 180.0 * 6371008.8 * np.cos(np.radians(LAT0))
_KY = np.pi / 180.0 * 6371008.8


def to_xy(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 degrees to simulator metres."""
    return (np.asarray(lon, dtype=float) - LON0) * _KX, (np.asarray(lat, dtype=float) - LAT0) * _KY


def to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Simulator metres back to WGS-84 degrees (exact inverse of ``to_xy``)."""
    return np.asarray(x, dtype=float) / _KX + LON0, np.asarray(y, dtype=float) / _KY + LAT0


@dataclass(frozen=True)
class County:
    adcode: str
    name: str  # 青浦区
    city_adcode: str
    city_name: str  # 上海市 / 苏州市
    province_adcode: str
    short: str  # 沪 / 苏 / 浙 / 皖


#: The counties the simulator places things in (fallback administrative table when
#: ``wastetrack.boundaries`` is not available).
COUNTIES: dict[str, County] = {
    c.adcode: c
    for c in (
        County("310112", "闵行区", "310100", "上海市", "310000", "沪"),
        County("310113", "宝山区", "310100", "上海市", "310000", "沪"),
        County("310114", "嘉定区", "310100", "上海市", "310000", "沪"),
        County("310115", "浦东新区", "310100", "上海市", "310000", "沪"),
        County("310116", "金山区", "310100", "上海市", "310000", "沪"),
        County("310117", "松江区", "310100", "上海市", "310000", "沪"),
        County("310118", "青浦区", "310100", "上海市", "310000", "沪"),
        County("310120", "奉贤区", "310100", "上海市", "310000", "沪"),
        County("310151", "崇明区", "310100", "上海市", "310000", "沪"),
        County("320583", "昆山市", "320500", "苏州市", "320000", "苏"),
        County("320585", "太仓市", "320500", "苏州市", "320000", "苏"),
        County("320509", "吴江区", "320500", "苏州市", "320000", "苏"),
        County("330421", "嘉善县", "330400", "嘉兴市", "330000", "浙"),
        County("330482", "平湖市", "330400", "嘉兴市", "330000", "浙"),
        County("341882", "广德市", "341800", "宣城市", "340000", "皖"),
    )
}

PROVINCES = {"310000": "上海市", "320000": "江苏省", "330000": "浙江省", "340000": "安徽省"}

#: Town centres (镇/街道), WGS-84: (county adcode, town, lon, lat).
TOWNS: tuple[tuple[str, str, float, float], ...] = (
    ("310112", "七宝镇", 121.350, 31.155),
    ("310112", "马桥镇", 121.360, 31.030),
    ("310112", "浦江镇", 121.520, 31.085),
    ("310112", "华漕镇", 121.300, 31.215),
    ("310112", "颛桥镇", 121.410, 31.060),
    ("310113", "杨行镇", 121.430, 31.385),
    ("310113", "罗店镇", 121.340, 31.415),
    ("310113", "顾村镇", 121.380, 31.350),
    ("310113", "月浦镇", 121.415, 31.420),
    ("310113", "罗泾镇", 121.360, 31.470),
    ("310114", "外冈镇", 121.165, 31.360),
    ("310114", "安亭镇", 121.165, 31.295),
    ("310114", "马陆镇", 121.285, 31.325),
    ("310114", "徐行镇", 121.275, 31.420),
    ("310114", "华亭镇", 121.230, 31.460),
    ("310115", "康桥镇", 121.580, 31.150),
    ("310115", "惠南镇", 121.760, 31.055),
    ("310115", "川沙新镇", 121.700, 31.190),
    ("310115", "祝桥镇", 121.760, 31.110),
    ("310115", "新场镇", 121.640, 31.025),
    ("310115", "航头镇", 121.600, 31.040),
    ("310115", "书院镇", 121.870, 30.960),
    ("310116", "亭林镇", 121.325, 30.880),
    ("310116", "张堰镇", 121.290, 30.805),
    ("310116", "朱泾镇", 121.165, 30.895),
    ("310116", "枫泾镇", 121.010, 30.890),
    ("310116", "吕巷镇", 121.210, 30.845),
    ("310117", "车墩镇", 121.320, 31.000),
    ("310117", "九亭镇", 121.320, 31.130),
    ("310117", "泖港镇", 121.180, 30.950),
    ("310117", "新浜镇", 121.090, 30.935),
    ("310117", "石湖荡镇", 121.200, 30.985),
    ("310117", "小昆山镇", 121.130, 31.030),
    ("310118", "练塘镇", 121.050, 31.005),
    ("310118", "金泽镇", 120.925, 31.040),
    ("310118", "朱家角镇", 121.050, 31.110),
    ("310118", "重固镇", 121.165, 31.200),
    ("310118", "华新镇", 121.200, 31.240),
    ("310118", "白鹤镇", 121.090, 31.240),
    ("310120", "南桥镇", 121.460, 30.920),
    ("310120", "奉城镇", 121.640, 30.930),
    ("310120", "庄行镇", 121.380, 30.895),
    ("310120", "青村镇", 121.550, 30.930),
    ("310120", "四团镇", 121.730, 30.930),
    ("310151", "陈家镇", 121.830, 31.530),
    ("310151", "竖新镇", 121.600, 31.600),
    ("320583", "周市镇", 120.990, 31.440),
    ("320583", "陆家镇", 121.050, 31.320),
    ("320583", "淀山湖镇", 120.975, 31.175),
    ("320583", "千灯镇", 120.990, 31.250),
    ("320583", "张浦镇", 120.930, 31.280),
    ("320583", "巴城镇", 120.870, 31.450),
    ("320585", "浏河镇", 121.260, 31.510),
    ("320585", "城厢镇", 121.105, 31.460),
    ("320585", "沙溪镇", 121.050, 31.560),
    ("320585", "双凤镇", 121.020, 31.490),
    ("320509", "盛泽镇", 120.640, 30.920),
    ("320509", "震泽镇", 120.500, 30.915),
    ("320509", "七都镇", 120.450, 30.960),
    ("320509", "黎里镇", 120.720, 31.000),
    ("320509", "平望镇", 120.640, 30.980),
    ("320509", "桃源镇", 120.540, 30.850),
    ("330421", "西塘镇", 120.890, 30.945),
    ("330421", "姚庄镇", 120.950, 30.910),
    ("330421", "干窑镇", 120.850, 30.870),
    ("330421", "天凝镇", 120.800, 30.900),
    ("330482", "新埭镇", 121.050, 30.800),
    ("330482", "林埭镇", 121.120, 30.755),
    ("330482", "当湖街道", 121.020, 30.690),
    ("330482", "独山港镇", 121.130, 30.650),
    ("341882", "桃州镇", 119.420, 30.895),
    ("341882", "邱村镇", 119.330, 30.960),
)

#: Where construction happens: Shanghai's outer districts, a few neighbouring counties.
CONSTRUCTION_COUNTIES = {
    "310112": 3,
    "310115": 4,
    "310114": 3,
    "310113": 3,
    "310118": 3,
    "310117": 3,
    "310120": 2,
    "310116": 2,
    "320583": 1,
    "320509": 0.6,
    "330421": 0.6,
    "330482": 0.6,
}
#: Where illegal dumping into another province happens (fields and riverbanks beyond the border).
DUMP_OTHER_PROVINCE = {"320583": 3, "320585": 2, "320509": 2, "330421": 2, "330482": 2, "341882": 0.3}

WASTE_WEIGHTS = {"muck": 0.5, "mud": 0.1, "construction": 0.15, "demolition": 0.15, "decoration": 0.1}

_PROJECT_KINDS = (
    "地块项目",
    "安置房项目",
    "商业综合体项目",
    "学校新建工程",
    "道路改建工程",
    "厂房新建项目",
    "轨交配套工程",
    "保障性住房项目",
    "旧区改造项目",
    "医院扩建工程",
)
_BUILDER_PREFIX = {"沪": "上海", "苏": "苏州", "浙": "嘉兴", "皖": "宣城"}
_BUILDER_SUFFIX = ("城投有限公司", "地产有限公司", "建设发展有限公司", "置业有限公司", "城市更新集团有限公司")
_CONTRACTORS = (
    "上海建工",
    "中建八局",
    "中交三航局",
    "中铁十五局",
    "浙江宝业",
    "江苏南通二建",
    "上海隧道工程",
    "中冶天工",
    "龙元建设",
)
_DUMP_PLACES = (
    "村路边空地",
    "村河道旁",
    "村农田边",
    "村鱼塘边",
    "村桥下",
    "村涵洞附近",
    "村废弃厂房后",
    "村林地边",
)
_VILLAGE = (
    "东永",
    "西华",
    "和安",
    "盛盛",
    "平新",
    "新联",
    "永丰",
    "光明",
    "联合",
    "红星",
    "胜利",
    "民主",
    "长春",
    "金桥",
    "沈家",
    "陆家",
    "朱家",
    "周家",
    "新华",
    "湖滨",
)


@dataclass
class Site:
    """A site of sites.geojson, kept in WGS-84; ``x``/``y`` its centre in simulator metres."""

    site_id: str
    kind: str
    name: str
    county_adcode: str
    lon: float
    lat: float
    radius_m: float
    shape: str  # "polygon" | "point"
    ring: list[tuple[float, float]] = field(default_factory=list)  # WGS-84 polygon ring (closed)
    accepts: tuple[str, ...] = ()
    waste_type: str = ""  # construction sites: what they produce
    permit_no: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    builder: str = ""
    contractor: str = ""
    write_county: bool = True  # some producers omit county_adcode (derived from geometry)

    @property
    def xy(self) -> tuple[float, float]:
        x, y = to_xy(self.lon, self.lat)
        return float(x), float(y)

    def valid_on(self, d: date) -> bool:
        return (self.valid_from is None or self.valid_from <= d) and (
            self.valid_to is None or d <= self.valid_to
        )


@dataclass(frozen=True)
class Place:
    """A point that is not a site: dump spot, truck park, fuel station, roadside spot."""

    place_id: str
    kind: str  # dump | park | fuel | roadside | decoy
    name: str
    county_adcode: str
    lon: float
    lat: float

    @property
    def xy(self) -> tuple[float, float]:
        x, y = to_xy(self.lon, self.lat)
        return float(x), float(y)


def _towns(county: str) -> list[tuple[str, float, float]]:
    return [(t, lo, la) for c, t, lo, la in TOWNS if c == county]


def _offset(
    rng: np.random.Generator, lon: float, lat: float, r_min: float, r_max: float
) -> tuple[float, float]:
    ang = rng.uniform(0, 2 * np.pi)
    r = rng.uniform(r_min, r_max)
    x, y = to_xy(lon, lat)
    lo, la = to_lonlat(x + r * np.cos(ang), y + r * np.sin(ang))
    return round(float(lo), 7), round(float(la), 7)


def _ring(rng: np.random.Generator, lon: float, lat: float, radius_m: float) -> list[tuple[float, float]]:
    """An irregular convex-ish fence polygon of 5-8 vertices around the centre."""
    n = int(rng.integers(5, 9))
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(-0.25, 0.25, n) * 2 * np.pi / n
    r = radius_m * rng.uniform(0.75, 1.0, n)
    cx, cy = to_xy(lon, lat)
    lo, la = to_lonlat(cx + r * np.cos(ang), cy + r * np.sin(ang))
    pts = [(round(float(a), 7), round(float(b), 7)) for a, b in zip(lo, la, strict=True)]
    return [*pts, pts[0]]


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def county_full_name(adcode: str) -> str:
    c = COUNTIES[adcode]
    return c.name if c.province_adcode == "310000" else f"{c.city_name}{c.name}"


def make_construction_sites(rng: np.random.Generator, n: int, year: int) -> list[Site]:
    sites: list[Site] = []
    ids = rng.choice(np.arange(1000, 9000), size=n, replace=False)
    for i in range(n):
        county = _pick(rng, CONSTRUCTION_COUNTIES)
        towns = _towns(county)
        town, tlon, tlat = towns[int(rng.integers(len(towns)))]
        lon, lat = _offset(rng, tlon, tlat, 300, 2500)
        short = COUNTIES[county].short
        radius = float(rng.uniform(50, 200))
        shape = "polygon" if rng.random() < 0.65 else "point"
        sites.append(
            Site(
                site_id=f"GD{year}-{int(ids[i]):04d}",
                kind="construction",
                name=f"{COUNTIES[county].name}{town}{_PROJECT_KINDS[int(rng.integers(len(_PROJECT_KINDS)))]}",
                county_adcode=county,
                lon=lon,
                lat=lat,
                radius_m=round(radius if shape == "polygon" else radius * 0.7, 1),
                shape=shape,
                ring=_ring(rng, lon, lat, radius) if shape == "polygon" else [],
                waste_type=_pick(rng, WASTE_WEIGHTS),
                permit_no=f"{short}排放〔{year}〕{int(rng.integers(100, 999))}号",
                builder=f"{_BUILDER_PREFIX[short]}{_BUILDER_SUFFIX[int(rng.integers(len(_BUILDER_SUFFIX)))]}",
                contractor=f"{_CONTRACTORS[int(rng.integers(len(_CONTRACTORS)))]}"
                f"第{int(rng.integers(1, 9))}工程有限公司",
                write_county=bool(rng.random() < 0.85),
            )
        )
    return sites


#: Approved receivers: (prefix, county, town, kind, accepts, role). role: "" normal,
#: "expiring" (permit ends mid-scenario), "future" (permit not yet valid).
_RECEIVERS = (
    ("XN", "310116", "张堰镇", "disposal", ("muck", "mud"), ""),
    ("ZZ", "310117", "石湖荡镇", "transfer", ("muck", "construction", "decoration"), ""),
    ("ZY", "310118", "金泽镇", "recycling", ("construction", "demolition", "decoration"), ""),
    ("ZY", "310114", "徐行镇", "recycling", ("construction", "demolition"), ""),
    ("XN", "310115", "书院镇", "disposal", ("muck", "mud"), ""),
    ("ZZ", "310113", "罗泾镇", "transfer", ("muck", "construction"), ""),
    ("ZY", "310112", "马桥镇", "recycling", ("construction", "demolition", "decoration"), ""),
    ("XN", "310120", "四团镇", "disposal", ("muck", "mud"), "expiring"),
    ("ZY", "320583", "周市镇", "recycling", ("construction", "demolition", "muck"), ""),
    ("ZZ", "320509", "震泽镇", "transfer", ("muck", "construction"), ""),
    ("XN", "330421", "西塘镇", "disposal", ("muck", "mud"), ""),
    ("XN", "330482", "新埭镇", "disposal", ("muck", "mud"), ""),
    ("XN", "320585", "浏河镇", "disposal", ("muck", "mud"), "future"),
    ("XN", "341882", "桃州镇", "disposal", ("muck", "mud"), ""),
)
_RECEIVER_NAME = {
    "disposal": "建筑垃圾消纳场",
    "recycling": "建筑垃圾资源化利用厂",
    "transfer": "渣土中转码头",
}


def make_receivers(rng: np.random.Generator, start: date, days: int) -> list[Site]:
    """The approved receivers, with one permit expiring mid-scenario and one not yet valid."""
    out: list[Site] = []
    for i, (prefix, county, town, kind, accepts, role) in enumerate(_RECEIVERS, start=1):
        tlon, tlat = next((lo, la) for t, lo, la in _towns(county) if t == town)
        lon, lat = _offset(rng, tlon, tlat, 800, 2500)
        radius = float(rng.uniform(120, 250))
        shape = "polygon" if rng.random() < 0.7 else "point"
        year = start.year - int(rng.integers(0, 2))
        valid_from = start - timedelta(days=int(rng.integers(120, 600)))
        valid_to = start + timedelta(days=int(rng.integers(200, 700)))
        if role == "expiring":
            valid_to = start + timedelta(days=max(0, (days - 1) // 2))
        elif role == "future":
            valid_from = start + timedelta(days=days + int(rng.integers(5, 30)))
            valid_to = valid_from + timedelta(days=730)
            year = start.year
        c = COUNTIES[county]
        out.append(
            Site(
                site_id=f"{prefix}-{county[:4]}-{i:02d}",
                kind=kind,
                name=f"{COUNTIES[county].name}{town}{_RECEIVER_NAME[kind]}",
                county_adcode=county,
                lon=lon,
                lat=lat,
                radius_m=round(radius if shape == "polygon" else radius * 0.8, 1),
                shape=shape,
                ring=_ring(rng, lon, lat, radius) if shape == "polygon" else [],
                accepts=tuple(accepts),
                permit_no=f"{c.short}处置〔{year}〕{int(rng.integers(10, 99))}号",
                valid_from=valid_from,
                valid_to=valid_to,
                write_county=bool(rng.random() < 0.8),
            )
        )
    return out


def make_places(
    rng: np.random.Generator,
    kind: str,
    counties: dict[str, float],
    n: int,
    r_min: float,
    r_max: float,
    prefix: str,
) -> list[Place]:
    """Points off town centres: dump spots (fields, riverbanks), truck parks, fuel stations."""
    out = []
    for i in range(n):
        county = _pick(rng, counties)
        towns = _towns(county)
        town, tlon, tlat = towns[int(rng.integers(len(towns)))]
        lon, lat = _offset(rng, tlon, tlat, r_min, r_max)
        if kind in ("dump", "roadside", "decoy"):
            name = (
                f"{county_full_name(county)}{town}{_VILLAGE[int(rng.integers(len(_VILLAGE)))]}"
                f"{_DUMP_PLACES[int(rng.integers(len(_DUMP_PLACES)))]}"
            )
        elif kind == "park":
            name = f"{COUNTIES[county].name}{town}渣土车停车场"
        else:
            name = f"{COUNTIES[county].name}{town}加油站"
        out.append(Place(f"{prefix}{i:03d}", kind, name, county, lon, lat))
    return out


def far_from(places: list[Place], sites: list[Site], min_m: float) -> list[Place]:
    """Drop places within ``min_m`` of any site centre (a dump spot must not sit in a receiver's fence)."""
    if not places:
        return places
    px, py = to_xy([p.lon for p in places], [p.lat for p in places])
    sx, sy = to_xy([s.lon for s in sites], [s.lat for s in sites])
    d = np.hypot(px[:, None] - sx[None, :], py[:, None] - sy[None, :]).min(axis=1)
    return [p for p, dd in zip(places, d, strict=True) if dd >= min_m]


def nearest_town(lon: float, lat: float) -> tuple[str, str]:
    """(county adcode, town name) of the nearest listed town centre."""
    tx, ty = to_xy([t[2] for t in TOWNS], [t[3] for t in TOWNS])
    x, y = to_xy(lon, lat)
    i = int(np.argmin(np.hypot(tx - x, ty - y)))
    return TOWNS[i][0], TOWNS[i][1]


def county_table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "adcode": c.adcode,
                "name": c.name,
                "city_adcode": c.city_adcode,
                "province_adcode": c.province_adcode,
            }
            for c in COUNTIES.values()
        ]
    )
