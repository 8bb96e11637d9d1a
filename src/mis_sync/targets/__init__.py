"""Fan-out targets: Microsoft 365 (education classes or groups) and Google Classroom.

One engine (``engine``: desired state vs stored state → change set → batched, retried writes → stored
state) with a thin adapter per target. ``settings`` is import-light for DAG parse time; everything
else is imported inside tasks.
"""
