"""The liaison loop after each night (Airflow 3): deliver the leads, take in replies, escalate, report.

Scheduled on the Asset ``wastetrack://nights`` that the nightly DAG's ``publish`` task emits, so it
runs once a night has been published (and can be triggered by hand for a date with the param
``date``). Thin like the nightly DAG: each task calls one function of ``wastetrack.orchestration``.

    date → deliver (e-mail each liaison its leads, once) → replies (returned XLSX sheets)
         → escalate (overdue and disputed leads go up a level) → monthly (on the 1st: the report
           and the carrier credit list of the month before)

* Mail: the SMTP server comes from the Airflow connection ``wastetrack_smtp`` or env
  ``WASTETRACK_SMTP`` (``smtp://host:port`` or ``smtps://user:pass@host:port``); a server that is
  down fails ``deliver`` (retried); what was not sent is sent by the next run, never twice.
* Replies: XLSX files dropped in ``WASTETRACK_REPLIES`` (default ``OUT/replies/``) are imported
  once each; ``feedback.csv`` in the batch is applied by the nightly run itself.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

#: wastetrack.TIMEZONE (a DAG file imports no project module at parse time)
LOCAL_TZ = "Asia/Shanghai"
NIGHTS = Asset("wastetrack://nights")


@dag(
    dag_id="wastetrack_followup",
    schedule=[NIGHTS],
    start_date=pendulum.datetime(2026, 11, 1, tz=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=15)},
    params={
        "date": Param(None, type=["null", "string"], format="date", title="Night",
                      description="Follow up this night (YYYY-MM-DD). Empty: the night just published."),
    },
    tags=["wastetrack"],
    doc_md=__doc__,
)
def wastetrack_followup():
    @task
    def night(**context) -> str:
        from wastetrack.orchestration import followup_date

        return followup_date(context)

    @task
    def deliver(date: str) -> dict:
        from wastetrack.orchestration import airflow_smtp_url, airflow_store_url, followup_deliver

        return followup_deliver(date, store=airflow_store_url(), smtp=airflow_smtp_url())

    @task
    def replies(date: str) -> dict:
        from wastetrack.orchestration import airflow_store_url, followup_replies

        return followup_replies(store=airflow_store_url())

    @task
    def escalate(date: str) -> dict:
        from wastetrack.orchestration import airflow_smtp_url, airflow_store_url, followup_escalate

        return followup_escalate(date, store=airflow_store_url(), smtp=airflow_smtp_url())

    @task
    def monthly(date: str) -> dict:
        from wastetrack.orchestration import airflow_store_url, followup_monthly

        return followup_monthly(date, store=airflow_store_url())

    d = night()
    deliver(d) >> replies(d) >> escalate(d) >> monthly(d)


followup_dag = wastetrack_followup()
