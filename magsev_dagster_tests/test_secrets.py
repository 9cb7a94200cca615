"""Secrets never leave the environment: not in logs, run storage, metadata, errors, stored objects or git.

Fresh fake values are made for every test (shaped like the real thing), the graph runs against a real
HTTP server speaking Polygon's format on its success and failure paths, with DEBUG logging everywhere
and a persistent DagsterInstance; then every place they could have landed is scanned.
"""

import gzip
import json
import logging
import os
import re
import secrets
import string
import subprocess
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from magsev_dagster.partitions import Window
from magsev_dagster.polygon.errors import PolygonError
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster_tests.fault_fakes import FakePolygon, failure_messages, polygon_env, two_pages
from magsev_dagster_tests.helpers import JOB, RANGE_END_TAG, RANGE_START_TAG, local_defs

REPO = Path(__file__).resolve().parents[1]
DAY = ("2026-11-24", "2026-11-24")
DEBUG_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


def _token(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


@pytest.fixture
def fake_secrets(monkeypatch, tmp_path):
    """A Polygon key and AWS keys in the environment, and a persistent DAGSTER_HOME."""
    values = {
        "POLYGON_API_KEY": _token(string.ascii_letters + string.digits, 32),
        "AWS_ACCESS_KEY_ID": "AKIA" + _token(string.ascii_uppercase + string.digits, 16),
        "AWS_SECRET_ACCESS_KEY": _token(string.ascii_letters + string.digits + "/+", 40),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return values


def leaks(text: str | bytes, values: dict[str, str]) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [name for name, value in values.items() if value.encode() in data]


def readable(path: Path) -> bytes:
    """A file's bytes as a reader would see them: gzip'd files (the response bundles) decompressed."""
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def scan_tree(root: Path, values: dict[str, str]) -> dict[str, list[str]]:
    return {
        str(p.relative_to(root)): found
        for p in sorted(root.rglob("*"))
        if p.is_file() and (found := leaks(readable(p), values))
    }


def run(defs, instance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(JOB).execute_in_process(
        run_config=DEBUG_RUN_CONFIG,
        instance=instance,
        raise_on_error=False,
        tags={RANGE_START_TAG: DAY[0], RANGE_END_TAG: DAY[1]},
    )


def _echo_key_error(status: int):
    """A server error that echoes the key back (the worst a server can do)."""

    def respond(request):
        from werkzeug import Response

        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return Response(
            json.dumps({"status": "ERROR", "request_id": "r1", "error": f"Unknown API Key {key}"}),
            status=status,
            content_type="application/json",
        )

    return respond


def test_secrets_stay_out_of_logs_run_storage_metadata_errors_and_objects(
    fake_secrets, data_dir, httpserver, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.DEBUG)  # every Python logger, urllib3's and requests' included
    server = FakePolygon(httpserver, craft=two_pages, echo_key=True)  # the key comes back in next_url
    env = polygon_env(server, monkeypatch, key=fake_secrets["POLYGON_API_KEY"])
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,X:BTCUSD", POLYGON_MAX_RETRIES="1", **env)
    # The resource as Dagster resolves it at run time, to look at its exceptions directly.
    source = PolygonSource(
        api_key=fake_secrets["POLYGON_API_KEY"], base_url=server.base_url, requests_per_minute=0, max_retries=1
    )
    window = Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))

    with dg.DagsterInstance.get() as instance:
        ok = run(defs, instance)
        assert ok.success, failure_messages(ok)
        # The key really was used, only as a header, and next_url was followed without it.
        assert any("cursor=1" in r["query"] for r in server.requests)
        assert server.requests and all(
            r["authorization"] == f"Bearer {fake_secrets['POLYGON_API_KEY']}" for r in server.requests
        )
        assert not any(leaks(r["path"] + r["query"], fake_secrets) for r in server.requests)
        # The bodies that echoed the key in next_url are kept (bundled, gzip'd): scanned decompressed,
        # now, because the failing runs below replace the window's bundle.
        assert any(p.suffix == ".gz" for p in data_dir.rglob("*"))
        assert scan_tree(data_dir, fake_secrets) == {}

        failed_runs, errors = [], []
        for status in (403, 503):  # refused key; server errors until retries run out
            httpserver.clear_all_handlers()
            httpserver.expect_request(re.compile(r"^/v2/aggs/")).respond_with_handler(_echo_key_error(status))
            result = run(defs, instance)
            assert not result.success
            failed_runs.append(result)
            with pytest.raises(PolygonError) as err:
                source.fetch("AAPL", window, lambda page_no, body: None)
            errors.append(err.value)
        assert "HTTP 403" in failure_messages(failed_runs[0]) and "HTTP 503" in failure_messages(failed_runs[1])

        for result in (ok, *failed_runs):
            assert not leaks(serialize_value(list(result.all_events)), fake_secrets)  # metadata, errors
            assert not leaks(serialize_value(instance.all_logs(result.run_id)), fake_secrets)
            record = instance.get_run_by_id(result.run_id)
            assert not leaks(serialize_value(record), fake_secrets)  # run config and tags
        for exc in errors:
            assert not leaks("".join(traceback.format_exception(exc)) + repr(exc), fake_secrets)
            assert "Unknown API Key ***" in str(exc)  # the echo was redacted, the rest kept

    out, err = capfd.readouterr()
    assert "DEBUG" in err or "DEBUG" in caplog.text  # DEBUG logging really was on
    assert not leaks(caplog.text + out + err, fake_secrets)
    assert scan_tree(Path(os.environ["DAGSTER_HOME"]), fake_secrets) == {}  # sqlite run/event storage incl.
    assert scan_tree(data_dir, fake_secrets) == {}  # raw responses, quarantine, parquet, DuckDB


# --- the repository ----------------------------------------------------------------------------

# Shapes of real credentials; the documented AWS example keys and moto's "testing" are allowed.
KEY_SHAPES = {
    "AWS access key id": re.compile(rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    "AWS secret key": re.compile(rb"(?i)aws_secret_access_key\W{1,4}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
    "Polygon key": re.compile(rb"(?i)(?:polygon_api_key|apikey|api_key)\W{1,4}[A-Za-z0-9_]{24,}"),
    "Bearer token": re.compile(rb"Bearer [A-Za-z0-9_\-.]{24,}"),
}
ALLOWED = (b"AKIAIOSFODNN7EXAMPLE", b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def tracked_files() -> list[Path]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    if listing.returncode != 0:
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    return [REPO / name for name in listing.stdout.decode().split("\0") if name and (REPO / name).is_file()]


def test_no_tracked_file_holds_the_fake_values_or_anything_shaped_like_a_real_key(fake_secrets):
    found = {}
    for path in tracked_files():
        data = path.read_bytes()
        hits = leaks(data, fake_secrets) + [
            f"{shape}: {m.group(0)[:12]!r}..."
            for shape, rx in KEY_SHAPES.items()
            for m in rx.finditer(data)
            if not any(a in m.group(0) for a in ALLOWED)
        ]
        if hits:
            found[str(path.relative_to(REPO))] = hits
    assert found == {}


def test_key_shapes_catch_what_they_are_for():
    """The repository scan above must be able to fail."""
    polygon, aws_id = "Zx" * 16, "AKIA" + "Q7" * 8
    samples = {
        "Polygon key": f"POLYGON_API_KEY={polygon}",
        "AWS access key id": f"aws_access_key_id = {aws_id}",
        "AWS secret key": "aws_secret_access_key: " + "a/B+" * 10,
        "Bearer token": f"Authorization: Bearer {polygon}",
    }
    assert samples.keys() == KEY_SHAPES.keys()
    for shape, sample in samples.items():
        assert KEY_SHAPES[shape].search(sample.encode()), shape


@pytest.mark.slow
def test_secrets_stay_out_of_cli_runs(fake_secrets, tmp_path, httpserver):
    """`dagster asset materialize` as an operator runs it: a real run process (the local default's
    in-process executor), stdout and stderr captured into DAGSTER_HOME by the compute log manager,
    DEBUG logs on."""
    server = FakePolygon(httpserver, craft=two_pages, echo_key=True)
    data_dir, home = tmp_path / "data", Path(os.environ["DAGSTER_HOME"])
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MAGSEV_DATA_DIR": str(data_dir),
        "MAGSEV_TICKERS": "AAPL,X:BTCUSD",
        "POLYGON_BASE_URL": server.base_url,
        "POLYGON_REQUESTS_PER_MINUTE": "0",
        "POLYGON_MAX_RETRIES": "0",
    }
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "magsev_dagster.definitions",
        "--select",
        "*",
        "--partition-range",
        f"{DAY[0]}...{DAY[1]}",
        "--config-json",
        json.dumps(DEBUG_RUN_CONFIG),
    ]

    ok = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "RUN_SUCCESS" in ok.stderr
    httpserver.clear_all_handlers()
    httpserver.expect_request(re.compile(r"^/v2/aggs/")).respond_with_handler(_echo_key_error(403))
    failed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert failed.returncode != 0 and "HTTP 403" in failed.stderr

    for proc in (ok, failed):
        assert not leaks(proc.stdout + proc.stderr, fake_secrets)
    assert any(p.suffix in (".err", ".out") for p in home.rglob("*"))  # captured step output is there ...
    assert scan_tree(home, fake_secrets) == {}  # ... and, like the run and event storage, clean
    assert scan_tree(data_dir, fake_secrets) == {}
