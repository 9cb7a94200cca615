"""Someone is told when it breaks: sensors that send an alert (resources/alerts.py) for

- a failed run of the job (`magsev_run_failure_alert`), naming the failed steps and, when a blocking
  check stopped it, the failed checks with their result (a failed blocking check fails the run, so
  this one message covers it);
- a run that succeeded although some of its checks failed (`magsev_check_failure_alert`): the
  non-blocking ones, such as production's completeness, whose failure does not stop a run.

Both read the run's event log and run by default once a target is configured. Delivery is retried
(resources/alerts.py); if a target still refuses, the sensor's tick fails with the reason, visible
under Automation in the UI, and the alert is kept (alert_outbox.py: Dagster does not evaluate a run
status sensor twice for the same run). A third sensor, `magsev_alert_redelivery`, offers every kept
alert again each minute to the targets that refused it, saying how late it is, until they take it.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from typing import cast

import dagster as dg
from dagster import DagsterEventType

from magsev_dagster import alert_outbox
from magsev_dagster.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from magsev_dagster.resources.alerts import Alert, AlertDeliveryError, AlertNotifier

MAX_LISTED = 10  # a year's backfill may fail a check on many days: list a few, count the rest
FAILURE_SENSOR, CHECK_SENSOR, REDELIVERY_SENSOR = (
    "magsev_run_failure_alert",
    "magsev_check_failure_alert",
    "magsev_alert_redelivery",
)
ALERT_SENSORS = [FAILURE_SENSOR, CHECK_SENSOR]  # the sensors whose refused alerts are kept
REDELIVERY_INTERVAL_SECONDS = 60
NO_TARGET = "no alert target: set MAGSEV_ALERT_SNS_TOPIC_ARN or MAGSEV_ALERT_WEBHOOK_URL"


def partitions_of(run: dg.DagsterRun) -> str:
    tags = run.tags
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    if RANGE_START_TAG in tags:
        start, end = tags[RANGE_START_TAG], tags.get(RANGE_END_TAG, "?")
        return start if start == end else f"{start} ... {end}"
    return "none (unpartitioned run)"


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return _clip(line, limit)


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(message: str) -> str:
    """An error on one line, without the exception's module path (`pkg.mod.SomeError: ` -> `SomeError: `)."""
    return _clip(re.sub(r"^(?:\w+\.)+(?=\w+: )", "", " ".join(message.split())))


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """'asset / check [partitions]: description' for each check that failed in the run."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    failed: dict[tuple[str, str], list] = defaultdict(list)
    for record in records:
        evaluation = cast(dg.AssetCheckEvaluation, record.event_log_entry.get_dagster_event().event_specific_data)
        if not evaluation.passed:
            failed[(evaluation.asset_key.to_user_string(), evaluation.check_name)].append(evaluation)
    lines = []
    for (asset, check), evaluations in sorted(failed.items()):
        days = sorted({e.partition for e in evaluations if e.partition})
        shown = ", ".join(days[:MAX_LISTED]) + (f" and {len(days) - MAX_LISTED} more" if len(days) > MAX_LISTED else "")
        where = f" [{shown}]" if days else ""
        blocking = " (blocking)" if evaluations[0].blocking else ""
        lines.append(f"{asset} / {check}{blocking}{where}: {_first_line(evaluations[0].description)}")
    return lines


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    steps = []
    for record in records:
        event = record.event_log_entry.get_dagster_event()
        error = event.step_failure_data.error if event.step_failure_data else None
        steps.append(f"{event.step_key}: {_error_text(error.message if error else event.message or '')}")
    return steps


def describe(
    instance: dg.DagsterInstance, run: dg.DagsterRun, notifier: AlertNotifier, what: str, reason: str = ""
) -> Alert:
    partitions = partitions_of(run)
    return Alert(
        subject=f"[magsev] {run.job_name} {what}: {partitions} (run {run.run_id[:8]})",
        run_id=run.run_id,
        job=run.job_name,
        partitions=partitions,
        run_url=notifier.run_url(run.run_id),
        failed_steps=failed_steps(instance, run.run_id),
        failed_checks=failed_checks(instance, run.run_id),
        reason=reason,
    )


def send_or_keep(context, sensor: str, alerts: AlertNotifier, alert: Alert) -> None:
    """Send; when a target still refuses, keep the alert for redelivery and fail the tick saying so."""
    try:
        sent = alerts.send(alert)
    except AlertDeliveryError as exc:
        alert_outbox.keep(context.instance, sensor, alert, exc.failed, str(exc), time.time())
        raise AlertDeliveryError(
            f"{exc}; kept: {REDELIVERY_SENSOR} offers it again every {REDELIVERY_INTERVAL_SECONDS} s",
            exc.failed,
            exc.sent,
        ) from None
    context.log.info(f"alert for run {alert.run_id} sent to {', '.join(sent)}")


def redeliver(context: dg.SensorEvaluationContext, alerts: AlertNotifier) -> dg.SkipReason:
    """Offer every kept alert to the targets that still owe it; record each target that takes it."""
    delivered, refused, configured = [], [], alerts.targets
    for entry, owed in alert_outbox.pending(context.instance, ALERT_SENSORS):
        if gone := [t for t in owed if t not in configured]:  # a target removed from the settings since
            alert_outbox.record_delivery(context.instance, ALERT_SENSORS, entry.id, gone)
            refused.append(f"run {entry.alert['run_id'][:8]}: dropped for {', '.join(gone)} (no longer configured)")
            if not (owed := [t for t in owed if t not in gone]):
                continue
        try:
            sent = alerts.send(entry.late_alert(time.time()), only=owed)
        except AlertDeliveryError as exc:
            sent = exc.sent
            refused.append(f"run {entry.alert['run_id'][:8]}: {exc}")
        if sent:
            alert_outbox.record_delivery(context.instance, ALERT_SENSORS, entry.id, sent)
            delivered.append(f"run {entry.alert['run_id'][:8]} to {', '.join(sent)}")
    if not delivered and not refused:
        return dg.SkipReason("no kept alert")
    return dg.SkipReason(
        "; ".join([*(f"delivered late: {d}" for d in delivered), *(f"still refused: {r}" for r in refused)])
    )


def alert_sensors(enabled: bool) -> list[dg.SensorDefinition]:
    """The alert sensors; running by default when a target is configured (`enabled`)."""
    status = dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED

    @dg.run_failure_sensor(
        name=FAILURE_SENSOR,
        default_status=status,
        description="Alerts the configured SNS topic / webhook when a run fails, naming "
        "its partitions, failed steps and failed blocking checks.",
    )
    def magsev_run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertNotifier):
        if not alerts.configured:
            return dg.SkipReason(NO_TARGET)
        reason = _first_line(context.failure_event.message)
        send_or_keep(
            context, FAILURE_SENSOR, alerts, describe(context.instance, context.dagster_run, alerts, "FAILED", reason)
        )

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name=CHECK_SENSOR,
        default_status=status,
        description="Alerts the configured SNS topic / webhook when a run succeeded but "
        "some of its (non-blocking) checks failed.",
    )
    def magsev_check_failure_alert(context: dg.RunStatusSensorContext, alerts: AlertNotifier):
        if not alerts.configured:
            return dg.SkipReason(NO_TARGET)
        alert = describe(context.instance, context.dagster_run, alerts, "succeeded with FAILED CHECKS")
        if alert.failed_checks:
            send_or_keep(context, CHECK_SENSOR, alerts, alert)

    @dg.sensor(
        name=REDELIVERY_SENSOR,
        default_status=status,
        minimum_interval_seconds=REDELIVERY_INTERVAL_SECONDS,
        description="Offers every alert a target still refused after its retries (kept in the instance) "
        "again, to that target only, saying how late it is, until it is taken.",
    )
    def magsev_alert_redelivery(context: dg.SensorEvaluationContext, alerts: AlertNotifier):
        if not alerts.configured:
            return dg.SkipReason(NO_TARGET)
        return redeliver(context, alerts)

    return [magsev_run_failure_alert, magsev_check_failure_alert, magsev_alert_redelivery]
