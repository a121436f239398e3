"""wastetrack: track construction-waste hauls in the Yangtze River Delta and flag illegal dumping.

The package reads as the night: ``contract`` (read and validate the landing
directory) → ``clean`` → ``stays`` → ``geofence`` → ``hauls`` → ``reconcile`` →
``detect`` → ``trace`` → ``routing`` → ``leads`` → ``sheets``, orchestrated by
``pipeline.run_night``. The CLI, the Airflow DAGs and the notebooks call the same
functions.
"""

__version__ = "0.1.0"
TIMEZONE = "Asia/Shanghai"
