"""Score a pipeline run against a simulator truth file (``wastetrack eval``).

**Strict rules** (the default; those of the independent scorer we are judged by):

* A lead matches a truth event when it names the **same vehicle**, its time
  (start–end) overlaps the event's window widened by **±10 min**, and its point
  lies within **300 m** of where the event happened (any of the event's spots: a
  split dump has two; for a ``track_gap`` the truth's unloading point). The kind
  is *not* required to agree: a dump reported as a track gap is found, and
  ``kind_agreement`` says how often the kind was right.
* A ``report_trace`` lead matches the event of the report it traces when its top
  candidate is one of the report's culprits (time and place are the report's).
* Matching is **one-to-one** and maximal (fewest misses, then closest pairs): a
  second lead on one event is a false positive.
* Events no run of the scenario could decide (``decidable: false``: the
  evidence would come after the last batch) are not scored; a lead on one is
  neither a hit nor a false positive (``neutral``).

On the matched pairs it scores ``manifest_id`` (equal to the truth's, both
empty counting as equal), routing (primary liaison and county), cross-border
flag and origin, and **the night**: an event must be reported by the run of the
day it ended, unless deciding needs the next day's data (the truth's
``report_night``; a ``report_trace`` lead by the night of its report). Reports:
for every report with a culprit, is the culprit the top-1 / in the top-3 of
what the run said about it (a lead listing it, a ``report_trace`` lead's
candidates, or an untraced entry naming the earlier lead that explains it);
decoys (no culprit) must not end up in any lead. Breakdowns per kind, for trucks
with and without sensors, and for cross-border events; a reliability table
(lead score bins → share of leads that are true) for the calibrated model to come.

``lenient=True`` keeps the old rules for comparison (same kind, ±30 min, place
not checked, report_trace leads scored only as reports).

A run directory without the outputs of a date being scored is refused
(``MissingRunError``): scoring a missing night as empty would report a number
that means nothing.

Diagnostics for the detector's engineers: every missed event carries the
simulator's adversarial ``features`` and the nearest lead of its truck with why
it did not match (``near_miss``); every false positive the truth haul under it
and the adversarial instances around it; ``by_feature`` gives recall and false
positives per feature.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.values import normalise_plate

#: adversarial instances this close in time to a false positive are listed as its context
CONTEXT_S = 10 * 60
EVENT_KINDS = ("illegal_dump", "diverted", "unmanifested", "track_gap", "report_trace")
#: reliability table: lead scores in these bins
SCORE_BINS = tuple(round(0.1 * i, 1) for i in range(11))
_INFEASIBLE = 1e6


@dataclass(frozen=True)
class Rules:
    """How a lead may match an event."""

    name: str
    time_tolerance_s: float
    place_tolerance_m: float | None  # None: place not checked
    same_kind: bool
    trace_leads_match_events: bool  # report_trace leads compete for events (else scored as reports only)


STRICT = Rules("strict", 600.0, 300.0, same_kind=False, trace_leads_match_events=True)
LENIENT = Rules("lenient", 1800.0, None, same_kind=True, trace_leads_match_events=False)
#: kept for callers of the old module
TOLERANCE_S = STRICT.time_tolerance_s
LOCATION_TOLERANCE_M = STRICT.place_tolerance_m


class MissingRunError(FileNotFoundError):
    """The output directory has no run for a date being scored."""


def _ts(v: object) -> float | None:
    if v in (None, ""):
        return None
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError):
        return None
    if pd.isna(t):
        return None
    if t.tzinfo is None:
        t = t.tz_localize(TIMEZONE)
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


def _share(hit: int, n: int) -> dict:
    return {"n": n, "found": hit, "recall": round(hit / n, 4) if n else None}


def _dist_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(min(1.0, math.sqrt(a)))


# ---- reading a run ---------------------------------------------------------------------------------------


def read_leads(out_dir: Path, day: str) -> tuple[list[dict], dict | None, bool]:
    """Lead properties (with ``_lon``/``_lat`` and ``_date``) and run.json of one date; third item False if
    the date has no leads file."""
    ddir = Path(out_dir) / day
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


def check_runs(out_dir: Path, dates: list[str]) -> None:
    """Refuse (``MissingRunError``, one line naming the path) when a date has no ``leads.geojson``."""
    out_dir = Path(out_dir)
    missing = [d for d in dates if not (out_dir / d / "leads.geojson").is_file()]
    if not missing:
        return
    if len(missing) == len(dates):
        raise MissingRunError(
            f"no run output in {out_dir} for {', '.join(dates)} (expected <date>/leads.geojson there); "
            "run `wastetrack run` first"
        )
    raise MissingRunError(f"no run output for {', '.join(missing)}: {out_dir / missing[0] / 'leads.geojson'} missing")


# ---- matching --------------------------------------------------------------------------------------------


def _lead_window(lead: dict) -> tuple[float, float] | None:
    ls, le = _ts(lead.get("start")), _ts(lead.get("end"))
    if ls is None:
        return None
    return ls, (ls if le is None else le)


def _event_spots(ev: dict) -> list[tuple[float, float]]:
    spots = ev.get("spots") or []
    if spots:
        return [(float(a), float(b)) for a, b in spots]
    if ev.get("lon") is None:
        return []
    return [(float(ev["lon"]), float(ev["lat"]))]


def _place_gap(lead: dict, ev: dict) -> float | None:
    """Metres from the lead's point to the nearest of the event's spots (None: either has no place)."""
    if "_lon" not in lead:
        return None
    spots = _event_spots(ev)
    if not spots:
        return None
    return min(_dist_m(float(lead["_lon"]), float(lead["_lat"]), a, b) for a, b in spots)


def _time_gap(win: tuple[float, float], ev: dict) -> float:
    """Seconds between the lead's window and the event's (0 when they overlap)."""
    es, ee = _ts(ev["start"]), _ts(ev["end"])
    ls, le = win
    return max(0.0, es - le, ls - ee)


def _top(lead: dict) -> str:
    cands = lead.get("candidates") or []
    return normalise_plate(cands[0] if cands else lead.get("vehicle_id"))


def _pair_cost(lead: dict, ev: dict, rules: Rules, trace_events: dict[str, set[str]]) -> float | None:
    """Cost of matching ``lead`` to ``ev`` under ``rules`` (None: they may not match)."""
    if lead.get("kind") == "report_trace":
        if not rules.trace_leads_match_events or ev.get("event_id") not in trace_events.get(lead.get("lead_id"), set()):
            return None
        return 1.5 if _top(lead) == normalise_plate(ev["vehicle_id"]) else None
    if normalise_plate(lead.get("vehicle_id")) != normalise_plate(ev["vehicle_id"]):
        return None
    if rules.same_kind and lead.get("kind") != ev["kind"]:
        return None
    win = _lead_window(lead)
    if win is None:
        return None
    dt = _time_gap(win, ev)
    if dt > rules.time_tolerance_s:
        return None
    cost = (abs(win[0] - _ts(ev["start"])) + abs(win[1] - _ts(ev["end"]))) / max(rules.time_tolerance_s, 1.0)
    if rules.place_tolerance_m is not None:
        d = _place_gap(lead, ev)
        if d is None or d > rules.place_tolerance_m:
            return None
        cost += d / rules.place_tolerance_m
    return cost + (0.0 if lead.get("kind") == ev["kind"] else 0.5)


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Maximum one-to-one matching of feasible (finite) cells, cheapest among maximal ones."""
    if cost.size == 0 or not np.isfinite(cost).any():
        return []
    from scipy.optimize import linear_sum_assignment

    c = np.where(np.isfinite(cost), cost, _INFEASIBLE)
    rows, cols = linear_sum_assignment(c)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if np.isfinite(cost[i, j])]


