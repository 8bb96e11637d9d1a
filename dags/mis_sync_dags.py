"""Airflow DAG loader: one MIS Sync DAG per file in include/establishments/ (see mis_sync.dag_factory)."""

from mis_sync.dag_factory import register_all

register_all(globals())
