"""Airflow plugin: each MIS Sync DAG run's note carries its report's headline (``mis_sync.run_notes``)."""

from airflow.plugins_manager import AirflowPlugin

from mis_sync import run_notes


class MisSyncRunNotes(AirflowPlugin):
    name = "mis_sync_run_notes"
    listeners = [run_notes]  # noqa: RUF012  (Airflow's plugin interface: a class attribute list)
