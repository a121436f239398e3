"""Column parsers in isolation: plates, credit codes, times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from wastetrack.contract import credit_code_valid, normalise_plate, plate_valid
from wastetrack.contract.columns import RowErrors, parse_float, parse_time

TZ = "Asia/Shanghai"


def _col(values):
    return pa.chunked_array([pa.array(values, pa.string())])


def test_credit_code_check_character():
    codes = pd.Series(
        [
            "91310118MA6MXA7G0K",
            "9144030071526726XG",
            "91330100716105852F",  # valid
            "91310118MA6MXA7G0L",  # wrong check character
            "91310118MA6MXA7G0",
            "91310118MA6MXA7G0KK",
            "91310118MA6MXA7GOK",  # short, long, letter O
            "",
            None,
            "91310118ma6mxa7g0k",
        ],
        index=list("abcdefghij"),
    )
    assert credit_code_valid(codes).tolist() == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
    ]
    assert list(credit_code_valid(codes).index) == list("abcdefghij")


def test_check_character_zero_when_sum_is_a_multiple_of_31():
    # Build a code whose weighted sum is 0 mod 31: 17 zeros → check '0'.
    assert credit_code_valid(pd.Series(["0" * 18, "0" * 17 + "1"])).tolist() == [True, False]


def test_normalise_plate_variants_and_validity():
    s = pd.Series(
        [
            "沪A·D1234",
            "沪A D1234",
            " 沪ad1234 ",
            "沪A•D1234",
            "沪A.D1234",
            "沪Ａ　D1234",
            "苏EE0B00",
            "ABC123",
            None,
        ]
    )
    norm = normalise_plate(s)
    assert norm.iloc[:6].tolist() == ["沪AD1234"] * 6
    assert norm.iloc[6] == "苏EE0B00" and pd.isna(norm.iloc[8])
    assert plate_valid(norm).tolist() == [True] * 7 + [False, False]
    assert plate_valid(pd.Series(["沪AD12345", "沪AD123456", "沪A1234", "X沪AD1234"])).tolist() == [
        True,
        False,
        False,
        False,
    ]


def test_parse_time_formats_row_by_row():
    values = [
        "2026-11-20T23:41:07+08:00",
        "2026-11-20T15:41:07Z",
        "2026-11-20T23:41:07",
        "2026-11-20 23:41:07",
        "2026-11-20T16:41:07+0100",
        "2026-11-20T23:41:07.250+08:00",
        "1795153267000",
        "",
        "not a time",
    ]
    errors = RowErrors(len(values))
    out = parse_time(_col(values), "ts", errors, TZ, required=True, allow_epoch_ms=True)
    expected = pd.Timestamp("2026-11-20T23:41:07+08:00")
    assert (out.iloc[:5] == expected).all()
    assert out.iloc[5] == expected + pd.Timedelta(milliseconds=250)
    assert out.iloc[6] == pd.Timestamp(1795153267000, unit="ms", tz="UTC")
    assert str(out.dt.tz) == TZ
    idx, reasons = errors.collected()
    assert idx.tolist() == [7, 8]
    assert reasons == ["ts: missing", "ts: cannot parse time 'not a time'"]


def test_epoch_ms_only_where_allowed_and_date_only_is_local_midnight():
    errors = RowErrors(2)
    out = parse_time(_col(["1795153267000", "2026-11-20"]), "issued_at", errors, TZ, required=True)
    assert errors.collected()[0].tolist() == [0]
    assert out.iloc[1] == pd.Timestamp("2026-11-20T00:00:00+08:00")


def test_naive_time_uses_the_batch_timezone():
    out = parse_time(_col(["2026-11-20T12:00:00"]), "ts", RowErrors(1), "UTC", required=True)
    assert out.iloc[0] == pd.Timestamp("2026-11-20T20:00:00+08:00")


def test_parse_float_fast_and_slow_paths():
    errors = RowErrors(4)
    assert np.array_equal(
        parse_float(_col(["1.5", "", "-2e1", "7"]), "x", errors, False), [1.5, np.nan, -20, 7], equal_nan=True
    )
    assert len(errors) == 0
    errors = RowErrors(4)
    vals = parse_float(_col([" 1.5 ", "abc", "nan", ""]), "x", errors, True)
    assert vals[0] == 1.5
    idx, reasons = errors.collected()
    assert dict(zip(idx.tolist(), reasons, strict=True)) == {
        1: "x: not a number 'abc'",
        2: "x: not a number 'nan'",
        3: "x: missing",
    }


@pytest.mark.parametrize("values", [["nan", "1"]])
def test_literal_nan_is_rejected_on_the_fast_path(values):
    errors = RowErrors(2)
    parse_float(_col(values), "lon", errors, True)
    assert errors.collected()[1] == ["lon: not a number 'nan'"]


def test_time_fallback_tiers_and_writable_outputs():
    # no nulls anywhere (zero-copy arrow buffers are read-only) and one bad value forcing the fallback tiers
    values = ["2026-11-20T23:41:07+08:00", "2026-11-20T23:41:07.5+08:00", "bad+08:00"]
    errors = RowErrors(3)
    out = parse_time(_col(values), "ts", errors, TZ, required=True)
    assert out.iloc[1] == pd.Timestamp("2026-11-20T23:41:07.5+08:00")
    assert errors.collected()[1] == ["ts: cannot parse time 'bad+08:00'"]
    naive = parse_time(
        _col(["2026-11-20T23:41:07", "2026-11-20T23:41:07.5", "x"]), "ts", RowErrors(3), TZ, True
    )
    assert naive.iloc[1] == pd.Timestamp("2026-11-20T23:41:07.5+08:00") and pd.isna(naive.iloc[2])
    vals = parse_float(_col(["1", "2"]), "x", RowErrors(2), True)
    vals[0] = 5.0  # must be writable
