"""Where the project's data files live, in a checkout, an installed package or the Airflow image.

Why a function and not a constant: tests and deployments point ``MISYNC_SCHEMAS_DIR`` at another
folder at run time, and the repository layout differs from the Astro/Airflow image layout.
"""

from __future__ import annotations

import os
from pathlib import Path

_AIRFLOW_SCHEMAS_DIR = Path("/usr/local/airflow/include/mis_schemas")


def mis_schemas_dir() -> Path:
    """Folder holding the MIS mapping YAML files (``file_drop.yaml`` and friends).

    Order: ``$MISYNC_SCHEMAS_DIR`` if set; else ``include/mis_schemas`` of the repository this package
    was installed from (editable installs and test runs); else the Airflow image's
    ``/usr/local/airflow/include/mis_schemas``.
    """
    override = os.environ.get("MISYNC_SCHEMAS_DIR")
    if override:
        return Path(override)
    in_repo = Path(__file__).resolve().parents[2] / "include" / "mis_schemas"
    if in_repo.is_dir():
        return in_repo
    return _AIRFLOW_SCHEMAS_DIR


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


def establishments_dir() -> Path:
    """One YAML per establishment; ``$MISYNC_ESTABLISHMENTS_DIR`` points a deployment elsewhere."""
    override = os.environ.get("MISYNC_ESTABLISHMENTS_DIR")
    return Path(override) if override else include_dir() / "establishments"
