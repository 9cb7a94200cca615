"""Someone is told when it breaks: the alert sensors evaluated as the daemon does (cursor over the
instance's run events), after real runs that fail, delivering to an SNS topic on the moto server
(read back from a subscribed SQS queue) and to a webhook on a local HTTP server."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import dagster as dg
import pytest
from werkzeug import Response

from magsev_dagster import alert_outbox
from magsev_dagster.alerts import CHECK_SENSOR, FAILURE_SENSOR, REDELIVERY_SENSOR
from magsev_dagster.polygon.synthetic import synthetic_bars
from magsev_dagster_tests.fakes.moto_server import aws_env, aws_operations, moto  # noqa: F401  (fixtures)
from magsev_dagster_tests.fakes.polygon_server import FAKE_KEY, fake_polygon, polygon_http_server  # noqa: F401  (fixtures)
from magsev_dagster_tests.helpers import local_defs, run_range
from magsev_dagster_tests.test_aws_pipeline import assert_policy_allows

UI_URL = "http://dagster.example:3000"
DAYS = ("2026-11-23", "2026-11-24")
WEBHOOK_PATH = "/hooks/T0KEN-5ecret-in-the-path"


def negative_price_on(day: str):
    """Synthetic bars, except the first AAPL bar of `day`, whose open is negative: prices_positive fails."""

    def source(ticker, start, end):
        bars = synthetic_bars(ticker, start, end)
        hit = [b for b in bars if ticker == "AAPL" and _day(b["t"]) == day]
        if hit:
            hit[0]["o"] = -1.0
        return bars

    return source


def _day(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


class SensorTicks:
    """Evaluates a sensor the way the daemon does: the same cursor from tick to tick."""

    def __init__(self, defs: dg.Definitions, name: str, instance: dg.DagsterInstance, **alerts_config):
        self.sensor, self.instance, self.cursor = defs.resolve_sensor_def(name), instance, None
        alerts = defs.resources["alerts"]
        self.resources = {"alerts": alerts.model_copy(update=alerts_config) if alerts_config else alerts}

    def tick(self):
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=self.resources)
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data


@pytest.fixture
def sns_queue(aws_env):
    """An SNS topic with an SQS queue subscribed to it; returns (topic ARN, a function reading the queue)."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="magsev-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="magsev-alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        return [json.loads(m["Body"]) for m in messages]  # SNS's envelope: Subject, Message, TopicArn

    return topic, received


@pytest.fixture
def webhook(httpserver):
    """A local HTTP endpoint that records what it is sent (answers `status`, 200 by default)."""
    received, status = [], {"code": 200, "codes": []}

    def handler(request):
        received.append(request.get_json())
        return Response("ok", status=status["codes"].pop(0) if status["codes"] else status["code"])

    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_handler(handler)
    yield httpserver.url_for(WEBHOOK_PATH), received, status
    httpserver.clear()


