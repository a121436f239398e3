"""Per-column parsers: Arrow string (or typed Parquet) columns in, typed numpy/pandas values out.

Every reader loads a file with all columns as strings and hands each column to
one parser here; a parser returns the typed values and flags the rows it cannot
accept in a ``RowErrors``. Nothing loops in Python per row: validity is decided
with Arrow compute kernels or numpy, and only the (few) rejected rows get a
Python-built reason. Plates and credit codes are checked on the *distinct*
values, which for GPS are a few thousand among ~10^8 rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from wastetrack import TIMEZONE
from wastetrack.values import PLATE_SEPARATORS

#: Internal timestamp dtype of every time column the contract readers produce.
TIME_DTYPE = f"datetime64[us, {TIMEZONE}]"

_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# Epoch milliseconds: 12-13 digits covers 2001..2286 and can't be mistaken for a basic-ISO date (8 digits).
_EPOCH_MS_RE = r"^\d{12,13}$"
# An offset counts only after a time (":ss" or ":mm"), so a date-only "2026-11-20" stays naive.
_OFFSET_RE = r":\d{2}(\.\d+)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$"
_ADCODE_RE = r"^\d{6}$"
_MAX_SHOWN = 60

#: Province abbreviations that open a civil plate (mainland).
PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_RE = rf"^[{PROVINCE_CHARS}][A-Z][A-Z0-9]{{5,6}}$"
# Separators platforms put inside plates: middle dots of every flavour, full stop, whitespace.
_PLATE_NOISE_RE = "[\\s" + "".join(re.escape(c) for c in PLATE_SEPARATORS) + "]"

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_CREDIT_LOOKUP = np.full(128, -1, dtype=np.int64)
for _i, _ch in enumerate(_CREDIT_ALPHABET):
    _CREDIT_LOOKUP[ord(_ch)] = _i
del _i, _ch


class RowErrors:
    """Collects reasons for rejected rows of one file; a row may collect several reasons.

    ``flag`` stores only the indices of flagged rows, so a clean 100-million-row
    file costs nothing but the masks themselves.
    """

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self._idx: list[np.ndarray] = []
        self._reasons: list[np.ndarray] = []
        self._bad = np.zeros(n_rows, dtype=bool)

    def flag(self, mask: np.ndarray, reason: str | Sequence[str] | np.ndarray) -> None:
        """Reject rows where ``mask``; ``reason`` is one string or one per flagged row (in row order)."""
        mask = np.asarray(mask, dtype=bool)
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        if isinstance(reason, str):
            reasons = np.full(idx.size, reason, dtype=object)
        else:
            reasons = np.asarray(reason, dtype=object)
            if reasons.size != idx.size:
                raise ValueError("one reason per flagged row expected")
        self._idx.append(idx)
        self._reasons.append(reasons)
        self._bad |= mask

    @property
    def bad(self) -> np.ndarray:
        """Boolean mask of rows rejected so far."""
        return self._bad

    def __len__(self) -> int:
        return int(self._bad.sum())

    def collected(self) -> tuple[np.ndarray, list[str]]:
        """(row indices, joined reasons) of rejected rows, indices ascending; reasons in flag order."""
        if not self._idx:
            return np.empty(0, dtype=np.int64), []
        idx = np.concatenate(self._idx)
        reasons = np.concatenate(self._reasons)
        order = np.argsort(idx, kind="stable")
        idx, reasons = idx[order], reasons[order]
        first = np.ones(idx.size, dtype=bool)
        first[1:] = idx[1:] != idx[:-1]
        if first.all():  # the usual case: one reason per row, nothing to join
            return idx.astype(np.int64), reasons.tolist()
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], idx.size)
        joined = ["; ".join(reasons[s:e]) for s, e in zip(starts, ends, strict=True)]
        return idx[starts].astype(np.int64), joined


# ---------------------------------------------------------------- helpers


def _chunked(col: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])


def _np_bool(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow boolean (nulls → False) to numpy."""
    arr = pc.fill_null(arr, False)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def shown(values: np.ndarray | Sequence[object]) -> np.ndarray:
    """repr-like quoting of offending values for reasons, truncated so a bad blob can't bloat a CSV."""
    out = []
    for v in values:
        s = "" if v is None else str(v)
        if len(s) > _MAX_SHOWN:
            s = s[:_MAX_SHOWN] + "…"
        out.append(f"'{s}'")
    return np.asarray(out, dtype=object)