def match(
    leads: list[dict],
    events: list[dict],
    rules: Rules = STRICT,
    trace_events: dict[str, set[str]] | None = None,
    tolerance_s: float | None = None,
) -> list[tuple[int, int]]:
    """One-to-one (lead index, event index) pairs under ``rules`` (``tolerance_s`` overrides the time rule).

    ``trace_events`` maps a report_trace lead's id to the truth events of the
    reports it lists (see ``evaluate``); without it report_trace leads match nothing.
    """
    if tolerance_s is not None:
        rules = replace(rules, time_tolerance_s=float(tolerance_s))
    trace_events = trace_events or {}
    by_vehicle: dict[str, tuple[list[int], list[int]]] = {}
    for i, lead in enumerate(leads):
        key = _top(lead) if lead.get("kind") == "report_trace" else normalise_plate(lead.get("vehicle_id"))
        by_vehicle.setdefault(key, ([], []))[0].append(i)
    for j, ev in enumerate(events):
        by_vehicle.setdefault(normalise_plate(ev["vehicle_id"]), ([], []))[1].append(j)
    out = []
    for li, ej in by_vehicle.values():
        if not li or not ej:
            continue
        cost = np.full((len(li), len(ej)), np.inf)
        for a, i in enumerate(li):
            for b, j in enumerate(ej):
                c = _pair_cost(leads[i], events[j], rules, trace_events)
                if c is not None:
                    cost[a, b] = c
        out += [(li[a], ej[b]) for a, b in _assign(cost)]
    return sorted(out)


