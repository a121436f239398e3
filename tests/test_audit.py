"""Audit findings: each test demonstrates one concrete bug (it fails until the bug is fixed).

Fixtures are tiny: the example's reference directory plus hand-made days with one or two
sensorless trucks (fixes every 30 s), run through ``pipeline.run_night`` without sheets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from wastetrack.contract.batch import hash_and_count
from wastetrack.pipeline import run_night
from wastetrack.routing import LiaisonDirectory

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared/contract/example"
D1, D2 = "2026-11-21", "2026-11-22"
SITE = (121.512025, 31.053827)  # GD2026-1444, construction site in 310112 (WGS-84)
DUMP = (121.600, 31.120)  # open ground ~11 km away, no fence near
OFF = (121.45, 31.00)
VEH = "沪DD25866"  # registered, no load/tipping sensors in these fixtures
MIN = pd.Timedelta(minutes=1)
MAN_HEADER = (
    "manifest_id,vehicle_id,carrier_id,origin_site_id,dest_site_id,waste_type,volume_m3,"
    "issued_at,departed_at,received_at,status,cross_region_filing\n"
)
REP_HEADER = (
    "report_id,reported_at,observed_from,observed_to,lon,lat,address,waste_type,volume_m3_est,"
    "source,reporting_unit,description\n"
)


def _track(legs: list[tuple], vehicle: str = VEH) -> pd.DataFrame:
    """legs: (start, end, from lon/lat, to lon/lat); a leg with from == to is standing still."""
    rows = []
    for t0, t1, p, q in legs:
        n = max(int((t1 - t0).total_seconds() // 30), 1)
        for i in range(n):
            f = i / n
            rows.append(
                (
                    vehicle,
                    t0 + i * pd.Timedelta(seconds=30),
                    p[0] + (q[0] - p[0]) * f,
                    p[1] + (q[1] - p[1]) * f,
                    0.0 if p == q else 35.0,
                )
            )
    return pd.DataFrame(rows, columns=["vehicle_id", "ts", "lon", "lat", "speed_kmh"])


def _landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(EXAMPLE / "reference", landing / "reference")
    return landing


def _write_day(landing: Path, day: str, fixes: pd.DataFrame, manifests: str = "", reports: str = "") -> None:
    """One sealed batch: the fixes that fall on ``day``, manifests.csv and reports.csv."""
    d = landing / day
    (d / "gps").mkdir(parents=True)
    local = fixes["ts"].dt.tz_convert("Asia/Shanghai")
    part = fixes.loc[local.dt.strftime("%Y-%m-%d") == day].copy()
    part["ts"] = [t.isoformat() for t in part["ts"]]
    part.to_csv(d / "gps" / "part-000.csv", index=False)
    (d / "manifests.csv").write_text(MAN_HEADER + manifests, encoding="utf-8")
    (d / "reports.csv").write_text(REP_HEADER + reports, encoding="utf-8")
    files = []
    for p in sorted(d.rglob("*.csv")):
        sha, rows = hash_and_count(p)
        files.append({"path": p.relative_to(d).as_posix(), "rows": rows, "sha256": sha})
    doc = {"date": day, "timezone": "Asia/Shanghai", "coord_sys": {}, "files": files, "complete": True}
    (d / "batch.json").write_text(json.dumps(doc), encoding="utf-8")


def _dwell_dump(dump_end: str) -> pd.DataFrame:
    """Load at SITE 20 min, drive 60 min, stand 15 min at DUMP (ends ``dump_end``), drive back, reload."""
    e = pd.Timestamp(dump_end)
    s = e - 15 * MIN
    return _track(
        [
            (s - 80 * MIN, s - 60 * MIN, SITE, SITE),
            (s - 60 * MIN, s, SITE, DUMP),
            (s, e, DUMP, DUMP),
            (e, e + 60 * MIN, DUMP, SITE),
            (e + 60 * MIN, e + 80 * MIN, SITE, SITE),
            (e + 80 * MIN, e + 100 * MIN, SITE, OFF),
        ]
    )


def _silent_haul(load: str) -> pd.DataFrame:
    """Load at SITE, drive loaded 30 min, terminal silent 60 min, back 50 min, reload (track_gap)."""
    t = pd.Timestamp(load)
    return _track(
        [
            (t, t + 20 * MIN, SITE, SITE),
            (t + 20 * MIN, t + 50 * MIN, SITE, DUMP),
            (t + 110 * MIN, t + 160 * MIN, DUMP, SITE),
            (t + 160 * MIN, t + 180 * MIN, SITE, SITE),
            (t + 180 * MIN, t + 200 * MIN, SITE, OFF),
        ]
    )


def _run_both(landing: Path, out: Path) -> list[tuple[str, str, str]]:
    found = []
    for day in (D1, D2):
        r = run_night(landing, day, out, write_sheets=False)
        found += [(day, k, lid) for k, lid in zip(r.leads["kind"], r.leads["lead_id"], strict=True)]
    return found


# BUG (midnight): an event that ended before midnight whose evidence completes only after midnight
# (sensorless dwell dump / track gap: "came back to load again" happens on the next day) is never
# reported. Night 1 cannot classify it (haul still open); night 2 classifies it but
# NightBoundary.masks puts it in "earlier" because it ended on night 1's date. The same event
# 3 h earlier is reported. pipeline.NightBoundary.masks / detect_night.
@pytest.mark.parametrize(
    ("kind", "early", "late"),
    [
        ("illegal_dump", lambda: _dwell_dump(f"{D1}T20:35:00+08:00"), lambda: _dwell_dump(f"{D1}T23:35:00+08:00")),
        ("track_gap", lambda: _silent_haul(f"{D1}T19:00:00+08:00"), lambda: _silent_haul(f"{D1}T22:00:00+08:00")),
    ],
)
def test_event_ending_before_midnight_with_reload_after_midnight_is_reported_once(tmp_path, kind, early, late):
    results = {}
    for label, make in (("early", early), ("late", late)):
        landing = _landing(tmp_path / label)
        fixes = make()
        for day in (D1, D2):
            _write_day(landing, day, fixes)
        results[label] = [k for _, k, _ in _run_both(landing, tmp_path / label / "out")]
    assert results["early"] == [kind]  # control: same trip, all before midnight
    assert results["late"] == [kind]  # fails: found nowhere


# BUG (midnight, reports): a report is dismissed in run.json as "explained by lead X reported on an
# earlier night" although lead X was never reported on any night (same root cause as above; the
# report also gets no report_trace lead although a truck stood 15 min on the spot).
# pipeline.detect_night (by_earlier) trusts split_by_night instead of what was actually reported.
def test_report_is_not_dismissed_by_a_lead_that_no_night_reported(tmp_path):
    landing = _landing(tmp_path)
    fixes = _dwell_dump(f"{D1}T23:35:00+08:00")
    rep = f"R1,{D2}T08:00:00+08:00,{D1}T23:00:00+08:00,{D2}T01:00:00+08:00,{DUMP[0]},{DUMP[1]},,,,patrol,,\n"
    _write_day(landing, D1, fixes)
    _write_day(landing, D2, fixes, reports=rep)
    out = tmp_path / "out"
    reported = {lid for _, _, lid in _run_both(landing, out)}
    run2 = json.loads((out / D2 / "run.json").read_text(encoding="utf-8"))
    named = [u["reason"].split("lead ")[1].split(" ")[0] for u in run2["untraced_reports"] if "lead " in u["reason"]]
    assert all(lid in reported for lid in named), (named, reported)


# BUG (routing): the contract lets a town liaison use its county's adcode; LiaisonDirectory ignores
# ``level``, so such a town liaison becomes the county's primary — over the county's active backup
# always, and over the county's active primary when its id sorts first. v1 routes at county level.
# routing.LiaisonDirectory.__init__ (filter out level == "town" before building by_adcode).
def test_town_liaison_filed_under_county_code_never_becomes_the_county_primary():
    liaisons = pd.DataFrame(
        {
            "liaison_id": ["LN-310118-01", "LN-310118-02", "LN-310118-001"],
            "level": ["county", "county", "town"],
            "adcode": ["310118", "310118", "310118"],
            "role": ["primary", "backup", "primary"],
            "active": [False, True, True],
        }
    )
    assert LiaisonDirectory(liaisons).resolve("310118") == "LN-310118-02"
    liaisons.loc[0, "active"] = True
    assert LiaisonDirectory(liaisons).resolve("310118") == "LN-310118-01"


# BUG (false accusation): a manifest whose carrier_id has a wrong GB 32100 check character is
# quarantined as a whole, so the haul it covers becomes an ``unmanifested`` lead (score 0.75) against
# a truck that had a manifest. contract/readers._parse_manifests (credit-code failure rejects the
# row) + reconcile.match_manifests (never sees it). Keep the manifest for matching and flag the bad
# code in the evidence (or do not raise unmanifested when a quarantined manifest matches).
def test_manifest_with_mistyped_carrier_code_does_not_turn_its_haul_into_unmanifested(tmp_path):
    landing = _landing(tmp_path)
    site, recv = (121.216623, 31.237838), (121.235882, 31.181805)  # GD2026-1037 → ZY-3101-06
    t = pd.Timestamp(f"{D1}T10:00:00+08:00")
    fixes = _track(
        [
            (t, t + 20 * MIN, site, site),
            (t + 20 * MIN, t + 50 * MIN, site, recv),
            (t + 50 * MIN, t + 65 * MIN, recv, recv),
            (t + 65 * MIN, t + 95 * MIN, recv, site),
            (t + 95 * MIN, t + 115 * MIN, site, site),
            (t + 115 * MIN, t + 140 * MIN, site, OFF),
        ],
        vehicle="沪FF26769",
    )
    # the carrier's real code is 91310118MA6MXA7G0K; the producer typed …G0L
    man = (
        f"M1,沪F F26769,91310118MA6MXA7G0L,GD2026-1037,ZY-3101-06,construction,10,{D1}T09:00:00+08:00,"
        f"{D1}T10:20:00+08:00,{D1}T10:55:00+08:00,received,\n"
    )
    _write_day(landing, D1, fixes, manifests=man)
    r = run_night(landing, D1, tmp_path / "out", write_sheets=False)
    assert "unmanifested" not in list(r.leads["kind"])


# BUG (context): when the previous day's batch exists but is refused (here: complete=false), the
# night runs anyway with status "ok" and no previous-day context: on the example, 7 false
# ``unmanifested`` leads (hauls after midnight whose manifests were issued the day before) and 3
# midnight-crossing leads lost for good. pipeline.run_night / contract.read_context (a refused
# context batch is only a log warning). Expected: refuse/wait (BatchError, exit 2) — or at least
# not report status "ok".
def test_refused_previous_batch_does_not_silently_yield_an_ok_night(tmp_path):
    from wastetrack.contract import BatchError

    landing = tmp_path / "landing"
    shutil.copytree(EXAMPLE, landing)
    doc = json.loads((landing / "2026-11-19/batch.json").read_text(encoding="utf-8"))
    doc["complete"] = False
    (landing / "2026-11-19/batch.json").write_text(json.dumps(doc), encoding="utf-8")
    try:
        r = run_night(landing, "2026-11-20", tmp_path / "out", write_sheets=False)
    except BatchError:
        return
    assert r.run["status"] != "ok", r.run["leads"]
