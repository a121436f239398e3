"""One place for each shared rule: plates, three-state booleans, JSON values, the time zone, the spike
filter and the previous day's policy — and every stage uses that one place."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from wastetrack import TIMEZONE
from wastetrack.contract.columns import RowErrors, parse_plate
from wastetrack.contract.columns import normalise_plate as plate_column
from wastetrack.values import jsonable, local_seconds, normalise_plate, opt_bool, tri_state

SRC = Path(__file__).resolve().parents[1] / "src" / "wastetrack"
EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "contract" / "example"
SPELLINGS = ["沪A·D1234", "沪A D1234", " 沪ad1234 ", "沪ＡＤ１２３４", "沪A．D1234", "沪A・D1234",
             "沪A\u3000D1234", "沪A•D1234"]


def test_every_plate_spelling_is_one_vehicle_in_every_stage() -> None:
    assert {normalise_plate(s) for s in SPELLINGS} == {"沪AD1234"}
    assert set(plate_column(pd.Series(SPELLINGS))) == {"沪AD1234"}
    parsed = parse_plate(pa.chunked_array([pa.array(SPELLINGS)]), "vehicle_id", RowErrors(len(SPELLINGS)))
    assert set(parsed.to_pylist()) == {"沪AD1234"}
    from wastetrack import evaluate
    from wastetrack.sheets import context

    assert evaluate.normalise_plate is normalise_plate and context.normalise_plate is normalise_plate
    assert normalise_plate(None) == normalise_plate(float("nan")) == ""


def test_unknown_stays_unknown() -> None:
    cases = [
        pd.Series([True, None, False], dtype="boolean"),
        pd.Series([1.0, np.nan, 0.0]),
        pd.Series(["true", None, "0"]),
        pd.Series([True, None, False], dtype=object),
    ]
    for s in cases:
        assert tri_state(s).tolist() == [1, -1, 0], s
    assert [opt_bool(v) for v in (True, None, pd.NA, float("nan"), 0)] == [True, None, None, None, False]


def test_json_values_are_plain_and_nan_free() -> None:
    t = pd.Timestamp("2026-11-20 23:41:07.5", tz="UTC")
    value = {"a": np.int64(3), "b": np.float32(1.5), "c": float("nan"), "d": [np.bool_(True), pd.NA], "t": t,
             "s": {"y", "x"}, "inf": np.inf}
    out = jsonable(value)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["c"] is None and out["inf"] is None and out["s"] == ["x", "y"] and out["d"] == [True, None]
    assert jsonable(value, time=local_seconds)["t"] == "2026-11-21T07:41:07+08:00"
    assert not any(isinstance(v, float) and math.isnan(v) for v in out.values())


def test_the_time_zone_and_shared_rules_are_written_once() -> None:
    literals = [p for p in SRC.rglob("*.py") if '"Asia/Shanghai"' in p.read_text(encoding="utf-8")]
    assert [p.relative_to(SRC).as_posix() for p in literals] == ["__init__.py"]
    defs = re.compile(r"^def (_?normali[sz]e_plate|_?jsonable|_opt_bool|_bool_codes|_tri_state|_?spikes)\(", re.M)
    found = sorted(f"{p.relative_to(SRC).as_posix()}:{m.group(1)}" for p in SRC.rglob("*.py")
                   for m in defs.finditer(p.read_text(encoding="utf-8")))
    assert found == ["clean.py:spikes", "contract/columns.py:normalise_plate", "values.py:jsonable",
                     "values.py:normalise_plate"], found
    assert TIMEZONE == "Asia/Shanghai"


def test_the_previous_day_has_one_policy(tmp_path: Path) -> None:
    from wastetrack.contract import BatchError, read_context

    landing = tmp_path / "landing"
    shutil.copytree(EXAMPLE, landing)
    assert read_context(landing, "2026-11-18") is None  # absent: a first night
    meta = json.loads((landing / "2026-11-19" / "batch.json").read_text(encoding="utf-8"))
    meta["complete"] = False
    (landing / "2026-11-19" / "batch.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(BatchError, match="needed to stitch trips across midnight"):
        read_context(landing, "2026-11-19")  # refused: refused, as the night run refuses
    assert read_context(landing, "2026-11-19", without_context=True) is None