# ---- context for diagnostics -------------------------------------------------------------------------------


def _fp_context(truth: dict, lead: dict) -> dict:
    """What the simulator did around a false positive: the truth haul under it, adversarial instances."""
    win = _lead_window(lead)
    if win is None:
        return {"haul_kind": "", "haul_features": [], "haul_event_id": "", "context": []}
    ls, le = win
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
        ("dead_zones", "dead_zone"),
    ):
        for inst in adv.get(key, []) or []:
            if normalise_plate(inst["vehicle_id"]) != vid:
                continue
            a, b = _ts(inst["start"]), _ts(inst["end"])
            if a is not None and b is not None and a <= le + CONTEXT_S and b >= ls - CONTEXT_S:
                if label == "gps_drift":
                    context.append(f"gps_drift_{inst['what']}")
                elif label == "dead_zone":
                    context.append(f"dead_zone_{inst['where']}")
                else:
                    context.append(label)
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


def _near_miss(ev: dict, leads: list[dict], matched_l: dict[int, int], events: list[dict], rules: Rules) -> str:
    """Why the nearest lead of the event's truck did not match it (empty: no lead of that truck near)."""
    vid = normalise_plate(ev["vehicle_id"])
    best: tuple[float, str] | None = None
    for i, lead in enumerate(leads):
        if lead.get("kind") == "report_trace" or normalise_plate(lead.get("vehicle_id")) != vid:
            continue
        win = _lead_window(lead)
        if win is None:
            continue
        dt = _time_gap(win, ev)
        if dt > 6 * 3600:
            continue
        d = _place_gap(lead, ev)
        why = []
        if dt > rules.time_tolerance_s:
            why.append(f"time {dt / 60:.0f} min off")
        if rules.place_tolerance_m is not None and (d is None or d > rules.place_tolerance_m):
            why.append("no place" if d is None else f"place {d:.0f} m off")
        if rules.same_kind and lead.get("kind") != ev["kind"]:
            why.append(f"kind {lead.get('kind')}")
        if i in matched_l:
            why.append(f"taken by {events[matched_l[i]]['event_id']}")
        text = f"{lead.get('lead_id')} {lead.get('kind')}: {', '.join(why) or 'unmatched'}"
        rank = dt / 600.0 + (d or 1e4) / 300.0
        if best is None or rank < best[0]:
            best = (rank, text)
    return best[1] if best else ""


# ---- the evaluation ----------------------------------------------------------------------------------------


def _lead_ids_in(text: str, known: set[str]) -> list[str]:
    return [t for t in re.findall(r"[A-Za-z0-9][A-Za-z0-9_.:-]{5,}", text or "") if t in known]


