# MIS Sync on the official Apache Airflow image. Build: docker build -t mis-sync .
FROM apache/airflow:3.3.2-python3.11

# The mis_sync package and its pinned dependencies (constraints.txt pins every transitive package).
COPY --chown=airflow:0 requirements.txt constraints.txt pyproject.toml README.md /opt/mis-sync/
COPY --chown=airflow:0 src /opt/mis-sync/src
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/mis-sync/requirements.txt -c /opt/mis-sync/constraints.txt \
    && pip install --no-cache-dir --no-deps /opt/mis-sync

# DAG loader, plugins and data (establishment files, MIS field mappings, expectation suites).
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include /opt/airflow/include
ENV MISYNC_INCLUDE_DIR=/opt/airflow/include
