"""The delta-night benchmark: 1 M, 10 M and 100 M fixes end to end, time per stage and peak memory.

    .venv/bin/python benchmarks/bench_delta.py                       # 1 M, 10 M, 100 M; mixed formats
    .venv/bin/python benchmarks/bench_delta.py --sizes 1e6,1e7 --parquet
    .venv/bin/python benchmarks/bench_delta.py --baselines movingpandas,trackintel --sizes 1e6

How: a base fleet is simulated once (``--base-trucks``, two nights) and
multiplied (``wastetrack.simulate.replicate``: new plates, terminals and
manifests) to each size. For each size both nights run through the real CLI
(``wastetrack run``, sheets and the store included) in a subprocess whose whole
process tree is polled for its resident memory; the second night — the one
that starts from the first night's carried state, as every night of a real
deployment does — is the headline. Prints a table and writes JSON
(``--json``). ``--baselines`` runs movingpandas' ``TrajectoryStopDetector``
and trackintel's ``generate_staypoints`` on a 200 k-fix slice of the same
fixes, each in its own virtual environment (created on first use), so the
ratio of our end-to-end throughput to their stop detection alone is printed.

Targets (issue 5, on a 2-core, 24 GB machine): 100 M fixes in ≤ 8 GB peak RSS,
≤ 10 min with mixed CSV / csv.gz / Parquet parts, ≤ 5 min all Parquet;
end-to-end fixes/s ≥ 10× movingpandas' stop detection; linear cost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- memory of a process tree


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as fh:
                stat = fh.read().decode("latin-1")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, now."""
    kids = _children()
    todo, total = [pid], 0
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            pass
        todo.extend(kids.get(p, []))
    return total


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; return wall seconds, the peak RSS of its process tree, exit code and output tail."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            stop.wait(0.25)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, _ = proc.communicate()
    stop.set()
    th.join()
    return {"wall_s": round(time.perf_counter() - t0, 2), "peak_rss_gb": round(peak[0] / 1024**3, 2),
            "returncode": proc.returncode, "output": out[-3000:]}


# ---------------------------------------------------------------- landings


