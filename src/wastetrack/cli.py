"""Command line: ``wastetrack run | simulate | demo | eval``.

A thin shell over ``pipeline.run_night``, ``simulate.simulate`` and
``evaluate.evaluate`` — the same functions the Airflow DAGs and notebooks call.
Exit codes: 0 done, 1 unexpected failure, 2 bad input (a refused batch or an
unreadable file: the message names the file, the row and the reason).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from wastetrack import __version__

STORE_ENV = "WASTETRACK_STORE"  # e.g. postgresql://user@host/db — credentials never go in code or flags


def _progress(prefix: str):
    t0 = time.perf_counter()

    def show(stage: str) -> None:
        print(f"  [{time.perf_counter() - t0:6.1f}s] {prefix}: {stage}…", file=sys.stderr, flush=True)

    return show


def _summary_line(res) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in res.run["leads"].items() if v)
    return (
        f"{res.date}: {res.run['leads_total']} leads ({kinds or 'none'}), "
        f"{len(res.run['untraced_reports'])} untraced reports, "
        f"{res.run['rows_quarantined']} rows quarantined → {res.out_dir}"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from wastetrack.pipeline import run_night

    store = args.store or os.environ.get(STORE_ENV)
    for date in args.date:
        res = run_night(
            args.landing,
            date,
            args.out,
            store_url=store,
            progress=None if args.quiet else _progress(date),
            write_sheets=not args.no_sheets,
            without_context=args.without_context,
        )
        print(_summary_line(res))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from wastetrack.simulate import simulate

    simulate(
        Path(args.out),
        Path(args.truth),
        seed=args.seed,
        days=args.days,
        trucks=args.trucks,
        start_date=args.start_date,
    )
    print(f"landing directory: {args.out}\nground truth: {args.truth}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from wastetrack.evaluate import evaluate, format_report

    result = evaluate(Path(args.truth), Path(args.out))
    print(format_report(result))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate a small scenario, run every night of it on the embedded store, print what came out."""
    import json

    from wastetrack.evaluate import evaluate, format_report
    from wastetrack.pipeline import run_night
    from wastetrack.simulate import simulate

    base = Path(args.dir)
    landing, truth, out = base / "landing", base / "truth.json", base / "out"
    t0 = time.perf_counter()
    print(f"simulating {args.trucks} trucks over {args.days} nights (seed {args.seed}) …", flush=True)
    simulate(landing, truth, seed=args.seed, days=args.days, trucks=args.trucks, start_date=args.start_date)
    dates = json.loads(truth.read_text(encoding="utf-8"))["dates"]
    rows = []
    for date in dates:
        res = run_night(landing, date, out, progress=None if args.quiet else _progress(date))
        rows.append(res)
        print(_summary_line(res), flush=True)
    kinds = ["illegal_dump", "diverted", "unmanifested", "track_gap", "report_trace"]
    print(
        "\nnight        fixes    stays  hauls  "
        + "  ".join(f"{k[:12]:>12}" for k in kinds)
        + "  cross-border"
    )
    for r in rows:
        print(
            f"{r.date}  {r.run['counts']['fixes']:>8}  {r.run['counts']['stays']:>6}  "
            f"{r.run['counts']['hauls']:>5}  "
            + "  ".join(f"{r.run['leads'][k]:>12}" for k in kinds)
            + f"  {r.run['cross_border_leads']:>12}"
        )
    print()
    print(format_report(evaluate(truth, out)))
    print(f"\noutputs: {out}/<date>/leads.geojson, run.json, quarantine/, sheets/index.html")
    print(
        f"store:   {out / 'wastetrack.db'}   (notebook: wastetrack.store.read_table('{out / 'wastetrack.db'}', "
        "'leads'))"
    )
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wastetrack", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"wastetrack {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the night job for one or more dates of a landing directory")
    r.add_argument(
        "--landing", required=True, type=Path, help="landing directory (the data contract's LANDING)"
    )
    r.add_argument("--date", required=True, action="append", help="batch date YYYY-MM-DD (repeatable)")
    r.add_argument("--out", required=True, type=Path, help="output directory; OUT/<date>/ is replaced")
    r.add_argument("--store", help=f"store URL or file (default: OUT/wastetrack.db; env {STORE_ENV})")
    r.add_argument("--no-sheets", action="store_true", help="skip the HTML lead sheets")
    r.add_argument(
        "--without-context",
        action="store_true",
        help="run even if the previous day's batch is refused (the night is marked degraded)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("simulate", help="write a simulated landing directory and its ground truth")
    s.add_argument("--out", required=True, help="landing directory to write")
    s.add_argument(
        "--truth", required=True, help="ground-truth JSON to write (outside the landing directory)"
    )
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--days", type=int, default=2)
    s.add_argument("--trucks", type=int, default=40)
    s.add_argument("--start-date", default="2026-11-19")
    s.set_defaults(func=cmd_simulate)

    d = sub.add_parser("demo", help="simulate a small scenario, run every night of it, print a summary")
    d.add_argument(
        "--dir", default="demo", help="where to put the landing, truth and outputs (default ./demo)"
    )
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--days", type=int, default=2)
    d.add_argument("--trucks", type=int, default=40)
    d.add_argument("--start-date", default="2026-11-19")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("eval", help="precision/recall/F1 of the leads in OUT against a simulator's truth")
    e.add_argument("--truth", required=True)
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_eval)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from wastetrack.contract import ContractError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ContractError as exc:
        print(f"wastetrack: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"wastetrack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
