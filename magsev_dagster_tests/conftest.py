"""Shared fixtures. Each test gets its own data directory; nothing reads the developer's environment."""

import os

# Imported here, early, on purpose: hypothesis's pytest plugin imports the package lazily at session
# end, and pytest's assertion rewriting then re-parses every hypothesis module with ast.parse at a deep
# stack full of finalizable objects, where Python 3.11's AST recursion-depth bookkeeping
# (python/cpython#106905) intermittently fails the whole session with "SystemError: AST constructor
# recursion depth mismatch" after every test passed.
import hypothesis
import hypothesis.internal.observability  # noqa: F401  (imported for its side effect, see above)
import pytest

from magsev_dagster_tests.fakes.postgres import postgres, postgres_db  # noqa: F401  (shared fixtures)
from magsev_dagster_tests.helpers import local_defs

CALLER_SETTINGS = (
    "MASSIVE_API_KEY",
    "POLYGON_API_KEY",
    "MASSIVE_BASE_URL",
    "MAGSEV_ENV",
    "MAGSEV_TICKERS",
    "MAGSEV_DATA_DIR",
    "POLYGON_BASE_URL",
    "MAGSEV_EXTENDED_HOURS",
    "MAGSEV_LATE_DATA_LOOKBACK_HOURS",
    "MAGSEV_ALERT_SNS_TOPIC_ARN",
    "MAGSEV_ALERT_WEBHOOK_URL",
    "MAGSEV_UI_URL",
    "DAGSTER_PG_PASSWORD",
)


def pytest_configure(config):
    """Tests never see a real key or the caller's settings (not even module fixtures) unless they set them."""
    for name in CALLER_SETTINGS:
        os.environ.pop(name, None)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def defs(data_dir):
    """The project's Definitions on the embedded default, synthetic source, Magnificent 7."""
    return local_defs(data_dir)


# The longest modules first (measured with --durations): `make test` gives each module to one of two
# workers (--dist loadscope) in collection order, so starting the browser flow, the daemon deployment and
# the webserver's GraphQL flow first lets the many short modules fill the gaps instead of one long
# module starting last and running alone (e2e/ is collected after the test files by default).
LONGEST_FIRST = (
    "e2e/test_ui_browser.py",
    "test_deploy_daemon.py",
    "test_ui_graphql.py",
    "test_aws_trino.py",
    "test_demo.py",
    "test_faults_data.py",
    "test_secrets.py",
    "test_faults_crash.py",
)


def _rank(item) -> int:
    path = item.nodeid.split("::")[0]
    return next((i for i, name in enumerate(LONGEST_FIRST) if path.endswith(name)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: each module's tests keep their order and stay together
