"""What the Airflow DAGs call: batch readiness, the batch date of a run, and the night job.

Kept out of ``dags/`` so the scheduler's constant re-parsing of DAG files costs
nothing (no pandas import at parse time) and so this logic is tested without an
Airflow installation: nothing here imports Airflow at import time (the connection lookups
import it when a task calls them). Paths and the store URL come
from the environment or an Airflow connection, never from code.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import date as Date
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from wastetrack import TIMEZONE

TZ = ZoneInfo(TIMEZONE)
LANDING_ENV, OUT_ENV, STORE_ENV = "WASTETRACK_LANDING", "WASTETRACK_OUT", "WASTETRACK_STORE"
#: shared scratch space for shards when tasks run on several machines (default OUT/.wastetrack/work);
#: like WASTETRACK_LANDING and WASTETRACK_OUT it may be a path every worker sees or an fsspec URL (s3://…)
WORK_ENV = "WASTETRACK_WORK"
#: the memory budget (GB) one shard task may use: shards are sized so one fits (default 6)
MEMORY_ENV = "WASTETRACK_MEMORY_GB"
#: force the number of vehicle shards (default: sized to the memory budget); leads do not depend on it
SHARDS_ENV = "WASTETRACK_SHARDS"
#: Airflow connection holding the store (optional; ``WASTETRACK_STORE`` or OUT/wastetrack.db otherwise)
STORE_CONN_ID = "wastetrack_store"
#: Airflow connection holding the mail server (optional; ``WASTETRACK_SMTP`` otherwise)
SMTP_CONN_ID = "wastetrack_smtp"

log = logging.getLogger(__name__)


def batch_date_for(run_time: datetime) -> str:
    """The batch a run works on: the local calendar day before the run's logical time.

    The nightly DAG is triggered the morning after (06:30 Asia/Shanghai), so a
    run at 2026-11-21 06:30 processes the batch of 2026-11-20. Airflow hands out
    UTC times (22:30 UTC the evening before), so the conversion to local time
    comes first; a naive time is taken as local. Re-running an old DAG run
    processes the same date again (idempotent, by the partition).
    """
    local = run_time.astimezone(TZ) if run_time.tzinfo else run_time.replace(tzinfo=TZ)
    return (local.date() - timedelta(days=1)).isoformat()


def valid_date(date: str) -> str:
    """``date`` if it is a real ISO calendar date (YYYY-MM-DD), else ValueError: a bad date must never
    become a path (``OUT/<date>``) or a store partition."""
    text = str(date).strip()
    try:
        ok = len(text) == 10 and Date.fromisoformat(text).isoformat() == text
    except ValueError:  # 2026-02-30, 2026-13-01
        ok = False
    if not ok:
        raise ValueError(f"wastetrack: {date!r} is not a date YYYY-MM-DD")
    return text


def run_time_of(context: Mapping[str, Any]) -> datetime:
    """The moment a DAG run stands for, from an Airflow task context.

    ``logical_date`` when the run has one (every scheduled run, and a manual
    run given a date). Airflow 3 lets a manual run have none: the context then
    lacks ``logical_date`` and ``data_interval_*`` altogether (not even None),
    and the run's ``run_after`` (when it was triggered) is used instead.
    """
    for key in ("logical_date", "data_interval_end"):
        if (value := context.get(key)) is not None:
            return value
    run_after = getattr(context.get("dag_run"), "run_after", None)
    if run_after is None:
        raise RuntimeError("wastetrack: the run has neither logical_date, data_interval_end nor run_after")
    return run_after


def batch_date_of_run(context: Mapping[str, Any]) -> str:
    """The batch date of a DAG run: the ``date`` param when the run was triggered with one
    (re-running a given day from the UI or CLI), else the local day before the run's time."""
    requested = (context.get("params") or {}).get("date")
    if requested:
        return valid_date(requested)
    return batch_date_for(run_time_of(context))


