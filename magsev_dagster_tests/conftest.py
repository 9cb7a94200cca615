"""Shared fixtures. Each test gets its own data directory; nothing reads the developer's environment."""

import pytest

from magsev_dagster_tests.helpers import local_defs


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    """Tests never see a real key or the caller's settings unless they set them."""
    for name in ("POLYGON_API_KEY", "MAGSEV_ENV", "MAGSEV_TICKERS", "MAGSEV_DATA_DIR", "POLYGON_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def defs(data_dir):
    """The project's Definitions on the embedded default, synthetic source, Magnificent 7."""
    return local_defs(data_dir)
