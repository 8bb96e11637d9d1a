"""Airflow DAG loader: the daily retention DAG ``mis_sync__housekeeping`` (see mis_sync.privacy)."""

from mis_sync.privacy.housekeeping_dag import register

register(globals())
