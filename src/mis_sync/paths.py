"""Where the project's data files live: in a checkout, in the Docker image, or where an admin says.

Functions, not constants: tests and deployments point the environment variables below elsewhere at run
time, and the repository layout differs from the image layout (``$AIRFLOW_HOME/include``).
"""

from __future__ import annotations

import os
from pathlib import Path


def include_dir() -> Path:
    """The project's ``include/`` folder: ``$MISYNC_INCLUDE_DIR``, the repository's, or the image's.

    In the Docker image ``include/`` sits in ``$AIRFLOW_HOME`` (``/opt/airflow/include``).
    """
    override = os.environ.get("MISYNC_INCLUDE_DIR")
    if override:
        return Path(override)
    in_repo = Path(__file__).resolve().parents[2] / "include"
    if in_repo.is_dir():
        return in_repo
    return Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow")) / "include"


def mis_schemas_dir() -> Path:
    """Field mappings, one YAML per source (``file_drop.yaml``…); ``$MISYNC_SCHEMAS_DIR`` overrides."""
    override = os.environ.get("MISYNC_SCHEMAS_DIR")
    return Path(override) if override else include_dir() / "mis_schemas"


def establishments_dir() -> Path:
    """One YAML per establishment; ``$MISYNC_ESTABLISHMENTS_DIR`` points a deployment elsewhere."""
    override = os.environ.get("MISYNC_ESTABLISHMENTS_DIR")
    return Path(override) if override else include_dir() / "establishments"
