"""Helpers for contract tests: copy the example landing into tmp_path, corrupt a file, re-seal batch.json."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from wastetrack.contract.batch import hash_and_count

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared/contract/example"
DAY = "2026-11-20"
PREV = "2026-11-19"


def copy_landing(tmp_path: Path, days: tuple[str, ...] = (DAY,)) -> Path:
    """A private landing dir with the example reference and the given days."""
    landing = tmp_path / "landing"
    shutil.copytree(EXAMPLE / "reference", landing / "reference")
    for day in days:
        shutil.copytree(EXAMPLE / day, landing / day)
    return landing


def batch_json(landing: Path, day: str = DAY) -> dict:
    return json.loads((landing / day / "batch.json").read_text(encoding="utf-8"))


def write_batch_json(landing: Path, doc: dict, day: str = DAY) -> None:
    (landing / day / "batch.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")


def reseal(landing: Path, day: str = DAY) -> None:
    """Recompute sha256 and rows of every listed file (a producer that wrote the corrupt file honestly)."""
    doc = batch_json(landing, day)
    for entry in doc["files"]:
        sha, rows = hash_and_count(landing / day / entry["path"])
        entry["sha256"], entry["rows"] = sha, rows
    write_batch_json(landing, doc, day)


def edit_lines(landing: Path, rel: str, edit: Callable[[list[str]], list[str]], day: str = DAY) -> None:
    """Edit a CSV of the batch (or of reference/ if ``rel`` starts with 'reference/') by line, then reseal.

    Only for files without quoted newlines (GPS, manifests, vehicles, …): line k+1 is record k.
    """
    path = landing / rel if rel.startswith("reference/") else landing / day / rel
    lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join(edit(lines)), encoding="utf-8")
    if not rel.startswith("reference/"):
        reseal(landing, day)


def set_field(lines: list[str], record: int, column: str, value: str) -> list[str]:
    """Set ``column`` of 1-based ``record`` (simple CSV without quoted commas in the row)."""
    header = lines[0].lstrip("\ufeff").split(",")
    cells = lines[record].split(",")
    cells[header.index(column)] = value
    lines[record] = ",".join(cells)
    return lines


def field(lines: list[str], record: int, column: str) -> str:
    header = lines[0].lstrip("\ufeff").split(",")
    return lines[record].split(",")[header.index(column)]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
