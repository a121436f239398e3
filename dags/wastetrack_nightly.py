"""Nightly wastetrack run (Airflow 3): wait for the day's batch, then run the night as mapped tasks.

Thin by design: every task calls one function of ``wastetrack.orchestration`` (imported inside the
task), so parsing this file imports only pendulum and airflow.sdk, and the logic is tested without
Airflow. The tasks hand each other the run's work directory (shared storage) and index lists only.

    batch_date → wait_for_batch → night.prepare
        → night.ingest ×parts → night.shards → night.detect ×shards
        → night.merge → night.sheets ×chunks → night.publish  (emits the Asset wastetrack://nights)

* Spread over workers: ``ingest``, ``detect`` and ``sheets`` are mapped tasks (dynamic task
  mapping). With the CeleryExecutor or KubernetesExecutor one night runs on many machines; set
  ``WASTETRACK_WORK`` to storage every worker sees (and ``WASTETRACK_OUT``, ``WASTETRACK_LANDING``),
  and bound the heavy tasks with the pool ``wastetrack`` (``airflow pools set wastetrack 4 …``;
  ``WASTETRACK_POOL`` names another). A shard needs about ``WASTETRACK_MEMORY_GB`` (default 6) / 1
  of memory per running task: the plan sizes shards for one task per worker slot.
* Schedule: 06:30 Asia/Shanghai; the run of the morning of D processes the batch of D-1. The
  timetable is a ``CronTriggerTimetable`` on purpose: the logical date *is* the 06:30 trigger time.
* Re-running: clearing a DAG run re-processes its date and replaces its results (a new version of
  OUT/<date> is published atomically). To (re)process any given day, trigger with the param
  ``date``: ``airflow dags trigger wastetrack_nightly -c '{"date": "2026-11-18"}'``.
  ``max_active_runs=1`` keeps two runs from writing the store at once.
* Failures: a refused batch (contract) fails at once (``AirflowFailException``, no retry: the data
  must be fixed); anything else (a lost worker, a database restart) is retried.
* Configuration: env WASTETRACK_LANDING, WASTETRACK_OUT (and WASTETRACK_WORK) on the workers, paths
  every worker sees or fsspec URLs (s3://…: each task pulls what it needs and pushes what it wrote); the
  store is the Airflow connection ``wastetrack_store`` if defined (postgres, or type sqlite with the
  file path as host), else env WASTETRACK_STORE, else OUT/wastetrack.db.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, TaskGroup, dag, task

try:
    from airflow.sdk import CronTriggerTimetable
except ImportError:  # Airflow 3.0/3.1: the timetable is not in the task SDK yet
    from airflow.timetables.trigger import CronTriggerTimetable

#: wastetrack.TIMEZONE (a DAG file imports no project module at parse time)
LOCAL_TZ = "Asia/Shanghai"

#: what the follow-up DAG (delivery, replies, escalation) is scheduled on
NIGHTS = Asset("wastetrack://nights", extra={"what": "a night's leads published to the store and OUT/"})
POOL = os.environ.get("WASTETRACK_POOL", "default_pool")
#: a cron expression (Asia/Shanghai) or "none" for manual triggers only (e.g. when an outside scheduler
#: triggers the runs, or to test a deployment without a scheduled run of yesterday's date)
SCHEDULE = os.environ.get("WASTETRACK_NIGHTLY_SCHEDULE", "30 6 * * *")


def _contract(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn``; a refusal of the input (bad batch, bad date or path) fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from wastetrack.contract import ContractError

    try:
        return fn(*args, **kwargs)
    except ContractError as exc:
        raise AirflowFailException(f"wastetrack: {exc}") from exc


@dag(
    dag_id="wastetrack_nightly",
    schedule=None if SCHEDULE.strip().lower() == "none" else CronTriggerTimetable(SCHEDULE, timezone=LOCAL_TZ),
    start_date=pendulum.datetime(2026, 11, 1, tz=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    params={
        "date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Batch date",
            description="Process this day (YYYY-MM-DD) instead of the day before the run. Empty: nightly.",
        )
    },
    tags=["wastetrack"],
    doc_md=__doc__,
)
def wastetrack_nightly():
    @task
    def batch_date(**context) -> str:
        from wastetrack.orchestration import batch_date_of_run

        return _contract(batch_date_of_run, context)

    # reschedule: the worker slot is freed between pokes; the batch normally lands overnight,
    # 8 h of waiting covers a late producer, then the run fails loudly (a sensor timeout is not retried)
    @task.sensor(poke_interval=600, timeout=8 * 3600, mode="reschedule")
    def wait_for_batch(date: str) -> bool:
        from wastetrack.orchestration import batch_ready, settings

        return batch_ready(settings()["landing"], date)

    @task
    def prepare(date: str) -> dict:
        from wastetrack import orchestration

        return _contract(orchestration.prepare, date, store=orchestration.airflow_store_url())

    @task
    def parts_of(plan: dict) -> list[int]:
        return plan["parts"]

    @task(pool=POOL)
    def ingest(plan: dict, index: int) -> dict:
        from wastetrack import orchestration

        return _contract(orchestration.ingest, plan["work"], index)

    @task
    def shards(plan: dict) -> list[int]:
        from wastetrack import orchestration

        return orchestration.finish_ingest(plan["work"])

    @task(pool=POOL, execution_timeout=pendulum.duration(hours=2))
    def detect(plan: dict, shard: int) -> dict:
        from wastetrack import orchestration

        return orchestration.detect(plan["work"], shard)

    @task
    def merge(plan: dict) -> list[list[int]]:
        from wastetrack import orchestration

        return orchestration.merge(plan["work"], store=orchestration.airflow_store_url())

    @task(pool=POOL)
    def sheets(plan: dict, chunk: list[int]) -> int:
        from wastetrack import orchestration

        return orchestration.sheets(plan["work"], chunk)

    @task(outlets=[NIGHTS], trigger_rule="none_failed")
    def publish(plan: dict, **context) -> dict:
        from wastetrack import orchestration

        summary = orchestration.publish(plan["work"], store=orchestration.airflow_store_url())
        # the follow-up DAG (delivery, replies, escalation) learns which night was published
        context["outlet_events"][NIGHTS].extra = {"date": summary["date"]}
        return summary

    d = batch_date()
    waited = wait_for_batch(d)
    with TaskGroup("night", tooltip="one night: plan, shards, merge, sheets, publish"):
        plan = prepare(d)
        waited >> plan
        ingested = ingest.partial(plan=plan).expand(index=parts_of(plan))
        shard_ids = shards(plan)
        ingested >> shard_ids
        detected = detect.partial(plan=plan).expand(shard=shard_ids)
        chunks = merge(plan)
        detected >> chunks
        rendered = sheets.partial(plan=plan).expand(chunk=chunks)
        rendered >> publish(plan)


nightly_dag = wastetrack_nightly()
