"""Partition a night by vehicle: stable integer vehicle keys and a shard count sized to memory.

Every per-vehicle stage (clean, stays, geofence, hauls, reconcile, classify)
needs all of one vehicle's fixes and nothing of any other vehicle's, so a night
is hash-partitioned by vehicle once, early, and each shard is finished on its
own — the way DuckDB and Polars' streaming engine split a group-by. Peak memory
is then set by the shard size, not by the size of the night.

The key of a vehicle is a 62-bit BLAKE2b hash of its normalised plate
(``沪AD1234``): stable across nights, machines and Python versions (unlike
``hash()``), so the shard of a vehicle depends only on its plate and the
number of shards. It is computed once per *distinct* plate (a few thousand a
night), never per fix.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: keys are masked to 62 bits: positive in int64, and ``key % n`` is the same in numpy and SQL
_KEY_MASK = (1 << 62) - 1
#: what one fix costs at the peak of a shard's detection (frame, sort, stays, hauls; measured by
#: benchmarks/bench_delta.py with ``--measure-bytes-per-fix``; rounded up)
BYTES_PER_FIX = 450
#: a shard smaller than this costs more in fixed overhead (files, imports, reference) than it saves
MIN_FIXES_PER_SHARD = 200_000
MAX_SHARDS = 4096


def vehicle_key(plate: str) -> int:
    """The stable 62-bit integer key of one normalised plate."""
    digest = hashlib.blake2b(plate.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _KEY_MASK


def vehicle_keys(plates: pa.Array | pa.ChunkedArray | Iterable[str]) -> np.ndarray:
    """int64 keys of many plates, hashing each distinct plate once (10^8 fixes, ~10^4 plates)."""
    if not isinstance(plates, (pa.Array, pa.ChunkedArray)):
        plates = pa.array(list(plates), pa.string())
    if isinstance(plates, pa.ChunkedArray):
        plates = plates.combine_chunks() if plates.num_chunks else pa.array([], pa.string())
    if len(plates) == 0:
        return np.zeros(0, dtype=np.int64)
    enc = pc.dictionary_encode(plates)
    keys = np.fromiter((vehicle_key(p) for p in enc.dictionary.to_pylist()), dtype=np.int64,
                       count=len(enc.dictionary))
    return keys[np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]


def shard_of(keys: np.ndarray, n_shards: int) -> np.ndarray:
    """The shard of each vehicle key (``key mod n``)."""
    return (np.asarray(keys, dtype=np.int64) % max(int(n_shards), 1)).astype(np.int32)


@dataclass(frozen=True)
class ShardPlan:
    """How a night is split: ``n_shards`` shards of about ``fixes_per_shard`` fixes each."""

    n_shards: int
    fixes_expected: int
    fixes_per_shard: int
    memory_budget_bytes: int
    workers: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def plan_shards(
    fixes_expected: int,
    workers: int,
    memory_budget_bytes: int,
    n_shards: int | None = None,
    bytes_per_fix: int = BYTES_PER_FIX,
) -> ShardPlan:
    """Shards so that ``workers`` shards in flight at once fit in ``memory_budget_bytes``.

    ``fixes_expected`` comes from ``batch.json`` (declared rows) plus the carried
    state, so the plan is made before a single fix is read. Small nights get one
    shard; a caller may force ``n_shards`` (tests prove leads do not depend on it).
    """
    workers = max(int(workers), 1)
    per_worker = max(memory_budget_bytes // workers, 1)
    cap = max(per_worker // bytes_per_fix, MIN_FIXES_PER_SHARD)
    if n_shards is None:
        n_shards = min(max(math.ceil(fixes_expected / cap), 1), MAX_SHARDS)
        if n_shards > 1:
            # whole rounds of workers: the last round is not one lonely straggler
            n_shards = math.ceil(n_shards / workers) * workers
    n_shards = max(int(n_shards), 1)
    return ShardPlan(
        n_shards=n_shards,
        fixes_expected=int(fixes_expected),
        fixes_per_shard=math.ceil(max(fixes_expected, 1) / n_shards),
        memory_budget_bytes=int(memory_budget_bytes),
        workers=workers,
    )
