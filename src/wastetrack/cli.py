"""Command line of wastetrack: run nights, simulate, demo, evaluate, and the liaison loop.

A thin shell over the functions the Airflow DAGs and the notebooks call too
(``pipeline.run_night``, ``simulate.simulate``, ``evaluate.evaluate``, …).
Every user error ends in one line that names the path or value and says what to
do, with exit code 2 — never a traceback.
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

DESCRIPTION = """\
wastetrack: track construction-waste hauls across the Yangtze River Delta and catch illegal and
cross-border dumping. `wastetrack COMMAND --help` describes each command."""

EPILOG = """\
exit codes:
  0  done
  1  unexpected failure (a bug: the traceback says where)
  2  refused input or a user error (a batch not as declared, a bad date, path, option or store):
     one line names the file, row or value and what to do
  3  mail not sent (deliver, escalate): what failed stays queued and goes with the next run

environment:
  WASTETRACK_STORE   store URL or file when --store is not given (e.g. postgresql://user@host/db)
  WASTETRACK_SMTP    mail server for deliver/escalate (smtp://host:port or smtps://user:pass@host:port)"""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Keep the line breaks of descriptions and epilogs; show a default where there is a real one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "default" in text or action.option_strings == []:
            return text
        return f"{text} (default: %(default)s)"


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
    from wastetrack.plan import UsageError
    from wastetrack.storage import is_remote, local_path

    remote = is_remote(args.landing)
    landing = Path(local_path(args.landing))
    if not remote and not landing.is_dir():
        raise UsageError(f"landing directory {args.landing} does not exist (check --landing)")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a directory: give a directory for the outputs")
    for date in _dates(args.date):
        if remote:  # a local mirror of what the night reads (storage.py); the outputs stay on --out
            from wastetrack.orchestration import pull_night_inputs

            landing = pull_night_inputs(args.landing, date, store or args.out / "wastetrack.db")
        res = run_night(
            landing,
            date,
            args.out,
            store_url=store,
            progress=None if args.quiet else _progress(date),
            write_sheets=not args.no_sheets,
            without_context=args.without_context,
            workers=args.workers,
            shards=args.shards,
            memory_budget_bytes=int(args.memory_gb * 1024**3) if args.memory_gb else None,
            work_root=args.work,
        )
        print(_summary_line(res))
        note = res.run.get("context", {}).get("note")
        if note:
            print(f"  NOTE ({res.run['status']}): {note}")
    return 0


def _dates(values: list[str]) -> list[str]:
    """Every --date checked before anything is read: a typo must not cost a night's ingestion."""
    from wastetrack.plan import check_date

    return [check_date(v) for v in values]


def cmd_simulate(args: argparse.Namespace) -> int:
    from wastetrack.simulate import simulate

    simulate(
        Path(args.out),
        Path(args.truth),
        seed=args.seed,
        days=args.days,
        trucks=args.trucks,
        start_date=args.start_date,
        profile=args.profile,
    )
    print(f"landing directory: {args.out}\nground truth: {args.truth}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score OUT against a truth file; refuses (exit 2, one line naming the path) when a night has no run."""
    import json

    from wastetrack.evaluate import MissingRunError, evaluate, format_report

    try:
        result = evaluate(Path(args.truth), Path(args.out), dates=args.date, lenient=args.lenient)
    except MissingRunError as exc:
        print(f"wastetrack eval: {exc}", file=sys.stderr)
        return 2
    print(format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate a small scenario, run every night of it on the embedded store, print what came out."""
    import json

    from wastetrack.evaluate import evaluate, format_report
    from wastetrack.pipeline import run_night
    from wastetrack.simulate import simulate

    base = Path(args.dir)
    landing, truth, out = base / "landing", base / "truth.json", base / "out"
    _clean_demo_dir(base)
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


DEMO_MARK = ".wastetrack-demo"


def _clean_demo_dir(base: Path) -> None:
    """A demo starts from a clean folder: its own earlier landing, outputs and store are removed (and it
    says so); a folder it did not make is never touched."""
    import shutil

    from wastetrack.plan import UsageError

    if base.exists() and not base.is_dir():
        raise UsageError(f"--dir {base} is a file: give a folder for the demo")
    if base.is_dir() and any(base.iterdir()):
        if not (base / DEMO_MARK).exists():
            raise UsageError(f"--dir {base} exists and was not made by `wastetrack demo`: choose another --dir "
                             "or empty it")
        for name in ("landing", "out", "truth.json"):
            target = base / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        print(f"reusing {base}: the previous demo's landing, outputs and store were removed", flush=True)
    base.mkdir(parents=True, exist_ok=True)
    (base / DEMO_MARK).write_text("made by wastetrack demo; `wastetrack demo` may empty this folder\n",
                                  encoding="utf-8")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wastetrack", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Help)
    p.add_argument("--version", action="version", version=f"wastetrack {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (accepted anywhere on the line)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser

    def add_parser(name: str, **kw: object) -> argparse.ArgumentParser:
        kw.setdefault("formatter_class", _Help)
        kw.setdefault("epilog", EPILOG)
        if "help" in kw and "description" not in kw:
            kw["description"] = str(kw["help"])
        return add(name, **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]  # every command: defaults, exit codes

    r = sub.add_parser("run", help="run the night job for one or more dates of a landing directory")
    r.add_argument(
        "--landing", required=True, type=str,
        help="landing directory (the data contract's LANDING), or an fsspec URL such as s3://bucket/landing"
    )
    r.add_argument("--date", required=True, action="append",
                   help="batch date YYYY-MM-DD (repeatable; checked before anything is read)")
    r.add_argument("--out", required=True, type=Path, help="output directory; OUT/<date>/ is replaced")
    r.add_argument("--store", help=f"store URL or file (default: OUT/wastetrack.db; env {STORE_ENV})")
    r.add_argument("--no-sheets", action="store_true", help="skip the HTML lead sheets")
    r.add_argument(
        "--without-context",
        action="store_true",
        help="run even if the previous day's batch is refused (the night is marked degraded)",
    )
    r.add_argument("--workers", type=int, default=None,
                   help="processes for ingestion, shards and sheets (default: the machine's cores)")
    r.add_argument("--shards", type=int, default=None,
                   help="number of vehicle shards (default: sized to --memory-gb); leads do not depend on it")
    r.add_argument("--memory-gb", type=float, default=None,
                   help="memory budget of the night, all workers together (default 6)")
    r.add_argument("--work", type=Path, default=None,
                   help="scratch directory for shards (default OUT/.wastetrack/work; shared storage on a cluster)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("simulate", help="write a simulated landing directory and its ground truth")
    s.add_argument("--out", required=True, help="landing directory to write")
    s.add_argument(
        "--truth", required=True, help="ground-truth JSON to write (outside the landing directory)"
    )
    s.add_argument("--seed", type=int, default=7, help="same seed, same bytes")
    s.add_argument("--days", type=int, default=2, help="nights to simulate")
    s.add_argument("--trucks", type=int, default=40, help="fleet size")
    s.add_argument("--start-date", default="2026-11-19", help="first night YYYY-MM-DD")
    s.add_argument(
        "--profile",
        choices=("standard", "hard", "sparse"),
        default="standard",
        help="standard: dense feeds, half the trucks with sensors; hard: 30-90 s fixes, 10-40 m noise, swapped "
        "lon/lat rows; sparse: no sensors, 60-120 s fixes (120-300 s standing), 15-50 m noise",
    )
    s.set_defaults(func=cmd_simulate)

    d = sub.add_parser("demo", help="simulate a small scenario, run every night of it, print a summary")
    d.add_argument(
        "--dir", default="demo", help="folder for the landing, truth and outputs; a demo folder is emptied first"
    )
    d.add_argument("--seed", type=int, default=7, help="simulator seed")
    d.add_argument("--days", type=int, default=2, help="nights to simulate and run")
    d.add_argument("--trucks", type=int, default=40, help="fleet size")
    d.add_argument("--start-date", default="2026-11-19", help="first night YYYY-MM-DD")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser(
        "eval",
        help="score the leads in OUT against a simulator's truth (strict: same vehicle, ±10 min, 300 m, one-to-one)",
    )
    e.add_argument("--truth", required=True, help="the simulator's ground-truth JSON")
    e.add_argument("--out", required=True, help="output directory of `wastetrack run` (OUT/<date>/leads.geojson)")
    e.add_argument("--date", action="append", help="score only this date (repeatable; default: every truth date)")
    e.add_argument(
        "--lenient",
        action="store_true",
        help="the old rules, for comparison only: same kind, ±30 min, place not checked",
    )
    e.add_argument("--json", help="also write the full result (with every miss and false positive) here")
    e.set_defaults(func=cmd_eval)
    from wastetrack.cli_db import add_db_parser  # `wastetrack db status|upgrade` (the store's schema)
    add_db_parser(sub)
    from wastetrack.cli_liaison import add_liaison_parsers  # deliver, replies, escalate, credit, report
    add_liaison_parsers(sub)
    from wastetrack.cli_train import add_train_parser  # `wastetrack train` (the unloading model)
    add_train_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from wastetrack.contract import ContractError
    from wastetrack.store.urls import StoreError

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in argv)
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except (ContractError, StoreError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        print(f"wastetrack: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wastetrack: interrupted; a re-run cleans up what this one left", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
