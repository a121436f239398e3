"""Nightly wastetrack run (Airflow 3): wait for the day's batch, run the night, one date per DAG run.

Thin by design: all logic is in ``wastetrack.orchestration`` / ``wastetrack.pipeline``,
imported inside the tasks, so parsing this file imports only pendulum and airflow.sdk.

* Schedule: 06:30 Asia/Shanghai; the run of the morning of D processes the batch of D-1.
  The timetable is a ``CronTriggerTimetable`` on purpose: the logical date *is* the
  06:30 trigger time, whatever ``[scheduler] create_cron_data_intervals`` says (with
  data-interval semantics the logical date would be the day before, and every run
  would silently process D-2).
* Re-running: clearing a DAG run re-processes its date and replaces its results.
  To (re)process any given day, trigger the DAG with the param ``date`` (YYYY-MM-DD),
  e.g. ``airflow dags trigger wastetrack_nightly -c '{"date": "2026-11-18"}'``.
  ``max_active_runs=1`` keeps such runs and the nightly one from writing the store
  at the same time.
* Configuration: env WASTETRACK_LANDING and WASTETRACK_OUT (on the workers); the store
  is the Airflow connection ``wastetrack_store`` if defined (a postgres connection, or
  type sqlite with the file path as host), else env WASTETRACK_STORE, else OUT/wastetrack.db.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

try:
    from airflow.sdk import CronTriggerTimetable
except ImportError:  # Airflow 3.0/3.1: the timetable is not in the task SDK yet
    from airflow.timetables.trigger import CronTriggerTimetable

LOCAL_TZ = "Asia/Shanghai"


def _store_url() -> str | None:
    """The store URL from the Airflow connection, or None when that connection is not defined.

    Only "not defined" falls back (to WASTETRACK_STORE, then OUT/wastetrack.db); any other
    failure (API server, secrets backend) fails the task: writing to another store than
    usual would split the lead registry and send old leads again.
    """
    from airflow.sdk import Connection

    from wastetrack.orchestration import STORE_CONN_ID, store_url_of

    try:
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(STORE_CONN_ID)
    except AirflowNotFoundException:
        return None
    return store_url_of(conn)


@dag(
    dag_id="wastetrack_nightly",
    schedule=CronTriggerTimetable("30 6 * * *", timezone=LOCAL_TZ),
    start_date=pendulum.datetime(2026, 11, 1, tz=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=20)},
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

        return batch_date_of_run(context)

    # reschedule: the worker slot is freed between pokes; the batch normally lands overnight,
    # 8 h of waiting covers a late producer, then the run fails loudly (a sensor timeout is not retried)
    @task.sensor(poke_interval=600, timeout=8 * 3600, mode="reschedule")
    def wait_for_batch(date: str) -> bool:
        from wastetrack.orchestration import batch_ready, settings

        return batch_ready(settings()["landing"], date)

    # a hung night must not hold max_active_runs=1 forever
    @task(execution_timeout=pendulum.duration(hours=6))
    def run(date: str) -> dict:
        from wastetrack.orchestration import nightly

        return nightly(date, store=_store_url())

    d = batch_date()
    wait_for_batch(d) >> run(d)


wastetrack_nightly()
