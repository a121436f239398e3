"""Midnight carry-over: what night D hands to night D+1, so D+1 never re-reads D's batch.

Trucks work at night, so hauls cross midnight. Night D+1 must see, for every
vehicle, whatever D could not close: the haul still open at midnight (loaded or
not yet back to load again — an off-site stop is only an unloading once the
truck loads again), the stay the truck was in when D's data ended, and the
manifests not yet used. That is the *state* of D:

* ``tail/<shard>.parquet`` — each vehicle's fixes from just before its open
  haul (or its last stay, or the last ``min_tail_hours``), at most
  ``context_hours`` back, as read (before cleaning, so D+1 cleans the seam the
  same way it would have cleaned one long track), in the shard file schema:
  D+1 detects on these;
* ``trace/<shard>.parquet`` — the rest of the last ``context_hours``: D+1 only
  looks in them for trucks that passed a dumping report's spot (a report of the
  morning often covers the evening before), never detects on them;
* ``stays.pkl`` — D's stays of those hours, for the same purpose;
* ``vehicles.parquet`` — per vehicle: last fix, where, loaded or empty, the
  open haul (origin, departure) and the last stay: what an analyst asks
  "where was this truck at midnight?";
* ``manifests.pkl`` — D's manifests (not cancelled): the rebuilt hauls need theirs again;
* ``state.json`` — counts and the date, referenced from the store with the night.

Only when that state is missing (the first night of a deployment, or lost) is
the previous batch read again; the run then says so (``run.json`` ``context``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wastetrack import TIMEZONE
from wastetrack.clean import _ts_i8, max_per_vehicle
from wastetrack.config import Params

#: what a state directory holds, and its version (a newer wastetrack refuses an unknown one)
STATE_FORMAT = 1


def tail_start(
    fixes: pd.DataFrame, stays: pd.DataFrame, hauls: pd.DataFrame, date: str, params: Params
) -> pd.Series:
    """Per vehicle (index: plate), the earliest fix time (int64 µs, UTC) night D+1 detects on.

    A pure function of the vehicle. The open haul is the last haul without a
    next loading (``returned_empty`` false): D+1 must rebuild it from its loading
    visit. A truck still standing when D's data ended (its last stay reaches its
    last fix) carries that stay, both from ``tail_margin_s`` before they began (the
    stay detector's window, a gate queue merged with the loading). Everyone carries
    at least ``min_tail_hours`` (sheets draw 2 h before an event): a haul that ended
    earlier was decided by D, so the plain minimum needs no margin (an hour of
    every truck's fixes, a fifth of what a delta night carried). Never more than
    ``context_hours``.
    """
    day1 = pd.Timestamp(date, tz=TIMEZONE) + pd.Timedelta(days=1)
    floor = _us_of(day1 - pd.Timedelta(hours=params.context_hours))
    base = _us_of(day1 - pd.Timedelta(hours=params.min_tail_hours))
    last_fix = max_per_vehicle(fixes["vehicle_id"], _ts_i8(fixes["ts"]))
    start = pd.Series(base, index=last_fix.index, dtype=np.int64)
    big = np.iinfo(np.int64).max
    margin = int(params.tail_margin_s * 1e6)
    if len(hauls):
        open_h = hauls.loc[~hauls["returned_empty"].astype(bool)]
        if len(open_h):
            load = pd.Series(_ts_i8(open_h["load_start"].astype(f"datetime64[us, {TIMEZONE}]")))
            first_open = load.groupby(open_h["vehicle_id"].astype(str).to_numpy()).min()
            start = np.minimum(start, first_open.astype(np.int64).reindex(start.index, fill_value=big) - margin)
    if len(stays):
        last_stay = stays.sort_values(["vehicle_id", "end"]).drop_duplicates("vehicle_id", keep="last")
        ids = last_stay["vehicle_id"].astype(str).to_numpy()
        s_end = _ts_i8(last_stay["end"])
        s_start = pd.Series(_ts_i8(last_stay["start"]), index=ids)
        ongoing = s_end >= last_fix.reindex(ids, fill_value=0).to_numpy() - int(params.stay_silence_split_s * 1e6)
        start = np.minimum(start, s_start[ongoing].reindex(start.index, fill_value=big) - margin)
    return start.clip(lower=floor).astype(np.int64)


def _by_vehicle(values: pd.Series, out: pd.DataFrame, missing: str | None = None) -> pd.api.extensions.ExtensionArray:
    """``values`` (indexed by plate) for each row of ``out``, keeping the dtype (``Series.map`` turns an empty
    datetime column into float64 and then fails: a shard whose every haul had returned empty)."""
    got = values.reindex(out["vehicle_id"].to_numpy())
    if missing is not None:
        got = got.astype(object).where(got.notna(), missing)
    return got.array


def _us_of(t: pd.Timestamp) -> int:
    return int(t.value // 1000)


def vehicle_summary(
    fixes: pd.DataFrame, stays: pd.DataFrame, hauls: pd.DataFrame, date: str
) -> pd.DataFrame:
    """Where each vehicle stood when D's data ended: last fix, load state, open haul, last stay."""
    if fixes.empty:
        return pd.DataFrame(columns=["vehicle_id", "last_fix", "last_lon", "last_lat", "loaded", "open_haul_id",
                                     "open_haul_origin_site_id", "open_haul_depart", "last_stay_id",
                                     "last_stay_start", "last_stay_end"])
    day1 = pd.Timestamp(date, tz=TIMEZONE) + pd.Timedelta(days=1)
    t = _ts_i8(fixes["ts"])
    before = t < day1.value // 1000
    # fixes are sorted by vehicle and time: a vehicle's last fix before midnight is the last row of its block
    codes = np.asarray(fixes["vehicle_id"].cat.codes if isinstance(fixes["vehicle_id"].dtype, pd.CategoricalDtype)
                       else pd.factorize(fixes["vehicle_id"])[0])
    idx = np.flatnonzero(before)
    is_last = np.r_[codes[idx][1:] != codes[idx][:-1], True] if idx.size else np.zeros(0, bool)
    last = fixes.iloc[idx[is_last]]
    out = pd.DataFrame({
        "vehicle_id": last["vehicle_id"].astype(str).to_numpy(object),
        "last_fix": last["ts"].array,
        "last_lon": last["lon"].to_numpy(float),
        "last_lat": last["lat"].to_numpy(float),
        "loaded": last["loaded"].astype("boolean").to_numpy() if "loaded" in last else pd.NA,
    })
    if len(hauls):
        open_h = hauls.loc[~hauls["returned_empty"].astype(bool)].sort_values("depart")
        open_h = open_h.drop_duplicates("vehicle_id", keep="last").set_index("vehicle_id")
        out["open_haul_id"] = _by_vehicle(open_h["haul_id"], out, "")
        out["open_haul_origin_site_id"] = _by_vehicle(open_h["origin_site_id"], out, "")
        out["open_haul_depart"] = _by_vehicle(open_h["depart"], out)
    else:
        out["open_haul_id"] = ""
        out["open_haul_origin_site_id"] = ""
        out["open_haul_depart"] = pd.NaT
    if len(stays):
        s = stays.loc[stays["start"] < day1].sort_values("end").drop_duplicates("vehicle_id", keep="last")
        s = s.set_index("vehicle_id")
        out["last_stay_id"] = _by_vehicle(s["stay_id"], out, "")
        out["last_stay_start"] = _by_vehicle(s["start"], out)
        out["last_stay_end"] = _by_vehicle(s["end"], out)
    else:
        out["last_stay_id"] = ""
        out["last_stay_start"] = pd.NaT
        out["last_stay_end"] = pd.NaT
    return out


def open_manifests(manifests: pd.DataFrame, date: str) -> pd.DataFrame:
    """D's own manifests (by ``issued_at``) the next night may need: every one not cancelled.

    Not only the unused ones: the next night rebuilds the hauls of the carried
    tail, and each must find the manifest it used on D again — drop that one and
    the rebuilt haul takes another (a pre-booked one without scans), whose real
    haul then looks unmanifested. Matching is one-to-one per vehicle, so giving
    the rebuilt hauls their manifests back is what keeps the next night honest.
    """
    if manifests.empty:
        return manifests
    day = manifests["issued_at"].dt.tz_convert(TIMEZONE).dt.strftime("%Y-%m-%d")
    keep = (day == date) & (manifests["status"] != "cancelled")
    return manifests.loc[keep].reset_index(drop=True)


@dataclass
class State:
    """A night's carry-over state on disk (``uri`` is its directory)."""

    date: str
    uri: str
    tail_files: list[str]  # fixes the next night detects on (open hauls, last stays)
    trace_files: list[str]  # older fixes of the last ``context_hours``: only for tracing reports
    vehicles: int
    fixes: int
    manifests: int
    plates: dict[str, str]

    @classmethod
    def load(cls, uri: str) -> State:
        path = Path(uri)
        meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"state {uri}: format {meta.get('format')!r}, this wastetrack reads {STATE_FORMAT}")
        plates = json.loads((path / "plates.json").read_text(encoding="utf-8"))
        tails = [str(path / "tail" / f) for f in meta["tail_files"]]
        traces = [str(path / "trace" / f) for f in meta.get("trace_files", [])]
        missing = [f for f in (*tails, *traces) if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"state {uri}: {len(missing)} file(s) missing, e.g. {missing[0]}")
        return cls(meta["date"], uri, tails, traces, int(meta["vehicles"]), int(meta["fixes"]),
                   int(meta["manifests"]), plates)

    def floors(self) -> pd.DataFrame:
        """(vkey, floor_us): where tonight's detection may start for each vehicle the state carried."""
        from wastetrack.partition import vehicle_keys

        v = pd.read_parquet(Path(self.uri) / "vehicles.parquet", columns=["vehicle_id", "tail_start_us"])
        v = v.loc[v["tail_start_us"] > 0]
        return pd.DataFrame({"vkey": vehicle_keys(v["vehicle_id"].astype(str).tolist()),
                             "floor_us": v["tail_start_us"].to_numpy(np.int64)})

    def manifests_frame(self) -> pd.DataFrame:
        return pd.read_pickle(Path(self.uri) / "manifests.pkl")

    def stays_frame(self) -> pd.DataFrame:
        """The night's stays of the last ``context_hours``: where trucks stood, for tracing tomorrow's reports."""
        path = Path(self.uri) / "stays.pkl"
        return pd.read_pickle(path) if path.exists() else pd.DataFrame()

    def ref(self) -> dict:
        """What the store keeps about this state (``Store.replace_night(state=…)``)."""
        return {"uri": self.uri, "vehicles": self.vehicles, "fixes": self.fixes, "manifests": self.manifests,
                "format": STATE_FORMAT, "date": self.date,
                "created_at": pd.Timestamp.now(tz=TIMEZONE).isoformat(timespec="seconds")}


def write_state(
    state_dir: Path,
    date: str,
    vehicles: pd.DataFrame,
    manifests: pd.DataFrame,
    stays: pd.DataFrame,
    plates: dict[str, str],
    fixes: int,
) -> State:
    """Write the small state files next to the tails the shards wrote; ``state.json`` last (it marks complete)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    vehicles.to_parquet(state_dir / "vehicles.parquet", index=False)
    manifests.to_pickle(state_dir / "manifests.pkl")
    stays.to_pickle(state_dir / "stays.pkl")
    (state_dir / "plates.json").write_text(json.dumps(plates, ensure_ascii=False), encoding="utf-8")
    meta = {
        "format": STATE_FORMAT,
        "date": date,
        "tail_files": sorted(p.name for p in (state_dir / "tail").glob("*.parquet")),
        "trace_files": sorted(p.name for p in (state_dir / "trace").glob("*.parquet")),
        "vehicles": len(vehicles),
        "fixes": int(fixes),
        "manifests": len(manifests),
    }
    tmp = state_dir / "state.json.tmp"
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    tmp.replace(state_dir / "state.json")
    return State.load(str(state_dir))
