"""How certain a lead is: a calibrated probability that a case officer finds what the lead says.

Every lead carries ``evidence.score_parts`` — named terms that sum to its
``score`` — so a liaison (and a newcomer reading the code) sees from the lead
itself why it scored what it did:

* the *evidence* term: how often a lead of this kind, resting on this evidence
  (``lead_group``: a tipping sensor, a receiver's fence, a gate scan, the
  unloading model's decision, a silence, a report trace), was right. Rules get
  the share of true leads of their group; a lead decided by the unloading
  model carries the model's calibrated probability (``evidence.unload_p``),
  scaled by what its group's place, time and verdict added to "it unloaded
  there";
* ``dumping_report``: a dumping report the lead explains raises the odds by
  the observed odds ratio.

The figures come from the simulated tuning worlds (``wastetrack train`` writes
them into the shipped model, ``lead_calibration``; ``docs/model_card.md``);
``wastetrack eval``'s reliability table checks them on other worlds. Without
a trained table, the rule groups fall back to the conservative ``PRIOR``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

#: evidence of each unloading decision, as ``unload_evidence`` names it; the ones a probability comes with
MODEL_EVIDENCE = ("dwell", "gap")
#: how a track gap's point was chosen (``gaps.place_gaps``' ``placement.method``) → its lead group: a truck
#: that stood or crawled as it went dark had arrived where it meant to tip (placed well); one still driving
#: may have switched off early on the way (placed at the spot about half the time); a spot known from a
#: report or an earlier finding; else only the reachable region's weight (rarely within 300 m)
GAP_PLACEMENT: dict[str, str] = {
    "stood_going_dark": "stood", "stood_there": "stood", "went_dark_here": "dark_driving",
    "known_spot": "known_spot", "course_and_time": "region",
}
#: used only when the shipped model has no lead calibration: how often such a lead is right, roughly
PRIOR: dict[str, float] = {
    "illegal_dump": 0.6, "diverted": 0.85, "unmanifested": 0.75, "track_gap": 0.4, "report_trace": 0.4,
}
#: a score is a probability, kept off the certainties
SCORE_MIN, SCORE_MAX = 0.01, 0.99


def lead_group(kind: str, ev: dict) -> str:
    """What a lead rests on: its kind, and how the unloading was recognised (tipping vs load drop for sensors)."""
    if kind == "report_trace":
        return "report_trace|" + ("stood" if ev.get("top_is_stay") else "passed")
    how = str(ev.get("unload_evidence") or "")
    if ev.get("went_home_loaded"):
        return f"{kind}|went_home"  # the likeliest stop of a truck that went home loaded (hauls step 4)
    if how == "sensor":
        how = "sensor_tipping" if ev.get("tipping") is True else "sensor_load"
    if kind == "track_gap" and how == "gap":
        how = f"gap_{GAP_PLACEMENT.get(str((ev.get('placement') or {}).get('method', '')), 'region')}"
    return f"{kind}|{how}"


def model_p(kind: str, ev: dict) -> float | None:
    """The probability a lead comes with, if any: the unloading model's, or a report trace's evidence."""
    if kind == "report_trace":
        s = ev.get("top_score")
        return None if s is None else 1.0 / (1.0 + math.exp(-float(s)))
    if ev.get("went_home_loaded"):
        return None  # the stop's own probability is not the lead's: the truck had nowhere else to unload
    if ev.get("unload_evidence") in MODEL_EVIDENCE and ev.get("unload_p") is not None:
        p = float(ev["unload_p"])
        return p if np.isfinite(p) else None
    return None


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    from wastetrack.unloading import shipped_model

    model = shipped_model()
    return dict(model.meta.get("lead_calibration", {})) if model is not None else {}


def calibration_table() -> dict[str, Any]:
    """The lead calibration shipped with the model (empty without one)."""
    from wastetrack.unloading import _OVERRIDE

    if _OVERRIDE:  # a model being measured brings its own (or none yet)
        return dict(_OVERRIDE[-1].meta.get("lead_calibration", {}))
    return _table()


def _odds(p: float) -> float:
    return p / (1.0 - p)


def _prob(odds: float) -> float:
    return odds / (1.0 + odds)


def score_parts(kind: str, ev: dict) -> dict[str, float]:
    """Named terms of one lead's probability; ``score`` is their sum."""
    table = calibration_table()
    groups = table.get("groups", {})
    group = lead_group(kind, ev)
    row = groups.get(group)
    p = model_p(kind, ev)
    if p is not None:
        ratio = float(row["ratio"]) if row and "ratio" in row else 1.0
        base = p * ratio
        name = "unloading_model" if kind != "report_trace" else "trace_evidence"
    else:
        base = float(row["precision"]) if row else PRIOR[kind]
        name = f"evidence_{group.split('|', 1)[1] or 'none'}"
    base = float(np.clip(base, SCORE_MIN, SCORE_MAX))
    parts: dict[str, float] = {name: round(base, 3)}
    if ev.get("report_ids") and kind != "report_trace":  # a report_trace is built on its report already
        ratio = float(table.get("report_odds_ratio", 1.0))
        boosted = float(np.clip(_prob(_odds(base) * ratio), SCORE_MIN, SCORE_MAX))
        if boosted > base:
            parts["dumping_report"] = round(boosted - base, 3)
    return parts


def score(parts: dict[str, float]) -> float:
    return float(np.clip(round(sum(parts.values()), 3), SCORE_MIN, SCORE_MAX))


def apply_scores(leads: pd.DataFrame) -> pd.DataFrame:
    """Recompute ``score`` and ``evidence.score_parts`` of every lead (after reports were attached)."""
    if leads.empty:
        return leads
    out = leads.copy()
    evs = []
    scores = []
    for kind, ev, rids in zip(out["kind"], out["evidence"], out["report_ids"], strict=True):
        ev = dict(ev)
        ev["report_ids"] = list(rids)
        parts = score_parts(kind, ev)
        ev.pop("report_ids")
        ev["score_parts"] = parts
        evs.append(ev)
        scores.append(score(parts))
    out["evidence"] = evs
    out["score"] = scores
    return out