def failing_defs(data_dir, fake_polygon, monkeypatch, refuse_key: bool = False, **env):
    """The real Definitions with a Polygon key set, the fake server serving one bad bar on DAYS[1]
    (a blocking check fails), or refusing the key (the first step fails: a quicker failed run)."""
    fake_polygon.bars = negative_price_on(DAYS[1])
    if refuse_key:
        fake_polygon.api_key = "the-key-polygon-expects"
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    settings = {
        **fake_polygon.env(),
        "POLYGON_API_KEY": FAKE_KEY,
        "MAGSEV_TICKERS": "AAPL,MSFT",
        "MAGSEV_UI_URL": UI_URL,
        **env,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return local_defs(data_dir, **settings)


def test_a_failed_blocking_check_is_published_to_the_sns_topic(
    data_dir, fake_polygon, sns_queue, monkeypatch, aws_operations
):
    topic, received = sns_queue
    defs = failing_defs(data_dir, fake_polygon, monkeypatch, MAGSEV_ALERT_SNS_TOPIC_ARN=topic)
    with dg.instance_for_test() as instance:
        ticks = SensorTicks(defs, "magsev_run_failure_alert", instance)
        ticks.tick()  # the first tick only places the cursor, as in the daemon
        result = run_range(defs, *DAYS, instance=instance)
        assert not result.success
        aws_operations.clear()
        ticks.tick()
        ticks.tick()  # nothing new: no second message
    assert aws_operations == {("sns", "Publish")}
    assert_policy_allows(aws_operations)  # deploy/iam-policy.json grants it

    [message] = received()
    text, subject = message["Message"], message["Subject"]
    assert subject == f"[magsev] magsev_hourly_job FAILED: 2026-11-23 ... 2026-11-24 (run {result.run_id[:8]})"
    assert f"Run: {result.run_id} (job magsev_hourly_job)" in text
    assert "Partitions: 2026-11-23 ... 2026-11-24" in text
    # A negative open is also below the bar's low: two blocking checks fail, each named with its result.
    assert (
        "Failed check: polygon_parquet_fp / prices_positive (blocking): 1 offending rows: "
        "Open, high, low and close are present and > 0."
    ) in text
    assert "Failed check: polygon_parquet_fp / ohlc_consistent (blocking): 1 offending rows" in text
    # the blocking audit of the parquet table is one step; it names every check that failed
    assert (
        "Failed step: polygon_parquet_fp_audit: DagsterAssetCheckFailedError: 2 blocking asset "
        "checks failed with ERROR severity: polygon_parquet_fp: prices_positive,ohlc_consistent"
    ) in text
    assert f"Open the run: {UI_URL}/runs/{result.run_id}" in text
    assert FAKE_KEY not in json.dumps(message)


def test_a_failed_run_is_posted_to_the_webhook_without_secrets(data_dir, fake_polygon, webhook, monkeypatch):
    url, received, _ = webhook
    defs = failing_defs(data_dir, fake_polygon, monkeypatch, refuse_key=True, MAGSEV_ALERT_WEBHOOK_URL=url)
    with dg.instance_for_test() as instance:
        ticks = SensorTicks(defs, "magsev_run_failure_alert", instance)
        ticks.tick()
        result = run_range(defs, DAYS[1], DAYS[1], instance=instance)
        ticks.tick()

    [payload] = received
    assert payload["run_id"] == result.run_id and payload["partitions"] == DAYS[1]
    assert payload["run_url"] == f"{UI_URL}/runs/{result.run_id}"
    steps = payload["failed_steps"]  # both assets that call Polygon were refused
    assert sorted(step.split(": ")[0] for step in steps) == ["polygon_splits", "raw_polygon_aggregates"]
    assert all("API key is missing or invalid" in step for step in steps)
    assert payload["text"].startswith(f"[magsev] magsev_hourly_job FAILED: {DAYS[1]} (run {result.run_id[:8]})")
    body = json.dumps(payload)
    assert FAKE_KEY not in body and "T0KEN-5ecret" not in body


def test_secrets_in_any_text_are_masked_before_sending(webhook, monkeypatch):
    from magsev_dagster.resources.alerts import Alert, AlertNotifier

    url, received, _ = webhook
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    monkeypatch.setenv("MAGSEV_ALERT_WEBHOOK_URL", url)
    alert = Alert(
        subject=f"boom {FAKE_KEY}",
        run_id="r1",
        job="j",
        partitions="2026-11-24",
        run_url="u",
        failed_steps=[f"step: Polygon said {FAKE_KEY}"],
        reason=f"posting to {url} failed",
    )
    assert AlertNotifier(webhook_url=url).send(alert) == ["webhook"]  # names the target, not its URL
    body = json.dumps(received)
    assert (
        FAKE_KEY not in body and "T0KEN-5ecret" not in body and body.count("***") == 6
    )  # 3 in `text`, 3 in the fields


def test_a_succeeded_run_with_a_failed_check_is_alerted(data_dir, webhook, monkeypatch):
    url, received, _ = webhook
    monkeypatch.setenv("MAGSEV_ALERT_WEBHOOK_URL", url)
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL", MAGSEV_ALERT_WEBHOOK_URL=url, MAGSEV_UI_URL=UI_URL)
    with dg.instance_for_test() as instance:
        ticks = SensorTicks(defs, "magsev_check_failure_alert", instance)
        ticks.tick()
        assert run_range(defs, DAYS[1], DAYS[1], instance=instance).success  # all checks pass: no alert
        ticks.tick()
        assert received == []
        # Weeks later nothing was loaded since: the freshness check fails, its run succeeds.
        stale = defs.resolve_job_def("magsev_freshness_job").execute_in_process(instance=instance)
        ticks.tick()

    [payload] = received
    assert payload["run_id"] == stale.run_id and payload["failed_steps"] == []
    assert payload["subject"].startswith("[magsev] magsev_freshness_job succeeded with FAILED CHECKS")
    assert payload["failed_checks"] == ["polygon_hourly_prod / prod_newest_bar_fresh: 1 of 1 tickers stale: AAPL"]


def test_a_webhook_that_fails_once_gets_the_alert_on_the_retry(data_dir, fake_polygon, webhook, monkeypatch):
    url, received, status = webhook
    defs = failing_defs(data_dir, fake_polygon, monkeypatch, refuse_key=True, MAGSEV_ALERT_WEBHOOK_URL=url)
    status["codes"] = [503]  # the first answer only
    with dg.instance_for_test() as instance:
        ticks = SensorTicks(defs, "magsev_run_failure_alert", instance, retry_delays=[0.0, 0.0])
        ticks.tick()
        result = run_range(defs, DAYS[1], DAYS[1], instance=instance)
        [reaction] = ticks.tick().dagster_run_reactions
    assert reaction.error is None
    assert [p["run_id"] for p in received] == [result.run_id, result.run_id]  # refused, then taken


def test_an_alert_still_refused_fails_the_sensor_tick_without_secrets(data_dir, fake_polygon, webhook, monkeypatch):
    url, received, status = webhook
    defs = failing_defs(data_dir, fake_polygon, monkeypatch, refuse_key=True, MAGSEV_ALERT_WEBHOOK_URL=url)
    status["code"] = 503
    with dg.instance_for_test() as instance:
        ticks = SensorTicks(defs, "magsev_run_failure_alert", instance, retry_delays=[0.0, 0.0])
        ticks.tick()
        run_range(defs, DAYS[1], DAYS[1], instance=instance)
        [reaction] = ticks.tick().dagster_run_reactions
    assert len(received) == 3  # three attempts
    error = reaction.error.to_string()  # what the sensor's failed tick shows in the UI
    assert "alert not delivered (alert webhook answered HTTP 503); delivered to: none" in error
    assert "T0KEN-5ecret" not in error and FAKE_KEY not in error


def kept_state(instance: dg.DagsterInstance) -> str:
    keys = {
        alert_outbox.REDELIVERED_KEY,
        *(alert_outbox.UNDELIVERED_PREFIX + s for s in (FAILURE_SENSOR, CHECK_SENSOR)),
    }
    return json.dumps(instance.run_storage.get_cursor_values(keys))


def test_an_alert_still_refused_is_kept_and_arrives_late_on_a_later_tick_once(
    data_dir, fake_polygon, webhook, monkeypatch
):
    url, received, status = webhook
    defs = failing_defs(data_dir, fake_polygon, monkeypatch, refuse_key=True, MAGSEV_ALERT_WEBHOOK_URL=url)
    status["code"] = 503
    with dg.instance_for_test() as instance:
        failures = SensorTicks(defs, FAILURE_SENSOR, instance, retry_delays=[0.0, 0.0])
        redelivery = SensorTicks(defs, REDELIVERY_SENSOR, instance, retry_delays=[0.0, 0.0])
        failures.tick()
        assert redelivery.tick().skip_message == "no kept alert"
        result = run_range(defs, DAYS[1], DAYS[1], instance=instance)
        [reaction] = failures.tick().dagster_run_reactions
        assert f"kept: {REDELIVERY_SENSOR} offers it again" in reaction.error.to_string()

        still = redelivery.tick()  # the webhook still refuses: three more attempts, still kept
        assert len(received) == 6 and "still refused: run " in still.skip_message, still.skip_message
        status["code"] = 200
        late = redelivery.tick()
        assert late.skip_message == f"delivered late: run {result.run_id[:8]} to webhook", late.skip_message
        assert redelivery.tick().skip_message == "no kept alert"  # delivered once, never again
        assert failures.tick().dagster_run_reactions == []
        state = kept_state(instance)

    assert len(received) == 7
    payload = received[-1]
    assert payload["run_id"] == result.run_id and payload["failed_steps"] == received[0]["failed_steps"]
    assert payload["late"].startswith("0 min after the first attempt (") and "HTTP 503" in payload["late"]
    assert "Delivered late: 0 min after the first attempt" in payload["text"]
    assert "T0KEN-5ecret" not in state and FAKE_KEY not in state and "T0KEN-5ecret" not in json.dumps(payload)


def test_a_kept_alert_goes_only_to_the_target_that_refused_it(data_dir, fake_polygon, sns_queue, webhook, monkeypatch):
    topic, sns_received = sns_queue
    url, received, status = webhook
    defs = failing_defs(
        data_dir,
        fake_polygon,
        monkeypatch,
        refuse_key=True,
        MAGSEV_ALERT_WEBHOOK_URL=url,
        MAGSEV_ALERT_SNS_TOPIC_ARN=topic,
    )
    status["code"] = 503
    with dg.instance_for_test() as instance:
        failures = SensorTicks(defs, FAILURE_SENSOR, instance, retry_delays=[0.0, 0.0])
        redelivery = SensorTicks(defs, REDELIVERY_SENSOR, instance, retry_delays=[0.0, 0.0])
        failures.tick()
        run_range(defs, DAYS[1], DAYS[1], instance=instance)
        [reaction] = failures.tick().dagster_run_reactions
        assert f"delivered to: ['sns:{topic}']" in reaction.error.to_string()
        status["code"] = 200
        assert redelivery.tick().skip_message.endswith("to webhook")
        assert redelivery.tick().skip_message == "no kept alert"
    [message] = sns_received()  # SNS took it the first time: not sent again
    assert "Delivered late" not in message["Message"]
    assert len(received) == 4 and "Delivered late" in received[-1]["text"]


def test_a_kept_alert_for_a_target_no_longer_configured_is_dropped(data_dir, fake_polygon, webhook, monkeypatch):
    url, received, status = webhook
    defs = failing_defs(data_dir, fake_polygon, monkeypatch, refuse_key=True, MAGSEV_ALERT_WEBHOOK_URL=url)
    status["code"] = 503
    with dg.instance_for_test() as instance:
        failures = SensorTicks(defs, FAILURE_SENSOR, instance, retry_delays=[0.0, 0.0])
        failures.tick()
        run_range(defs, DAYS[1], DAYS[1], instance=instance)
        failures.tick()
        # The deployment moves its alerts from the webhook to an SNS topic.
        monkeypatch.delenv("MAGSEV_ALERT_WEBHOOK_URL")
        moved_defs = local_defs(data_dir, MAGSEV_ALERT_SNS_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:other")
        moved = SensorTicks(moved_defs, REDELIVERY_SENSOR, instance)
        assert "dropped for webhook (no longer configured)" in moved.tick().skip_message
        assert moved.tick().skip_message == "no kept alert"


def test_alert_sensors_run_by_default_only_with_a_target(data_dir):
    def status(**env):
        return {s.name: s.default_status for s in local_defs(data_dir, **env).sensors}

    off, on = dg.DefaultSensorStatus.STOPPED, dg.DefaultSensorStatus.RUNNING
    assert status() == {FAILURE_SENSOR: off, CHECK_SENSOR: off, REDELIVERY_SENSOR: off}
    arn = "arn:aws:sns:us-east-1:123456789012:magsev-alerts"
    assert set(status(MAGSEV_ALERT_SNS_TOPIC_ARN=arn).values()) == {on}
    assert set(status(MAGSEV_ALERT_WEBHOOK_URL="http://127.0.0.1:9/hook").values()) == {on}


def test_a_topic_that_is_not_an_sns_arn_is_refused(data_dir):
    from magsev_dagster.settings import SettingsError

    with pytest.raises(SettingsError, match="MAGSEV_ALERT_SNS_TOPIC_ARN must be an SNS topic ARN"):
        local_defs(data_dir, MAGSEV_ALERT_SNS_TOPIC_ARN="magsev-alerts")
