"""Score a pipeline run against a simulator truth file (``wastetrack eval``).

Leads are matched to true events one-to-one: same (normalised) vehicle, same
kind, time intervals overlapping once each is widened by ``TOLERANCE`` (30
min), greedily by time distance (|Δstart| + |Δend|). A lead of the wrong kind
is therefore a false positive and leaves its event a false negative. On the
matched pairs the evaluator checks routing (primary liaison and county),
cross-border flags and origin trace-back. Reports are scored separately:
``explained`` reports must sit in ``report_ids`` of a lead of a true vehicle
(``vehicle_ids``: every truck that dumped at that spot in the report's window),
``report_trace`` reports need a report_trace lead whose first candidate is the
true vehicle, decoys must be listed untraced in ``run.json``.

Conventions: a kind with no events and no leads scores 1 (nothing to find,
nothing wrongly found); a date whose output is missing counts as empty.

Diagnostics for the detector's engineers: every missed event carries the
simulator's adversarial ``features`` (``sensor_stuck``-like faults, drift,
stops around a dump, …); every false positive carries the truth haul it sits on
(kind, features) and the adversarial instances around it (load-sensor flaps,
GPS drift, silences); ``by_feature`` gives recall per feature and false
positives per feature; matched leads are also checked for *where*
(``location``: within ``LOCATION_TOLERANCE_M`` of the true unloading).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd

TOLERANCE_S = 30 * 60
#: a matched lead (other than track_gap, whose place is an estimate) this close to the truth is well placed
LOCATION_TOLERANCE_M = 300.0
#: adversarial instances this close in time to a false positive are listed as its context
CONTEXT_S = 10 * 60
EVENT_KINDS = ("illegal_dump", "diverted", "unmanifested", "track_gap")


def normalise_plate(v: object) -> str:
    return "".join(str(v or "").replace("·", "").replace("•", "").split()).upper()


def _ts(v: object) -> float | None:
    if v in (None, ""):
        return None
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError):
        return None
    if t.tzinfo is None:
        t = t.tz_localize("Asia/Shanghai")
    return t.timestamp()


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def _acc(correct: int, n: int) -> dict:
    return {"n": n, "correct": correct, "accuracy": round(correct / n, 4) if n else None}


def read_leads(out_dir: Path, day: str) -> tuple[list[dict], dict | None, bool]:
    """Lead properties (with lon/lat) and run.json of one date; third item False if no leads file."""
    ddir = out_dir / day
    leads_path, run_path = ddir / "leads.geojson", ddir / "run.json"
    leads: list[dict] = []
    found = leads_path.exists()
    if found:
        doc = json.loads(leads_path.read_text(encoding="utf-8"))
        for f in doc.get("features", []) or []:
            props = dict(f.get("properties") or {})
            geom = f.get("geometry") or {}
            if geom.get("type") == "Point":
                props["_lon"], props["_lat"] = geom["coordinates"][:2]
            props["_date"] = day
            leads.append(props)
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.exists() else None
    return leads, run, found


def match(leads: list[dict], events: list[dict], tolerance_s: float = TOLERANCE_S) -> list[tuple[int, int]]:
    """One-to-one (lead index, event index) pairs: same vehicle and kind, overlapping within tolerance."""
    pairs = []
    for i, lead in enumerate(leads):
        ls, le = _ts(lead.get("start")), _ts(lead.get("end"))
        if ls is None:
            continue
        le = ls if le is None else le
        lv = normalise_plate(lead.get("vehicle_id"))
        for j, ev in enumerate(events):
            if ev["kind"] != lead.get("kind") or normalise_plate(ev["vehicle_id"]) != lv:
                continue
            es, ee = _ts(ev["start"]), _ts(ev["end"])
            if ls <= ee + tolerance_s and le >= es - tolerance_s:
                pairs.append((abs(ls - es) + abs(le - ee), i, j))
    pairs.sort()
    used_l, used_e, out = set(), set(), []
    for _, i, j in pairs:
        if i in used_l or j in used_e:
            continue
        used_l.add(i)
        used_e.add(j)
        out.append((i, j))
    return out


def _dist_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(min(1.0, math.sqrt(a)))


def _fp_context(truth: dict, lead: dict) -> dict:
    """What the simulator did around a false positive: the truth haul under it, adversarial instances."""
    ls, le = _ts(lead.get("start")), _ts(lead.get("end"))
    if ls is None:
        return {"haul_kind": "", "haul_features": [], "haul_event_id": "", "context": []}
    le = ls if le is None else le
    vid = normalise_plate(lead.get("vehicle_id"))
    best, best_ov = None, -1.0
    for h in truth.get("hauls", []) or []:
        if normalise_plate(h["vehicle_id"]) != vid:
            continue
        a, b = _ts(h["load_start"]), _ts(h.get("end") or h["unload_end"])
        if a is None or b is None or a > le + 300 or b < ls - 300:
            continue
        ov = min(b, le) - max(a, ls)
        if ov > best_ov:
            best, best_ov = h, ov
    context = []
    adv = truth.get("adversarial", {}) or {}
    for key, label in (
        ("load_flaps", "load_flap"),
        ("gps_drift", "gps_drift"),
        ("empty_silences", "empty_silence"),
        ("dark_after_dump", "dark_after_dump"),
    ):
        for inst in adv.get(key, []) or []:
            if normalise_plate(inst["vehicle_id"]) != vid:
                continue
            a, b = _ts(inst["start"]), _ts(inst["end"])
            if a is not None and b is not None and a <= le + CONTEXT_S and b >= ls - CONTEXT_S:
                context.append(f"{label}_{inst['what']}" if label == "gps_drift" else label)
    for s in truth.get("legit_long_stops", []) or []:
        if normalise_plate(s["vehicle_id"]) != vid:
            continue
        a, b = _ts(s["start"]), _ts(s["end"])
        if a is not None and b is not None and a <= le and b >= ls:
            context.append(f"legit_stop_{s.get('kind', '')}")
    return {
        "haul_kind": best["kind"] if best else "",
        "haul_features": list(best.get("features", [])) if best else [],
        "haul_event_id": best.get("event_id", "") if best else "",
        "context": sorted(set(context)),
    }


def evaluate(truth_path: Path, out_dir: Path, dates: list[str] | None = None) -> dict:
    """Precision/recall/F1 per kind and overall, report tracing, routing, cross-border and origin accuracy."""
    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    out_dir = Path(out_dir)
    dates = list(dates or truth["dates"])
    leads: list[dict] = []
    runs: dict[str, dict | None] = {}
    missing = []
    for d in dates:
        got, run, found = read_leads(out_dir, d)
        leads += got
        runs[d] = run
        if not found:
            missing.append(d)
    events = [e for e in truth["events"] if e["date"] in dates]
    det_leads = [lead for lead in leads if lead.get("kind") != "report_trace"]
    pairs = match(det_leads, events)
    matched_l = {i for i, _ in pairs}
    matched_e = {j for _, j in pairs}

    per_kind = {}
    kinds = sorted(set(EVENT_KINDS) | {str(lead.get("kind")) for lead in det_leads})
    for k in kinds:
        tp = sum(1 for i, j in pairs if events[j]["kind"] == k)
        fp = sum(1 for i, lead in enumerate(det_leads) if lead.get("kind") == k and i not in matched_l)
        fn = sum(1 for j, e in enumerate(events) if e["kind"] == k and j not in matched_e)
        per_kind[k] = {
            "events": sum(1 for e in events if e["kind"] == k),
            "leads": sum(1 for lead in det_leads if lead.get("kind") == k),
            **_prf(tp, fp, fn),
        }
    overall = {
        "events": len(events),
        "leads": len(det_leads),
        **_prf(len(pairs), len(det_leads) - len(pairs), len(events) - len(pairs)),
    }

    # diagnostics: missed events that a lead of another kind covered
    confusions = []
    for j, e in enumerate(events):
        if j in matched_e:
            continue
        es, ee = _ts(e["start"]), _ts(e["end"])
        for i, lead in enumerate(det_leads):
            ls, le = _ts(lead.get("start")), _ts(lead.get("end"))
            if (
                i not in matched_l
                and ls is not None
                and normalise_plate(lead.get("vehicle_id")) == normalise_plate(e["vehicle_id"])
                and ls <= ee + TOLERANCE_S
                and (le or ls) >= es - TOLERANCE_S
            ):
                confusions.append(
                    {
                        "event_id": e["event_id"],
                        "true_kind": e["kind"],
                        "lead_id": lead.get("lead_id"),
                        "lead_kind": lead.get("kind"),
                    }
                )

    # diagnostics: false positives sitting on a legit long stop (park, fuel, waiting) of the same truck
    stops_by_vehicle: dict[str, list[tuple[float, float, str]]] = {}
    for s in truth.get("legit_long_stops", []):
        a, b = _ts(s["start"]), _ts(s["end"])
        if a is not None and b is not None:
            stops_by_vehicle.setdefault(normalise_plate(s["vehicle_id"]), []).append(
                (a, b, s.get("kind", ""))
            )
    fp_on_stops = []
    for i, lead in enumerate(det_leads):
        ls, le = _ts(lead.get("start")), _ts(lead.get("end"))
        if i in matched_l or ls is None:
            continue
        le = ls if le is None else le
        for a, b, kind in stops_by_vehicle.get(normalise_plate(lead.get("vehicle_id")), []):
            if ls <= b and le >= a:
                fp_on_stops.append(
                    {"lead_id": lead.get("lead_id"), "lead_kind": lead.get("kind"), "stop_kind": kind}
                )
                break

    routing_ok = county_ok = both = xb_ok = origin_ok = 0
    loc_n = loc_ok = 0
    mislocated = []
    for i, j in pairs:
        lead, e = det_leads[i], events[j]
        if e["kind"] != "track_gap" and "_lon" in lead and e.get("lon") is not None:
            d = _dist_m(float(lead["_lon"]), float(lead["_lat"]), float(e["lon"]), float(e["lat"]))
            loc_n += 1
            if d <= LOCATION_TOLERANCE_M:
                loc_ok += 1
            else:
                mislocated.append(
                    {
                        "event_id": e["event_id"],
                        "lead_id": lead.get("lead_id"),
                        "kind": e["kind"],
                        "vehicle_id": e["vehicle_id"],
                        "distance_m": round(d),
                        "lead_start": lead.get("start"),
                        "event_start": e["start"],
                        "features": list(e.get("features", [])),
                    }
                )
    for i, j in pairs:
        lead, e = det_leads[i], events[j]
        r = str(lead.get("primary_liaison_id", "")) == e["primary_liaison_id"]
        c = str(lead.get("county_adcode", "")) == e["county_adcode"]
        routing_ok += r
        county_ok += c
        both += r and c
        xb_ok += bool(lead.get("cross_border")) == bool(e["cross_border"])
        origin_ok += str(lead.get("origin_site_id", "")) == e["origin_site_id"]

    # reports
    truth_reports = [r for r in truth["reports"] if r["date"] in dates]
    rep_res = {"explained": [0, 0], "report_trace": [0, 0], "untraced": [0, 0]}
    wrong_reports = []
    for r in truth_reports:
        exp = r["expected"]
        rid, vid = r["report_id"], normalise_plate(r["vehicle_id"])
        if exp == "explained":  # any of the trucks that dumped there in the window explains it
            vids = {normalise_plate(v) for v in r.get("vehicle_ids") or [r["vehicle_id"]]}
            ok = any(
                rid in (lead.get("report_ids") or []) and normalise_plate(lead.get("vehicle_id")) in vids
                for lead in leads
            )
        elif exp == "report_trace":
            ok = any(
                lead.get("kind") == "report_trace"
                and rid in (lead.get("report_ids") or [])
                and lead.get("candidates")
                and normalise_plate(lead["candidates"][0]) == vid
                for lead in leads
            )
        else:
            run = runs.get(r["date"]) or {}
            listed = {
                u.get("report_id") for u in run.get("untraced_reports", []) or [] if isinstance(u, dict)
            }
            in_lead = any(rid in (lead.get("report_ids") or []) for lead in leads)
            ok = rid in listed and not in_lead
        rep_res[exp][0] += int(ok)
        rep_res[exp][1] += 1
        if not ok:
            wrong_reports.append({"report_id": rid, "expected": exp, "vehicle_id": r["vehicle_id"]})
    reports = {k: _acc(c, n) for k, (c, n) in rep_res.items()}
    reports["overall"] = _acc(sum(c for c, _ in rep_res.values()), sum(n for _, n in rep_res.values()))

    # per adversarial feature: recall of the events that have it, false positives on hauls that have it
    fps = [(lead, _fp_context(truth, lead)) for i, lead in enumerate(det_leads) if i not in matched_l]
    feat_ev: Counter = Counter()
    feat_tp: Counter = Counter()
    for j, e in enumerate(events):
        for f in e.get("features", []) or []:
            feat_ev[f] += 1
            feat_tp[f] += j in matched_e
    feat_fp: Counter = Counter()
    for _, ctx in fps:
        for f in set(ctx["haul_features"]) | set(ctx["context"]):
            feat_fp[f] += 1
    by_feature = {
        f: {
            "events": feat_ev[f],
            "detected": feat_tp[f],
            "recall": round(feat_tp[f] / feat_ev[f], 4) if feat_ev[f] else None,
            "false_positives": feat_fp[f],
        }
        for f in sorted(set(feat_ev) | set(feat_fp))
    }
    confused = {c["event_id"]: c["lead_kind"] for c in confusions}

    n = len(pairs)
    return {
        "dates": dates,
        "missing_dates": missing,
        "detection": {"per_kind": per_kind, "overall": overall},
        "reports": reports,
        "routing": {
            "n": n,
            "liaison_correct": routing_ok,
            "county_correct": county_ok,
            "both_correct": both,
            "accuracy": round(both / n, 4) if n else None,
        },
        "cross_border": _acc(xb_ok, n),
        "origin": _acc(origin_ok, n),
        "location": {**_acc(loc_ok, loc_n), "tolerance_m": LOCATION_TOLERANCE_M},
        "mislocated": mislocated,
        "by_feature": by_feature,
        "false_negatives": [
            {
                "event_id": events[j]["event_id"],
                "kind": events[j]["kind"],
                "subkind": events[j].get("subkind", ""),
                "vehicle_id": events[j]["vehicle_id"],
                "start": events[j]["start"],
                "end": events[j]["end"],
                "features": list(events[j].get("features", []) or []),
                "lead_kind": confused.get(events[j]["event_id"], ""),
            }
            for j in range(len(events))
            if j not in matched_e
        ],
        "false_positives": [
            {
                "lead_id": lead.get("lead_id"),
                "kind": lead.get("kind"),
                "vehicle_id": lead.get("vehicle_id"),
                "start": lead.get("start"),
                "end": lead.get("end"),
                **ctx,
            }
            for lead, ctx in fps
        ],
        "confusions": confusions,
        "fp_on_legit_stops": fp_on_stops,
        "wrong_reports": wrong_reports,
    }


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells[1:]
    ]
    return out


def format_report(result: dict) -> str:
    """A plain-text summary: detection table, report tracing, routing, cross-border, misses."""
    lines = [f"wastetrack evaluation — dates {', '.join(result['dates'])}"]
    if result.get("missing_dates"):
        lines.append(f"missing outputs (scored as empty): {', '.join(result['missing_dates'])}")
    lines.append("")
    det = result["detection"]
    rows = [
        [k, v["events"], v["leads"], v["tp"], v["fp"], v["fn"], v["precision"], v["recall"], v["f1"]]
        for k, v in det["per_kind"].items()
    ]
    o = det["overall"]
    rows.append(
        ["OVERALL", o["events"], o["leads"], o["tp"], o["fp"], o["fn"], o["precision"], o["recall"], o["f1"]]
    )
    lines += _table(["kind", "events", "leads", "tp", "fp", "fn", "precision", "recall", "f1"], rows)
    lines.append("")
    rows = [[k, v["n"], v["correct"], v["accuracy"]] for k, v in result["reports"].items()]
    lines += _table(["reports", "n", "correct", "accuracy"], rows)
    lines.append("")
    r = result["routing"]
    rows = [
        ["routing (liaison+county)", r["n"], r["both_correct"], r["accuracy"]],
        [
            "  primary_liaison_id",
            r["n"],
            r["liaison_correct"],
            r["liaison_correct"] / r["n"] if r["n"] else None,
        ],
        ["  county_adcode", r["n"], r["county_correct"], r["county_correct"] / r["n"] if r["n"] else None],
        ["cross_border", *[result["cross_border"][k] for k in ("n", "correct", "accuracy")]],
        ["origin_site_id", *[result["origin"][k] for k in ("n", "correct", "accuracy")]],
    ]
    if "location" in result:
        loc = result["location"]
        rows.append([f"location (≤{loc['tolerance_m']:.0f} m)", loc["n"], loc["correct"], loc["accuracy"]])
    lines += _table(["matched leads", "n", "correct", "accuracy"], rows)
    if result.get("by_feature"):
        lines += ["", "by adversarial feature (events with it, detected, recall; false positives on it):"]
        rows = [
            [f, v["events"], v["detected"], v["recall"], v["false_positives"]]
            for f, v in result["by_feature"].items()
        ]
        lines += _table(["feature", "events", "detected", "recall", "fp"], rows)
    if result["false_negatives"]:
        lines += ["", "missed events:"]
        lines += [
            f"  {e['event_id']}  {e['kind']}/{e['subkind'] or '-'}  {e['vehicle_id']}  "
            f"{e['start']} → {e['end']}"
            + (f"  [{', '.join(e['features'])}]" if e.get("features") else "")
            + (f"  (lead: {e['lead_kind']})" if e.get("lead_kind") else "")
            for e in result["false_negatives"]
        ]
    if result.get("mislocated"):
        lines += ["", f"matched but mislocated (> {result['location']['tolerance_m']:.0f} m):"]
        lines += [
            f"  {m['event_id']}  {m['kind']}  {m['vehicle_id']}  {m['distance_m']} m  "
            f"lead {m['lead_start']} vs event {m['event_start']}"
            + (f"  [{', '.join(m['features'])}]" if m["features"] else "")
            for m in result["mislocated"]
        ]
    if result["confusions"]:
        lines += ["", "kind confusions (event covered by a lead of another kind):"]
        lines += [
            f"  {c['event_id']} {c['true_kind']} ← {c['lead_id']} {c['lead_kind']}"
            for c in result["confusions"]
        ]
    if result.get("fp_on_legit_stops"):
        lines += [
            "",
            f"false positives on legit long stops (parks, fuel, waits): {len(result['fp_on_legit_stops'])}",
        ]
        lines += [
            f"  {f['lead_id']}  {f['lead_kind']} on {f['stop_kind']}"
            for f in result["fp_on_legit_stops"][:30]
        ]
    if result["false_positives"]:
        lines += ["", f"false positives: {len(result['false_positives'])}"]
        lines += [
            f"  {f['lead_id']}  {f['kind']}  {f['vehicle_id']}  {f['start']} → {f['end']}"
            + (f"  on {f['haul_kind']} haul" if f.get("haul_kind") else "")
            + (f" {f['haul_event_id']}" if f.get("haul_event_id") else "")
            + (f"  [{', '.join(f['haul_features'])}]" if f.get("haul_features") else "")
            + (f"  near: {', '.join(f['context'])}" if f.get("context") else "")
            for f in result["false_positives"][:60]
        ]
    if result["wrong_reports"]:
        lines += ["", "reports not handled as expected:"]
        lines += [
            f"  {w['report_id']}  expected {w['expected']}  {w['vehicle_id']}"
            for w in result["wrong_reports"]
        ]
    return "\n".join(lines) + "\n"
