"""Train and measure the unloading model on simulated worlds (what ``wastetrack train`` runs).

Samples are the track candidates of sensorless decisions — off-site stays and
track-gap silences of hauls that have ended and that neither a sensor nor a
receiver visit decided — built by the very code the night runs
(``hauls.unloading_candidates``), so training and detection see the same
features and the same population: the model is asked only where the truck
must have unloaded somewhere off the map, which is a very different base rate
from "any stop of any haul". Labels come from the simulator's truth (``truth.json`` version 2:
every haul's unloading window and spots):

* a stay is an unloading when the truth has the truck unloading within
  ``LABEL_SLACK_S`` of it, within ``LABEL_DISTANCE_M`` of one of the spots;
* a silence is one when the truck unloaded while it was silent.

Only ``TUNING_SEEDS`` are ever trained on (``simulate.seeds``). Folds group by
seed (a world never sits on both sides of a fold, whatever its profile); the
out-of-fold predictions fit the isotonic calibration map and give the
cross-validated figures. Held-out seeds are only measured, never fitted: the
same decisions are replayed with today's rules and with the model, and the
figures go into the model's metadata (and ``docs/model_card.md``).

A decision here is the sensorless step of a haul: its most likely candidate,
taken when at least ``unloading_min_probability`` likely. It makes a *lead*
unless the candidate is where the truck really unloaded at a receiver (a
terminal silent at the gate: the map explains it later, in ``detect``); a lead
is *correct* when the candidate is a true unloading of a violating haul (a dump
or a track gap); a violating haul whose unloading is not chosen is a miss.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import _ts_i8, clean_fixes
from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.coords import haversine_m
from wastetrack.features import FEATURES
from wastetrack.unloading import MODEL_FORMAT, UnloadingModel, feature_matrix, rule_scores

log = logging.getLogger(__name__)

#: a stay counts as the truth's unloading if their times are this close (a stay's first and last fix can
#: miss a minute or two of a dwell on a sparse feed)
LABEL_SLACK_S = 180.0
#: ... and it lies this close to one of the unloading's spots (the evaluator's place tolerance)
LABEL_DISTANCE_M = 300.0
#: truth haul kinds whose unloading is a violation a sensorless decision must find
VIOLATING = ("illegal_dump", "track_gap")
#: the ensemble, fixed before any data was looked at: small and shallow (a few thousand samples)
GBT_PARAMS: dict[str, Any] = {
    "n_estimators": 150,
    "learning_rate": 0.05,
    "max_depth": 3,
    "subsample": 0.8,
    "min_samples_leaf": 10,
    "random_state": 0,
}


# ---------------------------------------------------------------- samples from a simulated world


def _night_candidates(landing: Path, date: str, params: Params) -> pd.DataFrame:
    """Track candidates of one night (with the previous day as context), features included."""
    from wastetrack import boundaries as bnd
    from wastetrack.contract import read_context, read_night
    from wastetrack.geofence import complete_site_counties, detect_placed_stays
    from wastetrack.hauls import unloading_candidates

    inputs = read_night(landing, date)
    prev = (pd.Timestamp(date) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    context = read_context(landing, prev)
    frames = [inputs.gps]
    if context is not None and len(context.gps):
        since = pd.Timestamp(date, tz=TIMEZONE) - pd.Timedelta(hours=params.context_hours)
        frames.insert(0, context.gps.loc[context.gps["ts"] >= since])
    raw = pd.concat([f for f in frames if len(f)], ignore_index=True)
    fixes, _ = clean_fixes(raw, params)
    override = Path(landing) / "reference" / "boundaries.gpkg"
    boundaries = bnd.load_boundaries(override if override.exists() else None)
    sites = complete_site_counties(inputs.reference.sites, boundaries)
    manifests = inputs.manifests
    if context is not None and len(context.manifests):
        manifests = pd.concat([context.manifests, manifests], ignore_index=True)
    stays = detect_placed_stays(fixes, sites, boundaries, params, manifests)
    _, _, _, track_c = unloading_candidates(stays, fixes, params)
    if track_c.empty:
        return track_c
    # only hauls that ended are decided (the candidates of hauls a sensor or a receiver decided are not built)
    track_c = track_c.loc[track_c["haul_end_at"].notna()].copy()
    track_c["night"] = date
    return track_c


def label_candidates(cands: pd.DataFrame, truth: dict) -> pd.DataFrame:
    """``is_unloading`` (physical), ``truth_kind`` (the kind of the truth haul unloading there, "" if none)
    and ``haul_truth_kind`` (the worst truth haul unloading within the candidate's haul)."""
    th = pd.DataFrame(truth["hauls"])
    out = cands.copy()
    out["is_unloading"] = False
    out["truth_kind"] = ""
    out["haul_truth_kind"] = ""
    if th.empty or out.empty:
        return out
    th["u0"] = _ts_i8(pd.to_datetime(th["unload_start"], utc=True)) / 1e6
    th["u1"] = _ts_i8(pd.to_datetime(th["unload_end"], utc=True)) / 1e6
    th["vehicle_id"] = th["vehicle_id"].astype(str)
    th["_tid"] = np.arange(len(th))
    c = out.reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    c["_t0"] = _ts_i8(c["start"]) / 1e6
    c["_t1"] = _ts_i8(c["end"]) / 1e6
    c["_d0"] = _ts_i8(c["depart"]) / 1e6
    c["_d1"] = _ts_i8(c["haul_end_at"]) / 1e6
    pairs = c[["_row", "vehicle_id", "kind", "lon", "lat", "_t0", "_t1", "_d0", "_d1"]].merge(
        th[["_tid", "vehicle_id", "kind", "u0", "u1", "spots"]].rename(columns={"kind": "tkind"}), on="vehicle_id"
    )
    if pairs.empty:
        return out
    silence = (pairs["kind"] == "silence").to_numpy()
    u0, u1 = pairs["u0"].to_numpy(), pairs["u1"].to_numpy()
    t0, t1 = pairs["_t0"].to_numpy(), pairs["_t1"].to_numpy()
    stay_time = (u0 <= t1 + LABEL_SLACK_S) & (u1 >= t0 - LABEL_SLACK_S)
    silence_time = (u0 < t1) & (u1 > t0)
    near = np.zeros(len(pairs), dtype=bool)
    spots = pairs["spots"].to_numpy()
    lons, lats = pairs["lon"].to_numpy(float), pairs["lat"].to_numpy(float)
    max_spots = max((len(s) for s in spots), default=0)
    for k in range(max_spots):  # a split dump has two spots: at most a handful of passes
        has = np.array([len(s) > k for s in spots])
        slon = np.array([s[k][0] if len(s) > k else np.nan for s in spots])
        slat = np.array([s[k][1] if len(s) > k else np.nan for s in spots])
        d = np.where(has, haversine_m(lons, lats, np.nan_to_num(slon), np.nan_to_num(slat)), np.inf)
        near |= d <= LABEL_DISTANCE_M
    hit = np.where(silence, silence_time, stay_time & near)
    severity = {k: i for i, k in enumerate(["", "legit", "unmanifested", "diverted", "track_gap", "illegal_dump"])}
    tk = pairs["tkind"].to_numpy(object)
    rows = pairs["_row"].to_numpy()
    is_unl = np.zeros(len(c), dtype=bool)
    np.logical_or.at(is_unl, rows, hit)
    kind_rank = np.zeros(len(c), dtype=int)
    rank = np.array([severity.get(k, 0) for k in tk])
    np.maximum.at(kind_rank, rows[hit], rank[hit])
    in_haul = (u1 > pairs["_d0"].to_numpy()) & (u0 < pairs["_d1"].to_numpy())
    haul_rank = np.zeros(len(c), dtype=int)
    np.maximum.at(haul_rank, rows[in_haul], rank[in_haul])
    names = np.array(list(severity), dtype=object)
    out["is_unloading"] = is_unl
    out["truth_kind"] = names[kind_rank]
    out["haul_truth_kind"] = names[haul_rank]
    return out


def world_samples(
    landing: Path, truth_path: Path, params: Params = DEFAULT_PARAMS, group: str = ""
) -> pd.DataFrame:
    """Labelled track candidates of every night of one simulated world (a candidate decided once)."""
    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    frames = [_night_candidates(Path(landing), d, params) for d in truth["dates"]]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    c = pd.concat(frames, ignore_index=True)
    # a haul that crossed midnight is seen by two nights: keep the first night that saw it ended
    c = c.drop_duplicates(["vehicle_id", "kind", "start"], keep="first").reset_index(drop=True)
    c = label_candidates(c, truth)
    c["profile"] = truth.get("profile", "")
    c["seed"] = int(truth.get("seed", -1))
    c["group"] = group or f"{truth.get('seed')}"
    return c


def simulate_world(work: Path, profile: str, seed: int, trucks: int, days: int) -> tuple[Path, Path]:
    """A simulated world under ``work`` (reused when already there: the simulator is deterministic)."""
    from wastetrack.simulate import simulate

    base = Path(work) / f"{profile}-{seed}-{trucks}x{days}"
    landing, truth = base / "landing", base / "truth.json"
    if not truth.exists():
        simulate(landing, truth, seed=seed, days=days, trucks=trucks, profile=profile)
    return landing, truth


def _each_world(
    work: Path, profiles: Iterable[str], seeds: Iterable[int], trucks: int, days: int,
    one: Callable[[Path, Path, int], pd.DataFrame], describe: Callable[[pd.DataFrame], str],
    progress: Callable[[str], None] | None,
) -> pd.DataFrame:
    """``one(landing, truth, seed)`` on every (profile, seed) world, concatenated (empty frames dropped)."""
    out = []
    for profile in profiles:
        for seed in seeds:
            t0 = time.perf_counter()
            landing, truth = simulate_world(work, profile, int(seed), trucks, days)
            frame = one(landing, truth, int(seed))
            if progress:
                progress(f"{profile} seed {seed}: {describe(frame)} ({time.perf_counter() - t0:.0f}s)")
            out.append(frame)
    out = [f for f in out if len(f)]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def collect(
    work: Path,
    profiles: Iterable[str],
    seeds: Iterable[int],
    trucks: int,
    days: int,
    params: Params = DEFAULT_PARAMS,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Labelled samples of every (profile, seed) world."""
    return _each_world(
        work, profiles, seeds, trucks, days,
        lambda landing, truth, seed: world_samples(landing, truth, params, group=str(seed)),
        lambda s: f"{len(s)} candidates, {int(s['is_unloading'].sum()) if len(s) else 0} unloadings", progress,
    )


# ---------------------------------------------------------------- decisions: rules vs model


@dataclass
class DecisionScore:
    """Sensorless decisions of a set of hauls, scored as leads would be."""

    hauls: int
    violating: int  # hauls whose truth unloading is a violation and among the candidates
    leads: int
    correct: int

    @property
    def precision(self) -> float | None:
        return round(self.correct / self.leads, 4) if self.leads else None

    @property
    def recall(self) -> float | None:
        return round(self.correct / self.violating, 4) if self.violating else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return round(2 * p * r / (p + r), 4) if p and r else None

    def as_dict(self) -> dict[str, Any]:
        return {"hauls": self.hauls, "violating": self.violating, "leads": self.leads, "correct": self.correct,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def decide(samples: pd.DataFrame, scores: np.ndarray, min_p: float) -> DecisionScore:
    """Replay the sensorless step on the hauls the rules did not decide, with ``scores`` for candidates."""
    s = samples.assign(_p=scores)
    if s.empty:
        return DecisionScore(0, 0, 0, 0)
    key = s["group"].astype(str) + "|" + s["profile"].astype(str) + "|" + s["haul_id"].astype(str)
    s = s.assign(_h=key.to_numpy())
    unloading = s["is_unloading"].to_numpy(bool)
    s = s.assign(_good=unloading & s["truth_kind"].isin(VIOLATING).to_numpy(),
                 _at_receiver=unloading & ~s["truth_kind"].isin(VIOLATING).to_numpy())
    violating = s.groupby("_h")["_good"].any()
    best = s.sort_values(["_h", "_p", "start"], ascending=[True, False, True], kind="stable").drop_duplicates("_h")
    chosen = best.loc[(best["_p"] >= min_p) & ~best["_at_receiver"]]
    return DecisionScore(
        hauls=int(s["_h"].nunique()),
        violating=int(violating.sum()),
        leads=len(chosen),
        correct=int(chosen["_good"].sum()),
    )


# ---------------------------------------------------------------- fitting


def _gbt(params: dict[str, Any] | None = None):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(**(params or GBT_PARAMS))


def out_of_fold(samples: pd.DataFrame, n_folds: int = 3) -> np.ndarray:
    """Uncalibrated probabilities of every sample from a model that never saw its group (seed)."""
    from sklearn.model_selection import GroupKFold

    x = feature_matrix(samples)
    y = samples["is_unloading"].to_numpy(int)
    groups = samples["group"].astype(str).to_numpy()
    k = min(n_folds, len(set(groups)))
    oof = np.full(len(samples), np.nan)
    for train, test in GroupKFold(n_splits=k).split(x, y, groups):
        model = _gbt().fit(x[train], y[train])
        oof[test] = model.predict_proba(x[test])[:, 1]
    return oof


def fit_calibration(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic map from uncalibrated to calibrated probability (breakpoints for ``np.interp``)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)


def export(model: Any, cal_x: np.ndarray, cal_y: np.ndarray, meta: dict[str, Any]) -> dict[str, Any]:
    """The fitted scikit-learn ensemble as the shipped JSON document (``unloading.MODEL_FORMAT``)."""
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        trees.append({
            "feature": [int(v) for v in t.feature],
            "threshold": [float(v) for v in t.threshold],
            "left": [int(v) for v in t.children_left],
            "right": [int(v) for v in t.children_right],
            "value": [float(v) for v in t.value[:, 0, 0]],
        })
    probe = np.zeros((1, len(FEATURES)))
    tree_sum = sum(float(e.predict(probe.astype(np.float32))[0]) for e in model.estimators_[:, 0])
    init_raw = float(model.decision_function(probe)[0]) - model.learning_rate * tree_sum
    return {
        "format": MODEL_FORMAT,
        "features": list(FEATURES),
        "init_raw": init_raw,
        "learning_rate": float(model.learning_rate),
        "trees": trees,
        "calibration": {"x": [float(v) for v in cal_x], "y": [float(v) for v in cal_y]},
        "meta": meta,
    }


def _reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    rows = []
    for i in range(bins):
        lo, hi = i / bins, (i + 1) / bins
        m = (p >= lo) & ((p < hi) if i < bins - 1 else (p <= hi))
        if m.any():
            rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()), "mean_p": round(float(p[m].mean()), 3),
                         "share_true": round(float(y[m].mean()), 3)})
    return rows


def train(samples: pd.DataFrame, params: Params = DEFAULT_PARAMS, n_folds: int = 3) -> tuple[dict, dict]:
    """Fit the shipped model on ``samples``; returns (model JSON document, cross-validated report)."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    x = feature_matrix(samples)
    y = samples["is_unloading"].to_numpy(int)
    oof = out_of_fold(samples, n_folds)
    cal_x, cal_y = fit_calibration(oof, y)
    oof_cal = np.interp(oof, cal_x, cal_y)
    final = _gbt().fit(x, y)
    min_p = params.unloading_min_probability
    by_profile = {}
    for prof, part in samples.groupby("profile", sort=True):
        idx = part.index.to_numpy()
        by_profile[str(prof)] = {
            "rules": decide(part, rule_scores(part, params), min_p).as_dict(),
            "model": decide(part, oof_cal[idx], min_p).as_dict(),
        }
    importance = sorted(zip(FEATURES, final.feature_importances_, strict=True), key=lambda kv: -kv[1])
    report = {
        "samples": len(samples),
        "unloadings": int(y.sum()),
        "groups": sorted(set(samples["group"].astype(str))),
        "profiles": sorted(set(samples["profile"].astype(str))),
        "folds": min(n_folds, samples["group"].nunique()),
        "cv_auc": round(float(roc_auc_score(y, oof)), 4) if 0 < y.sum() < len(y) else None,
        "cv_brier_calibrated": round(float(brier_score_loss(y, oof_cal)), 4),
        "cv_reliability": _reliability(oof_cal, y),
        "cv_decisions": {
            "rules": decide(samples, rule_scores(samples, params), min_p).as_dict(),
            "model": decide(samples, oof_cal, min_p).as_dict(),
        },
        "cv_decisions_by_profile": by_profile,
        "feature_importance": [{"feature": f, "importance": round(float(v), 4)} for f, v in importance],
        "gbt_params": GBT_PARAMS,
    }
    doc = export(final, cal_x, cal_y, {"training": report})
    return doc, report


def measure(samples: pd.DataFrame, model: UnloadingModel, params: Params = DEFAULT_PARAMS) -> dict[str, Any]:
    """Rules vs the model on samples it was not trained on (held-out worlds): decisions and calibration."""
    from sklearn.metrics import roc_auc_score

    min_p = params.unloading_min_probability
    p = model.predict(feature_matrix(samples))
    y = samples["is_unloading"].to_numpy(int)
    out: dict[str, Any] = {
        "samples": len(samples),
        "unloadings": int(y.sum()),
        "auc": round(float(roc_auc_score(y, p)), 4) if 0 < y.sum() < len(y) else None,
        "reliability": _reliability(p, y),
        "decisions": {"rules": decide(samples, rule_scores(samples, params), min_p).as_dict(),
                      "model": decide(samples, p, min_p).as_dict()},
        "by_profile": {},
    }
    for prof, part in samples.groupby("profile", sort=True):
        idx = part.index.to_numpy()
        out["by_profile"][str(prof)] = {
            "rules": decide(part, rule_scores(part, params), min_p).as_dict(),
            "model": decide(part, p[idx], min_p).as_dict(),
        }
    return out


# ---------------------------------------------------------------- leads: how often each kind of lead is right


def world_leads(landing: Path, truth_path: Path, params: Params = DEFAULT_PARAMS) -> pd.DataFrame:
    """Every lead the night makes on one simulated world (in memory), with ``true``: it matches a truth event
    under the strict rules (``evaluate``). Columns: kind, evidence (``lead_group``), p, has_report, true."""
    from wastetrack.contract import read_context, read_night
    from wastetrack.evaluate import STRICT, match
    from wastetrack.pipeline import detect_night, load_boundaries_for
    from wastetrack.scoring import lead_group, model_p

    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    boundaries = load_boundaries_for(Path(landing))
    rows: list[dict[str, Any]] = []
    for date in truth["dates"]:
        prev = (pd.Timestamp(date) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        night = detect_night(read_night(Path(landing), date), read_context(Path(landing), prev), boundaries, params)
        for r in night["leads"].to_dict("records"):
            ev = dict(r.get("evidence") or {})
            rows.append({
                "lead_id": r["lead_id"], "kind": r["kind"], "vehicle_id": r["vehicle_id"],
                "start": pd.Timestamp(r["start"]).isoformat(), "end": pd.Timestamp(r["end"]).isoformat(),
                "_lon": float(r["lon"]), "_lat": float(r["lat"]), "candidates": list(r.get("candidates") or []),
                "report_ids": list(r.get("report_ids") or []), "group": lead_group(r["kind"], ev),
                "p": model_p(r["kind"], ev), "has_report": bool(r.get("report_ids")) and r["kind"] != "report_trace",
                "score": float(r["score"]),
            })
    if not rows:
        return pd.DataFrame(columns=["kind", "group", "p", "has_report", "true"])
    reports = {x["report_id"]: x for x in truth["reports"]}
    trace_events = {
        x["lead_id"]: {e for rid in x["report_ids"] for e in (reports.get(rid, {}).get("event_ids") or [])}
        for x in rows if x["kind"] == "report_trace"
    }
    pairs = match(rows, list(truth["events"]), STRICT, trace_events)
    hit = {i for i, _ in pairs}
    out = pd.DataFrame(rows)
    out["true"] = [i in hit for i in range(len(out))]
    out["profile"] = truth.get("profile", "")
    out["seed"] = truth.get("seed")
    return out[["profile", "seed", "kind", "group", "p", "has_report", "score", "true"]]


def collect_leads(
    work: Path,
    profiles: Iterable[str],
    seeds: Iterable[int],
    trucks: int,
    days: int,
    params: Params = DEFAULT_PARAMS,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """``world_leads`` of every (profile, seed) world."""
    return _each_world(
        work, profiles, seeds, trucks, days, lambda landing, truth, seed: world_leads(landing, truth, params),
        lambda o: f"{len(o)} leads, {int(o['true'].sum()) if len(o) else 0} true", progress,
    )


def lead_figures(outcomes: pd.DataFrame) -> dict[str, Any]:
    """Precision per lead group and the reliability of the scores (held-out figures for the model card)."""
    if outcomes.empty:
        return {}
    per = {}
    for g, part in outcomes.groupby("group", sort=True):
        per[str(g)] = {"leads": len(part), "true": int(part["true"].sum()),
                       "precision": round(float(part["true"].mean()), 4),
                       "mean_score": round(float(part["score"].mean()), 4)}
    return {"leads": len(outcomes), "true": int(outcomes["true"].sum()), "by_group": per,
            "reliability": reliability(outcomes["score"].to_numpy(), outcomes["true"].to_numpy())}


def lead_calibration(outcomes: pd.DataFrame) -> dict[str, Any]:
    """Per lead group (kind and the evidence it rests on): how often such a lead was right.

    A group decided by rules gets its share of true leads (Laplace-smoothed); a
    group whose lead carries a probability (the unloading model's, a report
    trace's) gets the factor that brings the mean of those probabilities to the
    share observed (what the place and time tolerance and the map's verdict
    add to "it unloaded there"). A dumping report near a lead multiplies its
    odds by ``report_odds_ratio`` (observed, at least 1).
    """
    groups: dict[str, dict[str, float]] = {}
    for g, part in outcomes.groupby("group", sort=True):
        n, t = len(part), int(part["true"].sum())
        p = part["p"].astype(float)
        row: dict[str, float] = {"n": n, "true": t, "precision": round((t + 1) / (n + 2), 4)}
        if p.notna().all() and n:
            row["mean_p"] = round(float(p.mean()), 4)
            row["ratio"] = round(float((t + 1) / (p.sum() + 1)), 4)
        groups[str(g)] = row
    rep = outcomes.loc[outcomes["kind"] != "report_trace"]
    a = rep.loc[rep["has_report"], "true"]
    b = rep.loc[~rep["has_report"], "true"]
    odds = lambda s: (s.sum() + 0.5) / ((~s).sum() + 0.5)  # noqa: E731
    ratio = float(np.clip(odds(a) / odds(b), 1.0, 10.0)) if len(a) and len(b) else 1.0
    return {"groups": groups, "report_odds_ratio": round(ratio, 4), "leads": len(outcomes)}


def reliability(scores: np.ndarray, true: np.ndarray) -> list[dict[str, Any]]:
    """Share of true leads per score bin (the table ``wastetrack eval`` prints)."""
    return _reliability(np.asarray(scores, float), np.asarray(true, float))


def write_model(doc: dict[str, Any], path: Path) -> None:
    """Write the model JSON deterministically (sorted keys, fixed separators, floats as repr)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n",
                    encoding="utf-8")


__all__ = [
    "GBT_PARAMS",
    "DecisionScore",
    "collect",
    "collect_leads",
    "decide",
    "export",
    "label_candidates",
    "lead_calibration",
    "lead_figures",
    "measure",
    "train",
    "world_samples",
    "write_model",
]
