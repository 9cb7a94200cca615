"""`make demo` on a fresh DAGSTER_HOME: all three ticker groups by default, and where to look next."""

import os
import subprocess
import sys
from pathlib import Path

from magsev_dagster_tests.deploy_instance import LOCAL_YAML

REPO = Path(__file__).resolve().parents[1]


def test_the_demo_loads_the_three_groups_and_says_where_to_look(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(LOCAL_YAML.read_text())  # what `make demo` copies there
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAGSEV_", "POLYGON_"))},
        "DAGSTER_HOME": str(home),
        "MAGSEV_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
        "MAGSEV_UI_URL": "http://ui.example:3000",
    }
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "magsev_dagster.demo", "--days", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [
        line.split("|")[1].strip()
        for line in out.stdout.split("Production rows per ticker")[1].split("\n\n")[0].splitlines()
        if line.startswith("| ") and "ticker" not in line
    ]
    assert set(rows) == {
        "AAPL",
        "MSFT",
        "GOOGL",
        "AMZN",
        "NVDA",
        "META",
        "TSLA",
        "SPY",
        "QQQ",
        "DIA",
        "X:BTCUSD",
        "X:ETHUSD",
    }
    run_id = out.stdout.split("Run ")[1].split()[0]
    assert f"http://ui.example:3000/runs/{run_id}" in out.stdout
    picture = tmp_path / "data" / "dashboards" / "magsev_hourly_variance.png"
    assert picture.stat().st_size > 10_000 and str(picture) in out.stdout
    assert "magsev_hourly_schedule and magsev_freshness_schedule" in out.stdout
