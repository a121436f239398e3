"""The unloading model: how likely an off-site stop or a silence of a sensorless haul was its unloading.

Trucks with a tipping or load sensor say where they unloaded, and a stay at a
receiver's fence says it too; those decisions stay rules (``hauls``). What no
rule decides well is the rest: which of a haul's off-site stops — fuel, a
lay-by, a red light, a meal, a dump — or which of its silences hid the
unloading. A fixed dwell window and "the stop farthest from the site" got that
wrong both ways (a 5-minute dump seen as two fixes; a fuel stop after the dump),
so a small gradient-boosted tree ensemble, trained on simulated worlds
(``wastetrack train``, ``docs/model_card.md``), weighs the track's evidence
(``features.FEATURES``) instead.

The model ships inside the package as JSON (``models/unloading.json``): the
trees' split features, thresholds, children and leaf values, the prior, and an
isotonic calibration map fitted on out-of-fold predictions. Prediction is a few
vectorised passes per tree — no scikit-learn, no pickle, no network, the same
number on every machine. Without the file (a checkout that never trained) the
rule-based fallback (``rule_scores``) reproduces the old rules as scores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wastetrack.config import DEFAULT_PARAMS, Params
from wastetrack.features import FEATURES

#: the format written by ``wastetrack train`` and read here
MODEL_FORMAT = "wastetrack-unloading-gbt/1"
MODEL_RESOURCE = "models/unloading.json"


@dataclass(frozen=True)
class Tree:
    """One regression tree as arrays (scikit-learn's ``tree_`` layout; a leaf has ``left == -1``)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        depth = np.zeros(len(self.left), dtype=np.int64)
        for i in range(len(self.left)):  # nodes are numbered parents first: one pass fills every depth
            if self.left[i] >= 0:
                depth[self.left[i]] = depth[self.right[i]] = depth[i] + 1
        object.__setattr__(self, "depth", int(depth.max()) if len(depth) else 0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Leaf value of every row of ``x`` (already float32-rounded, as scikit-learn compares)."""
        node = np.zeros(len(x), dtype=np.int64)
        rows = np.arange(len(x))
        for _ in range(self.depth):
            leaf = self.left[node] < 0
            f = np.where(leaf, 0, self.feature[node])
            go_left = x[rows, f] <= self.threshold[node]
            node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
        return self.value[node]


@dataclass(frozen=True)
class UnloadingModel:
    """A binary gradient-boosted tree ensemble with an isotonic calibration map, read from JSON."""

    features: tuple[str, ...]
    init_raw: float
    learning_rate: float
    trees: tuple[Tree, ...]
    calibration_x: np.ndarray
    calibration_y: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> UnloadingModel:
        if doc.get("format") != MODEL_FORMAT:
            raise ValueError(f"unloading model: format {doc.get('format')!r}, expected {MODEL_FORMAT!r}")
        feats = tuple(doc["features"])
        if feats != FEATURES:
            raise ValueError(
                "unloading model: its features do not match this version's (retrain with `wastetrack train`)"
            )
        trees = tuple(
            Tree(
                np.asarray(t["feature"], dtype=np.int64),
                np.asarray(t["threshold"], dtype=np.float64),
                np.asarray(t["left"], dtype=np.int64),
                np.asarray(t["right"], dtype=np.int64),
                np.asarray(t["value"], dtype=np.float64),
            )
            for t in doc["trees"]
        )
        cal = doc["calibration"]
        return cls(
            feats,
            float(doc["init_raw"]),
            float(doc["learning_rate"]),
            trees,
            np.asarray(cal["x"], dtype=np.float64),
            np.asarray(cal["y"], dtype=np.float64),
            dict(doc.get("meta", {})),
        )

    @classmethod
    def load(cls, path: Path | str) -> UnloadingModel:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's log-odds (scikit-learn's ``decision_function``)."""
        x32 = np.asarray(x, dtype=np.float32).astype(np.float64)
        out = np.full(len(x32), self.init_raw)
        for t in self.trees:
            out += self.learning_rate * t.predict(x32)
        return out

    def uncalibrated(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.raw(x)))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability that each candidate was the haul's unloading."""
        p = self.uncalibrated(x)
        if len(self.calibration_x) == 0:
            return p
        return np.interp(p, self.calibration_x, self.calibration_y)


@lru_cache(maxsize=1)
def _packaged_model() -> UnloadingModel | None:
    res = resources.files("wastetrack").joinpath(MODEL_RESOURCE)
    if not res.is_file():
        return None
    return UnloadingModel.from_dict(json.loads(res.read_text(encoding="utf-8")))


#: a model swapped in by ``candidate_model`` (``wastetrack train`` measures a model before shipping it)
_OVERRIDE: list[UnloadingModel] = []


def shipped_model() -> UnloadingModel | None:
    """The model shipped in the package (None when this checkout has none: the rules then decide)."""
    return _OVERRIDE[-1] if _OVERRIDE else _packaged_model()


@contextmanager
def candidate_model(model: UnloadingModel) -> Iterator[None]:
    """Run the night with ``model`` instead of the shipped one (training only: measuring before shipping)."""
    _OVERRIDE.append(model)
    try:
        yield
    finally:
        _OVERRIDE.pop()


def feature_matrix(cands: pd.DataFrame) -> np.ndarray:
    """The candidates' ``f_*`` columns in ``FEATURES`` order, as float64."""
    return np.column_stack([cands[f"f_{f}"].to_numpy(np.float64) for f in FEATURES]) if len(cands) else np.zeros(
        (0, len(FEATURES))
    )


def rule_scores(cands: pd.DataFrame, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """The rules the model replaced, as scores (the fallback, and the baseline ``wastetrack train`` reports).

    A silence that is a track gap ranks first (0.99), unless the haul already
    had an off-site stop of ``dump_confident_dwell_s`` before it (the truck went
    dark empty: 0.55); an off-site stay with an unloading-like dwell
    (``dump_dwell_min_s``-``dump_dwell_max_s``), not reading loaded afterwards
    and not contradicted by a tipping sensor, scores 0.6-0.95 — the farther from
    the loading site, the higher (dumpers drive away, then back).
    """
    n = len(cands)
    if n == 0:
        return np.zeros(0)
    f = {name: cands[f"f_{name}"].to_numpy(float) for name in FEATURES}
    silence = f["is_silence"] > 0
    dwell = f["span_s"]
    stay_ok = (
        ~silence
        & (dwell >= params.dump_dwell_min_s)
        & (dwell <= params.dump_dwell_max_s)
        & (f["loaded_after"] != 1)
        & (f["tipping"] != 0)
    )
    score = np.where(stay_ok, 0.6 + 0.35 * np.minimum(f["from_origin_m"] / 100_000.0, 1.0), 0.0)
    confident = stay_ok & (dwell >= params.dump_confident_dwell_s)
    t0 = cands["start"]
    first_dump = t0.where(confident).groupby(cands["haul_id"].to_numpy()).transform("min")
    after_dump = (first_dump.notna() & (t0 > first_dump)).to_numpy(bool)
    return np.where(silence, np.where(after_dump, 0.55, 0.99), score)


def score_candidates(cands: pd.DataFrame, model: UnloadingModel | None = None) -> np.ndarray:
    """``unload_p`` of every track candidate: the shipped model's calibrated probability, else the rules."""
    model = model if model is not None else shipped_model()
    if model is None:
        return rule_scores(cands)
    return model.predict(feature_matrix(cands))


__all__ = [
    "MODEL_FORMAT",
    "Tree",
    "UnloadingModel",
    "candidate_model",
    "feature_matrix",
    "rule_scores",
    "score_candidates",
    "shipped_model",
]
