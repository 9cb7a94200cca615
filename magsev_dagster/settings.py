"""Every setting of the project, read once from the environment (documented in the README)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from magsev_dagster.tickers import resolve_universe

ENVIRONMENTS = ("local", "aws")
MAX_CONCURRENCY = 64  # request series at once: far above what Polygon's plans reward


class SettingsError(ValueError):
    """A setting with a value the project cannot use."""


def _number(env: dict[str, str], name: str, default, kind=float):
    """The variable as `kind` (int or float), `default` when unset or blank, else a SettingsError naming it."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None


def _int(env: dict[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int)


# Without a per-minute quota (Massive's paid plans) the client's ceiling is 90 requests a second
# (polygon.client.MAX_REQUESTS_PER_SECOND, under Massive's "stay under 100 per second"). One request
# series has one request in flight, so reaching 90/s takes 90 x latency series: 9 at 100 ms. 16 reach
# the ceiling up to ~175 ms per request (client time included); more would only wait in the limiter.
UNPACED_CONCURRENCY = 16


def _concurrency(env: dict[str, str], requests_per_minute: float) -> int:
    """POLYGON_CONCURRENCY: one request at a time while a per-minute quota paces them (more threads
    would only queue behind the limiter), else UNPACED_CONCURRENCY."""
    default = 1 if requests_per_minute > 0 else UNPACED_CONCURRENCY
    value = _int(env, "POLYGON_CONCURRENCY", default)
    if not 1 <= value <= MAX_CONCURRENCY:
        raise SettingsError(f"POLYGON_CONCURRENCY must be between 1 and {MAX_CONCURRENCY}, "
                            f"got {env['POLYGON_CONCURRENCY'].strip()!r}")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float)


def _cron(raw: str) -> str:
    """A valid 5-field cron string, or '' for the refresh mode's own."""
    raw = raw.strip()
    if raw:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(raw):
            raise SettingsError(f"MAGSEV_SCHEDULE_CRON must be a cron string such as '5 * * * *', got {raw!r}")
    return raw


def _sns_topic_arn(env: dict[str, str]) -> str:
    arn = env.get("MAGSEV_ALERT_SNS_TOPIC_ARN", "").strip()
    if arn and not (arn.startswith("arn:") and ":sns:" in arn):
        raise SettingsError(f"MAGSEV_ALERT_SNS_TOPIC_ARN must be an SNS topic ARN (arn:aws:sns:...), got {arn!r}")
    return arn


# Massive (formerly Polygon.io): the official client reads MASSIVE_API_KEY, earlier versions of this
# project POLYGON_API_KEY. Either names the key; when both are set they must agree (the first one
# named is the one read). The same for the server: MASSIVE_BASE_URL or POLYGON_BASE_URL.
KEY_VARIABLES = ("MASSIVE_API_KEY", "POLYGON_API_KEY")
BASE_URL_VARIABLES = ("MASSIVE_BASE_URL", "POLYGON_BASE_URL")
DEFAULT_BASE_URL = "https://api.massive.com"


def _one_of(env: dict[str, str], names: tuple[str, ...], what: str, normal=lambda v: v) -> str:
    """The name of the variable that holds `what` ('' when none is set); both set and different is an
    error that names the variables, never their values (a key is a secret)."""
    given = {name: normal(env[name].strip()) for name in names if env.get(name, "").strip()}
    if len(set(given.values())) > 1:
        raise SettingsError(f"{' and '.join(given)} are both set and differ: set one of them (they name the "
                            f"same {what}), or give both the same value")
    return next(iter(given), "")


def key_variable(env: dict[str, str]) -> str:
    """The environment variable holding the Massive key, '' when there is none (synthetic data)."""
    return _one_of(env, KEY_VARIABLES, "Massive (formerly Polygon.io) API key")


def _base_url(env: dict[str, str]) -> str:
    name = _one_of(env, BASE_URL_VARIABLES, "server", normal=lambda v: v.rstrip("/"))
    return env[name].strip().rstrip("/") if name else DEFAULT_BASE_URL


def _splits_max_age(env: dict[str, str]) -> float:
    hours = _float(env, "MAGSEV_SPLITS_MAX_AGE_HOURS", 24.0)
    if hours < 0:
        raise SettingsError(f"MAGSEV_SPLITS_MAX_AGE_HOURS must be 0 or more, got {hours:g}")
    return hours