def batch_ready(landing: str | Path, date: str) -> bool:
    """True when the producer has marked the batch complete (a cheap check for a sensor: no hashing).

    A missing, partly written (invalid JSON) or not-yet-complete ``batch.json``
    means "wait"; the full check (rows and hashes) is ``run_night``'s, which
    refuses a batch not exactly as declared. A missing landing directory is a
    configuration error, not a late batch: it raises instead of waiting hours.
    """
    from fsspec.core import url_to_fs

    from wastetrack.storage import local_path

    fs, root = url_to_fs(local_path(landing))
    if not fs.isdir(root):
        raise FileNotFoundError(f"wastetrack: landing directory {landing} does not exist (check {LANDING_ENV})")
    path = f"{root.rstrip('/')}/{date}/batch.json"
    if not fs.isfile(path):
        log.info("batch %s: no %s yet", date, path)
        return False
    try:
        meta = json.loads(fs.cat_file(path).decode("utf-8-sig"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        log.info("batch %s: %s not readable yet (%s)", date, path, exc)
        return False
    if not isinstance(meta, dict):
        log.warning("batch %s: %s is not a JSON object", date, path)
        return False
    if meta.get("date") != date:
        log.warning("batch %s: %s declares date %r", date, path, meta.get("date"))
        return False
    if meta.get("complete") is not True:
        log.info("batch %s: complete is %r, waiting for the producer", date, meta.get("complete"))
        return False
    return True


def settings(landing: str | None = None, out: str | None = None, store: str | None = None) -> dict[str, str]:
    """Resolve paths and the store URL from arguments, else the environment (``store`` may stay empty:
    the night then uses OUT/wastetrack.db)."""
    res = {
        "landing": landing or os.environ.get(LANDING_ENV, ""),
        "out": out or os.environ.get(OUT_ENV, ""),
        "store": store or os.environ.get(STORE_ENV, ""),
    }
    missing = {"landing": LANDING_ENV, "out": OUT_ENV}
    unset = [f"{k} (env {env})" for k, env in missing.items() if not res[k]]
    if unset:
        raise RuntimeError(f"wastetrack: set {', '.join(unset)}")
    return res


def _airflow_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or None when it is not defined (the environment decides then).

    Only "not defined" falls back; any other failure (API server, secrets backend) fails the task: writing
    to another store than usual would split the lead registry and send old leads again.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def airflow_store_url() -> str | None:
    """The store URL of the Airflow connection ``wastetrack_store`` (None: ``WASTETRACK_STORE``, then
    OUT/wastetrack.db). Called inside a task, never when a DAG file is parsed."""
    conn = _airflow_connection(STORE_CONN_ID)
    return None if conn is None else store_url_of(conn)


def airflow_smtp_url() -> str | None:
    """The mail server of the Airflow connection ``wastetrack_smtp`` (None: ``WASTETRACK_SMTP``)."""
    conn = _airflow_connection(SMTP_CONN_ID)
    return None if conn is None else conn.get_uri()


def store_url_of(conn: Any) -> str:
    """The store URL ``open_store`` understands, from an Airflow connection.

    ``Connection.get_uri()`` is not usable as is for SQLite: it percent-encodes
    an absolute path (``sqlite:///%2Fdata%2Fwt.db``), which would silently open
    a new, empty store under a strange relative name. A SQLite connection keeps
    its file in ``host`` (as Airflow's SQLite form does) or, when built from a
    URI ``sqlite:////data/wt.db``, in ``schema``; both are returned as a path.
    Any other type (postgres) is its URI.
    """
    if (conn.conn_type or "").lower() == "sqlite":
        path = unquote(conn.host or conn.schema or "")
        if not path:
            raise ValueError(f"wastetrack: SQLite connection {conn.conn_id!r} has no file path (set its host)")
        return path
    return conn.get_uri()


# ---------------------------------------------------------------- the night as mapped tasks
#
# Each function below is one task of the nightly DAG. They hand each other only the run's work
# directory (a path on storage every worker sees) and small lists of indexes, never data.


def _store(url: str | None, out: str) -> Any:
    from wastetrack.pipeline import open_store_checked

    return open_store_checked(url or Path(out) / "wastetrack.db")


def shared(landing: str | None = None, out: str | None = None, store: str | None = None
           ) -> tuple[dict[str, str], Any]:
    """``settings`` with every fsspec URL (landing, out, ``WASTETRACK_WORK``) replaced by its local mirror
    (the landing as given stays in ``landing_url``), and the mirrors (``storage.Mirrors``; empty when
    everything is a plain path).

    A remote OUT cannot hold the default SQLite store (a database file is not an object): it needs a server
    store (the ``wastetrack_store`` connection or ``WASTETRACK_STORE``), or one file on a path every worker
    sees, named explicitly.
    """
    from wastetrack.plan import UsageError
    from wastetrack.storage import Mirror, Mirrors, is_remote, local_path

    cfg = settings(landing, out, store)
    cfg["work"] = os.environ.get(WORK_ENV, "")
    cfg["landing_url"] = cfg["landing"]
    if is_remote(cfg["out"]) and not cfg["store"]:
        raise UsageError(f"{OUT_ENV} is a URL: set the store (Airflow connection {STORE_CONN_ID} or "
                         f"{STORE_ENV}); the default store file cannot live on object storage")
    mirrors = []
    for key in ("landing", "out", "work"):
        if is_remote(cfg[key]):
            m = Mirror.of(cfg[key])
            mirrors.append(m)
            cfg[key] = str(m.local)
        elif cfg[key]:
            cfg[key] = local_path(cfg[key])
    return cfg, Mirrors(mirrors)


def _mirrors() -> Any:
    """The deployment's mirrors, from the environment (what every task after ``prepare`` runs with)."""
    from wastetrack.storage import Mirrors

    if not (os.environ.get(LANDING_ENV) and os.environ.get(OUT_ENV)):
        return Mirrors([])  # a test or a notebook calling the tasks with plain paths
    return shared()[1]


def _plan(work: str, mirrors: Any, exclude: tuple[str, ...] = ("shards", "parts", "quarantine", "results",
                                                                  "sheets")) -> Any:
    """The run's plan, the small files of its work directory pulled first when it lives on a URL."""
    from wastetrack.plan import NightPlan

    if mirrors:
        mirrors.pull(work, exclude=exclude)
    return NightPlan.load(work)


def pull_night_inputs(landing_url: str, date: str, store: Any) -> Path:
    """A landing on a URL, mirrored for one night: the reference, the day's batch, and the previous day's
    batch when no carried state stands in for it (``store``: an open store or its URL). Returns the mirror
    (a local landing directory)."""
    from contextlib import nullcontext

    from wastetrack.plan import UsageError, previous_day
    from wastetrack.storage import Mirror

    m = Mirror.of(landing_url)
    fs, root = m.filesystem()
    if not fs.exists(root):
        raise UsageError(f"landing {landing_url} does not exist (check --landing / {LANDING_ENV})")
    m.local.mkdir(parents=True, exist_ok=True)
    for part in ("reference", date):
        m.pull(m.local / part)
    prev = previous_day(date)
    with _store(str(store), "") if isinstance(store, str | Path) else nullcontext(store) as st:
        if st.state_of(prev) is None:  # no carried state: the previous batch is read again for the context
            m.pull(m.local / prev)
    return m.local


def prepare(date: str, store: str | None = None, landing: str | None = None, out: str | None = None) -> dict:
    """Task: plan the night. Returns the work directory and the mapped tasks' index lists."""
    from wastetrack.pipeline import prepare_step
    from wastetrack.plan import DEFAULT_MEMORY_BUDGET_BYTES, previous_day
    from wastetrack.storage import is_remote

    date = valid_date(date)
    cfg, mirrors = shared(landing, out, store)
    memory = os.environ.get(MEMORY_ENV)
    shards = os.environ.get(SHARDS_ENV)
    with _store(cfg["store"] or None, cfg["out"]) as st:
        if mirrors:
            if is_remote(cfg["landing_url"]):
                pull_night_inputs(cfg["landing_url"], date, st)
            mirrors.pull(Path(cfg["out"]) / ".wastetrack" / "state" / previous_day(date))
        plan = prepare_step(
            cfg["landing"], date, cfg["out"], st,
            work_root=cfg["work"] or None, workers=1,
            memory_budget_bytes=int(float(memory) * 1024**3) if memory else DEFAULT_MEMORY_BUDGET_BYTES,
            n_shards=int(shards) if shards else None,
        )
    mirrors.push(plan.work_dir)
    return {"date": date, "work": plan.work_dir, "parts": list(range(len(plan.parts))),
            "shards": list(range(plan.n_shards)), "context": plan.context["source"]}


def ingest(work: str, index: int) -> dict:
    """Task (mapped over parts): stream one input into the shards."""
    from wastetrack.pipeline import run_ingest

    mirrors = _mirrors()
    if mirrors:
        plan = _plan(work, mirrors)
        mirrors.pull(plan.parts[index]["path"])
    res = run_ingest(work, index)
    mirrors.push(work)
    return res


def finish_ingest(work: str) -> list[int]:
    """Task: check every part arrived; returns the shard indexes to map the detection over."""
    from wastetrack.pipeline import finish_ingest as _finish

    mirrors = _mirrors()
    plan = _plan(work, mirrors, exclude=("shards", "results", "sheets"))
    if mirrors and plan.context.get("state_uri"):
        mirrors.pull(plan.context["state_uri"])
    _finish(work)
    mirrors.push(work)
    return list(range(plan.n_shards))


def detect(work: str, shard: int) -> dict:
    """Task (mapped over shards): every per-vehicle stage of one shard."""
    from wastetrack.shard import run_shard

    mirrors = _mirrors()
    plan = _plan(work, mirrors)
    mirrors.pull(Path(work) / "shards" / f"{shard:04d}")
    res = run_shard(work, shard)
    mirrors.push(work, plan.state_dir)
    return res


def merge(work: str, store: str | None = None) -> list[list[int]]:
    """Task: the cross-vehicle steps; returns [chunk, n_chunks] pairs to map the sheets over."""
    from wastetrack.pipeline import merge_step, sheet_chunks

    mirrors = _mirrors()
    plan = _plan(work, mirrors, exclude=("shards", "sheets"))
    mirrors.pull(plan.state_dir)  # the state lists the tails the detect tasks wrote
    with _store(store or settings(out=plan.out, landing=plan.landing)["store"] or None, plan.out) as st:
        merge_step(work, st)
    n = sheet_chunks(work, workers=4)
    mirrors.push(work, plan.state_dir)  # the merge writes the carried state's small files
    return [[i, n] for i in range(n)]


def sheets(work: str, chunk: list[int]) -> int:
    """Task (mapped over chunks): render one chunk of the lead sheets."""
    from wastetrack.pipeline import run_sheets

    mirrors = _mirrors()
    plan = _plan(work, mirrors)
    done = run_sheets(work, chunk[0], chunk[1])
    mirrors.push(work, Path(plan.version_dir) / "sheets")
    return len(done)


def publish(work: str, store: str | None = None) -> dict:
    """Task: commit the night to the store and swap OUT/<date> to it (crash-safe); a small summary.

    On a URL, OUT/<date> cannot be a symbolic link: the new version is pushed first, then copied to
    OUT/<date>/ with ``run.json`` last, and the run's scratch is deleted from the URL."""
    from wastetrack.pipeline import publish_step

    mirrors = _mirrors()
    plan = _plan(work, mirrors, exclude=("shards",))
    if mirrors:
        mirrors.pull(Path(plan.version_dir) / "sheets", plan.state_dir)
    with _store(store or settings(out=plan.out, landing=plan.landing)["store"] or None, plan.out) as st:
        res = publish_step(work, st)
    if mirrors:
        _publish_remote(mirrors, plan, Path(res.out_dir))
    return {"date": res.date, "leads": res.run["leads"], "leads_total": res.run["leads_total"],
            "status": res.run["status"], "context": res.run["context"]["source"], "out_dir": str(res.out_dir)}


def _publish_remote(mirrors: Any, plan: Any, out_dir: Path) -> None:
    """Push the published version, its state and OUT/<date>/ (a copy of the version, ``run.json`` last)."""
    mirrors.push(plan.version_dir, plan.state_dir)
    owner = mirrors.owner_of(out_dir)
    if owner is not None:
        parent = owner.rel(out_dir.parent)  # out_dir itself is a link: its parent is the real folder
        owner.replace_folder(Path(plan.version_dir), out_dir.name if parent == "." else f"{parent}/{out_dir.name}",
                             last="run.json")
    mirrors.remove(plan.work_dir)


def nightly(date: str, landing: str | None = None, out: str | None = None, store: str | None = None) -> dict:
    """Run the night for ``date`` and return a small summary (what the DAG pushes to XCom)."""
    from wastetrack.pipeline import run_night
    from wastetrack.plan import UsageError
    from wastetrack.storage import is_remote

    date = valid_date(date)  # fail early on a malformed date
    raw = settings(landing, out, store)
    if is_remote(raw["out"]) or is_remote(os.environ.get(WORK_ENV, "")):
        raise UsageError("the one-task night writes OUT on a path; with fsspec URLs for OUT or WORK run the "
                         "mapped nightly DAG, whose tasks pull what they need and push what they write")
    store_url = raw["store"] or None
    lnd = (pull_night_inputs(raw["landing"], date, store_url or Path(raw["out"]) / "wastetrack.db")
           if is_remote(raw["landing"]) else raw["landing"])
    res = run_night(lnd, date, raw["out"], store_url=store_url)
    return {
        "date": date,
        "leads": res.run["leads"],
        "leads_total": res.run["leads_total"],
        "out_dir": str(res.out_dir),
    }


# ---------------------------------------------------------------- the follow-up DAG (the liaison loop)


def followup_date(context: Mapping[str, Any]) -> str:
    """The night a follow-up run works on: the ``date`` param, else the night the triggering Asset event
    published (the nightly ``publish`` task's return value), else the day before the run."""
    requested = (context.get("params") or {}).get("date")
    if requested:
        return valid_date(requested)
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events or []:
            date = (getattr(event, "extra", None) or {}).get("date")
            if date:
                return valid_date(date)
    return batch_date_for(run_time_of(context))


#: where returned XLSX reply sheets are dropped for the follow-up (default OUT/replies/)
REPLIES_ENV = "WASTETRACK_REPLIES"


def _loop(store: str | None) -> tuple[dict[str, str], Any]:
    """Paths, store URL and the liaison network for a follow-up task."""
    from wastetrack.network import Network

    cfg = settings(store=store)
    return cfg, Network.from_landing(cfg["landing"])


def followup_deliver(date: str, store: str | None = None, smtp: str | None = None) -> dict:
    """Task: e-mail each liaison the night's leads (once) and send any mail left over from earlier runs.

    ``smtp``: the Airflow connection's URI, else ``$WASTETRACK_SMTP``. A server down or refusing
    raises (one line, no password): Airflow retries, and what was not sent goes with the next try.
    """
    from wastetrack.delivery import deliver
    from wastetrack.mail import smtp_settings

    date = valid_date(date)
    cfg, net = _loop(store)
    with _store(cfg["store"] or None, cfg["out"]) as st:
        return deliver(st, cfg["out"], date, net, smtp_settings(smtp))


def followup_replies(store: str | None = None) -> dict:
    """Task: import the XLSX reply sheets in ``$WASTETRACK_REPLIES`` (default ``OUT/replies/``), each once.

    Files stay where they are (a file already imported is recognised by its content and skipped); a file
    that is not a reply workbook is reported, not fatal (it would otherwise fail every night).
    """
    from wastetrack.replies import ReplyFileError, import_reply_file

    cfg, net = _loop(store)
    folder = Path(os.environ.get(REPLIES_ENV) or Path(cfg["out"]) / "replies")
    res: dict[str, Any] = {"folder": str(folder), "files": 0, "imported": 0, "already": 0, "accepted": 0,
                           "quarantined": 0, "problems": []}
    if not folder.is_dir():
        log.info("no replies folder %s: nothing to import", folder)
        return res
    with _store(cfg["store"] or None, cfg["out"]) as st:
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xlsx" and not p.name.startswith("~$")):
            res["files"] += 1
            try:
                one = import_reply_file(st, path, net)
            except ReplyFileError as exc:
                res["problems"].append(str(exc))
                log.warning("replies: %s", exc)
                continue
            res["imported" if one["status"] == "imported" else "already"] += 1
            res["accepted"] += one["accepted"]
            res["quarantined"] += one["quarantined"]
            for row, why in one["problems"]:
                log.warning("replies: %s row %s quarantined: %s", path.name, row, why)
    return res


def followup_escalate(date: str, store: str | None = None, smtp: str | None = None) -> dict:
    """Task: the follow-up of the night (replies recorded, overdue leads escalated, transfers, disputes,
    notices; ``escalation.escalate``), then every queued mail sent."""
    from wastetrack.delivery import flush
    from wastetrack.escalation import escalate
    from wastetrack.mail import smtp_settings

    date = valid_date(date)
    cfg, net = _loop(store)
    server = smtp_settings(smtp)
    with _store(cfg["store"] or None, cfg["out"]) as st:
        res = escalate(st, date, net)
        res["sent"] = len(flush(st, cfg["out"], net, server).sent)
    return res


def followup_monthly(date: str, store: str | None = None) -> dict:
    """Task: after a month's last night (the follow-up runs on the 1st), the monthly report and the carrier
    credit list of that month into ``OUT/monthly/``; any other night, nothing (and it says so)."""
    from wastetrack.credit import write_credit_list
    from wastetrack.monthly import write_report

    date = valid_date(date)
    day = Date.fromisoformat(date)
    if (day + timedelta(days=1)).day != 1:
        last = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return {"date": date, "skipped": f"not a month's last night: the monthly report runs after {last}"}
    month = date[:7]
    cfg, net = _loop(store)
    target = Path(cfg["out"]) / "monthly"
    with _store(cfg["store"] or None, cfg["out"]) as st:
        report = write_report(st, month, target, net)
        credit = write_credit_list(st, month, target, landing=cfg["landing"])
    return {"date": date, "month": month, "report": report, "credit": credit}
