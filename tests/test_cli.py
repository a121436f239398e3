"""Every user error ends in one line that names the value or path and says what to do, exit code 2.

No traceback, nothing written, and the check comes before the night reads its inputs. Also: the
help says what each command and option does, with defaults and exit codes, and ``-v`` works
anywhere on the line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wastetrack.cli import DEMO_MARK, main

EXAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "contract" / "example"
DATE = "2026-11-20"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wastetrack.cli", *args], capture_output=True, text=True,
                          check=False, timeout=300)


def _one_line_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("wastetrack")]
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    ("date", "needle"),
    [("2026-02-30", "'2026-02-30' is not a date"), ("20261120", "'20261120' is not a date"),
     ("yesterday", "use YYYY-MM-DD")],
)
def test_a_bad_date_is_named_before_anything_is_read(tmp_path: Path, date: str, needle: str) -> None:
    out = tmp_path / "out"
    _one_line_error(_cli("run", "--landing", str(EXAMPLE), "--date", date, "--out", str(out)), needle)
    assert not out.exists()


def test_a_missing_landing_directory_is_named(tmp_path: Path) -> None:
    res = _cli("run", "--landing", str(tmp_path / "nowhere"), "--date", DATE, "--out", str(tmp_path / "out"))
    _one_line_error(res, str(tmp_path / "nowhere"), "does not exist")


def test_a_day_without_a_batch_names_the_landing_and_the_file(tmp_path: Path) -> None:
    res = _cli("run", "--landing", str(EXAMPLE), "--date", "2026-11-25", "--out", str(tmp_path / "out"), "-q")
    _one_line_error(res, "2026-11-25", str(EXAMPLE / "2026-11-25" / "batch.json"))


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("x", encoding="utf-8")
    _one_line_error(_cli("run", "--landing", str(EXAMPLE), "--date", DATE, "--out", str(out)), str(out), "is a file")


def test_a_store_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("this is a text file, not a SQLite database\n" * 20, encoding="utf-8")
    res = _cli("run", "--landing", str(EXAMPLE), "--date", DATE, "--out", str(tmp_path / "out"), "--store", str(bad))
    _one_line_error(res, "notes.txt", "not a database")


def test_an_unreachable_postgres_store_is_refused_without_showing_the_password(tmp_path: Path) -> None:
    url = "postgresql://officer:s3cret-pw@127.0.0.1:1/wastetrack"
    res = _cli("run", "--landing", str(EXAMPLE), "--date", DATE, "--out", str(tmp_path / "out"), "--store", url)
    _one_line_error(res, "127.0.0.1:1")
    assert "s3cret-pw" not in res.stderr + res.stdout


def test_help_describes_commands_defaults_and_exit_codes() -> None:
    top = _cli("--help")
    assert top.returncode == 0
    assert "exit codes:" in top.stdout and "``" not in top.stdout
    for command in ("run", "simulate", "demo", "eval", "db", "deliver", "replies", "credit", "report", "train"):
        assert f"    {command} " in top.stdout, command
    run = _cli("run", "--help").stdout
    assert "exit codes:" in run and "(default: None)" not in run and "(default: False)" not in run
    demo = _cli("demo", "--help").stdout
    assert "(default: 40)" in demo and "(default: demo)" in demo


def test_verbose_is_accepted_after_the_command(tmp_path: Path) -> None:
    res = _cli("run", "--landing", str(tmp_path / "nowhere"), "--date", DATE, "--out", str(tmp_path), "-v")
    _one_line_error(res, "does not exist")  # -v was understood, not "unrecognized arguments"


def test_demo_starts_from_a_clean_folder_and_never_empties_a_foreign_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("precious", encoding="utf-8")
    assert main(["demo", "--dir", str(foreign), "--trucks", "4", "--days", "1", "-q"]) == 2
    assert (foreign / "thesis.docx").exists()
    assert "was not made by `wastetrack demo`" in capsys.readouterr().err

    demo = tmp_path / "demo"
    assert main(["demo", "--dir", str(demo), "--trucks", "4", "--days", "1", "-q"]) == 0
    assert (demo / DEMO_MARK).exists()
    first = json.loads((demo / "truth.json").read_text(encoding="utf-8"))["dates"]
    # a second demo with other options: the old nights are gone from the outputs and the store
    assert main(["demo", "--dir", str(demo), "--trucks", "4", "--days", "1", "--start-date", "2026-12-01",
                 "-q"]) == 0
    assert "reusing" in capsys.readouterr().out
    assert not (demo / "out" / first[0]).exists() and (demo / "out" / "2026-12-01").exists()
    from wastetrack.store import open_store

    with open_store(demo / "out" / "wastetrack.db", create=False) as store:
        assert store.dates() == ["2026-12-01"]
