"""One Airflow DAG per establishment YAML: extract → validate → plan → apply → report.

Parse time does only local work: read the YAML files and build DAG objects. No network, no database,
no Connections or Variables, no pandas (stage code is imported inside the tasks). In a task process,
``get_parsing_context()`` names the DAG being run, and only that establishment's file is read.

A broken YAML never takes the other establishments down: its DAG is left out and an import error
naming the file, the field and the problem appears in the Airflow UI.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum

from mis_sync.config import (
    TIMEZONE,
    ConfigError,
    Establishment,
    LoadedConfig,
    discover,
    establishment_file,
    load_one,
)
from mis_sync.errors import DataError, SetupError, StalePlanError
from mis_sync.paths import establishments_dir

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from mis_sync.pipeline import RunContext

DAG_ID_PREFIX = "mis_sync__"
START_DATE = pendulum.datetime(2025, 9, 1, tz=TIMEZONE)
RUN_STORAGE_DEFAULT = "misync-runs"
"""Run folders live under ``$AIRFLOW_HOME/misync-runs`` unless ``[misync] run_storage`` says otherwise."""


def default_args(config: Establishment) -> dict[str, Any]:
    """Retries with exponential backoff for outages; data errors fail at once (retry policy)."""
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return {
        "owner": config.owner,
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "retry_policy": ExceptionRetryPolicy(
            rules=[
                RetryRule(
                    exception=[DataError, SetupError, StalePlanError, ConfigError],
                    action=RetryAction.FAIL,
                    reason="bad MIS data, setup or a stale plan: retrying cannot fix it",
                )
            ]
        ),
    }


APPROVAL_TASK = "approve_held_changes"
SETTLED_TASK = "changes_settled"
"""Joins the brake's two paths: the fan-out to Microsoft 365 and Classroom starts only after it."""
APPROVAL_BODY = """
The safety brake held this run's destructive changes:

**{{ ti.xcom_pull(task_ids='plan')['held_reason'] }}**

Held accounts per role: `{{ ti.xcom_pull(task_ids='plan')['held_by_role'] }}`
Held groups: `{{ ti.xcom_pull(task_ids='plan')['groups_held'] }}`
Held memberships: `{{ ti.xcom_pull(task_ids='plan')['memberships_held'] }}`

Creates, updates and additions have already been applied to the directory. The held people keep their
accounts and every class membership, and the held groups keep their members, in the directory and in
Microsoft 365 / Google Classroom, which wait for your answer. Check the MIS (a failed export or a filter
left on looks exactly like a mass departure) and the run's plan folder, then:
- **Approve**: the held changes are re-planned against the directory and applied together, then
  Microsoft 365 and Classroom follow in this run.
- **Reject** (or no answer within 20 hours): nothing held changes anywhere; the targets get the
  other changes; the next run plans the held changes again (and holds them while the cause remains).
"""


def doc_md(config: Establishment, source: Path) -> str:
    via = f" via `{config.mis.via}`" if config.mis.via else ""
    return f"""
# MIS Sync — {config.name}

| | |
|---|---|
| Establishment id | `{config.id}` |
| DfE LAESTAB | `{config.laestab}` |
| MIS | `{config.mis.type}`{via} (connection `{config.mis.connection_id}`) |
| Mode | `{config.mode}` |
| Schedule | `{config.cron}` ({TIMEZONE}{"" if config.schedule else ", spread default"}) |
| Directory | connection `{config.directory.connection_id}` |
| Config file | `{source.name}` |

**Tasks**
1. **extract** reads the MIS into the canonical model and stores it in this run's folder.
2. **validate** stops the run on an empty, short or malformed extract; quarantines rows that point
   at unknown records.
3. **plan** compares the MIS with the directory and stores every change with its reason.
4. **apply** writes the plan in one transaction (skipped on `dry_run`; never applies an MIS
   snapshot older than the last one applied). Suspensions, deletions, group archives and membership
   removals over the safety limits (this run, or summed over the rolling window) are held back.
5. **brake → approve_held_changes → apply_approved**: held changes wait for an admin's Approve /
   Reject in the Airflow UI (Required Actions); without an answer in 20 hours nothing is removed.
6. **changes_settled → Microsoft 365 / Classroom fan-out**: the targets follow the directory once the
   brake's question is answered, so they never receive a held removal.
7. **report** logs counts per role, the times of the last sync and the last MIS change, and marks a
   run whose changes were held, rejected or approved.

**Manual runs** (Trigger DAG w/ config): `dry_run` computes and stores the plan without applying it;
`full_sync` asks the MIS for a full extract instead of changes; `approve_suspensions` lets a run apply
the suspensions, archives and removals that the safety brake would hold back; `drift_check` reads every
class's live membership back from each target now (otherwise weekly) and repairs changes made by hand.
Logs and XCom carry counts and MIS ids only.
"""


