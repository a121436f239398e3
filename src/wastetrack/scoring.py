"""How certain a lead is: one small, explainable formula per kind.

Every lead carries ``evidence.score_parts`` — the named terms below — so a
liaison (and a newcomer reading the code) can see from the lead itself why it
scored what it did. Scores are in 0..1 and mean "how likely a case officer
finds what the lead says"; they rank the work, they are not probabilities
calibrated on case outcomes (feedback will allow that later).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BASE = {"illegal_dump": 0.45, "diverted": 0.7, "unmanifested": 0.65, "track_gap": 0.35, "report_trace": 0.25}


def score_parts(kind: str, ev: dict) -> dict[str, float]:
    """Named additive terms for one lead; ``score`` is their sum clipped to [0.05, 0.99]."""
    parts: dict[str, float] = {"base": BASE[kind]}
    if ev.get("tipping") is True:
        parts["tipping_sensor"] = 0.3
    elif ev.get("loaded_before") is True and ev.get("loaded_after") is False:
        parts["load_sensor_drop"] = 0.25
    dwell = ev.get("dwell_min")
    if kind == "illegal_dump" and dwell is not None and 4 <= dwell <= 30:
        parts["unloading_dwell"] = 0.1
    near = ev.get("nearest_receiver_m")
    if kind == "illegal_dump" and near is not None and np.isfinite(near) and near > 2000:
        parts["far_from_receivers"] = 0.1
    if kind in ("diverted", "unmanifested") and ev.get("unload_site_id"):
        parts["stayed_at_receiver"] = 0.1
    if kind == "track_gap":
        gap = float(ev.get("gap_min") or 0.0)
        parts["silence_length"] = round(min(gap / 60.0, 1.0) * 0.3, 3)
        if ev.get("loaded_after") is False:
            parts["empty_after_silence"] = 0.15
    if kind == "report_trace":
        d = ev.get("top_distance_m")
        if d is not None:
            parts["closeness"] = round(0.4 * max(0.0, 1.0 - float(d) / 1000.0), 3)
        if ev.get("top_is_stay"):
            parts["stood_there"] = 0.15
        n = int(ev.get("n_candidates") or 1)
        parts["few_candidates"] = round(0.15 / n, 3)
    if ev.get("report_ids") and kind != "report_trace":  # a report_trace is built on its report already
        parts["dumping_report"] = 0.15
    return parts


def score(parts: dict[str, float]) -> float:
    return float(np.clip(round(sum(parts.values()), 3), 0.05, 0.99))


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
