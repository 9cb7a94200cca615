"""Every setting of the project, declared once: its variable, type, default, validation and one line of doc.

pydantic-settings reads them from the environment (`Settings.from_env()`, or `Settings()`); the resources
take their values, defaults and validation from here (`resource_field`), and docs/reference/configuration.md
is generated from these declarations (docs/gen_reference.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from magsev_dagster.tickers import DEFAULT_UNIVERSE, TickerError, resolve_universe

ENVIRONMENTS = ("local", "aws")
MAX_CONCURRENCY = 64  # request series at once: far above what Polygon's plans reward

# Without a per-minute quota (Massive's paid plans) the client's ceiling is 90 requests a second
# (polygon.client.MAX_REQUESTS_PER_SECOND, under Massive's "stay under 100 per second"). One request
# series has one request in flight, so reaching 90/s takes 90 x latency series: 9 at 100 ms. 16 reach
# the ceiling up to ~175 ms per request (client time included); more would only wait in the limiter.
UNPACED_CONCURRENCY = 16

# Massive (formerly Polygon.io): the official client reads MASSIVE_API_KEY, earlier versions of this
# project POLYGON_API_KEY. Either names the key; when both are set they must agree (the first one
# named is the one read). The same for the server: MASSIVE_BASE_URL or POLYGON_BASE_URL.
KEY_VARIABLES = ("MASSIVE_API_KEY", "POLYGON_API_KEY")
BASE_URL_VARIABLES = ("MASSIVE_BASE_URL", "POLYGON_BASE_URL")
DEFAULT_BASE_URL = "https://api.massive.com"

# Variables the project no longer reads, and what to set instead (a silently ignored setting is a surprise).
RETIRED = {
    "MAGSEV_LATE_DATA_LOOKBACK_HOURS": "MAGSEV_LATE_DATA_LOOKBACK_HOURS is gone: partitions are days now, "
    "set MAGSEV_LATE_DATA_LOOKBACK_DAYS (whole days re-fetched) instead",
}


class SettingsError(ValueError):
    """A setting with a value the project cannot use."""


def _var(*names: str) -> Any:
    """The environment variable(s) of a setting: the first one set wins."""
    return AliasChoices(*names) if len(names) > 1 else names[0]


class Settings(BaseSettings):
    """The project's configuration. Blank variables read as unset; every error names the variable and
    the value it had (a secret's value never)."""

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, validate_default=True, extra="ignore", populate_by_name=True
    )

    env: Literal["local", "aws"] = Field(
        "local",
        validation_alias="MAGSEV_ENV",
        description="Which resources the Definitions use: the embedded default (files + DuckDB) or AWS.",
    )
    data_dir: Path = Field(
        Path("data"),
        validation_alias="MAGSEV_DATA_DIR",
        description="Root of the local default's files: raw tree, parquet, DuckDB file.",
    )
    tickers: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_UNIVERSE,  # type: ignore[arg-type]  # a string, validated into a tuple
        validation_alias="MAGSEV_TICKERS",
        description="Comma-separated tickers and/or groups (mag7, benchmarks, crypto).",
    )
    extended_hours: bool = Field(
        False,
        validation_alias="MAGSEV_EXTENDED_HOURS",
        description="Keep pre- and after-market bars (04:00-20:00 ET) instead of the regular session.",
    )
    polygon_api_key: SecretStr | None = Field(
        None,
        validation_alias=_var(*KEY_VARIABLES),
        description="Massive (formerly Polygon.io) API key, read at run time through EnvVar; "
        "unset: deterministic synthetic data.",
    )
    polygon_base_url: str = Field(
        DEFAULT_BASE_URL,
        validation_alias=_var(*BASE_URL_VARIABLES),
        description="The server speaking Massive's API (tests point it at a fake; https://api.polygon.io "
        "still answers for now).",
    )
    polygon_requests_per_minute: float = Field(
        5.0,
        ge=0,
        validation_alias="POLYGON_REQUESTS_PER_MINUTE",
        description="Client-side pacing (the free plan allows 5); 0: no per-minute quota (paid plans), "
        "still at most 90 requests a second.",
    )
    polygon_timeout_seconds: float = Field(
        30.0, gt=0, validation_alias="POLYGON_TIMEOUT_SECONDS", description="Connect and read timeout of every request."
    )
    polygon_max_retries: int = Field(
        5,
        ge=0,
        validation_alias="POLYGON_MAX_RETRIES",
        description="Retries on connection errors, timeouts, 429 and 5xx.",
    )
    polygon_backoff_seconds: float = Field(
        1.0,
        ge=0,
        validation_alias="POLYGON_BACKOFF_SECONDS",
        description="First retry delay; doubles each retry, with jitter.",
    )
    polygon_concurrency: int | None = Field(
        None,
        ge=1,
        le=MAX_CONCURRENCY,
        validation_alias="POLYGON_CONCURRENCY",
        description=f"Request series at once; unset: 1 while a per-minute quota paces requests, "
        f"else {UNPACED_CONCURRENCY}.",
    )
    splits_max_age_hours: float = Field(
        24.0,
        ge=0,
        validation_alias="MAGSEV_SPLITS_MAX_AGE_HOURS",
        description="How old the stored splits may be before a run asks the provider again.",
    )
    s3_bucket: str = Field(
        "polygon-kinesis-fp",
        min_length=1,
        validation_alias="MAGSEV_S3_BUCKET",
        description="AWS: the bucket of the raw data, the parquet and production tables.",
    )
    glue_database: str = Field(
        "fp_db_polygon_io",
        min_length=1,
        validation_alias="MAGSEV_GLUE_DATABASE",
        description="AWS: the Glue (Athena) database.",
    )
    glue_crawler: str = Field(
        "first_pass_polygon_crawler",
        min_length=1,
        validation_alias="MAGSEV_GLUE_CRAWLER",
        description="AWS: the crawler over the raw data.",
    )
    table_prefix: str = Field(
        "magsev_",
        min_length=1,
        validation_alias="MAGSEV_TABLE_PREFIX",
        description="AWS: the crawler's table prefix (the raw table is <prefix>polygon_raw).",
    )
    raw_catalog: Literal["crawler", "partitions"] = Field(
        "crawler",
        validation_alias="MAGSEV_RAW_CATALOG",
        description="AWS: the Glue crawler catalogues the raw data, or the run registers its partitions.",
    )
    athena_workgroup: str = Field(
        "primary", min_length=1, validation_alias="MAGSEV_ATHENA_WORKGROUP", description="AWS: the Athena workgroup."
    )
    athena_output: str = Field(
        "",
        validation_alias="MAGSEV_ATHENA_OUTPUT",
        description="AWS: Athena's results location; unset: s3://<MAGSEV_S3_BUCKET>/athena-results/.",
    )
    aws_region: str = Field(
        "us-east-1",
        validation_alias=_var("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="AWS: the region (boto3's own variables).",
    )
    refresh: Literal["hourly", "daily"] = Field(
        "hourly",
        validation_alias="MAGSEV_REFRESH",
        description="hourly: at :05, the day holding the hour that just closed; daily: 06:05 UTC, the previous "
        "day (free keys get end-of-day data only).",
    )
    schedule_cron: str = Field(
        "", validation_alias="MAGSEV_SCHEDULE_CRON", description="A cron string (UTC) replacing the refresh mode's own."
    )
    late_data_lookback_days: int = Field(
        0,
        ge=0,
        le=31,
        validation_alias="MAGSEV_LATE_DATA_LOOKBACK_DAYS",
        description="Whole days before today that each scheduled run fetches again (late corrections).",
    )
    firehose_stream: str = Field(
        "",
        validation_alias="MAGSEV_FIREHOSE_STREAM",
        description="AWS: also deliver the raw records to this Firehose stream; unset: none.",
    )
    glue_crawler_role: str = Field(
        "magsev-glue-crawler",
        min_length=1,
        validation_alias="MAGSEV_GLUE_CRAWLER_ROLE",
        description="AWS: the IAM role the crawler runs as (make provision creates it).",
    )
    aws_poll_seconds: float = Field(
        0.2,
        gt=0,
        validation_alias="MAGSEV_AWS_POLL_SECONDS",
        description="AWS: first delay between two polls of a crawler or a query (growing by 1.25x for "
        "queries, 2x for crawls, up to 10 s); Athena finishes a small query in 1-2 s.",
    )
    crawler_timeout_seconds: float = Field(
        1800.0,
        gt=0,
        validation_alias="MAGSEV_CRAWLER_TIMEOUT_SECONDS",
        description="AWS: how long a crawl may take before the run fails.",
    )
    athena_timeout_seconds: float = Field(
        1800.0,
        gt=0,
        validation_alias="MAGSEV_ATHENA_TIMEOUT_SECONDS",
        description="AWS: how long a query may take before the run fails.",
    )
    retired_grace_minutes: float = Field(
        60.0,
        ge=0,
        validation_alias="MAGSEV_RETIRED_GRACE_MINUTES",
        description="AWS: how long replaced production files stay for queries planned against them.",
    )
    alert_sns_topic_arn: str = Field(
        "",
        validation_alias="MAGSEV_ALERT_SNS_TOPIC_ARN",
        description="Alerts on failed runs and checks go to this SNS topic; unset: none.",
    )
    alert_webhook_url: SecretStr | None = Field(
        None,
        validation_alias="MAGSEV_ALERT_WEBHOOK_URL",
        description="Alerts go to this webhook (Slack, Teams...), read at run time through EnvVar; unset: none.",
    )
    ui_url: str = Field(
        "http://127.0.0.1:3000",
        validation_alias="MAGSEV_UI_URL",
        description="The Dagster UI's address, for links in alerts.",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise _explained(err) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the process environment read the project's way (no .env file, no secrets dir)."""
        return init_settings, Environment(settings_cls, os.environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of `environ` (default: the process environment)."""
        return cls(_build_sources=((Environment(cls, os.environ if environ is None else environ),), {}))

    @field_validator("env", "raw_catalog", "refresh", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("tickers", mode="before")
    @classmethod
    def _universe(cls, value: Any) -> Any:
        return resolve_universe(value) if isinstance(value, str) else value

    @field_validator("polygon_base_url", "ui_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("schedule_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string  # Dagster's own check, as its schedules use

        if value and not is_valid_cron_string(value):
            raise ValueError("a cron string such as '5 * * * *'")
        return value

    @field_validator("alert_sns_topic_arn")
    @classmethod
    def _sns_topic_arn(cls, value: str) -> str:
        if value and not (value.startswith("arn:") and ":sns:" in value):
            raise ValueError("an SNS topic ARN (arn:aws:sns:...)")
        return value

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        """Defaults that follow other settings (the model is frozen: set once, here)."""
        if self.polygon_concurrency is None:
            object.__setattr__(
                self, "polygon_concurrency", 1 if self.polygon_requests_per_minute > 0 else UNPACED_CONCURRENCY
            )
        if not self.athena_output:
            object.__setattr__(self, "athena_output", f"s3://{self.s3_bucket}/athena-results/")
        return self

    @property
    def alert_webhook(self) -> bool:
        return self.alert_webhook_url is not None

    @property
    def alerts_configured(self) -> bool:
        return bool(self.alert_sns_topic_arn or self.alert_webhook)


class Environment(EnvSettingsSource):
    """Environment variables as the project reads them: blank is unset, values are stripped, two variables
    naming one setting must agree, retired variables are refused."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str | None]):
        self._environ = {name: value.strip() for name, value in environ.items() if value and value.strip()}
        for name, why in RETIRED.items():
            if name in self._environ:
                raise SettingsError(why)
        key_variable(self._environ)  # two keys that disagree stop the project at load, not at the first request
        _one_of(self._environ, BASE_URL_VARIABLES, "server", normal=lambda v: v.rstrip("/"))
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._environ


def _one_of(env: Mapping[str, str], names: tuple[str, ...], what: str, normal=lambda v: v) -> str:
    """The name of the variable that holds `what` ('' when none is set); both set and different is an
    error that names the variables, never their values (a key is a secret)."""
    given = {name: normal(env[name].strip()) for name in names if (env.get(name) or "").strip()}
    if len(set(given.values())) > 1:
        raise SettingsError(
            f"{' and '.join(given)} are both set and differ: set one of them (they name the "
            f"same {what}), or give both the same value"
        )
    return next(iter(given), "")


def key_variable(env: Mapping[str, str]) -> str:
    """The environment variable holding the Massive key, '' when there is none (synthetic data)."""
    return _one_of(env, KEY_VARIABLES, "Massive (formerly Polygon.io) API key")


# --- the one declaration, read back: names, requirements, errors, resource fields -------------------------


def variables(name: str) -> tuple[str, ...]:
    """The environment variable(s) of setting `name`, in the order they are read."""
    alias = Settings.model_fields[name].validation_alias
    return tuple(str(choice) for choice in alias.choices) if isinstance(alias, AliasChoices) else (str(alias),)


def is_secret(name: str) -> bool:
    return "SecretStr" in str(Settings.model_fields[name].annotation)


def _bound(info: FieldInfo, kind: str) -> Any:
    return next((getattr(m, kind) for m in info.metadata if hasattr(m, kind)), None)


def requirement(name: str, unparsable: bool = False) -> str:
    """What a value of setting `name` must be, in words ('' when any string will do); `unparsable`: only
    its kind (the value was not a number at all)."""
    info = Settings.model_fields[name]
    annotation = str(info.annotation)
    if "Literal" in annotation:
        return " or ".join(repr(choice) for choice in info.annotation.__args__)  # type: ignore[union-attr]  # a Literal
    if "bool" in annotation:
        return "true or false (1/0, yes/no)"
    kind = "an integer" if "int" in annotation else "a number" if "float" in annotation else ""
    ge, gt, le = _bound(info, "ge"), _bound(info, "gt"), _bound(info, "le")
    if unparsable or not kind:
        return kind
    if ge is not None and le is not None:
        return f"between {ge:g} and {le:g}"
    if ge is not None:
        return f"{ge:g} or more"
    if gt is not None:
        return f"more than {gt:g}"
    return kind


def _unparsable(error: Any) -> bool:
    return error["type"].endswith(("_parsing", "_type", "_from_float"))


def _explained(err: ValidationError) -> ValueError:
    """One message for all the variables that failed: each names its variable, what it must be, and
    its value (never a secret's). A bad ticker stays a TickerError."""
    problems, ticker_problem = [], False
    for error in err.errors():
        name = str(error["loc"][0])
        field = next((f for f, i in Settings.model_fields.items() if name == f or name in variables(f)), name)
        names = variables(field) if field in Settings.model_fields else (name,)
        cause = (error.get("ctx") or {}).get("error")
        ticker_problem |= isinstance(cause, TickerError)
        must = str(cause) if isinstance(cause, ValueError) else requirement(field, unparsable=_unparsable(error))
        value = "" if field in Settings.model_fields and is_secret(field) else f", got {error['input']!r}"
        if isinstance(cause, TickerError):
            problems.append(f"{names[0]}: {cause}")
        else:
            problems.append(f"{' or '.join(names)} must be {must}{value}")
    return (TickerError if ticker_problem else SettingsError)("; ".join(problems))


def resource_field(name: str, **overrides: Any) -> Any:
    """A resource's field for setting `name`: the declared default, validation and doc (never repeated).
    Derived defaults (POLYGON_CONCURRENCY) are those of an empty environment."""
    info = Settings.model_fields[name]
    field = Field(default=getattr(DECLARED, name), description=info.description, **overrides)
    field.metadata = [*info.metadata, *field.metadata]
    return field


DECLARED = Settings.from_env({})  # the declared defaults (an empty environment)
