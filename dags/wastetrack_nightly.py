"""Nightly wastetrack run (Airflow 3): wait for the day's batch, run the night, one date per DAG run.

Thin by design: all logic is in ``wastetrack.orchestration`` / ``wastetrack.pipeline``.
Nothing heavy is imported at parse time. Configure with environment variables
WASTETRACK_LANDING and WASTETRACK_OUT, and the store either with
WASTETRACK_STORE or an Airflow connection ``wastetrack_store`` (its URI is used).
Re-running a DAG run re-processes its date and replaces its results.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

LOCAL = pendulum.timezone("Asia/Shanghai")


def _store_url() -> str | None:
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection("wastetrack_store").get_uri()
    except Exception:
        return None


@dag(
    dag_id="wastetrack_nightly",
    schedule="30 6 * * *",
    start_date=pendulum.datetime(2026, 11, 1, tz=LOCAL),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=20)},
    tags=["wastetrack"],
)
def wastetrack_nightly():
    @task
    def batch_date(**context) -> str:
        from wastetrack.orchestration import batch_date_for

        return batch_date_for(context["logical_date"])

    @task.sensor(poke_interval=600, timeout=8 * 3600, mode="reschedule")
    def wait_for_batch(date: str) -> bool:
        from wastetrack.orchestration import batch_ready, settings

        return batch_ready(settings()["landing"], date)

    @task
    def run(date: str) -> dict:
        from wastetrack.orchestration import nightly

        return nightly(date, store=_store_url())

    d = batch_date()
    wait_for_batch(d) >> run(d)


wastetrack_nightly()
