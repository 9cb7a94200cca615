"""The definitions load and validate in both environments, through Dagster's own loaders too, and their
public shape is the reviewed snapshot (magsev_dagster_tests/snapshots/definitions_<env>.json).

After an intended change: `make snapshots` (MAGSEV_UPDATE_SNAPSHOTS=1 on these tests) rewrites the files;
review and commit the diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from magsev_dagster_tests.contract import ENVIRONMENTS, definitions_for, shape

SNAPSHOTS = Path(__file__).parent / "snapshots"
ROOT = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).with_name("dg")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_definitions_load_and_validate(env):
    dg.Definitions.validate_loadable(definitions_for(env))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_public_shape_is_the_reviewed_snapshot(env):
    path = SNAPSHOTS / f"definitions_{env}.json"
    current = json.dumps(shape(definitions_for(env)), indent=2, sort_keys=True) + "\n"
    if os.environ.get("MAGSEV_UPDATE_SNAPSHOTS"):
        path.write_text(current)
    assert path.exists(), f"no snapshot {path.name}: run `make snapshots` and commit it"
    assert json.loads(current) == json.loads(path.read_text()), (
        f"the definitions' public shape differs from {path.name}; if intended: `make snapshots`, "
        "review the diff and commit it"
    )


def test_the_shape_shows_a_dropped_check_and_a_changed_cron(monkeypatch):
    """The comparison catches what it is for (a shape that ignored checks or crons would pass anything)."""
    import magsev_dagster.definitions as module
    from magsev_dagster.resources import resources_for
    from magsev_dagster.settings import Settings

    before = shape(definitions_for("local"))
    every_check = module.all_checks
    monkeypatch.setattr(
        module,
        "all_checks",
        lambda: [c for c in every_check() if "no_unexplained_jumps" not in {key.name for key in c.check_keys}],
    )
    settings = Settings.from_env({"MAGSEV_ENV": "local", "MAGSEV_SCHEDULE_CRON": "7 * * * *"})
    after = shape(module.build_defs(resources_for(settings), settings))
    assert set(before["checks"]) - set(after["checks"]) == {"polygon_hourly_prod:no_unexplained_jumps"}
    assert after["schedules"]["magsev_hourly_schedule"]["cron"] == "7 * * * *"
    assert before["schedules"]["magsev_hourly_schedule"]["cron"] == "5 * * * *"
    # The freshness policies follow the schedule's cron (schedules.freshness_policy); nothing else moves.
    changed = {
        name
        for name, asset in after["assets"].items()
        if asset["freshness_policy"] != before["assets"][name]["freshness_policy"]
    }
    assert changed == {"polygon_hourly_prod", "hourly_price_variance"}

    def rest(s):
        return {
            **{k: v for k, v in s.items() if k not in ("checks", "schedules", "assets")},
            "assets": {n: {**a, "freshness_policy": None} for n, a in s["assets"].items()},
        }

    assert rest(after) == rest(before)


def test_dg_checks_and_lists_the_definitions_in_both_environments(tmp_path):
    """`dg check defs` (what the README tells users to run) in a fresh process per environment, both at
    once; `dg list defs --json` names the assets. Each process gets its own empty DAGSTER_HOME: not the
    user's instance, and two processes creating one sqlite instance at once race on its schema."""
    if not DG.exists():
        pytest.fail(f"{DG} missing: the dev extra installs dagster-dg-cli (make install)")
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix, "DAGSTER_HOME": str(tmp_path / "list")}
    homes = {name: tmp_path / name for name in ENVIRONMENTS}
    for home in [*homes.values(), tmp_path / "list"]:
        home.mkdir()
    runs = {
        name: subprocess.Popen(
            [str(DG), "check", "defs"],
            cwd=ROOT,
            env={**env, "MAGSEV_ENV": name, "DAGSTER_HOME": str(homes[name])},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ENVIRONMENTS
    }
    listed = subprocess.run(
        [str(DG), "list", "defs", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    for name, run in runs.items():
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 0 and "All definitions loaded successfully" in out, (name, out[-3000:])
    assert listed.returncode == 0, listed.stderr[-3000:]
    assets = {asset["asset_key"] for asset in json.loads(listed.stdout)["assets"]}
    assert assets == set(shape(definitions_for("local"))["assets"])