def base_landing(work: Path, trucks: int, seed: int) -> Path:
    base = work / f"base-{trucks}-s{seed}"
    if not (base / "truth.json").exists():
        shutil.rmtree(base, ignore_errors=True)
        cmd = [PY, "-m", "wastetrack.cli", "simulate", "--out", str(base / "landing"), "--truth",
               str(base / "truth.json"), "--seed", str(seed), "--trucks", str(trucks), "--days", "2"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return base / "landing"


def day_rows(landing: Path, date: str) -> int:
    meta = json.loads((landing / date / "batch.json").read_text(encoding="utf-8"))
    return sum(f["rows"] for f in meta["files"] if f["path"].startswith("gps/"))


def scaled_landing(work: Path, base: Path, factor: int, parquet: bool) -> Path:
    from wastetrack.simulate.replicate import replicate

    out = work / f"landing-x{factor}{'-pq' if parquet else ''}"
    done = out / ".complete"
    if not done.exists():
        t0 = time.perf_counter()
        rows = replicate(base, out, factor, parquet_only=parquet)
        done.write_text(json.dumps(rows))
        print(f"  generated ×{factor} ({'Parquet' if parquet else 'mixed formats'}): {rows} "
              f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


# ---------------------------------------------------------------- one size


def bench_size(work: Path, landing: Path, dates: list[str], args: argparse.Namespace, label: str) -> dict:
    out = work / f"out-{label}"
    shutil.rmtree(out, ignore_errors=True)
    nights = []
    for date in dates:
        cmd = [PY, "-m", "wastetrack.cli", "run", "--landing", str(landing), "--date", date, "--out", str(out),
               "-q", "--workers", str(args.workers), "--memory-gb", str(args.memory_gb)]
        if args.store:
            cmd += ["--store", args.store]
        m = run_measured(cmd)
        if m["returncode"] != 0:
            raise SystemExit(f"wastetrack run failed for {label} {date}:\n{m['output']}")
        run = json.loads((out / date / "run.json").read_text(encoding="utf-8"))
        gps_rows = sum(f["rows_in"] for f in run["files"] if "/gps/" in f["path"])
        nights.append({
            "date": date, **{k: m[k] for k in ("wall_s", "peak_rss_gb")}, "fixes_in_batch": gps_rows,
            "fixes_processed": run["counts"]["fixes"], "carried_fixes_next": run["counts"].get("carried_fixes"),
            "leads": run["leads_total"], "shards": run.get("shards"), "context": run["context"]["source"],
            "timings_s": run["timings_s"], "fixes_per_s": round(gps_rows / m["wall_s"]),
        })
        print(f"  {label} {date}: {gps_rows:,} fixes in {m['wall_s']:.1f} s "
              f"({gps_rows / m['wall_s']:,.0f}/s), peak {m['peak_rss_gb']:.2f} GB, {run['leads_total']} leads, "
              f"context {run['context']['source']}", flush=True)
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return {"label": label, "nights": nights}


# ---------------------------------------------------------------- baselines in their own venvs


BASELINE_CODE = {
    "movingpandas": """
import sys, time, datetime as dt
import pandas as pd, geopandas as gpd, movingpandas as mpd
df = pd.read_parquet(sys.argv[1])
gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326").set_index("ts")
t0 = time.perf_counter()
tc = mpd.TrajectoryCollection(gdf, "vehicle_id")
stops = mpd.TrajectoryStopDetector(tc).get_stop_points(min_duration=dt.timedelta(seconds=150), max_diameter=60)
s = time.perf_counter() - t0
print(f"RESULT {len(df)} {s:.3f} {len(stops)}")
""",
    "trackintel": """
import sys, time
import pandas as pd, geopandas as gpd, trackintel as ti
df = pd.read_parquet(sys.argv[1])
pfs = gpd.GeoDataFrame({"user_id": df.vehicle_id, "tracked_at": df.ts},
                       geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")
pfs = ti.Positionfixes(pfs) if hasattr(ti, "Positionfixes") else pfs
t0 = time.perf_counter()
pfs, sp = ti.preprocessing.positionfixes.generate_staypoints(pfs, dist_threshold=60, time_threshold=2.5)
s = time.perf_counter() - t0
print(f"RESULT {len(df)} {s:.3f} {len(sp)}")
""",
}


def baseline(work: Path, name: str, slice_path: Path) -> dict:
    venv = work / f"venv-{name}"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", name, "pyarrow"], check=True)
    script = work / f"baseline_{name}.py"
    script.write_text(BASELINE_CODE[name], encoding="utf-8")
    res = subprocess.run([str(py), str(script), str(slice_path)], capture_output=True, text=True, check=False)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        return {"name": name, "error": (res.stderr or res.stdout)[-2000:]}
    _, n, secs, found = line.split()
    return {"name": name, "fixes": int(n), "seconds": float(secs), "stops": int(found),
            "fixes_per_s": round(int(n) / float(secs))}


def fix_slice(landing: Path, date: str, n: int, path: Path) -> Path:
    """The first ``n`` fixes (whole vehicles, in plate order) of the base night, cleaned by our readers."""
    from wastetrack.contract import read_night

    gps = read_night(landing, date).gps
    gps = gps.sort_values(["vehicle_id", "ts"], kind="stable")
    counts = gps.groupby("vehicle_id", sort=True).size().cumsum()
    keep = counts.index[counts <= n]
    sl = gps.loc[gps["vehicle_id"].isin(keep), ["vehicle_id", "ts", "lon", "lat"]]
    sl.assign(vehicle_id=sl["vehicle_id"].astype(str)).to_parquet(path, index=False)
    return path


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1e6,1e7,1e8", help="fixes per night, comma-separated (default 1e6,1e7,1e8)")
    p.add_argument("--parquet", action="store_true", help="all GPS parts as Parquet (default: mixed formats)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--memory-gb", type=float, default=6.0, help="the night's memory budget (default 6)")
    p.add_argument("--base-trucks", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--store", help="store URL (default: OUT/wastetrack.db)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wastetrack-bench")
    p.add_argument("--json", type=Path, help="write the figures here (default WORK/bench-delta.json)")
    p.add_argument("--baselines", default="", help="movingpandas,trackintel: stop detection on a 200 k slice")
    p.add_argument("--keep", action="store_true", help="keep the outputs of each size")
    args = p.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {work}", flush=True)
    base = base_landing(work, args.base_trucks, args.seed)
    dates = sorted(d.name for d in base.iterdir() if d.is_dir() and d.name != "reference")
    per_factor = day_rows(base, dates[-1])
    results = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
               "args": {k: str(v) for k, v in vars(args).items()}, "sizes": [], "baselines": []}
    for size in [float(s) for s in args.sizes.split(",") if s]:
        factor = max(math.ceil(size / per_factor), 1)
        landing = scaled_landing(work, base, factor, args.parquet)
        label = f"{size:.0e}{'-pq' if args.parquet else ''}"
        results["sizes"].append({"target": size, "factor": factor, **bench_size(work, landing, dates, args, label)})
    if args.baselines:
        sl = fix_slice(base, dates[-1], 200_000, work / "slice-200k.parquet")
        for name in args.baselines.split(","):
            results["baselines"].append(baseline(work, name.strip(), sl))
    _print_table(results)
    path = args.json or work / "bench-delta.json"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\nJSON: {path}")
    return 0


def _print_table(results: dict) -> None:
    print("\nnight 2 (starts from night 1's carried state), end to end with sheets and the store:")
    print(f"{'size':>8} {'fixes':>12} {'wall s':>8} {'fixes/s':>10} {'peak GB':>8} {'shards':>6}  stages (s)")
    best = 0
    for s in results["sizes"]:
        n = s["nights"][-1]
        best = max(best, n["fixes_per_s"])
        t = n["timings_s"]
        stages = " ".join(f"{k} {v:.0f}" for k, v in t.items() if k != "shard_stages")
        print(f"{s['label']:>8} {n['fixes_in_batch']:>12,} {n['wall_s']:>8.1f} {n['fixes_per_s']:>10,} "
              f"{n['peak_rss_gb']:>8.2f} {n['shards']['n'] if n['shards'] else '':>6}  {stages}")
    for b in results["baselines"]:
        if "error" in b:
            print(f"{b['name']}: failed: {b['error'][-300:]}")
            continue
        print(f"{b['name']} stop detection alone: {b['fixes']:,} fixes in {b['seconds']:.1f} s "
              f"= {b['fixes_per_s']:,} fixes/s; wastetrack end to end is {best / b['fixes_per_s']:.1f}× that")


if __name__ == "__main__":
    sys.exit(main())
