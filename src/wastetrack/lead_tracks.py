"""The suspects' fixes around each lead: one long frame sorted by lead, read by whoever needs a few of them.

A delta night has ten thousand leads with a few hundred fixes each. As a dict
of ten thousand small frames they were built one by one in the merge, pickled
one by one, and unpickled whole by every sheet task (each renders an eighth of
the sheets): about a quarter of the sheets' time went on loading tracks they
never drew. Here they are one Arrow file (``tracks.arrow``, rows grouped by
``lead_id``); a sheet task memory-maps it and converts only its own leads'
rows. ``LeadTracks`` is a read-only ``Mapping`` lead_id → frame, so the
sheets and the store take it where they took the dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

KEY = "lead_id"


class LeadTracks(Mapping[str, pd.DataFrame]):
    """lead_id → that lead's track (the fixes in time order, ``shard.TRACK_COLUMNS``), from one long frame."""

    def __init__(self, frame: pd.DataFrame | None = None) -> None:
        """``frame``: long form with a ``lead_id`` column; a lead's rows in time order (they are kept so)."""
        if frame is None or frame.empty:
            self._body, self._bounds = pd.DataFrame(), {}
            return
        frame = frame.sort_values(KEY, kind="stable", ignore_index=True)  # stable: each track keeps its order
        ids = frame[KEY].astype(str).to_numpy(object)
        cut = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        starts, ends = np.r_[0, cut], np.r_[cut, len(ids)]
        self._body = frame.drop(columns=KEY)
        self._bounds = {str(ids[a]): (int(a), int(b)) for a, b in zip(starts, ends, strict=True)}

    def __getitem__(self, lead_id: str) -> pd.DataFrame:
        a, b = self._bounds[lead_id]
        return self._body.iloc[a:b].reset_index(drop=True)

    def __iter__(self) -> Iterator[str]:
        return iter(self._bounds)

    def __len__(self) -> int:
        return len(self._bounds)

    def spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
        """(lead ids, first row, end row, body): each lead's rows are ``body.iloc[first:end]`` (vectorised use)."""
        ids = np.array(list(self._bounds), dtype=object)
        ab = np.array(list(self._bounds.values()), dtype=np.int64).reshape(-1, 2)
        return ids, ab[:, 0], ab[:, 1], self._body

    def long_frame(self) -> pd.DataFrame:
        """Every track in one frame with its ``lead_id`` (grouped by lead)."""
        if not self._bounds:
            return pd.DataFrame({KEY: pd.Series(dtype=object)})
        n = np.array([b - a for a, b in self._bounds.values()])
        return self._body.assign(**{KEY: np.repeat(np.array(list(self._bounds), dtype=object), n)})

    @classmethod
    def from_dict(cls, tracks: Mapping[str, pd.DataFrame]) -> LeadTracks:
        frames = [t.assign(**{KEY: str(k)}) for k, t in tracks.items() if len(t)]
        return cls(pd.concat(frames, ignore_index=True) if frames else None)

    def save(self, path: Path | str) -> None:
        """Write the tracks as one Arrow IPC file (atomically: a temporary file, then a rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        table = pa.Table.from_pandas(self.long_frame(), preserve_index=False)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str, lead_ids: Iterable[str] | None = None) -> LeadTracks:
        """The tracks of ``lead_ids`` (all when None), read from a memory map: the others are never decoded."""
        path = Path(path)
        if not path.is_file():
            return cls()
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
            if lead_ids is not None:
                wanted = pa.array(sorted({str(i) for i in lead_ids}), pa.string())
                table = table.filter(pc.is_in(table.column(KEY), value_set=wanted))
            frame = table.to_pandas()
        return cls(frame)


__all__ = ["LeadTracks"]
