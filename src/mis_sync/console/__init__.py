"""The MIS Sync console: pages over the directory inside the Airflow UI (see docs/console.md)."""
