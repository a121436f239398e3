"""Benchmark the night run on a simulated landing: time per stage, throughput and peak memory.

    .venv/bin/python benchmarks/bench_night.py --trucks 200 --days 2
    .venv/bin/python benchmarks/bench_night.py --landing /data/landing --date 2026-11-20

Prints one line per stage and a summary (fixes, fixes/s through the detection
stages, peak RSS). Targets live here, not in unit tests: the real night is
~100 million fixes and a later issue holds the run to minutes at that size.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--landing", type=Path, help="existing landing directory (default: simulate one)")
    p.add_argument("--date", help="date to run (default: the last simulated date)")
    p.add_argument("--trucks", type=int, default=200)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sheets", action="store_true", help="include the HTML lead sheets")
    args = p.parse_args(argv)

    from wastetrack.pipeline import run_night
    from wastetrack.simulate import simulate

    work = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    landing = args.landing
    date = args.date
    if landing is None:
        t0 = time.perf_counter()
        landing = work / "landing"
        simulate(landing, work / "truth.json", seed=args.seed, days=args.days, trucks=args.trucks)
        dates = json.loads((work / "truth.json").read_text(encoding="utf-8"))["dates"]
        date = date or dates[-1]
        print(f"simulate: {args.trucks} trucks × {args.days} days in {time.perf_counter() - t0:.1f}s")
    if date is None:
        print("--date is required with --landing", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    res = run_night(landing, date, work / "out", write_sheets=args.sheets)
    wall = time.perf_counter() - t0
    timings = res.run["timings_s"]
    n = res.run["counts"]["fixes"]
    detect_s = sum(v for k, v in timings.items() if k not in ("read", "sheets", "write", "registry"))
    print(
        f"\nnight {date}: {n:,} fixes, {res.run['counts']['stays']:,} stays, {res.run['counts']['hauls']:,} hauls,"
        f" {res.run['leads_total']} leads"
    )
    for stage, secs in timings.items():
        print(f"  {stage:<10} {secs:8.2f} s")
    print(f"  {'total':<10} {wall:8.2f} s")
    print(f"read throughput:      {n / max(timings.get('read', 1e-9), 1e-9):,.0f} fixes/s")
    print(f"detection throughput: {n / max(detect_s, 1e-9):,.0f} fixes/s (clean → route)")
    print(f"peak RSS:             {peak_rss_mb():,.0f} MB")
    print(f"outputs:              {work / 'out'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
