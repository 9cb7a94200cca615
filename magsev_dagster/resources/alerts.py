"""Where alerts go: an SNS topic (AWS) and/or a webhook URL (e.g. a Slack incoming webhook).

The webhook URL is a secret (such URLs carry their token): it is read through EnvVar and never
appears in a message, a log line or an error. Every text sent is stripped of the values of the
project's secret variables first.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import dagster as dg
import requests

from magsev_dagster.settings import resource_field

# Variables whose values never leave in an alert, whatever text happened to carry them.
SECRET_VARIABLES = (
    "MASSIVE_API_KEY",
    "POLYGON_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "DAGSTER_PG_PASSWORD",
    "MAGSEV_ALERT_WEBHOOK_URL",
)
SNS_SUBJECT_MAX = 100  # SNS rejects longer subjects


class AlertDeliveryError(RuntimeError):
    """A configured target did not take the alert, even after retries (the sensor's tick fails)."""

    def __init__(self, message: str, failed: list[str] | None = None, sent: list[str] | None = None):
        super().__init__(message)
        self.failed, self.sent = failed or [], sent or []


def redact_secrets(text: str, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    for name in SECRET_VARIABLES:
        value = (env.get(name) or "").strip()
        if len(value) >= 4:  # never blank out single characters all over a message
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Alert:
    """What went wrong, in the words a person on call needs."""

    subject: str
    run_id: str
    job: str
    partitions: str
    run_url: str
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    reason: str = ""
    late: str = ""  # set when redelivered: how late, and why the first attempts failed

    @property
    def text(self) -> str:
        lines = [self.subject, "", f"Run: {self.run_id} (job {self.job})", f"Partitions: {self.partitions}"]
        if self.late:
            lines.append(f"Delivered late: {self.late}")
        if self.reason:
            lines.append(f"Reason: {self.reason}")
        lines += [f"Failed check: {c}" for c in self.failed_checks]
        lines += [f"Failed step: {s}" for s in self.failed_steps]
        lines.append(f"Open the run: {self.run_url}")
        return "\n".join(lines)

    def redacted(self) -> "Alert":
        fields = {
            k: ([redact_secrets(x) for x in v] if isinstance(v, list) else redact_secrets(v))
            for k, v in asdict(self).items()
        }
        return Alert(**fields)  # type: ignore[arg-type]  # each field keeps its type: str stays str, list list


class AlertNotifier(dg.ConfigurableResource):
    """Sends alerts to the configured targets; with none configured, sending is a no-op."""

    sns_topic_arn: str = resource_field("alert_sns_topic_arn")
    webhook_url: str | None = None  # dg.EnvVar("MAGSEV_ALERT_WEBHOOK_URL"): a secret
    ui_url: str = resource_field("ui_url")
    region: str = resource_field("aws_region")
    timeout_seconds: float = 10.0
    # Waits before the webhook's 2nd and 3rd attempts (boto3 retries SNS calls itself).
    retry_delays: list[float] = [1.0, 4.0]

    @property
    def configured(self) -> bool:
        return bool(self.sns_topic_arn or self.webhook_url)

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    @property
    def targets(self) -> list[str]:
        """The configured targets' names (never the webhook's URL)."""
        return [name for name, configured, _ in self._targets() if configured]

    def _targets(self):
        return [
            (f"sns:{self.sns_topic_arn}", self.sns_topic_arn, self._publish_sns),
            ("webhook", self.webhook_url, self._post_webhook),
        ]

    def send(self, alert: Alert, only: list[str] | None = None) -> list[str]:
        """Deliver to every target (or those named in `only`; one failing does not stop the other);
        return where it went, never the webhook's URL. Raises AlertDeliveryError naming what failed."""
        alert, sent, failed, errors = alert.redacted(), [], [], []
        for name, configured, deliver in self._targets():
            if not configured or (only is not None and name not in only):
                continue
            try:
                deliver(alert)
                sent.append(name)
                continue
            except AlertDeliveryError as exc:
                errors.append(str(exc))
            except Exception as exc:  # boto3's errors name the topic, never a secret
                errors.append(redact_secrets(f"{name}: {type(exc).__name__}: {exc}"))
            failed.append(name)
        if errors:
            raise AlertDeliveryError(
                f"alert not delivered ({'; '.join(errors)}); delivered to: {sent or 'none'}", failed, sent
            )
        return sent

    def _publish_sns(self, alert: Alert) -> None:
        import boto3  # the standard credential chain; AWS_ENDPOINT_URL is honoured (tests: moto)

        subject = " ".join(alert.subject.split())  # one line, as SNS requires
        subject = subject if len(subject) <= SNS_SUBJECT_MAX else subject[: SNS_SUBJECT_MAX - 3] + "..."
        boto3.client("sns", region_name=self.region).publish(
            TopicArn=self.sns_topic_arn, Subject=subject.encode("ascii", "replace").decode(), Message=alert.text
        )

    def _post_webhook(self, alert: Alert) -> None:
        # `text` is what Slack and most chat webhooks show; the fields are for machines.
        payload = {"text": alert.text, **asdict(alert)}
        problem = ""
        for delay in [0.0, *self.retry_delays]:
            time.sleep(delay)
            try:
                response = requests.post(str(self.webhook_url), json=payload, timeout=self.timeout_seconds)
            except requests.RequestException as exc:  # its text holds the URL: keep the type only
                problem = f"unreachable ({type(exc).__name__})"
                continue
            if response.status_code < 300:
                return
            problem = f"answered HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the request itself is refused: repeating it will not help
        raise AlertDeliveryError(f"alert webhook {problem}")
