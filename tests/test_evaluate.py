"""The strict evaluator: its matching rules, its scores, and its refusal of a run that is not there."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from wastetrack.cli import main
from wastetrack.evaluate import LENIENT, STRICT, MissingRunError, evaluate, format_report, match, normalise_plate
from wastetrack.simulate import simulate


def _write_run(
    out: Path, dates: list[str], leads_by_date: dict[str, list[dict]], untraced: dict[str, list[dict]]
) -> None:
    for day in dates:
        d = out / day
        d.mkdir(parents=True, exist_ok=True)
        feats = []
        for p in leads_by_date.get(day, []):
            props = {k: v for k, v in p.items() if not k.startswith("_")}
            xy = [p.get("_lon", 121.3), p.get("_lat", 31.1)]
            feats.append({"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": xy}})
        (d / "leads.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        run = {"date": day, "status": "ok", "untraced_reports": untraced.get(day, [])}
        (d / "run.json").write_text(json.dumps(run))


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    simulate(root / "landing", root / "truth.json", seed=11, days=2, trucks=10)
    return root / "truth.json"


def _lead_of(e: dict, i: int) -> dict:
    return {
        "lead_id": f"L{i}",
        "kind": e["kind"],
        "vehicle_id": e["vehicle_id"].replace("沪", "沪 ", 1),  # another spelling of the same plate
        "start": e["start"],
        "end": e["end"],
        "_lon": e["lon"],
        "_lat": e["lat"],
        "county_adcode": e["county_adcode"],
        "province_adcode": e["province_adcode"],
        "cross_border": e["cross_border"],
        "origin_site_id": e["origin_site_id"],
        "primary_liaison_id": e["primary_liaison_id"],
        "manifest_id": e["manifest_id"],
        "report_ids": list(e["report_ids"]),
        "candidates": [],
        "score": 0.9,
    }


def _perfect(truth: dict) -> tuple[dict, dict]:
    """What a perfect pipeline writes: each event on its report night, reports explained or traced,
    decoys listed untraced."""
    leads: dict[str, list[dict]] = {}
    events = {e["event_id"]: e for e in truth["events"]}
    for i, e in enumerate(truth["events"]):
        if not e["decidable"]:
            continue
        if e["kind"] == "report_trace":
            r = next(r for r in truth["reports"] if r["event_id"] == e["event_id"])
            lead = {**_lead_of(e, i), "report_ids": [r["report_id"]], "candidates": [e["vehicle_id"], "沪A00000"]}
            leads.setdefault(r["date"], []).append(lead)
            continue
        lead = _lead_of(e, i)
        # a report of a later day cannot be listed by the night that reports the event
        mine = [r for r in truth["reports"] if r["event_id"] == e["event_id"]]
        lead["report_ids"] = [r["report_id"] for r in mine if r["date"] == e["report_night"]]
        leads.setdefault(e["report_night"], []).append(lead)
    untraced: dict[str, list[dict]] = {}
    for r in truth["reports"]:
        if r["expected"] == "untraced":
            untraced.setdefault(r["date"], []).append({"report_id": r["report_id"], "reason": "nobody near"})
        elif r["expected"] == "explained" and r["date"] != events[r["event_id"]]["report_night"]:
            lid = f"L{truth['events'].index(events[r['event_id']])}"
            reason = f"explained by lead {lid} reported on an earlier night"
            untraced.setdefault(r["date"], []).append({"report_id": r["report_id"], "reason": reason})
    return leads, untraced


def test_perfect_run_scores_one(truth_file, tmp_path):
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    leads, untraced = _perfect(truth)
    _write_run(tmp_path, truth["dates"], leads, untraced)
    res = evaluate(truth_file, tmp_path)
    scored = [e for e in truth["events"] if e["decidable"]]
    assert res["detection"]["overall"]["f1"] == 1.0
    assert res["detection"]["overall"]["tp"] == len(scored) > 0
    assert res["reports"]["top1"]["accuracy"] == 1.0 and res["reports"]["decoys_rejected"]["accuracy"] == 1.0
    assert res["routing"]["accuracy"] == 1.0 and res["cross_border"]["accuracy"] == 1.0
    assert res["manifest_id"]["accuracy"] == 1.0 and res["night"]["wrong"] == 0
    assert res["kind_agreement"]["accuracy"] == 1.0 and not res["reports"]["unaccounted"]
    assert res["reliability"][-1]["share_true"] == 1.0
    text = format_report(res)
    assert "OVERALL" in text and "strict" in text and "reliability" in text


def test_empty_run_scores_zero_recall(truth_file, tmp_path):
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    _write_run(tmp_path, truth["dates"], {}, {})
    res = evaluate(truth_file, tmp_path)
    assert res["detection"]["overall"]["recall"] == 0.0
    assert res["detection"]["overall"]["fn"] == sum(e["decidable"] for e in truth["events"])
    assert res["reports"]["top1"]["accuracy"] == 0.0
    assert res["reports"]["unaccounted"]  # every report must end in a lead or the untraced list


def test_a_directory_without_runs_is_refused(truth_file, tmp_path, capsys):
    with pytest.raises(MissingRunError):
        evaluate(truth_file, tmp_path)
    assert main(["eval", "--truth", str(truth_file), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(tmp_path) in err and len(err.splitlines()) == 1
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    _write_run(tmp_path, truth["dates"][:1], {}, {})  # one night run, the other missing
    assert main(["eval", "--truth", str(truth_file), "--out", str(tmp_path)]) == 2
    assert truth["dates"][1] in capsys.readouterr().err
    assert main(["eval", "--truth", str(truth_file), "--out", str(tmp_path), "--date", truth["dates"][0]]) == 0


def _event(**kw) -> dict:
    base = {
        "event_id": "EV-1",
        "kind": "illegal_dump",
        "vehicle_id": "沪AD1234",
        "start": "2026-11-20T01:00:00+08:00",
        "end": "2026-11-20T01:10:00+08:00",
        "lon": 121.3,
        "lat": 31.1,
        "spots": [[121.3, 31.1]],
    }
    return {**base, **kw}


def _lead(**kw) -> dict:
    base = {
        "lead_id": "L1",
        "kind": "illegal_dump",
        "vehicle_id": "沪A·D1234",
        "start": "2026-11-20T01:02:00+08:00",
        "end": "2026-11-20T01:09:00+08:00",
        "_lon": 121.3,
        "_lat": 31.1,
    }
    return {**base, **kw}


def _east(m: float) -> float:
    """Longitude ``m`` metres east of 121.3 at 31.1N."""
    return 121.3 + m / (111_195.0 * math.cos(math.radians(31.1)))


def test_strict_time_rule_is_ten_minutes():
    ev = [_event()]
    assert match([_lead(start="2026-11-20T01:19:00+08:00", end="2026-11-20T01:25:00+08:00")], ev) == [(0, 0)]
    assert match([_lead(start="2026-11-20T01:21:00+08:00", end="2026-11-20T01:25:00+08:00")], ev) == []
    assert match([_lead(start="2026-11-20T00:40:00+08:00", end="2026-11-20T00:49:00+08:00")], ev) == []
    # the old rules would have taken the 21-minute lead
    late = _lead(start="2026-11-20T01:21:00+08:00", end="2026-11-20T01:25:00+08:00")
    assert match([late], ev, LENIENT) == [(0, 0)]
    assert normalise_plate(" 沪A D1234 ") == "沪AD1234"


def test_strict_place_rule_is_300_m_from_any_spot():
    ev = [_event()]
    assert match([_lead(_lon=_east(280))], ev) == [(0, 0)]
    assert match([_lead(_lon=_east(320))], ev) == []
    split = [_event(spots=[[121.3, 31.1], [_east(600), 31.1]])]
    assert match([_lead(_lon=_east(620))], split) == [(0, 0)]  # at the second spot of a split dump
    assert match([_lead(_lon=_east(320))], ev, LENIENT) == [(0, 0)]


def test_matching_is_one_to_one_and_kind_agnostic():
    ev = [_event()]
    assert match([_lead(), _lead(lead_id="L2")], ev) == [(0, 0)]
    gap = _lead(kind="track_gap")
    assert match([gap], ev) == [(0, 0)]
    assert match([gap], ev, LENIENT) == []
    assert match([_lead(vehicle_id="沪AD9999")], ev) == []
    # two events, two leads: the assignment finds both even when greedy would not
    ev2 = [_event(), _event(event_id="EV-2", start="2026-11-20T01:12:00+08:00", end="2026-11-20T01:20:00+08:00")]
    near_both = _lead(start="2026-11-20T01:08:00+08:00", end="2026-11-20T01:12:00+08:00")
    only_first = _lead(lead_id="L2", start="2026-11-20T00:55:00+08:00", end="2026-11-20T00:58:00+08:00")
    assert sorted(match([near_both, only_first], ev2)) == [(0, 1), (1, 0)]


def _one_event_truth(tmp_path: Path, events: list[dict], reports: list[dict] | None = None) -> Path:
    truth = {
        "dates": ["2026-11-20"],
        "profile": "standard",
        "seed": 0,
        "events": [
            {
                "date": "2026-11-20",
                "report_night": "2026-11-20",
                "decidable": True,
                "sensors": True,
                "cross_border": False,
                "county_adcode": "310118",
                "primary_liaison_id": "LS1",
                "origin_site_id": "GD1",
                "manifest_id": "",
                "report_ids": [],
                "features": [],
                **e,
            }
            for e in events
        ],
        "reports": reports or [],
        "trucks": [{"vehicle_id": "沪AD1234", "sensors": True}, {"vehicle_id": "沪AD5678", "sensors": False}],
    }
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth, ensure_ascii=False), encoding="utf-8")
    return path


def test_manifest_night_and_routing_are_scored_on_matches(tmp_path):
    truth = _one_event_truth(tmp_path, [_event(manifest_id="SH2026112000001")])
    lead = _lead(manifest_id="", primary_liaison_id="LS1", county_adcode="310118", origin_site_id="GD1", score=0.7)
    _write_run(tmp_path / "out", ["2026-11-20"], {"2026-11-20": [lead]}, {})
    res = evaluate(truth, tmp_path / "out")
    assert res["detection"]["overall"]["tp"] == 1
    assert res["manifest_id"]["accuracy"] == 0.0 and res["manifest_id"]["with_manifest"]["n"] == 1
    assert res["routing"]["accuracy"] == 1.0 and res["night"]["wrong"] == 0
    assert next(b for b in res["reliability"] if b["bin"] == "0.7-0.8")["share_true"] == 1.0


def test_the_wrong_night_is_counted(tmp_path):
    # a sensorless dump at 23:50 is decided by the next loading after midnight: the next night reports it
    ev = _event(
        start="2026-11-20T23:40:00+08:00", end="2026-11-20T23:50:00+08:00", vehicle_id="沪AD5678", sensors=False
    )
    truth = _one_event_truth(tmp_path, [ev])
    doc = json.loads(truth.read_text(encoding="utf-8"))
    doc["dates"] = ["2026-11-20", "2026-11-21"]
    doc["events"][0]["report_night"] = "2026-11-21"
    truth.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    lead = _lead(vehicle_id="沪AD5678", start=ev["start"], end=ev["end"])
    _write_run(tmp_path / "out", doc["dates"], {"2026-11-20": [lead]}, {})
    res = evaluate(truth, tmp_path / "out")
    assert res["detection"]["overall"]["tp"] == 1 and res["night"]["wrong"] == 1
    assert res["night"]["cases"][0]["expected"] == "2026-11-21"
    assert res["breakdown"]["sensorless"]["recall"] == 1.0 and res["breakdown"]["sensors"]["events"] == 0


def test_reports_rank_the_culprit_and_reject_decoys(tmp_path):
    events = [_event(kind="report_trace", event_id="EV-R", report_night="2026-11-20")]
    reports = [
        {"report_id": "R1", "date": "2026-11-20", "event_id": "EV-R", "event_ids": ["EV-R"],
         "vehicle_id": "沪AD1234", "vehicle_ids": ["沪AD1234"], "expected": "report_trace", "days_late": 0},
        {"report_id": "R2", "date": "2026-11-20", "event_id": None, "event_ids": [], "vehicle_id": "",
         "vehicle_ids": [], "expected": "untraced", "days_late": None},
    ]
    truth = _one_event_truth(tmp_path, events, reports)
    second = _lead(lead_id="RT1", kind="report_trace", vehicle_id="沪AD9999", report_ids=["R1"],
                   candidates=["沪AD9999", "沪AD1234"], start="2026-11-20T08:00:00+08:00")
    decoy = _lead(lead_id="RT2", kind="report_trace", vehicle_id="沪AD5678", report_ids=["R2"],
                  candidates=["沪AD5678"], start="2026-11-20T08:00:00+08:00")
    _write_run(tmp_path / "out", ["2026-11-20"], {"2026-11-20": [second, decoy]}, {})
    res = evaluate(truth, tmp_path / "out")
    assert res["reports"]["top1"]["accuracy"] == 0.0 and res["reports"]["top3"]["accuracy"] == 1.0
    assert res["reports"]["decoys_rejected"]["accuracy"] == 0.0
    assert res["detection"]["overall"]["tp"] == 0 and res["detection"]["overall"]["fp"] == 2
    # the culprit first: the report_trace lead is a hit (place and time are the report's, not checked)
    first = {**second, "candidates": ["沪AD1234", "沪AD9999"], "vehicle_id": "沪AD1234"}
    _write_run(tmp_path / "out", ["2026-11-20"], {"2026-11-20": [first]}, {"2026-11-20": [{"report_id": "R2"}]})
    res = evaluate(truth, tmp_path / "out")
    assert res["reports"]["top1"]["accuracy"] == 1.0 and res["reports"]["decoys_rejected"]["accuracy"] == 1.0
    assert res["detection"]["overall"]["f1"] == 1.0


def test_a_late_report_is_credited_through_the_earlier_lead(tmp_path):
    events = [_event(report_ids=["R1"])]
    reports = [{"report_id": "R1", "date": "2026-11-21", "event_id": "EV-1", "event_ids": ["EV-1"],
                "vehicle_id": "沪AD1234", "vehicle_ids": ["沪AD1234"], "expected": "explained", "days_late": 1}]
    truth = _one_event_truth(tmp_path, events, reports)
    doc = json.loads(truth.read_text(encoding="utf-8"))
    doc["dates"] = ["2026-11-20", "2026-11-21"]
    truth.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    lead = _lead(lead_id="ID-20261120-abc123")
    reason = {"report_id": "R1", "reason": "explained by lead ID-20261120-abc123 reported on an earlier night"}
    _write_run(tmp_path / "out", doc["dates"], {"2026-11-20": [lead]}, {"2026-11-21": [reason]})
    res = evaluate(truth, tmp_path / "out")
    assert res["reports"]["late_top1"]["accuracy"] == 1.0 and res["detection"]["overall"]["f1"] == 1.0


def test_undecidable_events_are_neither_hits_nor_misses(tmp_path):
    truth = _one_event_truth(tmp_path, [_event(decidable=False, report_night=None)])
    _write_run(tmp_path / "out", ["2026-11-20"], {"2026-11-20": [_lead()]}, {})
    res = evaluate(truth, tmp_path / "out")
    o = res["detection"]["overall"]
    assert (o["tp"], o["fp"], o["fn"]) == (0, 0, 0) and res["neutral_leads"] == 1


def test_misses_and_false_positives_carry_features(truth_file, tmp_path):
    """A missed event lists its adversarial features and its near miss; a false positive the haul under it."""
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    leads, untraced = _perfect(truth)
    day = truth["dates"][0]
    legit = next(h for h in truth["hauls"] if h["kind"] == "legit" and h["unload_end"][:10] == day)
    leads.setdefault(day, []).append(
        {
            "lead_id": "FP1",
            "kind": "illegal_dump",
            "vehicle_id": legit["vehicle_id"],
            "start": legit["unload_start"],
            "end": legit["unload_end"],
            "_lon": legit["unload_lon"],
            "_lat": legit["unload_lat"],
            "report_ids": [],
            "candidates": [],
            "score": 0.3,
        }
    )
    moved = next(lead for d in truth["dates"] for lead in leads.get(d, []) if lead["kind"] == "illegal_dump")
    moved_event = next(e for e in truth["events"] if e["start"] == moved["start"] and e["kind"] == "illegal_dump")
    moved["_lon"] = moved["_lon"] + 0.01  # about 950 m east: found by the old rules, not by the strict ones
    _write_run(tmp_path, truth["dates"], leads, untraced)
    res = evaluate(truth_file, tmp_path)
    fp = next(f for f in res["false_positives"] if f["lead_id"] == "FP1")
    assert fp["haul_kind"] == "legit" and fp["haul_features"] == legit["features"]
    fn = next(e for e in res["false_negatives"] if e["event_id"] == moved_event["event_id"])
    assert fn["features"] == moved_event["features"] and "place" in fn["near_miss"]
    for f in moved_event["features"]:
        assert res["by_feature"][f]["events"] >= 1
    assert res["reliability"][3]["leads"] == 1 and res["reliability"][3]["share_true"] == 0.0
    text = format_report(res)
    assert "FP1" in text and "on legit haul" in text and "by adversarial feature" in text
    lenient = evaluate(truth_file, tmp_path, lenient=True)
    assert lenient["rules"]["name"] == LENIENT.name != STRICT.name
    assert moved_event["event_id"] not in {e["event_id"] for e in lenient["false_negatives"]}
