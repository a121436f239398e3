"""Scenario simulator: a landing directory exactly per the contract, plus its ground truth.

``simulate(out_dir, truth_path, seed, days, trucks, profile="standard")`` draws
the world's parameters from the profile (``profiles``: ``standard``, ``hard``,
``sparse``), builds a world of real places (``geography``) with receivers'
shared access roads (``adversary``), a fleet (``fleet``) and a liaison network
(``liaisons``), plans every truck's night shifts with injected violations
(``nights``, ``violations``), samples GPS tracks (``trips``), derives manifests
and dumping reports (``manifests``, ``reports``), dirties the feed
(``defects``) and writes it (``writer``). The ground truth goes to
``truth_path``, never into the landing directory. Same seed and profile, same
bytes.

The truth holds ``events`` (each with where and when, which night must report
it — ``report_night`` — whether the truck had sensors, its adversarial
``features`` and how many fixes of it survived the feed, ``evidence_fixes``),
``reports`` (with the culprit trucks, or none for decoys), ``legit_long_stops``,
``hauls`` (every haul in the window with its features and manifest),
``adversarial`` (flap windows, drifts, silences, dead zones, access roads),
``trucks`` (feed traits per truck), ``world`` (the drawn knobs) and ``defects``
(counts).

Seeds: ``seeds.TUNING_SEEDS`` may be tuned on; ``seeds.HELD_OUT_SEEDS`` never.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.coords import from_wgs84, haversine_m
from wastetrack.models import REPORT_COLUMNS
from wastetrack.simulate import adversary as adv
from wastetrack.simulate import defects as dfx
from wastetrack.simulate import profiles as prof
from wastetrack.simulate.admin import locate
from wastetrack.simulate.fleet import make_carriers, make_trucks
from wastetrack.simulate.geography import (
    CONSTRUCTION_COUNTIES,
    COUNTIES,
    Site,
    far_from,
    make_construction_sites,
    make_places,
    make_receivers,
    to_lonlat,
    to_xy,
)
from wastetrack.simulate.liaisons import make_liaisons
from wastetrack.simulate.manifests import add_stray, build_manifests, manifest_day, stray_cancelled
from wastetrack.simulate.nights import DUMP_EXTRAS, TZ, NightPlanner, World
from wastetrack.simulate.reports import decoy_reports, make_report, report_time, roadside_address
from wastetrack.simulate.routing import route
from wastetrack.simulate.trips import RouteBook, sample_segments
from wastetrack.simulate.violations import (
    LOADING_DECIDES_S,
    events_from_hauls,
    number_events,
    schedule,
    undecidable_reason,
)
from wastetrack.simulate.writer import (
    parquet_epoch,
    parquet_native,
    write_batch_json,
    write_csv,
    write_parquet,
    write_sites,
)

__all__ = ["PROFILE_NAMES", "simulate"]

PROFILE_NAMES = prof.PROFILE_NAMES

GPS_COLUMNS = ["vehicle_id", "ts", "lon", "lat", "speed_kmh", "heading", "loaded", "tipping"]
#: the GPS part whose platform exports vehicle, time and position only (``part-004.parquet``, no sensor columns;
#: its re-uploads go to part-005 with them)
LONLAT_ONLY_PART = 4


def _iso(t: float) -> str:
    return datetime.fromtimestamp(round(t), TZ).isoformat()


def _fmt_ts(t: np.ndarray, style: str) -> list[str]:
    ts = pd.to_datetime(np.asarray(t, dtype="int64"), unit="s", utc=True)
    if style == "offset":
        return list(ts.tz_convert(TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S+08:00"))
    if style == "naive":
        return list(ts.tz_convert(TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S"))
    if style == "z":
        return list(ts.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return [str(v * 1000) for v in np.asarray(t, dtype="int64")]


def _bool_str(values: np.ndarray, sensors: np.ndarray, true: str = "true", false: str = "false") -> list[str]:
    return [("" if not s else true if v else false) for v, s in zip(values, sensors, strict=True)]


def _csv_frame(
    rng: np.random.Generator, fr: pd.DataFrame, ts: list[str], numeric_bools: bool = False
) -> pd.DataFrame:
    sensors = fr["sensors"].to_numpy(dtype=bool)
    tb = ("1", "0") if numeric_bools else ("true", "false")
    return pd.DataFrame(
        {
            "vehicle_id": fr["plate"].to_numpy(),
            "ts": ts,
            "lon": [f"{v:.6f}" for v in fr["lon"]],
            "lat": [f"{v:.6f}" for v in fr["lat"]],
            "speed_kmh": [f"{v:.1f}" for v in fr["speed_kmh"]],
            "heading": fr["heading"].astype(int).astype(str).to_numpy(),
            "loaded": _bool_str(fr["loaded"].to_numpy(), sensors, *tb),
            "tipping": _bool_str(fr["tipping"].to_numpy(), sensors, *tb),
        }
    )


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, TZ).date().isoformat()


class _Scenario:
    def __init__(self, seed: int, days: int, trucks: int, start_date: str, profile: str = "standard"):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.profile = prof.profile_of(profile)
        # a stream of its own, so the world's knobs do not shift when a stage draws more or less
        self.knobs = prof.draw_knobs(self.profile, np.random.default_rng([seed, 9]))
        self.start = date.fromisoformat(start_date)
        self.dates = [self.start + timedelta(days=i) for i in range(days)]
        self.n_trucks = trucks
        self.counts: Counter = Counter()

    # ---- world ---------------------------------------------------------------------------------------
    def build_world(self) -> None:
        rng = self.rng
        n_sites = int(np.clip(round(self.n_trucks * 0.5), 5, 80))
        self.sites = make_construction_sites(rng, n_sites, self.start.year)
        self.receivers = make_receivers(rng, self.start, len(self.dates))
        everything: list[Site] = self.sites + self.receivers
        loc = locate([s.lon for s in everything], [s.lat for s in everything])
        for s, county in zip(everything, loc["county_adcode"], strict=True):
            if county in COUNTIES:  # the geometry decides, as it will for the pipeline
                s.county_adcode = county
        dumps = {}
        for c in sorted(COUNTIES):
            if c == "310151":
                continue
            dumps[c] = far_from(make_places(rng, "dump", {c: 1.0}, 8, 900, 3000, f"DP{c}-"), everything, 900)
        site_counties = sorted({s.county_adcode for s in self.sites})
        n_carriers = int(np.clip(self.n_trucks // 3, 2, 40))
        carrier_counties = [site_counties[i % len(site_counties)] for i in range(n_carriers)]
        carriers = make_carriers(rng, carrier_counties)
        park_counties = sorted(set(carrier_counties) | {r.county_adcode for r in self.receivers})
        parks = {
            c: far_from(make_places(rng, "park", {c: 1.0}, 2, 1500, 4000, f"PK{c}-"), everything, 600)
            for c in park_counties
        }
        fuel = far_from(make_places(rng, "fuel", CONSTRUCTION_COUNTIES, 16, 300, 2500, "FS"), everything, 500)
        k = self.knobs
        self.trucks = make_trucks(rng, self.n_trucks, carriers, parks, self.start.year, k)
        fences = adv.fence_geometries(everything)
        arng = np.random.default_rng([self.seed, 6])
        approaches = adv.make_approaches(arng, self.receivers, self.sites, fences)
        anchors = [(s.site_id, *s.xy, s.radius_m * 1.2) for s in everything]
        places = [p for ps in (*dumps.values(), *parks.values(), fuel) for p in ps]
        places += [a.hub for a in approaches.values()]
        anchors += [(p.place_id, *p.xy, 0.0) for p in places]
        routes = RouteBook(self.seed, anchors)
        adv.place_laybys(arng, approaches, routes, self.receivers, fences)
        self.world = World(self.dates, self.sites, self.receivers, dumps, parks, fuel, routes=routes, knobs=k)
        self.world.fences = fences
        self.world.approaches = approaches
        self.world.canyon = adv.canyon_sites(
            np.random.default_rng([self.seed, 4]),
            self.sites,
            self.receivers,
            k.canyon_site_share,
            k.canyon_receiver_share,
        )
        drng = np.random.default_rng([self.seed, 7])
        self.world.decks = {
            "style": adv.Deck(drng, prof.SPOT_STYLES, k.style_weights),
            "extras": adv.Deck(drng, DUMP_EXTRAS, [1.0] * len(DUMP_EXTRAS)),
        }
        self.liaisons, self.county_city = make_liaisons(rng)
        self.carriers = carriers

    def receivers_for(self, site: Site, cross_pref: bool = False) -> list[Site]:
        days = self.world.all_days
        cands = [
            r for r in self.receivers if site.waste_type in r.accepts and any(r.valid_on(d) for d in days)
        ]
        cands.sort(key=lambda r: np.hypot(r.xy[0] - site.xy[0], r.xy[1] - site.xy[1]))
        if cross_pref:
            cross = [
                r
                for r in cands
                if r.county_adcode[:2] != site.county_adcode[:2]
                and np.hypot(r.xy[0] - site.xy[0], r.xy[1] - site.xy[1]) < 60000
            ]
            if cross:
                cands.remove(cross[0])
                cands.insert(0, cross[0])
        return cands

    # ---- nights --------------------------------------------------------------------------------------
    def plan(self) -> None:
        rng = self.rng
        specs = schedule(rng, self.world, self.n_trucks)
        by_truck: dict[int, dict[int, object]] = {}
        for s in specs:
            by_truck.setdefault(s.truck, {})[s.night] = s
        n_nights = len(self.world.nights)
        taken = {(s.truck, s.night) for s in specs}
        free = [(k, n) for k in range(self.n_trucks) for n in range(n_nights - 1) if (k, n) not in taken]
        want = self.knobs.roadside_per_100_truck_days * self.n_trucks * len(self.dates) / 100.0
        n_road = min(len(free), max(1, int(rng.poisson(want))))
        roadside = (
            {free[int(i)] for i in rng.choice(len(free), size=n_road, replace=False)} if free else set()
        )
        first = [self.receivers_for(s) for s in self.sites]
        self.world.popularity = dict(Counter(c[0].site_id for c in first if c))
        self.planners: list[NightPlanner] = []
        for k, truck in enumerate(self.trucks):
            prng = np.random.default_rng([self.seed, 1, k])
            local = [s for s in self.sites if s.county_adcode == truck.carrier.county_adcode] or self.sites
            site = local[int(prng.integers(len(local)))]
            cross_pref = bool(prng.random() < 0.2)
            pl = NightPlanner(
                truck,
                self.world,
                prng,
                by_truck.get(k, {}),
                {n for kk, n in roadside if kk == k},
                site,
                lambda s, c=cross_pref: self.receivers_for(s, c),
            )
            pl.plan(day_worker=bool(prng.random() < 0.15))
            self.planners.append(pl)
        self.hauls = [h for pl in self.planners for h in pl.hauls]
        self._count_light_stops_near_dumps()
        self._count_innocent_stops_near_dumps()

    def _count_innocent_stops_near_dumps(self) -> None:
        """Legit long stops of *other* trucks within 150 m of a dump spot, within a day of the dump."""
        rows = [
            (pl.truck.vehicle_id, *to_xy(s.lon, s.lat), s.start, s.end)
            for pl in self.planners
            for s in pl.stops
            if s.kind != "shift_park"
        ]
        if not rows:
            return
        vid = np.array([r[0] for r in rows], dtype=object)
        arr = np.array([[float(r[1]), float(r[2]), r[3], r[4]] for r in rows])
        for h in self.hauls:
            if h.kind not in ("illegal_dump", "track_gap") and h.roadside is None:
                continue
            pts = [to_xy(a, b) for a, b in h.spots] if h.roadside is None else [to_xy(*h.roadside[2:])]
            t0 = h.event_start if h.roadside is None else h.roadside[0]
            near = np.zeros(len(arr), dtype=bool)
            for x, y in pts:
                near |= np.hypot(arr[:, 0] - float(x), arr[:, 1] - float(y)) < 150
            near &= (vid != h.vehicle_id) & (arr[:, 3] > t0 - 86400) & (arr[:, 2] < t0 + 86400)
            h.notes["innocent_stops_within_150m"] = int(near.sum())

    def _count_light_stops_near_dumps(self) -> None:
        """How many red-light stops (any truck, any time) lie within 60 m of each red-light dump spot."""
        arr = np.array([[x, y, t1 - t0] for pl in self.planners for t0, t1, x, y, _ in pl.light_stops])
        if not len(arr):
            return
        for h in self.hauls:
            if "red_light_dump" not in h.features:
                continue
            d = np.hypot(arr[:, 0] - h.notes["light_x"], arr[:, 1] - h.notes["light_y"])
            near = d < 60
            h.notes["light_stops_nearby"] = int(near.sum())
            h.notes["long_light_stops_nearby"] = int((near & (arr[:, 2] >= 150)).sum())

    # ---- tracks --------------------------------------------------------------------------------------
    def sample(self) -> None:
        frames = []
        kn = self.knobs
        stuck, flaky = adv.sensor_faults(
            np.random.default_rng([self.seed, 3]),
            [t.sensors for t in self.trucks],
            kn.tipping_stuck_share,
            kn.load_flap_share,
        )
        self.tipping_stuck = sorted(stuck)
        self.load_flapping = sorted(flaky)
        self.flaps: dict[int, list[tuple[float, float]]] = {}
        for k, (truck, pl) in enumerate(zip(self.trucks, self.planners, strict=True)):
            srng = np.random.default_rng([self.seed, 2, k])
            s = sample_segments(
                srng,
                pl.segs,
                truck.interval_s,
                truck.parked_interval_s,
                truck.parked_interval_s if truck.motion_based else None,
            )
            t = s["t"]
            if k in stuck or k in flaky:
                frng = np.random.default_rng([self.seed, 5, k])
                flaps = adv.flap_windows(frng, pl.segs) if k in flaky else []
                s["loaded"], s["tipping"] = adv.apply_sensor_faults(
                    frng, t, s["loaded"], s["tipping"], k in stuck, flaps
                )
                self.flaps[k] = flaps
            self._sensor_features(k, truck, pl)
            keep = (t >= self.world.win_start) & (t < self.world.win_end)
            for g0, g1 in pl.silent_windows():
                keep &= ~((t > g0) & (t < g1))
            n = int(keep.sum())
            x = s["x"][keep] + srng.normal(0, truck.noise_m, n)
            y = s["y"][keep] + srng.normal(0, truck.noise_m, n)
            out = srng.random(n) < kn.outlier_share
            ang = srng.uniform(0, 2 * np.pi, n)
            far = srng.uniform(30, 80, n)
            x = np.where(out, x + far * np.cos(ang), x)
            y = np.where(out, y + far * np.sin(ang), y)
            self.counts["outliers_30_80m"] += int(out.sum())
            lon, lat = to_lonlat(x, y)
            frames.append(
                pd.DataFrame(
                    {
                        "vcode": k,
                        "t": np.round(t[keep]).astype("int64"),
                        "lon": lon,
                        "lat": lat,
                        "speed_kmh": np.round(s["speed_kmh"][keep], 1),
                        "heading": np.round(s["heading"][keep]).astype(int) % 360,
                        "loaded": s["loaded"][keep],
                        "tipping": s["tipping"][keep],
                    }
                )
            )
        fx = pd.concat(frames, ignore_index=True).drop_duplicates(["vcode", "t"]).reset_index(drop=True)
        local_day = (fx["t"].to_numpy() + 8 * 3600) // 86400  # Asia/Shanghai has no DST: whole days
        names = {int(d): date.fromordinal(date(1970, 1, 1).toordinal() + int(d)).isoformat() for d in set(local_day)}
        fx["day"] = [names[int(d)] for d in local_day]
        self.clean = fx
        self.counts["clean_fixes"] = len(fx)

    def _sensor_features(self, k: int, truck, pl: NightPlanner) -> None:
        flaps = self.flaps.get(k, [])
        for h in pl.hauls:
            if not truck.sensors:
                h.features.insert(0, "no_sensors")
                continue
            if k in self.tipping_stuck:
                h.features.append("tipping_stuck_false")
            if any(a < h.unload_end and b > h.load_end for a, b in flaps):
                h.features.append("load_flap_while_loaded")

    # ---- truth pieces --------------------------------------------------------------------------------
    def build_events_and_reports(self) -> None:
        rng, k = self.rng, self.knobs
        self.manifests = build_manifests(rng, self.hauls, self.world, k.late_manifest_p)
        stray = stray_cancelled(rng, self.world, self.trucks, self.sites, len(self.dates))
        self.manifests = add_stray(self.manifests, rng, stray, self.receivers)
        w = self.world
        self.events = events_from_hauls(self.hauls, self.liaisons, self.county_city, w.win_start, w.win_end)
        last_day = self.dates[-1]
        reports = []
        # a pile left while the terminal was off lies in the field like any other and is reported as often
        # (its own stream: adding these reports leaves every other draw of the world as it was)
        grng = np.random.default_rng([self.seed, 9])
        for e in self.events:
            h = e["_haul"]
            if e["kind"] not in ("illegal_dump", "track_gap"):
                continue
            rr = rng if e["kind"] == "illegal_dump" else grng
            if rr.random() > k.report_p:
                continue
            rt = report_time(rr, h.event_end, k, last_day)
            if rt is None:
                continue
            r = make_report(
                rr,
                h.unload_lon,
                h.unload_lat,
                h.event_start - float(rr.uniform(0.5, 4)) * 3600,
                min(rt - 600, h.event_end + float(rr.uniform(0.5, 5)) * 3600),
                rt,
                h.spot_name,
                h.waste_type,
                e["county_adcode"],
                bool(rr.random() < k.report_window_p),
                k.report_offset_m,
            )
            reports.append({**r, "_event": e, "_vehicle": h.vehicle_id, "_expected": "explained"})
        for h in self.hauls:
            if h.roadside is None:
                continue
            t0, t1, lon, lat = h.roadside
            rt = report_time(rng, t1, k, last_day)
            if rt is None:
                continue
            county, addr = roadside_address(rng, lon, lat)
            window = (t0 - 1800, min(rt - 600, t1 + 1800))
            r = make_report(rng, lon, lat, *window, rt, addr, h.waste_type, county, True, k.report_offset_m)
            ev = self._roadside_event(h)
            self.events.append(ev)
            reports.append({**r, "_event": ev, "_vehicle": h.vehicle_id, "_expected": "report_trace"})
        fx = self.clean
        fxx, fxy = to_xy(fx["lon"].to_numpy(), fx["lat"].to_numpy())
        stops = [
            (*to_xy(s.lon, s.lat), s.start, s.end)
            for pl in self.planners
            for s in pl.stops
            if s.kind != "shift_park"
        ]
        dumps = [
            (*to_xy(a, b), h.event_start, h.event_end)
            for h in self.hauls
            if h.kind in ("illegal_dump", "track_gap")
            for a, b in h.spots
        ]
        dumps += [
            (*to_xy(h.roadside[2], h.roadside[3]), h.roadside[0], h.roadside[1])
            for h in self.hauls
            if h.roadside is not None
        ]
        track = (fxx, fxy, fx["t"].to_numpy(), fx["speed_kmh"].to_numpy() > 5)
        for r in decoy_reports(rng, k, self.dates, self.n_trucks, track, stops, dumps):
            reports.append({**r, "_event": None, "_vehicle": "", "_expected": "untraced"})
        reports.sort(key=lambda r: (r["reported_at"], r["lon"]))
        number_events(self.events)
        for i, r in enumerate(reports, start=1):
            day = datetime.fromtimestamp(r["reported_at"], TZ)
            r["report_id"] = (
                f"12345-{day:%Y%m%d}{i:05d}" if r["source"] == "hotline" else f"RPT-{day:%Y%m%d}-{i:04d}"
            )
            r["date"] = day.date().isoformat()
            r["_events"] = self._explaining_events(r) if r["_event"] is not None else []
            for e in r["_events"]:
                e["report_ids"].append(r["report_id"])
            if r["_expected"] == "report_trace":  # only the report reveals it: decided when it arrives
                r["_event"]["decided_at"] = _iso(r["reported_at"])
                r["_event"]["report_night"] = r["date"]
        self.reports = reports

    def _roadside_event(self, h) -> dict:
        """The truth event of a small roadside dump only a report reveals (kind ``report_trace``)."""
        t0, t1, lon, lat = h.roadside
        loc = locate([lon, h.origin.lon], [lat, h.origin.lat])
        county, prov = loc.at[0, "county_adcode"], loc.at[0, "province_adcode"]
        ocounty = loc.at[1, "county_adcode"] or h.origin.county_adcode
        oprov = loc.at[1, "province_adcode"] or ocounty[:2] + "0000"
        return {
            "event_id": "",
            "kind": "report_trace",
            "subkind": "roadside",
            "vehicle_id": h.vehicle_id,
            "carrier_id": h.carrier_id,
            "date": _day(t1),
            "start": _iso(t0),
            "end": _iso(t1),
            "lon": round(lon, 6),
            "lat": round(lat, 6),
            "spots": [[round(lon, 6), round(lat, 6)]],
            "county_adcode": county,
            "province_adcode": prov,
            "cross_border": bool(prov != oprov),
            "origin_site_id": h.origin.site_id,
            "origin_county_adcode": ocounty,
            "manifest_id": h.manifest_id,
            "unload_site_id": "",
            "crosses_midnight": _day(t0) != _day(t1),
            "sensors": bool(h.sensors),
            "last_haul": False,
            "style": "roadside",
            "decided_at": None,
            "report_night": None,
            "decidable": True,
            "undecidable_reason": "",
            "primary_liaison_id": route(county, self.liaisons, self.county_city),
            "report_ids": [],
            "features": ["roadside_small_dump", *(["no_sensors"] if not h.sensors else [])],
            "notes": {k: v for k, v in h.notes.items() if k == "innocent_stops_within_150m"},
            "_haul": h,
        }

    def _explaining_events(self, r: dict) -> list[dict]:
        """Every dump a report may describe: the one it was made for and any other at the same spot
        (dump spots are shared) that ended in its observation window, or before it on the same day."""
        t_from = (
            pd.Timestamp(r["observed_from"]).timestamp() if r["observed_from"] else r["reported_at"] - 86400
        )
        t_to = pd.Timestamp(r["observed_to"]).timestamp() if r["observed_to"] else r["reported_at"]
        out = [r["_event"]]
        for e in self.events:
            if e is r["_event"] or e["kind"] not in ("illegal_dump", "track_gap"):
                continue
            near = any(haversine_m(lon, lat, r["lon"], r["lat"]) <= 250 for lon, lat in e["spots"])
            h = e["_haul"]
            if near and h.event_start <= t_to and h.event_end >= t_from and h.event_end <= r["reported_at"]:
                out.append(e)
        return out

    # ---- writing -------------------------------------------------------------------------------------
    def _parts_of_trucks(self) -> list[int]:
        """GPS part (platform) of each truck: 沪 0/1, 苏 2, 浙 3, 皖 4; no part left empty."""
        order = sorted(range(len(self.trucks)), key=lambda k: self.trucks[k].vehicle_id)
        part = [0] * len(self.trucks)
        alt = 0
        for k in order:
            short = self.trucks[k].vehicle_id[0]
            if short == "沪":
                part[k] = alt % 2
                alt += 1
            else:
                part[k] = {"苏": 2, "浙": 3, "皖": 4}[short]
        for p in range(5):
            if p not in part:
                sizes = Counter(part)
                donor = max(sizes, key=lambda q: (sizes[q], -q))
                if sizes[donor] < 2:
                    break
                k = max(kk for kk in order if part[kk] == donor)
                part[k] = p
        return part

    def write(self, out_dir: Path) -> None:
        rng = self.rng
        ref = out_dir / "reference"
        write_sites(ref / "sites.geojson", self.sites + self.receivers)
        veh = pd.DataFrame(
            [
                {
                    "vehicle_id": t.plate,
                    "carrier_id": t.carrier.carrier_id,
                    "terminal_id": t.terminal_id,
                    "capacity_m3": f"{t.capacity_m3:.1f}",
                    "registered_adcode": t.registered_adcode,
                    "permit_valid_to": t.permit_valid_to,
                }
                for t in self.trucks
            ]
        )
        write_csv(ref / "vehicles.csv", veh)
        car = pd.DataFrame(
            [
                {
                    "carrier_id": c.carrier_id,
                    "name": c.name,
                    "county_adcode": c.county_adcode,
                    "contact_phone": c.contact_phone,
                }
                for c in self.carriers
            ]
        )
        write_csv(ref / "carriers.csv", car)
        write_csv(ref / "liaisons.csv", self.liaisons)

        fx = dfx.apply_track_defects(rng, self.clean.copy(), self.counts, self.knobs)
        self._count_evidence(fx)
        last_day = self.dates[-1].isoformat()
        late = dfx.pick_late(rng, fx, last_day, self.knobs)
        self.counts["late_rows"] += int(late.sum())
        fx = dfx.swap_lonlat(rng, fx, self.knobs.swapped_share, self.counts)
        part_of = np.array(self._parts_of_trucks())
        fx["part"] = part_of[fx["vcode"].to_numpy()]
        fx["sensors"] = [self.trucks[k].sensors for k in fx["vcode"]]
        fx["vid"] = [self.trucks[k].vehicle_id for k in fx["vcode"]]
        spread = (rng.random(len(fx)) < 0.015) & (fx["part"].to_numpy() <= 1) & ~late
        self.counts["spread_rows"] += int(spread.sum())
        fx["late"] = late
        fx["spread"] = spread
        plates = [t.plate for t in self.trucks]
        next_day = {d.isoformat(): (d + timedelta(days=1)).isoformat() for d in self.dates}
        fx["batch"] = np.where(late, fx["day"].map(next_day), fx["day"])
        self._date_sensor_decisions(fx)
        man_day = manifest_day(self.manifests)
        for di, d in enumerate(self.dates):
            day = d.isoformat()
            ddir = out_dir / day
            files: list[tuple[str, int]] = []
            m = self.manifests[man_day == day].drop(columns=["_issued"])
            if di == len(self.dates) - 1 and rng.random() < 0.5:
                bad = m.head(1).copy()
                if len(bad):
                    bad["manifest_id"] = bad["manifest_id"] + "X"
                    bad["waste_type"] = "soil"
                    bad["status"] = "lost"
                    m = pd.concat([m, bad], ignore_index=True)
                    self.counts["invalid_manifest_rows"] += 1
            files.append(
                (
                    "manifests.csv",
                    write_csv(
                        ddir / "manifests.csv", m, bom=(di == len(self.dates) - 1 and len(self.dates) > 1)
                    ),
                )
            )
            if len(self.dates) > 1 and di == len(self.dates) - 1:
                self.counts["bom_files"] += 1
            rep = [r for r in self.reports if r["date"] == day]
            rframe = pd.DataFrame(
                [{**{c: r.get(c, "") for c in REPORT_COLUMNS}} for r in rep], columns=list(REPORT_COLUMNS)
            )
            if len(rframe):
                glon, glat = from_wgs84(
                    rframe["lon"].to_numpy(dtype=float), rframe["lat"].to_numpy(dtype=float), "gcj02"
                )
                rframe["lon"] = [f"{v:.6f}" for v in glon]
                rframe["lat"] = [f"{v:.6f}" for v in glat]
                rframe["reported_at"] = [_iso(r["reported_at"]) for r in rep]
            files.append(("reports.csv", write_csv(ddir / "reports.csv", rframe)))
            files += self._write_gps(rng, fx[fx["batch"] == day], ddir, di, plates)
            write_batch_json(ddir, day, files)

    def _count_evidence(self, fx: pd.DataFrame) -> None:
        """Per event: fixes of its truck that landed within 300 m of one of its spots, in its window ±1 min
        (after drop-outs, zero fixes and teleports): 0 means the feed erased the event (None: a track gap,
        whose window is the silence)."""
        code = fx["vcode"].to_numpy()
        t = fx["t"].to_numpy(dtype=float)
        x, y = to_xy(fx["lon"].to_numpy(), fx["lat"].to_numpy())
        vcode = {tr.vehicle_id: k for k, tr in enumerate(self.trucks)}
        for e in self.events:
            if e["kind"] == "track_gap":  # its window is the silence itself: nothing to count
                e["evidence_fixes"] = None
                continue
            a, b = pd.Timestamp(e["start"]).timestamp() - 60, pd.Timestamp(e["end"]).timestamp() + 60
            sel = np.flatnonzero((code == vcode[e["vehicle_id"]]) & (t >= a) & (t <= b))
            near = np.zeros(len(sel), dtype=bool)
            for lon, lat in e["spots"]:
                sx, sy = to_xy(lon, lat)
                near |= np.hypot(x[sel] - float(sx), y[sel] - float(sy)) <= 300
            e["evidence_fixes"] = int(near.sum())

    def _date_sensor_decisions(self, fx: pd.DataFrame) -> None:
        """A sensor truck's dump or track gap is decided by the first sensor reading after it *that the feed
        carries*, on the night whose batch holds that reading; without one (its platform's part has no sensor
        columns, the reading came after midnight, or it arrives late in the next batch) as a sensorless
        truck's, by its next loading. ``violations.decided_at`` assumes the reading at the event's end; the
        feed decides what a run can see (a dump ending 23:59:47 whose last fix of the day was 23:57:08, still
        reading loaded, cannot be decided that night)."""
        carries = ((fx["part"].to_numpy() != LONLAT_ONLY_PART) | fx["late"].to_numpy(bool)
                   | fx["spread"].to_numpy(bool))
        code, t = fx["vcode"].to_numpy(), fx["t"].to_numpy(dtype=float)
        batch = fx["batch"].to_numpy(object)
        vcode = {tr.vehicle_id: k for k, tr in enumerate(self.trucks)}
        w0, w1 = self.world.win_start, self.world.win_end
        for e in self.events:
            h = e.get("_haul")
            if h is None or not h.sensors or e["kind"] not in ("illegal_dump", "track_gap"):
                continue
            sel = np.flatnonzero((code == vcode[e["vehicle_id"]]) & carries & (t >= h.event_end - 0.5))
            first = sel[np.argmin(t[sel])] if sel.size else None
            by_load = None if h.next_load is None else h.next_load + LOADING_DECIDES_S
            options = [(by_load, _day(by_load))] if by_load is not None else []
            if first is not None:
                options.append((float(t[first]), str(batch[first])))
            if not options:
                decided, night = None, None
            else:
                decided, night = min(options, key=lambda o: (o[1], o[0]))
                night = max(night, _day(h.event_end))
            why = undecidable_reason(h, decided, w0, w1)
            e["decided_at"] = _iso(decided) if decided is not None else None
            e["report_night"] = night
            e["decidable"] = not why
            e["undecidable_reason"] = why

    def _write_gps(
        self, rng, fx: pd.DataFrame, ddir: Path, di: int, plates: list[str]
    ) -> list[tuple[str, int]]:
        counts = self.counts
        files = []
        fx = fx.sort_values(["t", "vcode"], kind="stable")
        main = fx[~fx["late"] & ~fx["spread"]]
        styles = {0: 1, 1: 0, 2: 0, 3: 2, 4: 1}
        frames = {}
        for p in range(5):
            fr = main[main["part"] == p].copy()
            fr["plate"] = dfx.plate_column(rng, fr["vid"], styles[p], counts)
            frames[p] = dfx.shuffle_rows(rng, fr.reset_index(drop=True), 0.01, counts)
        day = ddir.name
        # part-000: ISO with offset, BOM on the second day, a few invalid rows
        f0 = _csv_frame(rng, frames[0], _fmt_ts(frames[0]["t"].to_numpy(), "offset"))
        f0 = pd.concat([f0, dfx.invalid_rows(rng, day, plates, GPS_COLUMNS, counts)], ignore_index=True)
        bom = di == 1 or (len(self.dates) == 1)
        counts["bom_files"] += int(bom)
        files.append(("gps/part-000.csv", write_csv(ddir / "gps/part-000.csv", f0, bom=bom)))
        files.append(
            ("gps/part-001.parquet", write_parquet(ddir / "gps/part-001.parquet", parquet_native(frames[1])))
        )
        f2 = _csv_frame(rng, frames[2], _fmt_ts(frames[2]["t"].to_numpy(), "naive"), numeric_bools=True)
        f2["altitude"] = [f"{v:.1f}" for v in rng.uniform(2, 30, len(f2))]
        f2["platform"] = "苏运管平台"
        counts["extra_columns"] += 2 * (di == 0)
        files.append(("gps/part-002.csv", write_csv(ddir / "gps/part-002.csv", f2)))
        f3 = _csv_frame(rng, frames[3], _fmt_ts(frames[3]["t"].to_numpy(), "z"))
        files.append(("gps/part-003.csv.gz", write_csv(ddir / "gps/part-003.csv.gz", f3, gz=True)))
        files.append(("gps/part-004.parquet",
                      write_parquet(ddir / "gps/part-004.parquet", parquet_epoch(frames[LONLAT_ONLY_PART]))))
        # part-005: re-uploads (late rows of yesterday, rows spread from other parts), mixed time formats
        f5 = fx[fx["late"] | fx["spread"]].copy()
        f5["plate"] = [
            dfx.plate_variant(v, int(s)) for v, s in zip(f5["vid"], rng.integers(0, 3, len(f5)), strict=True)
        ]
        style = rng.choice(["offset", "naive", "z", "epoch"], size=len(f5), p=[0.4, 0.3, 0.15, 0.15])
        ts = np.empty(len(f5), dtype=object)
        for s in ("offset", "naive", "z", "epoch"):
            sel = style == s
            if sel.any():
                ts[sel] = _fmt_ts(f5["t"].to_numpy()[sel], s)
        counts["mixed_ts_rows"] += len(f5)
        f5 = _csv_frame(rng, f5, list(ts))
        f5["upload_note"] = "补传"
        files.append(("gps/part-005.csv", write_csv(ddir / "gps/part-005.csv", f5)))
        return files

    # ---- truth ---------------------------------------------------------------------------------------
    def truth(self, landing: Path) -> dict:
        events = []
        for e in self.events:
            events.append({k: v for k, v in e.items() if not k.startswith("_")})
        reports = [
            {
                "report_id": r["report_id"],
                "date": r["date"],
                "event_id": r["_event"]["event_id"] if r["_event"] is not None else None,
                "vehicle_id": r["_vehicle"],
                "event_ids": [e["event_id"] for e in r["_events"]],
                "vehicle_ids": sorted({e["vehicle_id"] for e in r["_events"]} | ({r["_vehicle"]} - {""})),
                "expected": r["_expected"],
                "decoy_kind": r.get("_decoy_kind", ""),
                "lon": round(r["lon"], 6),
                "lat": round(r["lat"], 6),
                "reported_at": _iso(r["reported_at"]),
                "days_late": (date.fromisoformat(r["date"]) - date.fromisoformat(r["_event"]["date"])).days
                if r["_event"] is not None
                else None,
            }
            for r in self.reports
        ]
        stops = []
        for pl in self.planners:
            for s in pl.stops:
                if s.end <= self.world.win_start or s.start >= self.world.win_end:
                    continue
                stops.append(
                    {
                        "vehicle_id": s.vehicle_id,
                        "start": _iso(max(s.start, self.world.win_start)),
                        "end": _iso(min(s.end, self.world.win_end)),
                        "lon": round(s.lon, 6),
                        "lat": round(s.lat, 6),
                        "loaded": bool(s.loaded),
                        "kind": s.kind,
                    }
                )
        stops.sort(key=lambda s: (s["start"], s["vehicle_id"]))
        legit = [h for h in self.hauls if h.kind == "legit" and h.load_start >= self.world.win_start]
        hauls, adversarial = self._adversarial_truth()
        counts = Counter(f for h in hauls for f in h["features"])
        trucks = [
            {
                "vehicle_id": t.vehicle_id,
                "sensors": bool(t.sensors),
                "interval_s": round(t.interval_s, 1),
                "parked_interval_s": round(t.parked_interval_s, 1),
                "motion_based": bool(t.motion_based),
                "noise_m": round(t.noise_m, 1),
            }
            for t in self.trucks
        ]
        return {
            "version": 2,
            "seed": self.seed,
            "profile": self.profile.name,
            "world": self.knobs.as_dict(),
            "dates": [d.isoformat() for d in self.dates],
            "landing": str(landing),
            "events": events,
            "reports": reports,
            "legit_long_stops": stops,
            "defects": dict(sorted(self.counts.items())),
            "trucks": trucks,
            "stats": {
                "trucks": len(self.trucks),
                "hauls": len(self.hauls),
                "legit_hauls_in_window": len(legit),
                "manifests": len(self.manifests),
                "sites": len(self.sites),
                "receivers": len(self.receivers),
                "sensor_trucks": sum(t.sensors for t in self.trucks),
                "adversarial": {
                    "trucks_tipping_stuck_false": len(adversarial["sensor_faults"]["tipping_stuck_false"]),
                    "trucks_load_flapping": len(adversarial["sensor_faults"]["load_flapping"]),
                    "load_flap_windows": len(adversarial["load_flaps"]),
                    "gps_drift_visits": len(adversarial["gps_drift"]),
                    "canyon_sites": len(self.world.canyon),
                    "empty_silences": len(adversarial["empty_silences"]),
                    "dark_after_dump": len(adversarial["dark_after_dump"]),
                    "dead_zones": len(adversarial["dead_zones"]),
                    "split_dumps": sum("split_dump" in e["features"] for e in events),
                    "last_haul_dumps": sum(bool(e.get("last_haul")) for e in events),
                    "late_reports": sum(1 for r in reports if (r["days_late"] or 0) > 0),
                    "decoys": dict(Counter(r["decoy_kind"] for r in reports if r["expected"] == "untraced")),
                    "late_manifests": sum(h.late_manifest for h in self.hauls),
                    "red_light_long_stops": sum(1 for s in stops if s["kind"] == "red_light"),
                    "haul_features": dict(sorted(counts.items())),
                },
            },
            "hauls": hauls,
            "adversarial": adversarial,
        }

    def _adversarial_truth(self) -> tuple[list[dict], dict]:
        """Every haul in the window with its features and manifest, and the adversarial instances."""
        w0, w1 = self.world.win_start, self.world.win_end
        event_of = {id(e["_haul"]): e["event_id"] for e in self.events}
        hauls = []
        for h in sorted(self.hauls, key=lambda h: (h.load_start, h.vehicle_id)):
            if h.end_t <= w0 or h.load_start >= w1:
                continue
            hauls.append(
                {
                    "vehicle_id": h.vehicle_id,
                    "kind": h.kind,
                    "subkind": h.subkind,
                    "event_id": event_of.get(id(h), ""),
                    "origin_site_id": h.origin.site_id,
                    "load_start": _iso(h.load_start),
                    "load_end": _iso(h.load_end),
                    "unload_start": _iso(h.unload_start),
                    "unload_end": _iso(h.unload_end),
                    "end": _iso(h.end_t),
                    "unload_site_id": h.unload_site.site_id if h.unload_site else "",
                    "unload_lon": round(h.unload_lon, 6),
                    "unload_lat": round(h.unload_lat, 6),
                    "manifest_id": h.manifest_id,
                    "manifest_status": h.manifest_status,
                    "sensors": bool(h.sensors),
                    "spots": [[round(a, 6), round(b, 6)] for a, b in h.spots],
                    "features": list(dict.fromkeys(h.features)),
                    "notes": {
                        k: v for k, v in h.notes.items() if k not in ("light_x", "light_y") and not k.startswith("_")
                    },
                }
            )
        plate = {k: t.vehicle_id for k, t in enumerate(self.trucks)}
        flaps = [
            {"vehicle_id": plate[k], "start": _iso(a), "end": _iso(b)}
            for k, ws in sorted(self.flaps.items())
            for a, b in ws
            if b > w0 and a < w1
        ]
        drifts = [
            {
                **{k: v for k, v in d.items() if k not in ("t0", "t1")},
                "start": _iso(d["t0"]),
                "end": _iso(d["t1"]),
                "lon": round(d["lon"], 6),
                "lat": round(d["lat"], 6),
            }
            for pl in self.planners
            for d in pl.drifts
            if d["t1"] > w0 and d["t0"] < w1
        ]
        silences = [
            {"vehicle_id": pl.truck.vehicle_id, "start": _iso(a), "end": _iso(b)}
            for pl in self.planners
            for a, b in pl.empty_silences
        ]
        dark = [
            {
                "vehicle_id": h.vehicle_id,
                "start": _iso(h.dark[0]),
                "end": _iso(h.dark[1]),
                "event_id": event_of.get(id(h), ""),
            }
            for h in self.hauls
            if h.dark is not None
        ]
        dead = [
            {"vehicle_id": pl.truck.vehicle_id, "start": _iso(a), "end": _iso(b), "where": where}
            for pl in self.planners
            for a, b, where in pl.dead_zones
        ]
        roads = [
            {
                "receiver_id": rid,
                "hub": [round(ap.hub.lon, 6), round(ap.hub.lat, 6)],
                "laybys": [[round(float(v), 6) for v in to_lonlat(x, y)] for _, x, y in ap.laybys],
            }
            for rid, ap in sorted(self.world.approaches.items())
        ]
        adversarial = {
            "dead_zones": sorted(dead, key=lambda f: (f["start"], f["vehicle_id"])),
            "access_roads": roads,
            "sensor_faults": {
                "tipping_stuck_false": sorted(plate[k] for k in self.tipping_stuck),
                "load_flapping": sorted(plate[k] for k in self.load_flapping),
            },
            "load_flaps": sorted(flaps, key=lambda f: (f["start"], f["vehicle_id"])),
            "gps_drift": sorted(drifts, key=lambda f: (f["start"], f["vehicle_id"])),
            "canyon_sites": sorted(self.world.canyon),
            "empty_silences": sorted(silences, key=lambda f: (f["start"], f["vehicle_id"])),
            "dark_after_dump": sorted(dark, key=lambda f: (f["start"], f["vehicle_id"])),
        }
        return hauls, adversarial


def simulate(
    out_dir: Path | str,
    truth_path: Path | str,
    seed: int,
    days: int,
    trucks: int,
    start_date: str = "2026-11-19",
    profile: str = "standard",
) -> Path:
    """Write a landing directory for ``days`` days and ``trucks`` trucks, and its truth JSON.

    ``profile`` is one of ``PROFILE_NAMES`` (see ``simulate.profiles``); the
    world's parameters are drawn from it with the seed. Returns the landing
    directory. The truth file must lie outside it.
    """
    out_dir = Path(out_dir).resolve()
    truth_path = Path(truth_path).resolve()
    if out_dir == truth_path or out_dir in truth_path.parents:
        raise ValueError(f"truth file {truth_path} must not be inside the landing directory {out_dir}")
    if days < 1 or trucks < 1:
        raise ValueError("days and trucks must be >= 1")
    sc = _Scenario(int(seed), int(days), int(trucks), start_date, profile)
    sc.build_world()
    sc.plan()
    sc.sample()
    sc.build_events_and_reports()
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():  # a re-run replaces the landing's own parts, nothing else
        if old.is_dir() and (old.name == "reference" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", old.name)):
            shutil.rmtree(old)
    sc.write(out_dir)
    truth = sc.truth(out_dir)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return out_dir
