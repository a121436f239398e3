"""The evaluator scores a perfect run 1 and an empty run 0 recall."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wastetrack.evaluate import evaluate, format_report, match, normalise_plate
from wastetrack.simulate import simulate


def _write_run(
    out: Path, truth: dict, leads_by_date: dict[str, list[dict]], untraced: dict[str, list[str]]
) -> None:
    for day in truth["dates"]:
        d = out / day
        d.mkdir(parents=True, exist_ok=True)
        feats = [
            {"type": "Feature", "properties": p, "geometry": {"type": "Point", "coordinates": [121.3, 31.1]}}
            for p in leads_by_date.get(day, [])
        ]
        (d / "leads.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        run = {
            "date": day,
            "status": "ok",
            "untraced_reports": [{"report_id": r, "reason": "none"} for r in untraced.get(day, [])],
        }
        (d / "run.json").write_text(json.dumps(run))


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    simulate(root / "landing", root / "truth.json", seed=11, days=2, trucks=10)
    return root / "truth.json"


def _perfect(truth: dict) -> tuple[dict, dict]:
    leads: dict[str, list[dict]] = {}
    for i, e in enumerate(truth["events"]):
        leads.setdefault(e["date"], []).append(
            {
                "lead_id": f"L{i}",
                "kind": e["kind"],
                "vehicle_id": e["vehicle_id"].replace("沪", "沪 ", 0),
                "start": e["start"],
                "end": e["end"],
                "county_adcode": e["county_adcode"],
                "province_adcode": e["province_adcode"],
                "cross_border": e["cross_border"],
                "origin_site_id": e["origin_site_id"],
                "primary_liaison_id": e["primary_liaison_id"],
                "report_ids": e["report_ids"],
                "candidates": [],
            }
        )
    untraced: dict[str, list[str]] = {}
    for r in truth["reports"]:
        if r["expected"] == "report_trace":
            leads.setdefault(r["date"], []).append(
                {
                    "lead_id": f"R{r['report_id']}",
                    "kind": "report_trace",
                    "vehicle_id": r["vehicle_id"],
                    "start": "",
                    "end": "",
                    "report_ids": [r["report_id"]],
                    "candidates": [r["vehicle_id"], "沪A00000"],
                }
            )
        elif r["expected"] == "untraced":
            untraced.setdefault(r["date"], []).append(r["report_id"])
    return leads, untraced


def test_perfect_run_scores_one(truth_file, tmp_path):
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    leads, untraced = _perfect(truth)
    _write_run(tmp_path, truth, leads, untraced)
    res = evaluate(truth_file, tmp_path)
    assert res["detection"]["overall"]["f1"] == 1.0
    assert res["detection"]["overall"]["tp"] == len(truth["events"]) > 0
    assert res["reports"]["overall"]["accuracy"] == 1.0
    assert res["routing"]["accuracy"] == 1.0 and res["cross_border"]["accuracy"] == 1.0
    text = format_report(res)
    assert "OVERALL" in text and "illegal_dump" in text


def test_empty_run_scores_zero_recall(truth_file, tmp_path):
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    _write_run(tmp_path, truth, {}, {})
    res = evaluate(truth_file, tmp_path)
    assert res["detection"]["overall"]["recall"] == 0.0
    assert res["detection"]["overall"]["fn"] == len(truth["events"])
    assert res["reports"]["explained"]["accuracy"] in (0.0, None)


def test_wrong_kind_is_fp_and_fn(truth_file, tmp_path):
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    leads, untraced = _perfect(truth)
    first_day = next(
        d for d in truth["dates"] if any(lead["kind"] == "illegal_dump" for lead in leads.get(d, []))
    )
    lead = next(lead for lead in leads[first_day] if lead["kind"] == "illegal_dump")
    lead["kind"] = "track_gap"
    _write_run(tmp_path, truth, leads, untraced)
    res = evaluate(truth_file, tmp_path)
    assert res["detection"]["per_kind"]["illegal_dump"]["fn"] == 1
    assert res["detection"]["per_kind"]["track_gap"]["fp"] == 1
    assert res["confusions"] and res["confusions"][0]["lead_kind"] == "track_gap"


def test_match_is_one_to_one_and_tolerant():
    ev = [
        {
            "kind": "illegal_dump",
            "vehicle_id": "沪AD1234",
            "start": "2026-11-20T01:00:00+08:00",
            "end": "2026-11-20T01:10:00+08:00",
        }
    ]
    near = {
        "kind": "illegal_dump",
        "vehicle_id": "沪A·D1234",
        "start": "2026-11-20T01:35:00+08:00",
        "end": "2026-11-20T01:40:00+08:00",
    }
    far = {**near, "start": "2026-11-20T01:45:00+08:00", "end": "2026-11-20T01:50:00+08:00"}
    assert match([near], ev) == [(0, 0)]
    assert match([far], ev) == []
    assert match([near, dict(near)], ev) == [(0, 0)]
    assert normalise_plate(" 沪A D1234 ") == "沪AD1234"


def test_misses_and_false_positives_carry_features(truth_file, tmp_path):
    """A missed event lists its adversarial features; a false positive the truth haul under it."""
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
            "report_ids": [],
            "candidates": [],
        }
    )
    dropped = next(lead for d in truth["dates"] for lead in leads.get(d, []) if lead["kind"] != "report_trace")
    dropped_event = next(e for e in truth["events"] if e["start"] == dropped["start"])
    for d in truth["dates"]:
        leads[d] = [lead for lead in leads.get(d, []) if lead is not dropped]
    _write_run(tmp_path, truth, leads, untraced)
    res = evaluate(truth_file, tmp_path)
    fp = next(f for f in res["false_positives"] if f["lead_id"] == "FP1")
    assert fp["haul_kind"] == "legit" and fp["haul_features"] == legit["features"]
    fn = next(e for e in res["false_negatives"] if e["event_id"] == dropped_event["event_id"])
    assert fn["features"] == dropped_event["features"]
    assert res["location"]["n"] >= 1 and res["location"]["accuracy"] is not None
    for f in dropped_event["features"]:
        assert res["by_feature"][f]["events"] >= 1
    text = format_report(res)
    assert "FP1" in text and "on legit haul" in text and "by adversarial feature" in text