def _report_rankings(
    truth_reports: list[dict], leads: list[dict], runs: dict[str, dict | None]
) -> dict[str, list[str]]:
    """Per report id: the vehicles the run put forward for it, best first."""
    by_id = {str(lead.get("lead_id")): lead for lead in leads if lead.get("lead_id")}
    wanted = {r["report_id"] for r in truth_reports}
    ranking: dict[str, list[str]] = {rid: [] for rid in wanted}

    def add(rid: str, vids: list[str]) -> None:
        for v in vids:
            v = normalise_plate(v)
            if v and v not in ranking[rid]:
                ranking[rid].append(v)

    # direct evidence first: a detection lead that lists the report names its vehicle
    for lead in leads:
        for rid in lead.get("report_ids") or []:
            if rid in wanted and lead.get("kind") != "report_trace":
                add(rid, [lead.get("vehicle_id")])
    for lead in leads:
        for rid in lead.get("report_ids") or []:
            if rid in wanted and lead.get("kind") == "report_trace":
                add(rid, list(lead.get("candidates") or []) or [lead.get("vehicle_id")])
    for run in runs.values():
        for u in (run or {}).get("untraced_reports", []) or []:
            if not isinstance(u, dict) or u.get("report_id") not in wanted:
                continue
            named = [str(u["lead_id"])] if u.get("lead_id") else _lead_ids_in(str(u.get("reason", "")), set(by_id))
            add(u["report_id"], [by_id[x].get("vehicle_id") for x in named if x in by_id])
    return ranking


def _group(events: list[dict], matched_e: set[int], pick) -> dict:
    idx = [j for j, e in enumerate(events) if pick(e)]
    return _share(sum(j in matched_e for j in idx), len(idx))


def _reliability(leads: list[dict], true_leads: set[int]) -> list[dict]:
    rows = []
    for lo, hi in itertools.pairwise(SCORE_BINS):
        idx = []
        for i, lead in enumerate(leads):
            try:
                s = float(lead.get("score"))
            except (TypeError, ValueError):
                continue
            if lo <= s < hi or (hi == 1.0 and s == 1.0):
                idx.append(i)
        t = sum(i in true_leads for i in idx)
        scores = [float(leads[i]["score"]) for i in idx]
        rows.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "leads": len(idx),
                "true": t,
                "share_true": round(t / len(idx), 4) if idx else None,
                "mean_score": round(sum(scores) / len(scores), 4) if scores else None,
            }
        )
    return rows