def is_string(col: pa.ChunkedArray | pa.Array) -> bool:
    return pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_null(col.type)


def as_text(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Trimmed text, nulls as ''; typed (Parquet) columns are cast to their string form first."""
    col = _chunked(col)
    if pa.types.is_null(col.type):
        col = col.cast(pa.string())
    if col.type != pa.string():
        col = pc.cast(col, pa.string())
    col = pc.fill_null(col, "")
    return pc.utf8_trim_whitespace(col)


def empty_mask(text: pa.ChunkedArray) -> np.ndarray:
    return _np_bool(pc.equal(pc.utf8_length(text), 0))


def text_values(text: pa.ChunkedArray) -> np.ndarray:
    """Arrow text to a numpy object array (for building pandas ``str`` columns and reasons)."""
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)


def to_str_series(text: pa.ChunkedArray) -> pd.Series:
    return pd.Series(pd.array(text, dtype="str"))


def encode(col: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(distinct trimmed texts, per-row index into them): check low-cardinality columns per distinct value.

    Plates, enums and booleans have a handful to a few thousand distinct values
    among up to ~10^8 rows, so every string kernel runs on the dictionary only.
    """
    col = _chunked(col)
    if col.type != pa.string():
        col = pc.cast(col, pa.string())
    enc = pc.dictionary_encode(col, null_encoding="encode")
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    if isinstance(enc, pa.ChunkedArray):  # zero chunks
        return pa.array([], pa.string()), np.zeros(0, dtype=np.int64)
    dictionary = pc.utf8_trim_whitespace(pc.fill_null(enc.dictionary, ""))
    indices = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return dictionary, indices


def _dict_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _dict_reasons(template: str, dictionary: pa.Array, indices: np.ndarray, bad: np.ndarray) -> list[str]:
    values = dictionary.take(pa.array(indices[bad])).to_pylist() if bad.any() else []
    return [template.format(v=v) for v in shown(values)]


# ---------------------------------------------------------------- strings, ids, enums


def parse_str(col: pa.ChunkedArray, name: str, errors: RowErrors, required: bool) -> pa.ChunkedArray:
    """Trimmed text; '' where empty; rejects empty values of a required column."""
    text = as_text(col)
    if required:
        errors.flag(empty_mask(text), f"{name}: missing")
    return text


def parse_enum(
    col: pa.ChunkedArray, name: str, allowed: Sequence[str], errors: RowErrors, required: bool
) -> pa.ChunkedArray:
    """Lower-cased trimmed value that must be one of ``allowed`` ('' allowed when optional)."""
    dictionary, idx = encode(col)
    dictionary = pc.utf8_lower(dictionary)
    empty_d = _dict_bool(pc.equal(pc.utf8_length(dictionary), 0))
    ok_d = _dict_bool(pc.is_in(dictionary, value_set=pa.array(list(allowed), pa.string())))
    empty, ok = empty_d[idx], ok_d[idx]
    if required:
        errors.flag(empty, f"{name}: missing")
    bad = ~ok & ~empty
    errors.flag(bad, _dict_reasons(f"{name}: {{v}} is not one of {'/'.join(allowed)}", dictionary, idx, bad))
    return pa.chunked_array([dictionary.take(pa.array(idx))], type=pa.string())


def _take_text(text: pa.ChunkedArray, mask: np.ndarray) -> list[object]:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    return text.take(pa.array(idx)).to_pylist()


def parse_adcode(
    col: pa.ChunkedArray, name: str, errors: RowErrors, required: bool, allow_town: bool = False
) -> pa.ChunkedArray:
    """6-digit GB/T 2260 code ('' when optional and empty); towns may use a 9-digit code."""
    text = as_text(col)
    empty = empty_mask(text)
    pattern = r"^(\d{6}|\d{9})$" if allow_town else _ADCODE_RE
    ok = _np_bool(pc.match_substring_regex(text, pattern))
    if required:
        errors.flag(empty, f"{name}: missing")
    bad = ~ok & ~empty
    what = "6- or 9-digit" if allow_town else "6-digit"
    errors.flag(bad, [f"{name}: {v} is not a {what} adcode" for v in shown(_take_text(text, bad))])
    return text


# ---------------------------------------------------------------- plates


def _normalise_plate_arrow(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Normalise on the distinct values only: GPS has ~10^8 rows but a few thousand plates."""
    enc = pc.dictionary_encode(_chunked(text)).combine_chunks()
    dictionary = enc.dictionary
    dictionary = pc.utf8_normalize(dictionary, "NFKC")  # full-width Ａ１ → A1
    dictionary = pc.replace_substring_regex(dictionary, _PLATE_NOISE_RE, "")
    dictionary = pc.utf8_upper(dictionary)
    return pa.chunked_array([pc.cast(pc.take(dictionary, enc.indices), pa.string())], type=pa.string())


def normalise_plate(s: pd.Series) -> pd.Series:
    """Licence plate → vehicle id: drop dots (·•.) and whitespace, NFKC, upper-case latin.

    ``沪A·D1234``, ``沪A D1234`` and ``沪ad1234`` all become ``沪AD1234``. Missing stays missing.
    """
    arr = pa.array(s.astype(object).where(s.notna(), None), type=pa.string(), from_pandas=True)
    out = _normalise_plate_arrow(pa.chunked_array([arr]))
    return pd.Series(pd.array(out, dtype="str"), index=s.index, name=s.name)


def plate_valid(s: pd.Series) -> pd.Series:
    """True where a normalised plate has the civil-plate shape (province, letter, 5-6 alphanumerics)."""
    arr = pa.array(s.astype(object).where(s.notna(), None), type=pa.string(), from_pandas=True)
    ok = pc.fill_null(pc.match_substring_regex(arr, PLATE_RE), False)
    return pd.Series(np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool), index=s.index, name=s.name)


def parse_plate(col: pa.ChunkedArray, name: str, errors: RowErrors) -> pa.ChunkedArray:
    """Required plate column: normalised; rejects empty and malformed plates (checked per distinct plate)."""
    dictionary, idx = encode(col)
    norm = pc.utf8_upper(
        pc.replace_substring_regex(pc.utf8_normalize(dictionary, "NFKC"), _PLATE_NOISE_RE, "")
    )
    empty_d = _dict_bool(pc.equal(pc.utf8_length(dictionary), 0))
    ok_d = _dict_bool(pc.match_substring_regex(norm, PLATE_RE))
    empty, ok = empty_d[idx], ok_d[idx]
    errors.flag(empty, f"{name}: missing")
    bad = ~ok & ~empty
    errors.flag(bad, _dict_reasons(f"{name}: invalid plate {{v}}", dictionary, idx, bad))
    return pa.chunked_array([norm.take(pa.array(idx))], type=pa.string())


# ---------------------------------------------------------------- credit codes


def credit_code_valid(s: pd.Series) -> pd.Series:
    """GB 32100-2015 unified social credit code check (18 chars, check character), vectorised.

    Check = 31 - (Σ value_i × weight_i mod 31), 31 → 0, over the 31-character
    alphabet without I, O, S, V, Z. Computed on distinct codes as a (n, 18)
    code-point matrix, no Python loop per code.
    """
    values = s.astype(object).where(s.notna(), "")
    codes, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    ok = np.zeros(codes.size, dtype=bool)
    lengths = np.char.str_len(codes) if codes.size else np.zeros(0, dtype=int)
    cand = np.flatnonzero(lengths == 18)
    if cand.size:
        mat = np.asarray(codes[cand], dtype="<U18").view(np.uint32).reshape(-1, 18).astype(np.int64)
        in_ascii = (mat < 128).all(axis=1)
        vals = np.where(mat < 128, _CREDIT_LOOKUP[np.minimum(mat, 127)], -1)
        known = (vals >= 0).all(axis=1) & in_ascii
        check = (31 - (vals[:, :17] * _CREDIT_WEIGHTS).sum(axis=1) % 31) % 31
        ok[cand] = known & (check == vals[:, 17])
    return pd.Series(ok[inverse.reshape(-1)], index=s.index, name=s.name)


def parse_credit_code(col: pa.ChunkedArray, name: str, errors: RowErrors) -> pa.ChunkedArray:
    """Required credit code: trimmed; rejects empty codes and codes failing the check character."""
    text = as_text(col)
    empty = empty_mask(text)
    errors.flag(empty, f"{name}: missing")
    ok = credit_code_valid(pd.Series(text_values(text))).to_numpy()
    errors.flag(~ok & ~empty, f"{name}: invalid unified social credit code (check character)")
    return text


# ---------------------------------------------------------------- numbers, booleans


def parse_float(col: pa.ChunkedArray, name: str, errors: RowErrors, required: bool) -> np.ndarray:
    """float64 with NaN where empty; rejects non-numbers (and empties when required)."""
    col = _chunked(col)
    n = len(col)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        values = np.array(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.isnan(values)
        if required:
            errors.flag(missing, f"{name}: missing")
        return values
    if col.type != pa.string():
        col = pc.cast(col, pa.string())
    # Fast path: a clean column casts directly (empties as null); only a column with junk pays for the regex.
    raw_empty = pc.equal(pc.utf8_length(pc.fill_null(col, "")), 0)
    try:
        cast = pc.cast(pc.if_else(raw_empty, pa.scalar(None, pa.string()), col), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        cast = None
    if cast is not None:
        values = np.array(cast.to_numpy(zero_copy_only=False), dtype=np.float64)
        empty = _np_bool(raw_empty)
        if required:
            errors.flag(empty, f"{name}: missing")
        literal_nan = np.isnan(values) & ~empty  # "nan" casts fine but is not a number the contract allows
        errors.flag(literal_nan, [f"{name}: not a number {v}" for v in shown(_take_text(col, literal_nan))])
        return values
    text = as_text(col)
    empty = empty_mask(text)
    ok_arrow = pc.fill_null(pc.match_substring_regex(text, _NUMBER_RE), False)
    ok = _np_bool(ok_arrow)
    values = np.full(n, np.nan)
    if ok.any():
        good = pc.if_else(ok_arrow, text, pa.scalar(None, pa.string()))
        values = np.array(pc.cast(good, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    if required:
        errors.flag(empty, f"{name}: missing")
    bad = ~ok & ~empty
    errors.flag(bad, [f"{name}: not a number {v}" for v in shown(_take_text(text, bad))])
    return values


def check_range(
    values: np.ndarray,
    name: str,
    errors: RowErrors,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> None:
    """Reject finite values outside [lo, hi] (or (lo, hi] with lo_open); NaN is left to ``required``."""
    bad = np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            bad |= (values <= lo) if lo_open else (values < lo)
        if hi is not None:
            bad |= values > hi
        bad |= np.isinf(values)
    if bad.any():
        left = "(" if lo_open else "["
        rng = f"{left}{'' if lo is None else f'{lo:g}'}, {'' if hi is None else f'{hi:g}'}]"
        errors.flag(bad, [f"{name}: out of range {rng} ({v:g})" for v in values[bad]])


def parse_bool(
    col: pa.ChunkedArray, name: str, errors: RowErrors, required: bool = False
) -> pd.arrays.BooleanArray:
    """Nullable boolean: true/false/1/0 (any case); empty = unknown (NA); anything else rejected."""
    col = _chunked(col)
    if pa.types.is_boolean(col.type):
        values = np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)
        out = pd.arrays.BooleanArray(
            values, np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        )
        if required:
            errors.flag(np.asarray(out.isna()), f"{name}: missing")
        return out
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        col = (
            pc.cast(col, pa.string())
            if pa.types.is_integer(col.type)
            else pc.cast(pc.cast(col, pa.int64(), safe=False), pa.string())
        )
    dictionary, idx = encode(col)
    dictionary = pc.utf8_lower(dictionary)
    true_d = _dict_bool(pc.is_in(dictionary, value_set=pa.array(["true", "1"])))
    false_d = _dict_bool(pc.is_in(dictionary, value_set=pa.array(["false", "0"])))
    empty_d = _dict_bool(pc.equal(pc.utf8_length(dictionary), 0))
    is_true, is_false, empty = true_d[idx], false_d[idx], empty_d[idx]
    bad = ~(is_true | is_false | empty)
    errors.flag(bad, _dict_reasons(f"{name}: {{v}} is not a boolean (true/false/1/0)", dictionary, idx, bad))
    if required:
        errors.flag(empty, f"{name}: missing")
    return pd.arrays.BooleanArray(is_true, ~(is_true | is_false))


# ---------------------------------------------------------------- times and dates


def _localise(naive: pd.Series, tz: str) -> pd.Series:
    return naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")


def _utc_us(parsed: pd.Series) -> np.ndarray:
    """int64 microseconds since the epoch (UTC) of a tz-aware series; NaT → iNaT."""
    return np.asarray(parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]").array.asi8, dtype=np.int64)


def _from_utc_us(i8: np.ndarray) -> pd.Series:
    return pd.Series(i8.view("M8[us]")).dt.tz_localize("UTC").dt.tz_convert(TIMEZONE)


def _iso_to_utc_us(sub: pa.ChunkedArray, tz: str, with_offset: bool) -> np.ndarray:
    """ISO strings → UTC microseconds (iNaT where unparseable).

    Arrow's cast parses a clean column ~8x faster than pandas but fails as a
    whole on one bad value; then pandas' ISO parser (errors → NaT) takes over.
    """
    try:
        target = pa.timestamp("us", tz="UTC") if with_offset else pa.timestamp("us")
        micros = np.array(pc.cast(pc.cast(sub, target), pa.int64()).to_numpy(zero_copy_only=False), np.int64)
        if with_offset:
            return micros
        local = pd.Series(micros.view("M8[us]"))
        return _utc_us(_localise(local, tz))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Second tier: the common second-resolution format via strptime (bad rows → null), pandas for the rest.
    fmt = "%Y-%m-%dT%H:%M:%S%z" if with_offset else "%Y-%m-%dT%H:%M:%S"
    st = pc.strptime(sub, format=fmt, unit="us", error_is_null=True)
    micros = np.array(
        pc.fill_null(pc.cast(st, pa.int64()), np.iinfo(np.int64).min).to_numpy(zero_copy_only=False), np.int64
    )
    if not with_offset:
        micros = _utc_us(_localise(pd.Series(micros.view("M8[us]")), tz))
    rest = np.flatnonzero(_np_bool(st.is_null()))
    if rest.size:
        micros = np.array(micros, dtype=np.int64, copy=True)  # Arrow/pandas may hand out read-only views
        micros[rest] = _pandas_iso_to_utc_us(sub.take(pa.array(rest)), tz, with_offset)
    return micros


def _pandas_iso_to_utc_us(sub: pa.ChunkedArray, tz: str, with_offset: bool) -> np.ndarray:
    """pandas' ISO 8601 parser (fractions, odd offsets); unparseable → iNaT."""
    ser = pd.Series(pd.array(sub, dtype="str"))
    if with_offset:
        parsed = pd.to_datetime(ser, format="ISO8601", utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(ser, format="ISO8601", errors="coerce")
        parsed = _localise(parsed, tz) if parsed.dt.tz is None else parsed
    return _utc_us(parsed)


def parse_time(
    col: pa.ChunkedArray,
    name: str,
    errors: RowErrors,
    tz: str,
    required: bool,
    allow_epoch_ms: bool = False,
) -> pd.Series:
    """Times to tz-aware Asia/Shanghai (``TIME_DTYPE``); formats may differ row by row.

    ISO 8601 with an offset or ``Z`` is taken as is; a naive ISO time is local
    time in ``tz`` (the batch's timezone); where ``allow_epoch_ms`` (GPS ts) a
    12-13 digit integer or an int64 column is epoch milliseconds. Parquet
    native timestamps: naive → ``tz``, aware → converted.
    """
    col = _chunked(col)
    n = len(col)
    if pa.types.is_integer(col.type) and allow_epoch_ms:
        col = pc.cast(col, pa.timestamp("ms", tz="UTC"))
    elif pa.types.is_integer(col.type) or pa.types.is_date(col.type):
        col = pc.cast(col, pa.string())
    if pa.types.is_timestamp(col.type):
        ser = pd.Series(col.to_pandas()).reset_index(drop=True)
        if ser.dt.tz is None:
            ser = _localise(ser, tz)
        out = ser.dt.tz_convert(TIMEZONE).astype(TIME_DTYPE)
        if required:
            errors.flag(out.isna().to_numpy(), f"{name}: missing")
        return out
    text = as_text(col)
    empty = empty_mask(text)
    i8 = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    no = np.zeros(n, dtype=bool)
    # Most feeds write one offset: a cheap suffix test settles those rows, the regexes see only the rest
    # (the epoch regex over every row cost as much as parsing the times).
    has_offset = _np_bool(pc.ends_with(text, "+08:00")) | _np_bool(pc.ends_with(text, "Z"))
    is_epoch = no
    if allow_epoch_ms and not has_offset.all():
        other = np.flatnonzero(~has_offset)
        is_epoch = np.zeros(n, dtype=bool)
        is_epoch[other] = _np_bool(pc.match_substring_regex(text.take(pa.array(other)), _EPOCH_MS_RE))
    rest = ~has_offset & ~empty & ~is_epoch
    if rest.any():
        sub = text.take(pa.array(np.flatnonzero(rest)))
        has_offset[rest] = _np_bool(pc.match_substring_regex(sub, _OFFSET_RE))
    has_offset &= ~is_epoch & ~empty
    naive = ~(has_offset | is_epoch | empty)
    for mask, kind in ((has_offset, "offset"), (naive, "naive"), (is_epoch, "epoch")):
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        sub = text if idx.size == n else text.take(pa.array(idx))
        if kind == "epoch":
            ms = np.asarray(pc.cast(sub, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
            i8[idx] = ms * 1000
            continue
        i8[idx] = _iso_to_utc_us(sub, tz, with_offset=kind == "offset")
    result = _from_utc_us(i8)
    if required:
        errors.flag(empty, f"{name}: missing")
    bad = result.isna().to_numpy() & ~empty
    errors.flag(bad, [f"{name}: cannot parse time {v}" for v in shown(_take_text(text, bad))])
    return result


def parse_date(col: pa.ChunkedArray, name: str, errors: RowErrors, required: bool = False) -> np.ndarray:
    """Calendar date (``datetime.date``) or ``pd.NaT`` where empty; accepts YYYY-MM-DD (ISO)."""
    col = _chunked(col)
    text = as_text(col)
    empty = empty_mask(text)
    parsed = pd.to_datetime(pd.Series(pd.array(text, dtype="str")), format="ISO8601", errors="coerce")
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    bad = parsed.isna().to_numpy() & ~empty
    errors.flag(bad, [f"{name}: cannot parse date {v}" for v in shown(_take_text(text, bad))])
    if required:
        errors.flag(empty, f"{name}: missing")
    out = np.full(len(text), pd.NaT, dtype=object)
    good = ~parsed.isna().to_numpy()
    if good.any():
        out[good] = np.asarray(parsed[good].dt.date, dtype=object)
    return out