def _storage_root(config: Establishment, run_id: str) -> Any:
    """The run folder as an ``ObjectStoragePath``: local by default, ``s3://``/``abfs://``/``gs://`` too."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.configuration import conf

    from mis_sync.storage import safe_segment

    home = os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))
    base = conf.get("misync", "run_storage", fallback=None) or f"file://{home}/{RUN_STORAGE_DEFAULT}"
    conn_id = conf.get("misync", "run_storage_conn_id", fallback=None) or None
    root = ObjectStoragePath(base, conn_id=conn_id)
    return root / config.id / safe_segment(run_id)


def run_context(config: Establishment, run_id: str, *, with_keys: bool = False) -> RunContext:
    from mis_sync.connections import from_airflow, sqlalchemy_url
    from mis_sync.passwords import keys_from_connection
    from mis_sync.pipeline import RunContext

    keys = None
    if with_keys and config.passwords.issue_initial and config.mode == "create":
        keys = keys_from_connection(from_airflow(config.passwords.key_connection_id))
    return RunContext(
        establishment=config,
        run_id=run_id,
        folder=_storage_root(config, run_id),
        source=from_airflow(config.mis.connection_id),
        directory_url=sqlalchemy_url(from_airflow(config.directory.connection_id)),
        credential_keys=keys,
    )


def build_dag(config: Establishment, source: Path) -> DAG:
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import DAG, Param, get_current_context, task
    from airflow.sdk.exceptions import AirflowSkipException
    from airflow.timetables.trigger import CronTriggerTimetable

    def current(*, with_keys: bool = False) -> tuple[RunContext, dict[str, Any]]:
        context = get_current_context()
        return run_context(config, context["run_id"], with_keys=with_keys), context["params"]

    with DAG(
        dag_id=config.dag_id,
        description=f"MIS → directory sync for {config.name}",
        schedule=CronTriggerTimetable(config.cron, timezone=TIMEZONE),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=timedelta(hours=6),
        default_args=default_args(config),
        tags=["mis-sync", f"mis:{config.mis.type}", f"mode:{config.mode}", *config.tags],
        doc_md=doc_md(config, source),
        params={
            "dry_run": Param(False, type="boolean", description="Plan only; apply nothing."),
            "full_sync": Param(False, type="boolean", description="Full extract, not changes."),
            "approve_suspensions": Param(
                False, type="boolean", description="Apply the changes the safety brake would hold."
            ),
            "drift_check": Param(
                False,
                type="boolean",
                description="Read live class membership back from each target and repair drift now.",
            ),
        },
    ) as dag:

        @task
        def extract() -> dict[str, Any]:
            from mis_sync.pipeline import extract_stage

            ctx, params = current()
            return extract_stage(ctx, full=bool(params["full_sync"]))

        @task
        def validate() -> dict[str, Any]:
            from mis_sync.pipeline import validate_stage

            ctx, _ = current()
            return validate_stage(ctx)

        @task
        def plan() -> dict[str, Any]:
            from mis_sync.pipeline import plan_stage

            ctx, params = current()
            return plan_stage(ctx, approve_suspensions=bool(params["approve_suspensions"]))

        @task
        def apply() -> dict[str, Any]:
            from mis_sync.pipeline import apply_stage

            if get_current_context()["params"]["dry_run"]:
                raise AirflowSkipException("dry run: the plan is stored in the run folder, nothing applied")
            ctx, _ = current(with_keys=True)
            outcome = apply_stage(ctx)
            if outcome["skipped_reason"]:
                raise AirflowSkipException(outcome["skipped_reason"])
            return outcome

        @task.branch(trigger_rule="none_failed")
        def brake() -> str:
            """Held changes go to a human, then on; none held: straight on to the targets; a dry run
            or a skipped apply (nothing applied): straight to the report, no target touched."""
            context = get_current_context()
            applied = context["ti"].xcom_pull(task_ids="apply")
            if not applied or context["params"]["dry_run"]:
                return "report"
            plan = context["ti"].xcom_pull(task_ids="plan")
            return APPROVAL_TASK if plan.get("held_changes", plan["users_held"]) else SETTLED_TASK

        approve = ApprovalOperator(
            task_id=APPROVAL_TASK,
            subject=f"MIS Sync — {config.name}: approve held suspensions, archives and removals?",
            body=APPROVAL_BODY,
            defaults=["Reject"],
            response_timeout=timedelta(hours=20),
            retries=0,
        )

        @task
        def apply_approved() -> dict[str, Any]:
            """Re-plan with approval against the directory the first apply left, then apply."""
            from mis_sync.pipeline import apply_stage, plan_stage

            ctx, _ = current(with_keys=True)
            plan_stage(ctx, approve_suspensions=True, name="approved")
            return apply_stage(ctx, name="approved")

        @task(task_id=SETTLED_TASK, trigger_rule="none_failed_min_one_success")
        def changes_settled() -> str:
            """The directory holds this run's final state: nothing held is waiting any more (applied
            after Approve, or left as it was after Reject). The targets follow it from here."""
            approved = get_current_context()["ti"].xcom_pull(task_ids="apply_approved")
            return "approved" if approved else "settled"

        @task(trigger_rule="none_failed_min_one_success")
        def report() -> dict[str, Any]:
            from mis_sync.pipeline import report_stage

            ctx, params = current()
            # held changes still unapplied when the report runs were answered Reject (or timed out)
            dry_run = bool(params["dry_run"])
            result = report_stage(ctx, dry_run=dry_run, rejected=not dry_run)
            keep = ("outcome", "hold", "mark", "users_by_role", "groups", "memberships", "writes")
            return {k: result[k] for k in keep}

        final = report()
        gate = brake()
        applied = apply()
        settled = changes_settled()
        extract() >> validate() >> plan() >> applied >> gate
        gate >> [settled, final]
        gate >> approve >> apply_approved() >> settled
        settled >> final
        for target in enabled_targets(config):
            settled >> target_fan_out(config, target, current) >> final
    return dag


def enabled_targets(config: Establishment) -> list[str]:
    """Fan-out targets switched on, side by side (each its own TaskGroup and pool)."""
    return [name for name in ("microsoft365", "google_classroom") if getattr(config.targets, name).enabled]


def target_fan_out(config: Establishment, target: str, current: Any) -> Any:
    """prepare → sync_chunk (mapped over chunks of classes, in the target's pool) → finish.

    Runs after the brake's question is answered (``changes_settled``), on what the directory then
    holds: held changes never reach a target; approved ones reach it in the same run. A dry run or a
    skipped apply skips it.
    """
    from airflow.sdk import TaskGroup, task

    settings = getattr(config.targets, target)
    with TaskGroup(group_id=target, tooltip=f"Fan-out to {target}") as group:

        @task(pool=settings.pool)
        def prepare() -> list[int]:
            from mis_sync.targets.stages import prepare_stage

            # the keys decrypt initial passwords, only when accounts are provisioned in the target
            ctx, params = current(with_keys=bool(getattr(settings, "provision_accounts", False)))
            return prepare_stage(ctx, target, force_drift_check=bool(params["drift_check"]))["chunk_ids"]

        @task(pool=settings.pool, max_active_tis_per_dagrun=4)
        def sync_chunk(chunk: int) -> dict[str, int]:
            from mis_sync.targets.stages import sync_chunk_stage

            ctx, _ = current()
            return sync_chunk_stage(ctx, target, chunk)

        @task(trigger_rule="none_failed_min_one_success")
        def finish(results: Any, chunk_ids: list[int]) -> dict[str, Any]:
            """Runs when prepare ran (with or without chunks); skipped with it (dry run, skipped apply)."""
            from mis_sync.storage import read_json
            from mis_sync.targets.stages import finish_stage

            ctx, _ = current()
            prepared = read_json(ctx.folder / f"targets-{target}", "prepare.json")
            chunks = [r for r in (results or []) if r]
            summary = finish_stage(ctx, target, prepared, chunks)
            keep = (
                "writes",
                "noops",
                "write_requests",
                "requests",
                "retries",
                "throttles",
                "failed",
                "unresolved_users",
            )
            return {k: summary[k] for k in keep}

        chunk_ids = prepare()
        finish(sync_chunk.expand(chunk=chunk_ids), chunk_ids)
    return group


def broken_config_dag(errors: list[LoadedConfig]) -> DAG:
    """A DAG that refuses to be bagged, so Airflow shows the config errors as an import error.

    DagBag records a DAG's validation failure as an import error of the loader file and still loads
    every other DAG from it: exactly "a broken file fails only its own DAG".
    """
    from airflow.sdk import DAG

    message = "\n".join(str(item.error) for item in errors)

    class BrokenEstablishmentConfig(DAG):
        def validate(self) -> None:
            raise ConfigError(f"{len(errors)} establishment file(s) could not be loaded:\n{message}")

    return BrokenEstablishmentConfig(dag_id=f"{DAG_ID_PREFIX}config_errors", schedule=None)


def _wanted_file(directory: Path, dag_id: str) -> LoadedConfig | None:
    """The YAML a task process needs (ids are slugs, so the DAG id maps back to one file name), loaded
    or carrying its error (e.g. ``x.yaml`` beside ``x.yml``)."""
    if not dag_id.startswith(DAG_ID_PREFIX):
        return None
    stem = dag_id.removeprefix(DAG_ID_PREFIX).replace("_", "-")
    try:
        path = establishment_file(directory, stem)
    except ConfigError as exc:
        return LoadedConfig(directory / f"{stem}.yaml", None, exc)
    return load_one(path) if path is not None else None


def register_all(namespace: dict[str, Any], directory: Path | None = None) -> list[str]:
    """Build every establishment's DAG into ``namespace`` (a DAG file's ``globals()``)."""
    from airflow.sdk import get_parsing_context

    directory = directory or establishments_dir()
    wanted = get_parsing_context().dag_id
    one = _wanted_file(directory, wanted) if wanted else None
    loaded = [one] if one is not None else discover(directory)
    built = []
    for item in loaded:
        if item.establishment is None:
            continue
        namespace[item.establishment.dag_id] = build_dag(item.establishment, item.path)
        built.append(item.establishment.dag_id)
    broken = [item for item in loaded if item.error is not None]
    if broken:
        namespace[f"{DAG_ID_PREFIX}config_errors"] = broken_config_dag(broken)
    return built
