"""What the Airflow DAGs call: batch readiness, the batch date of a run, and the night job.

Kept out of ``dags/`` so the scheduler's constant re-parsing of DAG files costs
nothing (no pandas import at parse time) and so this logic is tested without an
Airflow installation. Paths and the store URL come from the environment or an
Airflow connection, never from code.
"""

from __future__ import annotations

import json
import os
from datetime import date as Date
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
LANDING_ENV, OUT_ENV, STORE_ENV = "WASTETRACK_LANDING", "WASTETRACK_OUT", "WASTETRACK_STORE"


def batch_date_for(run_time: datetime) -> str:
    """The batch a run works on: the local calendar day before the run's logical time.

    The nightly DAG is triggered the morning after (06:30 Asia/Shanghai), so a
    run at 2026-11-21 06:30 processes the batch of 2026-11-20. Re-running an old
    DAG run processes the same date again (idempotent, by the partition).
    """
    local = run_time.astimezone(TZ) if run_time.tzinfo else run_time.replace(tzinfo=TZ)
    return (local.date() - timedelta(days=1)).isoformat()


def batch_ready(landing: str | Path, date: str) -> bool:
    """True when the producer has marked the batch complete (a cheap check for a sensor: no hashing)."""
    path = Path(landing) / date / "batch.json"
    if not path.exists():
        return False
    try:
        meta = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return False
    return meta.get("complete") is True and meta.get("date") == date


def settings(landing: str | None = None, out: str | None = None, store: str | None = None) -> dict[str, str]:
    """Resolve paths and the store URL from arguments, else the environment."""
    res = {
        "landing": landing or os.environ.get(LANDING_ENV, ""),
        "out": out or os.environ.get(OUT_ENV, ""),
        "store": store or os.environ.get(STORE_ENV, ""),
    }
    missing = [k for k in ("landing", "out") if not res[k]]
    if missing:
        raise RuntimeError(f"wastetrack: set {', '.join(missing)} (env {LANDING_ENV} / {OUT_ENV})")
    return res


def nightly(date: str, landing: str | None = None, out: str | None = None, store: str | None = None) -> dict:
    """Run the night for ``date`` and return a small summary (what the DAG pushes to XCom)."""
    from wastetrack.pipeline import run_night

    Date.fromisoformat(date)  # fail early on a malformed date
    cfg = settings(landing, out, store)
    res = run_night(cfg["landing"], date, cfg["out"], store_url=cfg["store"] or None)
    return {
        "date": date,
        "leads": res.run["leads"],
        "leads_total": res.run["leads_total"],
        "out_dir": str(res.out_dir),
    }