def evaluate(
    truth_path: Path,
    out_dir: Path,
    dates: list[str] | None = None,
    lenient: bool = False,
) -> dict:
    """Score the leads in ``out_dir`` against the truth (strict rules unless ``lenient``).

    Raises ``MissingRunError`` when a scored date has no ``leads.geojson``.
    """
    rules = LENIENT if lenient else STRICT
    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    out_dir = Path(out_dir)
    dates = list(dates or truth["dates"])
    check_runs(out_dir, dates)
    leads: list[dict] = []
    runs: dict[str, dict | None] = {}
    for d in dates:
        got, run, _ = read_leads(out_dir, d)
        leads += got
        runs[d] = run
    sensors_of = {normalise_plate(t["vehicle_id"]): bool(t["sensors"]) for t in truth.get("trucks", []) or []}
    all_events = list(truth["events"])
    # lenient: report_trace leads are scored as reports only, so report-only events are not detection events
    pool = all_events if rules.trace_leads_match_events else [e for e in all_events if e["kind"] != "report_trace"]

    def night(e: dict) -> str | None:
        return e.get("report_night") or e.get("date")

    def scored(e: dict) -> bool:
        return e.get("decidable", True) is not False and night(e) in dates and e["date"] in truth["dates"]

    truth_reports = [r for r in truth["reports"] if r["date"] in dates]
    reports_by_id = {r["report_id"]: r for r in truth["reports"]}
    trace_events: dict[str, set[str]] = {}
    for lead in leads:
        if lead.get("kind") == "report_trace":
            ids = set()
            for rid in lead.get("report_ids") or []:
                r = reports_by_id.get(rid)
                if r is not None:
                    ids |= set(r.get("event_ids") or ([r["event_id"]] if r.get("event_id") else []))
            trace_events[str(lead.get("lead_id"))] = ids
    det_leads = leads if rules.trace_leads_match_events else [x for x in leads if x.get("kind") != "report_trace"]
    pairs = match(det_leads, pool, rules, trace_events)
    is_scored = [scored(e) for e in pool]
    matched_l = {i: j for i, j in pairs}
    matched_e = {j for _, j in pairs if is_scored[j]}
    neutral = {i for i, j in pairs if not is_scored[j]}
    tp_pairs = [(i, j) for i, j in pairs if is_scored[j]]
    events = [e for e, s in zip(pool, is_scored, strict=True) if s]
    ev_index = {id(e): j for j, e in enumerate(pool)}
    scored_idx = [ev_index[id(e)] for e in events]
    fp_idx = [i for i in range(len(det_leads)) if i not in matched_l]

    # per kind: recall by the event's kind, precision by the lead's kind
    per_kind = {}
    for k in sorted(set(EVENT_KINDS) | {str(x.get("kind")) for x in det_leads}):
        if not rules.trace_leads_match_events and k == "report_trace":
            continue
        n_ev = sum(1 for j in scored_idx if pool[j]["kind"] == k)
        hit_ev = sum(1 for j in scored_idx if pool[j]["kind"] == k and j in matched_e)
        k_leads = [i for i, x in enumerate(det_leads) if x.get("kind") == k and i not in neutral]
        hit_l = sum(1 for i in k_leads if i in matched_l)
        precision = hit_l / len(k_leads) if k_leads else (1.0 if n_ev == hit_ev else 0.0)
        recall = hit_ev / n_ev if n_ev else (1.0 if not k_leads or hit_l == len(k_leads) else 0.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_kind[k] = {
            "events": n_ev,
            "leads": len(k_leads),
            "tp": hit_ev,
            "fp": len(k_leads) - hit_l,
            "fn": n_ev - hit_ev,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
        }
    n_leads = len(det_leads) - len(neutral)
    overall = {"events": len(events), "leads": n_leads, **_prf(len(tp_pairs), len(fp_idx), len(events) - len(tp_pairs))}
    confusion = Counter(f"{pool[j]['kind']}→{det_leads[i].get('kind')}" for i, j in tp_pairs)
    kind_ok = sum(det_leads[i].get("kind") == pool[j]["kind"] for i, j in tp_pairs)

    # breakdowns
    def lead_sensors(lead: dict) -> bool | None:
        v = _top(lead) if lead.get("kind") == "report_trace" else normalise_plate(lead.get("vehicle_id"))
        return sensors_of.get(v)

    def group_prf(ev_pick, lead_pick) -> dict:
        ev = [j for j in scored_idx if ev_pick(pool[j])]
        hit = sum(j in matched_e for j in ev)
        ld = [i for i, x in enumerate(det_leads) if i not in neutral and lead_pick(x)]
        fp = sum(i not in matched_l for i in ld)
        return {"events": len(ev), "leads": len(ld), **_prf(hit, fp, len(ev) - hit)}

    breakdown = {
        "sensors": group_prf(lambda e: bool(e.get("sensors")), lambda x: lead_sensors(x) is True),
        "sensorless": group_prf(lambda e: e.get("sensors") is False, lambda x: lead_sensors(x) is False),
        "cross_border": group_prf(lambda e: bool(e.get("cross_border")), lambda x: bool(x.get("cross_border"))),
        "within_province": group_prf(lambda e: not e.get("cross_border"), lambda x: not x.get("cross_border")),
    }
    ev_sel = [pool[j] for j in scored_idx]
    matched_sel = {k for k, j in enumerate(scored_idx) if j in matched_e}
    recall_of = {
        "track_gap": _group(ev_sel, matched_sel, lambda e: e["kind"] == "track_gap"),
        "sensorless_dump": _group(ev_sel, matched_sel, lambda e: e["kind"] == "illegal_dump" and not e.get("sensors")),
        "sensor_dump": _group(ev_sel, matched_sel, lambda e: e["kind"] == "illegal_dump" and bool(e.get("sensors"))),
        "cross_border": _group(ev_sel, matched_sel, lambda e: bool(e.get("cross_border"))),
        "last_haul": _group(ev_sel, matched_sel, lambda e: bool(e.get("last_haul"))),
        "split_dump": _group(ev_sel, matched_sel, lambda e: "split_dump" in (e.get("features") or [])),
        "report_only": _group(ev_sel, matched_sel, lambda e: e["kind"] == "report_trace"),
    }

    # on the matched pairs
    routing_ok = county_ok = both = xb_ok = origin_ok = manifest_ok = manifest_n = manifest_set_ok = 0
    wrong_night = []
    distances = []
    for i, j in tp_pairs:
        lead, e = det_leads[i], pool[j]
        r = str(lead.get("primary_liaison_id", "") or "") == (e.get("primary_liaison_id") or "")
        c = str(lead.get("county_adcode", "") or "") == (e.get("county_adcode") or "")
        routing_ok += r
        county_ok += c
        both += r and c
        xb_ok += bool(lead.get("cross_border")) == bool(e.get("cross_border"))
        origin_ok += str(lead.get("origin_site_id", "") or "") == (e.get("origin_site_id") or "")
        same_manifest = str(lead.get("manifest_id", "") or "").strip() == (e.get("manifest_id") or "")
        manifest_ok += same_manifest
        if e.get("manifest_id"):
            manifest_n += 1
            manifest_set_ok += same_manifest
        d = _place_gap(lead, e)
        if d is not None and lead.get("kind") != "report_trace":
            distances.append(d)
        if lead.get("kind") == "report_trace":
            want = sorted({reports_by_id[x]["date"] for x in lead.get("report_ids") or [] if x in reports_by_id})
        else:
            want = [night(e)]
        if lead["_date"] not in want:
            wrong_night.append(
                {
                    "event_id": e["event_id"],
                    "lead_id": lead.get("lead_id"),
                    "kind": e["kind"],
                    "reported": lead["_date"],
                    "expected": want[0] if want else None,
                    "ended": e["date"],
                }
            )
    n = len(tp_pairs)

    # reports
    ranking = _report_rankings(truth_reports, leads, runs)
    in_lead = {rid for lead in leads for rid in lead.get("report_ids") or []}
    listed = {
        u.get("report_id")
        for run in runs.values()
        for u in (run or {}).get("untraced_reports", []) or []
        if isinstance(u, dict)
    }
    rep = {"top1": [0, 0], "top3": [0, 0], "same_day_top1": [0, 0], "late_top1": [0, 0], "decoys_rejected": [0, 0]}
    by_expected: dict[str, list[int]] = {}
    wrong_reports = []
    for r in truth_reports:
        rid = r["report_id"]
        culprits = {normalise_plate(v) for v in r.get("vehicle_ids") or ([r["vehicle_id"]] if r["vehicle_id"] else [])}
        if not culprits:
            ok = rid not in in_lead
            rep["decoys_rejected"][0] += ok
            rep["decoys_rejected"][1] += 1
            by_expected.setdefault("decoy", [0, 0])
            by_expected["decoy"][0] += ok
            by_expected["decoy"][1] += 1
            if not ok:
                wrong_reports.append({"report_id": rid, "expected": "decoy", "vehicle_id": "", "got": ranking[rid][:3]})
            continue
        got = ranking[rid]
        t1 = bool(got) and got[0] in culprits
        t3 = bool(set(got[:3]) & culprits)
        rep["top1"][0] += t1
        rep["top1"][1] += 1
        rep["top3"][0] += t3
        rep["top3"][1] += 1
        late = "late_top1" if (r.get("days_late") or 0) > 0 else "same_day_top1"
        rep[late][0] += t1
        rep[late][1] += 1
        by_expected.setdefault(r["expected"], [0, 0])
        by_expected[r["expected"]][0] += t1
        by_expected[r["expected"]][1] += 1
        if not t1:
            wrong_reports.append(
                {"report_id": rid, "expected": r["expected"], "vehicle_id": r["vehicle_id"], "got": got[:3]}
            )
    reports = {k: _acc(c, m) for k, (c, m) in rep.items()}
    reports["by_expected_top1"] = {k: _acc(c, m) for k, (c, m) in sorted(by_expected.items())}
    reports["unaccounted"] = sorted(r["report_id"] for r in truth_reports if r["report_id"] not in in_lead | listed)

    # per adversarial feature: recall of the events that have it, false positives on hauls that have it
    fps = [(det_leads[i], _fp_context(truth, det_leads[i])) for i in fp_idx]
    feat_ev: Counter = Counter()
    feat_tp: Counter = Counter()
    for j in scored_idx:
        for f in pool[j].get("features", []) or []:
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
    kept = [i for i in range(len(det_leads)) if i not in neutral]
    return {
        "rules": asdict(rules),
        "dates": dates,
        "profile": truth.get("profile", ""),
        "seed": truth.get("seed"),
        "detection": {"per_kind": per_kind, "overall": overall},
        "kind_agreement": _acc(kind_ok, n),
        "confusion": dict(sorted(confusion.items())),
        "recall_of": recall_of,
        "breakdown": breakdown,
        "reports": reports,
        "routing": {
            "n": n,
            "liaison_correct": routing_ok,
            "county_correct": county_ok,
            "both_correct": both,
            "accuracy": round(both / n, 4) if n else None,
        },
        "manifest_id": {**_acc(manifest_ok, n), "with_manifest": _acc(manifest_set_ok, manifest_n)},
        "cross_border": _acc(xb_ok, n),
        "origin": _acc(origin_ok, n),
        "night": {"n": n, "wrong": len(wrong_night), "cases": wrong_night},
        "location": {
            "n": len(distances),
            "median_m": round(float(np.median(distances)), 1) if distances else None,
            "p90_m": round(float(np.percentile(distances, 90)), 1) if distances else None,
            "within_300m": _acc(sum(d <= 300 for d in distances), len(distances)),
        },
        "reliability": _reliability([det_leads[i] for i in kept], {k for k, i in enumerate(kept) if i in matched_l}),
        "neutral_leads": len(neutral),
        "unscored_events": sum(1 for e in pool if not scored(e) and e["date"] in dates),
        "by_feature": by_feature,
        "false_negatives": [
            {
                "event_id": pool[j]["event_id"],
                "kind": pool[j]["kind"],
                "subkind": pool[j].get("subkind", ""),
                "vehicle_id": pool[j]["vehicle_id"],
                "start": pool[j]["start"],
                "end": pool[j]["end"],
                "sensors": pool[j].get("sensors"),
                "evidence_fixes": pool[j].get("evidence_fixes"),
                "features": list(pool[j].get("features", []) or []),
                "near_miss": _near_miss(pool[j], det_leads, matched_l, pool, rules),
            }
            for j in scored_idx
            if j not in matched_e
        ],
        "false_positives": [
            {
                "lead_id": lead.get("lead_id"),
                "kind": lead.get("kind"),
                "vehicle_id": lead.get("vehicle_id"),
                "start": lead.get("start"),
                "end": lead.get("end"),
                "score": lead.get("score"),
                "night": lead.get("_date"),
                **ctx,
            }
            for lead, ctx in fps
        ],
        "wrong_reports": wrong_reports,
    }


# ---- text report -------------------------------------------------------------------------------------------


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
    """A plain-text summary: detection table, breakdowns, reports, routing, night, reliability, misses."""
    rules = result["rules"]
    place = f"{rules['place_tolerance_m']:.0f} m" if rules["place_tolerance_m"] is not None else "not checked"
    lines = [
        f"wastetrack evaluation ({rules['name']}: same vehicle, ±{rules['time_tolerance_s'] / 60:.0f} min, "
        f"place {place}{', same kind' if rules['same_kind'] else ''}, one-to-one) — dates {', '.join(result['dates'])}"
        + (f" — profile {result['profile']}, seed {result['seed']}" if result.get("profile") else ""),
        "",
    ]
    det = result["detection"]
    rows = [
        [k, v["events"], v["leads"], v["tp"], v["fp"], v["fn"], v["precision"], v["recall"], v["f1"]]
        for k, v in det["per_kind"].items()
    ]
    o = det["overall"]
    rows.append(["OVERALL", o["events"], o["leads"], o["tp"], o["fp"], o["fn"], o["precision"], o["recall"], o["f1"]])
    lines += _table(["kind", "events", "leads", "tp", "fp", "fn", "precision", "recall", "f1"], rows)
    ka = result["kind_agreement"]
    other = [f"{k} {v}" for k, v in result["confusion"].items() if k.split("→")[0] != k.split("→")[1]]
    text = f"kind agreement on matched leads: {ka['correct']}/{ka['n']}"
    lines.append(text + (f"  ({', '.join(other)})" if other else ""))
    if result.get("neutral_leads") or result.get("unscored_events"):
        lines.append(
            f"not scored: {result['unscored_events']} events no run could decide; "
            f"{result['neutral_leads']} leads on them"
        )
    lines.append("")
    rows = [[k, v["events"], v["leads"], v["precision"], v["recall"], v["f1"]] for k, v in result["breakdown"].items()]
    lines += _table(["breakdown", "events", "leads", "precision", "recall", "f1"], rows)
    lines.append("")
    rows = [[k, v["n"], v["found"], v["recall"]] for k, v in result["recall_of"].items()]
    lines += _table(["recall of", "events", "found", "recall"], rows)
    lines.append("")
    rep = result["reports"]
    keys = ("top1", "top3", "same_day_top1", "late_top1", "decoys_rejected")
    rows = [[k, rep[k]["n"], rep[k]["correct"], rep[k]["accuracy"]] for k in keys]
    rows += [[f"  top1 {k}", v["n"], v["correct"], v["accuracy"]] for k, v in rep["by_expected_top1"].items()]
    lines += _table(["reports → culprit", "n", "correct", "accuracy"], rows)
    if rep.get("unaccounted"):
        lines.append(f"reports in no lead and not listed untraced: {', '.join(rep['unaccounted'])}")
    lines.append("")
    r = result["routing"]
    mw = result["manifest_id"]["with_manifest"]
    rows = [
        ["routing (liaison+county)", r["n"], r["both_correct"], r["accuracy"]],
        ["  primary_liaison_id", r["n"], r["liaison_correct"], r["liaison_correct"] / r["n"] if r["n"] else None],
        ["  county_adcode", r["n"], r["county_correct"], r["county_correct"] / r["n"] if r["n"] else None],
        ["manifest_id", *[result["manifest_id"][k] for k in ("n", "correct", "accuracy")]],
        ["  where the truth has one", *[mw[k] for k in ("n", "correct", "accuracy")]],
        ["cross_border", *[result["cross_border"][k] for k in ("n", "correct", "accuracy")]],
        ["origin_site_id", *[result["origin"][k] for k in ("n", "correct", "accuracy")]],
    ]
    nt = result["night"]
    right = nt["n"] - nt["wrong"]
    rows.append(["reported on the right night", nt["n"], right, right / nt["n"] if nt["n"] else None])
    lines += _table(["matched leads", "n", "correct", "accuracy"], rows)
    loc = result["location"]
    if loc["n"]:
        lines.append(f"distance lead → event: median {loc['median_m']} m, p90 {loc['p90_m']} m")
    lines += ["", "reliability (lead score → share of leads that are true):"]
    rows = [[b["bin"], b["leads"], b["true"], b["share_true"], b["mean_score"]] for b in result["reliability"]]
    lines += _table(["score", "leads", "true", "share true", "mean score"], rows)
    if result.get("by_feature"):
        lines += ["", "by adversarial feature (events with it, detected, recall; false positives on it):"]
        feats = result["by_feature"].items()
        rows = [[f, v["events"], v["detected"], v["recall"], v["false_positives"]] for f, v in feats]
        lines += _table(["feature", "events", "detected", "recall", "fp"], rows)
    if result["night"]["cases"]:
        lines += ["", "reported on the wrong night:"]
        lines += [
            f"  {c['event_id']}  {c['kind']}  lead {c['lead_id']} on {c['reported']}, expected {c['expected']}"
            f" (ended {c['ended']})"
            for c in result["night"]["cases"]
        ]
    if result["false_negatives"]:
        lines += ["", "missed events:"]
        lines += [
            f"  {e['event_id']}  {e['kind']}/{e['subkind'] or '-'}  {e['vehicle_id']}  {e['start']} → {e['end']}"
            + (f"  [{', '.join(e['features'])}]" if e.get("features") else "")
            + (f"  nearest: {e['near_miss']}" if e.get("near_miss") else "")
            for e in result["false_negatives"]
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
        lines += ["", "reports whose culprit was not named first (decoys: named at all):"]
        lines += [
            f"  {w['report_id']}  {w['expected']}  culprit {w['vehicle_id'] or '-'}  got {', '.join(w['got']) or '-'}"
            for w in result["wrong_reports"]
        ]
    return "\n".join(lines) + "\n"
