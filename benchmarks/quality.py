"""Quality scorecard: the detector on held-out simulated worlds, per profile, scored by the strict evaluator.

    .venv/bin/python benchmarks/quality.py                       # 2 seeds × 60 trucks × 2 nights per profile
    .venv/bin/python benchmarks/quality.py --seeds 3 --trucks 200 --json scorecard.json
    .venv/bin/python benchmarks/quality.py --profiles sparse --seeds 1 --keep /tmp/wt-q   # keep the runs

For each profile (``standard``, ``hard``, ``sparse``) and each of the first N
``HELD_OUT_SEEDS`` it simulates a world, runs every night through the public
command line exactly as an operator would (``wastetrack run --landing L --date
D --out O -q``, one call per date, in date order, on a fresh store), and scores
the outputs with ``wastetrack.evaluate`` under the strict rules (same vehicle,
±10 min, 300 m, one-to-one). Counts are summed over the seeds of a profile
(micro averages), so a profile's F1 weighs every event alike.

Printed per profile: F1, precision, recall, report → culprit top-1, routing,
track-gap recall, sensorless-dump recall, cross-border recall, wrong-night
count; then per kind. ``--json`` writes every figure, per seed too.

Held-out seeds are for measuring only: never tune the detector on what this
prints (see ``wastetrack.simulate.seeds``). It is a benchmark, not a test:
nothing here fails on a low score.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HEADLINE = (
    ("F1", "f1"),
    ("P", "precision"),
    ("R", "recall"),
    ("rep top1", "report_top1"),
    ("rep top3", "report_top3"),
    ("routing", "routing"),
    ("gap R", "track_gap_recall"),
    ("sensorless dump R", "sensorless_dump_recall"),
    ("x-border R", "cross_border_recall"),
    ("manifest", "manifest_id"),
    ("wrong night", "wrong_night"),
)


#: what the JSON keeps of each world's evaluation (the full lists of misses stay in the run directories)
PER_SEED = ("detection", "reports", "routing", "recall_of", "night", "manifest_id", "breakdown", "reliability")
PER_SEED += ("false_negatives", "false_positives", "timings_s")


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def run_world(profile: str, seed: int, trucks: int, days: int, work: Path, sheets: bool) -> dict:
    """Simulate one world, run its nights through the CLI, score it; returns the evaluation and timings."""
    from wastetrack.cli import main as cli
    from wastetrack.evaluate import evaluate
    from wastetrack.simulate import simulate

    base = work / profile / str(seed)
    if base.exists():
        shutil.rmtree(base)
    landing, truth, out = base / "landing", base / "truth.json", base / "out"
    t0 = time.perf_counter()
    simulate(landing, truth, seed=seed, days=days, trucks=trucks, profile=profile)
    t_sim = time.perf_counter() - t0
    dates = json.loads(truth.read_text(encoding="utf-8"))["dates"]
    t0 = time.perf_counter()
    for d in dates:
        args = ["run", "--landing", str(landing), "--date", d, "--out", str(out), "-q"]
        if not sheets:
            args.append("--no-sheets")
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(args)
        if code != 0:
            raise RuntimeError(f"wastetrack run refused or failed on {profile} seed {seed} {d} (exit {code})")
    t_run = time.perf_counter() - t0
    res = evaluate(truth, out)
    res["timings_s"] = {"simulate": round(t_sim, 1), "run": round(t_run, 1)}
    return res


def headline(results: list[dict]) -> dict:
    """Micro-averaged headline figures over the worlds of one profile."""
    tp = sum(r["detection"]["overall"]["tp"] for r in results)
    fp = sum(r["detection"]["overall"]["fp"] for r in results)
    fn = sum(r["detection"]["overall"]["fn"] for r in results)
    p, rc = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = round(2 * p * rc / (p + rc), 4) if p and rc else 0.0

    def acc(get) -> float | None:
        num = sum(get(r)["correct"] for r in results)
        den = sum(get(r)["n"] for r in results)
        return _ratio(num, den)

    def rec(key: str) -> float | None:
        found = sum(r["recall_of"][key]["found"] for r in results)
        return _ratio(found, sum(r["recall_of"][key]["n"] for r in results))

    return {
        "worlds": len(results),
        "events": tp + fn,
        "leads": tp + fp,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "f1": f1,
        "precision": p,
        "recall": rc,
        "report_top1": acc(lambda r: r["reports"]["top1"]),
        "report_top3": acc(lambda r: r["reports"]["top3"]),
        "decoys_rejected": acc(lambda r: r["reports"]["decoys_rejected"]),
        "routing": _ratio(sum(r["routing"]["both_correct"] for r in results), sum(r["routing"]["n"] for r in results)),
        "track_gap_recall": rec("track_gap"),
        "sensorless_dump_recall": rec("sensorless_dump"),
        "sensor_dump_recall": rec("sensor_dump"),
        "cross_border_recall": rec("cross_border"),
        "last_haul_recall": rec("last_haul"),
        "split_dump_recall": rec("split_dump"),
        "report_only_recall": rec("report_only"),
        "manifest_id": acc(lambda r: r["manifest_id"]),
        "kind_agreement": acc(lambda r: r["kind_agreement"]),
        "wrong_night": sum(r["night"]["wrong"] for r in results),
        "per_seed_f1": [r["detection"]["overall"]["f1"] for r in results],
    }


def per_kind(results: list[dict]) -> dict:
    """Per kind, summed over worlds: events, leads, tp (events found), fp (leads of the kind unmatched), P, R."""
    out: dict[str, dict] = {}
    for r in results:
        for k, v in r["detection"]["per_kind"].items():
            acc = out.setdefault(k, Counter())
            for f in ("events", "leads", "tp", "fp", "fn"):
                acc[f] += v[f]
    table = {}
    for k, c in sorted(out.items()):
        hit_leads = c["leads"] - c["fp"]
        p, rc = _ratio(hit_leads, c["leads"]), _ratio(c["tp"], c["events"])
        table[k] = {**dict(c), "precision": p, "recall": rc}
    return table


def fp_causes(results: list[dict], top: int = 8) -> list[tuple[str, int]]:
    """What the false positives sat on (truth haul kind and adversarial context), most frequent first."""
    c: Counter = Counter()
    for r in results:
        for f in r["false_positives"]:
            near = f" near {'+'.join(f['context'])}" if f.get("context") else ""
            c[f"{f['kind']} on {f.get('haul_kind') or 'no haul'}{near}"] += 1
    return c.most_common(top)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def print_table(rows: list[list[object]], header: list[str]) -> None:
    cells = [header] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, r in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profiles", default="standard,hard,sparse", help="comma-separated (default: all three)")
    p.add_argument("--seeds", type=int, default=2, help="first N held-out seeds per profile (default 2)")
    p.add_argument("--trucks", type=int, default=60, help="trucks per world (default 60; the full card: 200)")
    p.add_argument("--days", type=int, default=2, help="nights per world (default 2)")
    p.add_argument("--json", type=Path, help="write every figure (per profile, per seed) here")
    p.add_argument("--keep", type=Path, help="keep landings, truths and outputs under this directory")
    p.add_argument("--no-sheets", action="store_true", help="run without the HTML lead sheets (faster)")
    p.add_argument("--tuning", action="store_true",
                   help="the first N TUNING seeds instead (to debug and tune on; never report these as quality)")
    args = p.parse_args(argv)

    from wastetrack.simulate.profiles import PROFILE_NAMES
    from wastetrack.simulate.seeds import TUNING_SEEDS, held_out

    profiles = [x.strip() for x in args.profiles.split(",") if x.strip()]
    unknown = [x for x in profiles if x not in PROFILE_NAMES]
    if unknown:
        print(f"unknown profile(s) {', '.join(unknown)}: choose from {', '.join(PROFILE_NAMES)}", file=sys.stderr)
        return 2
    seeds = TUNING_SEEDS[: args.seeds] if args.tuning else held_out(args.seeds)
    kind_of_seeds = "TUNING seeds (not a quality figure)" if args.tuning else "held-out seeds"
    work = args.keep or Path(tempfile.mkdtemp(prefix="wt-quality-"))
    t_all = time.perf_counter()
    card: dict = {
        "config": {"trucks": args.trucks, "days": args.days, "seeds": list(seeds), "rules": "strict",
                   "tuning": bool(args.tuning)},
        "profiles": {},
    }
    try:
        for prof in profiles:
            results = []
            for seed in seeds:
                res = run_world(prof, seed, args.trucks, args.days, work, not args.no_sheets)
                o = res["detection"]["overall"]
                print(
                    f"  {prof} seed {seed}: {o['events']} events, {o['leads']} leads, F1 {o['f1']:.3f} "
                    f"(simulate {res['timings_s']['simulate']}s, run {res['timings_s']['run']}s)",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(res)
            card["profiles"][prof] = {
                "headline": headline(results),
                "per_kind": per_kind(results),
                "fp_causes": fp_causes(results),
                "per_seed": [{"seed": s, **{k: r[k] for k in PER_SEED}} for s, r in zip(seeds, results, strict=True)],
            }
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nquality scorecard — strict rules (same vehicle, ±10 min, 300 m, one-to-one); {kind_of_seeds} "
        f"{', '.join(map(str, seeds))}; {args.trucks} trucks × {args.days} nights per world\n"
    )
    rows = [[prof, *[c["headline"][key] for _, key in HEADLINE]] for prof, c in card["profiles"].items()]
    print_table(rows, ["profile", *[label for label, _ in HEADLINE]])
    for prof, c in card["profiles"].items():
        h = c["headline"]
        print(
            f"\n{prof}: {h['events']} events, {h['leads']} leads over {h['worlds']} worlds "
            f"(per-seed F1 {', '.join(f'{x:.3f}' for x in h['per_seed_f1'])}); "
            f"decoys rejected {_fmt(h['decoys_rejected'])}, kind agreement {_fmt(h['kind_agreement'])}, "
            f"last-haul R {_fmt(h['last_haul_recall'])}, split-dump R {_fmt(h['split_dump_recall'])}"
        )
        rows = [
            [k, v["events"], v["leads"], v["tp"], v["fp"], v["fn"], v["precision"], v["recall"]]
            for k, v in c["per_kind"].items()
        ]
        print_table(rows, ["kind", "events", "leads", "found", "fp", "missed", "precision", "recall"])
        if c["fp_causes"]:
            print("  false positives sat on: " + "; ".join(f"{n}× {what}" for what, n in c["fp_causes"]))
    print(f"\ndone in {time.perf_counter() - t_all:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
