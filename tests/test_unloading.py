"""The unloading model: its JSON predicts exactly what scikit-learn fitted, the shipped one loads offline and
deterministically, training keeps held-out seeds out, and the scores of leads are probabilities."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from wastetrack.features import FEATURES
from wastetrack.scoring import apply_scores, lead_group, score_parts
from wastetrack.training import decide, export, fit_calibration
from wastetrack.unloading import (
    MODEL_FORMAT,
    UnloadingModel,
    candidate_model,
    feature_matrix,
    rule_scores,
    score_candidates,
    shipped_model,
)


def _synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES))) * 100.0
    y = ((x[:, 1] > 30) & (x[:, 11] > -50)) | (x[:, 5] > 150)
    return x, y.astype(int)


def test_exported_json_predicts_what_scikit_learn_fitted() -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = _synthetic(600)
    gbt = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(x, y)
    doc = json.loads(json.dumps(export(gbt, np.array([0.0, 1.0]), np.array([0.0, 1.0]), {})))
    model = UnloadingModel.from_dict(doc)
    probe, _ = _synthetic(300, seed=1)
    np.testing.assert_allclose(model.raw(probe), gbt.decision_function(probe), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.uncalibrated(probe), gbt.predict_proba(probe)[:, 1], rtol=0, atol=1e-12)
    # the identity map leaves probabilities alone; a real map is applied by interpolation
    np.testing.assert_allclose(model.predict(probe), gbt.predict_proba(probe)[:, 1], atol=1e-12)


def test_calibration_map_is_monotone_and_fitted_on_what_it_is_given() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(2000)
    y = (rng.random(2000) < p**2).astype(int)  # overconfident scores: the map must pull them down
    cx, cy = fit_calibration(p, y)
    assert np.all(np.diff(cx) >= 0) and np.all(np.diff(cy) >= 0)
    assert np.interp(0.5, cx, cy) < 0.4


def test_the_shipped_model_loads_offline_matches_this_version_and_is_deterministic() -> None:
    model = shipped_model()
    assert model is not None, "src/wastetrack/models/unloading.json must ship with the package"
    assert model.features == FEATURES and len(model.trees) > 10
    assert np.all(np.diff(model.calibration_y) >= 0)
    held = set(model.meta["training"]["groups"])
    from wastetrack.simulate.seeds import HELD_OUT_SEEDS

    assert not held & {str(s) for s in HELD_OUT_SEEDS}, "trained on held-out seeds"
    x, _ = _synthetic(50, seed=7)
    a = model.predict(x)
    b = UnloadingModel.from_dict(json.loads(json.dumps({
        "format": MODEL_FORMAT, "features": list(FEATURES), "init_raw": model.init_raw,
        "learning_rate": model.learning_rate,
        "trees": [{"feature": t.feature.tolist(), "threshold": t.threshold.tolist(), "left": t.left.tolist(),
                   "right": t.right.tolist(), "value": t.value.tolist()} for t in model.trees],
        "calibration": {"x": model.calibration_x.tolist(), "y": model.calibration_y.tolist()},
    }))).predict(x)
    assert np.array_equal(a, b) and np.all((a >= 0) & (a <= 1))


def test_a_model_for_other_features_is_refused() -> None:
    doc = {"format": MODEL_FORMAT, "features": ["dwell_s"], "init_raw": 0.0, "learning_rate": 0.1, "trees": [],
           "calibration": {"x": [], "y": []}}
    with pytest.raises(ValueError, match="features"):
        UnloadingModel.from_dict(doc)
    with pytest.raises(ValueError, match="format"):
        UnloadingModel.from_dict({**doc, "format": "pickle"})


def _candidates(rows: list[dict]) -> pd.DataFrame:
    t0 = pd.Timestamp("2026-11-20 01:00", tz="Asia/Shanghai")
    base = {f"f_{f}": 0.0 for f in FEATURES}
    out = []
    for i, r in enumerate(rows):
        out.append({**base, **{f"f_{k}": v for k, v in r.items() if k not in ("haul_id",)},
                    "haul_id": r.get("haul_id", "h1"), "start": t0 + pd.Timedelta(minutes=10 * i)})
    return pd.DataFrame(out)


def test_rules_fallback_ranks_a_track_gap_first_and_the_farther_dwell_next() -> None:
    c = _candidates([
        {"span_s": 240.0, "from_origin_m": 2_000.0, "tipping": -1, "loaded_after": -1},
        {"span_s": 240.0, "from_origin_m": 9_000.0, "tipping": -1, "loaded_after": -1},
        {"span_s": 60 * 60.0, "from_origin_m": 20_000.0, "tipping": -1, "loaded_after": -1},  # a long park
        {"is_silence": 1.0, "span_s": 1500.0},
    ])
    s = rule_scores(c)
    assert s[3] > s[1] > s[0] > 0.5 and s[2] == 0.0
    # the same silence after a stop long enough to be a confident dump ranks below it (it went dark empty)
    s2 = rule_scores(c.assign(f_span_s=[240.0, 400.0, 60 * 60.0, 1500.0]))
    assert s2[1] > s2[3] > 0.5


def test_the_model_prefers_a_turning_point_stop_to_a_stop_on_the_way() -> None:
    """A 6-minute stop where the haul turned back, far from the truck's habits, against a 6-minute stop on
    the straight road out: the shipped model must tell them apart (its first job)."""
    common = {"span_s": 360.0, "dwell_s": 420.0, "n_fixes": 6.0, "ended_by_load": 1.0, "hour_sin": 0.26,
              "hour_cos": 0.97, "tipping": -1.0, "loaded_before": -1.0, "loaded_after": -1.0,
              "home_m": 15_000.0, "usual_receiver_m": 12_000.0, "usual_site_m": 9_000.0, "n_stops_in_haul": 2.0,
              "receiver_before_m": 12_000.0, "receiver_after_m": 12_000.0,
              "speed_before_kmh": 30.0, "speed_after_kmh": 30.0}
    c = _candidates([
        {**common, "turn_deg": 5.0, "detour_m": 20.0, "detour_ratio": 0.002, "from_origin_m": 3_000.0,
         "reach_share": 0.3, "is_farthest": 0.0, "since_depart_s": 420.0, "until_end_s": 3_000.0, "stops_after": 1},
        {**common, "turn_deg": 170.0, "detour_m": 17_000.0, "detour_ratio": 0.95, "from_origin_m": 9_000.0,
         "reach_share": 1.0, "is_farthest": 1.0, "since_depart_s": 1_500.0, "until_end_s": 1_400.0,
         "stops_after": 0},
    ])
    p = score_candidates(c)
    assert p[1] > p[0] and p[1] >= 0.5


def test_decisions_count_leads_and_misses_per_haul() -> None:
    s = pd.DataFrame({
        "group": "3", "profile": "sparse", "haul_id": ["a", "a", "b", "c"],
        "start": pd.to_datetime(["2026-11-20 01:00", "2026-11-20 01:10", "2026-11-20 02:00", "2026-11-20 03:00"]),
        "is_unloading": [False, True, True, True],
        "truth_kind": ["", "illegal_dump", "legit", "track_gap"],
    })
    d = decide(s, np.array([0.2, 0.9, 0.95, 0.3]), 0.5)
    # haul a: the dump chosen (a correct lead); b: a receiver's silence chosen (the map explains it: no
    # lead); c: the track gap left below the threshold (a miss)
    assert (d.hauls, d.violating, d.leads, d.correct) == (3, 2, 1, 1)


def test_a_candidate_model_replaces_the_shipped_one_only_inside_its_block() -> None:
    x, y = _synthetic(300)
    from sklearn.ensemble import GradientBoostingClassifier

    gbt = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(x, y)
    other = UnloadingModel.from_dict(export(gbt, np.array([0.0, 1.0]), np.array([0.0, 1.0]), {}))
    before = shipped_model()
    with candidate_model(other):
        assert shipped_model() is other
    assert shipped_model() is before


def test_lead_scores_are_probabilities_that_reports_raise() -> None:
    evs = [
        {"unload_evidence": "dwell", "unload_p": 0.8},
        {"unload_evidence": "sensor", "tipping": True},
        {"unload_evidence": "receiver", "unload_site_id": "XN-1"},
        {"unload_evidence": "gap", "unload_p": 0.6},
        {"top_score": 1.2, "top_is_stay": True},
    ]
    leads = pd.DataFrame({
        "kind": ["illegal_dump", "illegal_dump", "unmanifested", "track_gap", "report_trace"],
        "evidence": evs,
        "report_ids": [["R1"], [], [], [], ["R2"]],
    })
    out = apply_scores(leads)
    for s, ev in zip(out["score"], out["evidence"], strict=True):
        assert 0.0 < s < 1.0
        assert abs(sum(ev["score_parts"].values()) - s) < 2e-3
    assert lead_group("illegal_dump", evs[1]) == "illegal_dump|sensor_tipping"
    # a report near the same lead raises its probability, never above 0.99
    plain = score_parts("illegal_dump", {"unload_evidence": "dwell", "unload_p": 0.8})
    reported = score_parts("illegal_dump", {"unload_evidence": "dwell", "unload_p": 0.8, "report_ids": ["R1"]})
    assert sum(reported.values()) >= sum(plain.values()) and sum(reported.values()) <= 0.99


def test_a_track_gap_scores_by_how_its_point_was_found() -> None:
    # a truck that stood as it went dark had arrived where it tipped; one still driving may have switched off
    # early on the way; a point from the region's weight alone is rarely within 300 m: the shipped calibration
    # says so (held out: 88 %, 36 %, 0 % of such leads right; the region's group is small — 2 of 7 on the
    # tuning worlds — so only "less likely than not" is asserted for it, not its order against driving)
    def gap(method: str) -> dict:
        return {"unload_evidence": "gap", "unload_p": 0.99, "placement": {"method": method}}

    groups = {m: lead_group("track_gap", gap(m)) for m in ("stood_going_dark", "went_dark_here", "course_and_time")}
    assert groups == {"stood_going_dark": "track_gap|gap_stood", "went_dark_here": "track_gap|gap_dark_driving",
                      "course_and_time": "track_gap|gap_region"}
    assert lead_group("track_gap", gap("stood_there")) == "track_gap|gap_stood"
    stood, driving, region = (sum(score_parts("track_gap", gap(m)).values()) for m in groups)
    assert stood > 0.6 and max(driving, region) < 0.5


def test_feature_matrix_follows_the_model_order() -> None:
    c = _candidates([{f: float(i) for i, f in enumerate(FEATURES)}])
    assert feature_matrix(c).tolist() == [[float(i) for i in range(len(FEATURES))]]
