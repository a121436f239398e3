"""``wastetrack train``: retrain the shipped unloading model on simulated tuning worlds.

    wastetrack train                               # tuning seeds × 3 profiles, writes the package's model
    wastetrack train --held-out 3 --report r.json  # ... and measures rules vs model on 3 held-out seeds

Simulates every (profile, tuning seed) world (kept under ``--work`` and reused:
the simulator is deterministic), builds the sensorless decisions' candidates with
the night's own code, labels them from the truth, fits with folds grouped by
seed, calibrates on the out-of-fold predictions, and writes the model JSON
(``--out``, default the package's ``models/unloading.json``). Held-out seeds are
only measured (never fitted); their figures go into the model's metadata for
the model card (``docs/model_card.md``). Same inputs, same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "models" / "unloading.json"


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``wastetrack train`` on the main parser's subcommands."""
    t = sub.add_parser("train", help="retrain the unloading model on simulated tuning worlds (see docs/model_card.md)")
    t.add_argument("--work", type=Path, default=Path(".wastetrack-train"),
                   help="where the simulated worlds are kept and reused (default ./.wastetrack-train)")
    t.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model JSON to write (default: the package's)")
    t.add_argument("--profiles", default="standard,hard,sparse", help="comma-separated simulator profiles")
    t.add_argument("--seeds", default=None, help="comma-separated TUNING seeds (default: all of them)")
    t.add_argument("--trucks", type=int, default=120, help="trucks per world (default 120)")
    t.add_argument("--days", type=int, default=3, help="days per world (default 3)")
    t.add_argument("--folds", type=int, default=3, help="cross-validation folds, grouped by seed (default 3)")
    t.add_argument("--held-out", type=int, default=0, metavar="N",
                   help="also measure rules vs model on the first N held-out seeds per profile (never fitted)")
    t.add_argument("--report", type=Path, default=None, help="write the training and held-out figures here (JSON)")
    t.set_defaults(func=cmd_train)


def _say(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from wastetrack.config import DEFAULT_PARAMS
    from wastetrack.simulate.seeds import HELD_OUT_SEEDS, TUNING_SEEDS, held_out
    from wastetrack.training import (
        collect,
        collect_leads,
        lead_calibration,
        lead_figures,
        measure,
        train,
        write_model,
    )
    from wastetrack.unloading import UnloadingModel, candidate_model

    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(TUNING_SEEDS)
    burned = sorted(set(seeds) & set(HELD_OUT_SEEDS))
    if burned:
        print(f"wastetrack train: seeds {burned} are held out (wastetrack.simulate.seeds): never train on them",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print(f"training on {len(profiles)} profiles × tuning seeds {seeds} ({args.trucks} trucks × {args.days} days)",
          file=sys.stderr)
    samples = collect(args.work / "tuning", profiles, seeds, args.trucks, args.days, DEFAULT_PARAMS, _say)
    if samples.empty or samples["is_unloading"].sum() == 0:
        print("wastetrack train: no labelled candidates (nothing to learn from)", file=sys.stderr)
        return 1
    doc, report = train(samples, DEFAULT_PARAMS, args.folds)
    doc["meta"]["training"].update({"trucks": args.trucks, "days": args.days, "seeds": seeds})
    # how often each kind of lead is right, the new model deciding: the scores' calibration
    print("running the nights of the tuning worlds with the new model (lead calibration)", file=sys.stderr)
    with candidate_model(UnloadingModel.from_dict(doc)):
        outcomes = collect_leads(args.work / "tuning", profiles, seeds, args.trucks, args.days, DEFAULT_PARAMS,
                                 _say)
    doc["meta"]["lead_calibration"] = lead_calibration(outcomes)
    model = UnloadingModel.from_dict(doc)
    figures = {"training": report, "lead_calibration": doc["meta"]["lead_calibration"]}
    if args.held_out:
        ho = list(held_out(args.held_out))
        print(f"measuring on held-out seeds {ho}", file=sys.stderr)
        ho_samples = collect(args.work / "held-out", profiles, ho, args.trucks, args.days, DEFAULT_PARAMS, _say)
        figures["held_out"] = {"seeds": ho, **measure(ho_samples, model, DEFAULT_PARAMS)}
        with candidate_model(model):
            ho_leads = collect_leads(args.work / "held-out", profiles, ho, args.trucks, args.days, DEFAULT_PARAMS,
                                     _say)
        figures["held_out"]["leads"] = lead_figures(ho_leads)
        doc["meta"]["held_out"] = figures["held_out"]
    write_model(doc, args.out)
    if args.report:
        args.report.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(_summary(figures))
    print(f"model written: {args.out} ({time.perf_counter() - t0:.0f}s)")
    return 0


def _summary(figures: dict) -> str:
    tr = figures["training"]
    lines = [
        f"{tr['samples']} candidates ({tr['unloadings']} unloadings) from seeds {', '.join(tr['groups'])}; "
        f"cross-validated AUC {tr['cv_auc']}, Brier {tr['cv_brier_calibrated']}",
        "sensorless decisions (precision / recall of the leads they make):",
    ]

    def row(name: str, d: dict) -> str:
        r, m = d["rules"], d["model"]
        return (f"  {name:<22} rules P {r['precision']} R {r['recall']} ({r['leads']} leads)   "
                f"model P {m['precision']} R {m['recall']} ({m['leads']} leads)")

    lines.append(row("cross-validated", tr["cv_decisions"]))
    for prof, d in tr["cv_decisions_by_profile"].items():
        lines.append(row(f"  {prof}", d))
    if "held_out" in figures:
        ho = figures["held_out"]
        lines.append(row(f"held-out {ho['seeds']}", ho["decisions"]))
        for prof, d in ho["by_profile"].items():
            lines.append(row(f"  {prof}", d))
        leads = ho.get("leads") or {}
        if leads:
            lines.append(f"held-out leads: {leads['true']}/{leads['leads']} true; score → share true:")
            lines += [f"  {b['bin']}: {b['n']} leads, mean score {b['mean_p']}, true {b['share_true']}"
                      for b in leads["reliability"]]
    return "\n".join(lines)


__all__ = ["add_train_parser", "cmd_train"]