@dataclass(frozen=True)
class Settings:
    env: str = "local"
    data_dir: Path = Path("data")
    tickers: tuple[str, ...] = field(default_factory=lambda: resolve_universe(None))
    extended_hours: bool = False
    polygon_base_url: str = DEFAULT_BASE_URL
    polygon_requests_per_minute: float = 5.0
    polygon_timeout_seconds: float = 30.0
    polygon_max_retries: int = 5
    polygon_backoff_seconds: float = 1.0
    polygon_concurrency: int = 1  # from_env: 1 while POLYGON_REQUESTS_PER_MINUTE > 0, else 16
    splits_max_age_hours: float = 24.0
    s3_bucket: str = "polygon-kinesis-fp"
    glue_database: str = "fp_db_polygon_io"
    glue_crawler: str = "first_pass_polygon_crawler"
    table_prefix: str = "magsev_"
    raw_catalog: str = "crawler"
    athena_workgroup: str = "primary"
    athena_output: str = ""
    aws_region: str = "us-east-1"
    refresh: str = "hourly"
    schedule_cron: str = ""
    late_data_lookback_days: int = 0
    firehose_stream: str = ""
    glue_crawler_role: str = "magsev-glue-crawler"
    aws_poll_seconds: float = 0.2  # first poll of a query or crawl; Athena answers small ones in ~1-2 s
    crawler_timeout_seconds: float = 1800.0
    athena_timeout_seconds: float = 1800.0
    retired_grace_minutes: float = 60.0
    alert_sns_topic_arn: str = ""
    alert_webhook: bool = False  # MAGSEV_ALERT_WEBHOOK_URL is set (its value is a secret: read via EnvVar)
    ui_url: str = "http://127.0.0.1:3000"

    @property
    def alerts_configured(self) -> bool:
        return bool(self.alert_sns_topic_arn or self.alert_webhook)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        name = env.get("MAGSEV_ENV", "local").strip().lower() or "local"
        if name not in ENVIRONMENTS:
            raise SettingsError(f"MAGSEV_ENV must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
        raw_catalog = env.get("MAGSEV_RAW_CATALOG", "crawler").strip().lower() or "crawler"
        if raw_catalog not in ("crawler", "partitions"):
            raise SettingsError(f"MAGSEV_RAW_CATALOG must be 'crawler' or 'partitions', got {raw_catalog!r}")
        refresh = env.get("MAGSEV_REFRESH", "").strip().lower() or cls.refresh
        if refresh not in ("hourly", "daily"):
            raise SettingsError(f"MAGSEV_REFRESH must be 'hourly' or 'daily', got {refresh!r}")
        lookback = _int(env, "MAGSEV_LATE_DATA_LOOKBACK_DAYS", 0)
        if not 0 <= lookback <= 31:
            raise SettingsError(f"MAGSEV_LATE_DATA_LOOKBACK_DAYS must be between 0 and 31, got {lookback}")
        if env.get("MAGSEV_LATE_DATA_LOOKBACK_HOURS", "").strip():
            raise SettingsError("MAGSEV_LATE_DATA_LOOKBACK_HOURS is gone: partitions are days now, "
                                "set MAGSEV_LATE_DATA_LOOKBACK_DAYS (whole days re-fetched) instead")
        bucket = env.get("MAGSEV_S3_BUCKET", "").strip() or cls.s3_bucket
        grace = _float(env, "MAGSEV_RETIRED_GRACE_MINUTES", cls.retired_grace_minutes)
        if grace < 0:
            raise SettingsError(f"MAGSEV_RETIRED_GRACE_MINUTES must be 0 or more, got {grace:g}")
        per_minute = _float(env, "POLYGON_REQUESTS_PER_MINUTE", cls.polygon_requests_per_minute)
        key_variable(env)  # two keys that disagree stop the project at load, not at the first request
        return cls(
            env=name,
            data_dir=Path(env.get("MAGSEV_DATA_DIR", "").strip() or "data").expanduser().absolute(),
            tickers=resolve_universe(env.get("MAGSEV_TICKERS")),
            extended_hours=env.get("MAGSEV_EXTENDED_HOURS", "").strip().lower() in ("1", "true", "yes"),
            polygon_base_url=_base_url(env),
            polygon_requests_per_minute=per_minute,
            polygon_timeout_seconds=_float(env, "POLYGON_TIMEOUT_SECONDS", cls.polygon_timeout_seconds),
            polygon_max_retries=_int(env, "POLYGON_MAX_RETRIES", cls.polygon_max_retries),
            polygon_backoff_seconds=_float(env, "POLYGON_BACKOFF_SECONDS", cls.polygon_backoff_seconds),
            polygon_concurrency=_concurrency(env, per_minute),
            splits_max_age_hours=_splits_max_age(env),
            s3_bucket=bucket,
            glue_database=env.get("MAGSEV_GLUE_DATABASE", "").strip() or cls.glue_database,
            glue_crawler=env.get("MAGSEV_GLUE_CRAWLER", "").strip() or cls.glue_crawler,
            table_prefix=env.get("MAGSEV_TABLE_PREFIX", "").strip() or cls.table_prefix,
            raw_catalog=raw_catalog,
            athena_workgroup=env.get("MAGSEV_ATHENA_WORKGROUP", "").strip() or cls.athena_workgroup,
            athena_output=env.get("MAGSEV_ATHENA_OUTPUT", "").strip() or f"s3://{bucket}/athena-results/",
            refresh=refresh,
            schedule_cron=_cron(env.get("MAGSEV_SCHEDULE_CRON", "")),
            late_data_lookback_days=lookback,
            firehose_stream=env.get("MAGSEV_FIREHOSE_STREAM", "").strip(),
            aws_region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.aws_region).strip(),
            glue_crawler_role=env.get("MAGSEV_GLUE_CRAWLER_ROLE", "").strip() or cls.glue_crawler_role,
            aws_poll_seconds=_float(env, "MAGSEV_AWS_POLL_SECONDS", cls.aws_poll_seconds),
            crawler_timeout_seconds=_float(env, "MAGSEV_CRAWLER_TIMEOUT_SECONDS", cls.crawler_timeout_seconds),
            athena_timeout_seconds=_float(env, "MAGSEV_ATHENA_TIMEOUT_SECONDS", cls.athena_timeout_seconds),
            retired_grace_minutes=grace,
            alert_sns_topic_arn=_sns_topic_arn(env),
            alert_webhook=bool(env.get("MAGSEV_ALERT_WEBHOOK_URL", "").strip()),
            ui_url=(env.get("MAGSEV_UI_URL", "").strip() or cls.ui_url).rstrip("/"),
        )
