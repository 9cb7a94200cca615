"""The Dagster UI in headless Chromium: what a user does on the embedded default, click by click.

Open the asset graph and find every asset; see production's freshness unknown; materialize one day from the
Materialize dialog; see the run succeed, the check results and production's freshness passing; backfill two
days from the same dialog and see that the days ran as one run (the unpartitioned view and dashboard once
more, after it). GraphQL is the oracle (run ids, statuses), the browser is the user. Screenshots of each step
land in test-output/e2e/. Run with `make test-e2e`; skipped (never passed) without Chromium.
"""

from __future__ import annotations

import shutil

import pytest

from magsev_dagster_tests.e2e.browser import SCREENSHOTS, chromium_driver, screenshot, system_chromium
from magsev_dagster_tests.fakes.webserver import (
    backfill_runs,
    freshness,
    run_assets,
    run_tags,
    running_webserver,
    wait_for_backfill,
    wait_for_freshness,
    wait_for_run,
)
from magsev_dagster_tests.helpers import RANGE_END_TAG, RANGE_START_TAG
from magsev_dagster_tests.test_ui_graphql import (
    GROUPS,
    PARQUET_CHECKS,
    PARTITIONED,
    rerun_warehouse_with_a_negative_low,
)

pytestmark = pytest.mark.e2e

ONE_PARTITION = "2026-11-23"  # Monday (not the GraphQL test's partition: own server anyway)
BACKFILL_RANGE = ("2026-11-19", "2026-11-20")  # two daily partitions
WAIT = 60  # seconds for the UI to show what GraphQL already says
# The production table's freshness policy as its asset page states it (schedules.freshness_policy).
POLICY_TEXT = (
    "Deadline: At 35 minutes past the hour",
    "Fresh if materialized no earlier than 30 minutes before each deadline.",
)

RUNS_WITH_PARTITION = """
query Runs($value: String!) { runsOrError(filter: {tags: [{key: "dagster/partition", value: $value}]}) {
  ... on Runs { results { runId status } } } }
"""
LATEST_BACKFILL = """
query { partitionBackfillsOrError(limit: 1) { ... on PartitionBackfills { results { id numPartitions } } } }
"""


@pytest.fixture(scope="module")
def browser():
    system_chromium()  # skip before paying for a server when there is no browser
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # only this session's pictures
    with chromium_driver() as driver:
        yield driver


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    with running_webserver(tmp_path_factory.mktemp("ui_e2e")) as running:
        running.graphql("mutation { setNuxSeen }")  # no 'Join the Dagster community' dialog over the page
        yield running


class DagsterUI:
    """The few gestures the tests make in the Dagster UI, with Selenium's explicit waits.

    selenium is imported inside: without it the module must still import, so the tests can skip."""

    def __init__(self, driver, url: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.url, self.by = driver, url, By
        self._wait = WebDriverWait(driver, WAIT, poll_frequency=0.25)

    def until(self, condition):
        """Wait for `condition`; on timeout keep a screenshot of what the page showed instead."""
        from selenium.common.exceptions import TimeoutException

        try:
            return self._wait.until(condition)
        except TimeoutException:
            path = screenshot(self.driver, "failed-wait")
            raise TimeoutException(f"UI did not get there within {WAIT}s; page at {path}") from None

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)
        self.until(lambda d: d.find_elements(self.by.XPATH, "//*[normalize-space()='Overview']"))

    def xpath(self, expr: str):
        return self.until(lambda d: d.find_element(self.by.XPATH, expr))

    def click_text(self, text: str) -> None:
        """Click the innermost drawn element reading exactly `text`."""
        expr = f"//*[normalize-space()='{text}' and not(.//*[normalize-space()='{text}'])]"
        self.until(lambda d: [e for e in d.find_elements(self.by.XPATH, expr) if self.drawn(e)])[0].click()

    @staticmethod
    def drawn(element) -> bool:
        """Has an area on the page (the UI keeps zero-height copies of names to measure them)."""
        return element.rect["width"] > 0 and element.rect["height"] > 0

    def click_button(self, text: str) -> None:
        """Click the visible button reading exactly `text`."""
        expr = f"//button[normalize-space()='{text}']"
        self.until(lambda d: [e for e in d.find_elements(self.by.XPATH, expr) if self.drawn(e)])[0].click()

    def menu_item(self, text: str) -> None:
        self.xpath(f"//*[@role='menuitem'][contains(normalize-space(), '{text}')]").click()

    def press_escape(self) -> None:
        from selenium.webdriver.common.keys import Keys

        self.driver.find_element(self.by.TAG_NAME, "body").send_keys(Keys.ESCAPE)

    def icon_button(self, icon: str):
        """A button showing only an icon, found by the icon's aria-label (the last one: the graph's own)."""
        return self.xpath(f"(//button[.//*[@role='img' and @aria-label='{icon}'] and normalize-space()=''])[last()]")

    def wait_text(self, *texts: str) -> str:
        self.until(lambda d: all(t in d.find_element(self.by.TAG_NAME, "body").text for t in texts))
        return self.driver.find_element(self.by.TAG_NAME, "body").text

    def launch_from_materialize_dialog(self, partition_selection: str, button: str) -> None:
        """Asset graph -> Materialize all… -> type the partitions -> the launch button."""
        from selenium.webdriver.common.keys import Keys

        self.click_button("Materialize all…")
        dialog = "//*[@role='dialog'][.//*[contains(normalize-space(), 'Launch runs to materialize')]]"
        field = self.xpath(f"{dialog}//input[@type='text']")  # drawn once the partitions have loaded
        field.click()
        field.send_keys(partition_selection, Keys.ENTER)
        launch = self.xpath(f"{dialog}//button[normalize-space()='{button}']")
        self.until(lambda d: launch.is_enabled())
        screenshot(self.driver, f"dialog-{button.replace(' ', '-').lower()}")
        launch.click()
        self.until(lambda d: not d.find_elements(self.by.XPATH, dialog))


@pytest.fixture(scope="module")
def ui(browser, server):
    return DagsterUI(browser, server.url)


def test_asset_graph_shows_every_group_and_asset(ui):
    ui.open("/asset-groups")
    ui.wait_text(*sorted(set(GROUPS.values())))
    ui.icon_button("settings").click()
    ui.menu_item("Expand all groups")
    ui.press_escape()
    for name in GROUPS:  # full names are drawn once the graph is large enough to show whole asset nodes
        ui.xpath(f"//*[@title='{name}' or normalize-space(text())='{name}']")
    screenshot(ui.driver, "01-asset-graph")


def freshness_section(ui) -> str:
    """The asset page's 'Freshness policy' block (up to the next heading)."""
    body = ui.wait_text("Freshness policy", *POLICY_TEXT)
    return body.split("Freshness policy", 1)[1].split("Compute details", 1)[0]


def test_production_freshness_is_unknown_before_the_first_run(ui, server):
    assert freshness(server, "polygon_hourly_prod")["freshnessStatusInfo"]["freshnessStatus"] == "UNKNOWN"
    ui.open("/assets/polygon_hourly_prod")
    before = freshness_section(ui)
    screenshot(ui.driver, "07-prod-freshness-unknown")
    assert "Not evaluated" in before and "Passing" not in before, before


def test_one_partition_from_the_materialize_dialog_runs_green_with_its_checks(ui, server):
    ui.open("/asset-groups")
    ui.launch_from_materialize_dialog(ONE_PARTITION, "Launch 1 run")
    runs = server.graphql(RUNS_WITH_PARTITION, {"value": ONE_PARTITION})["runsOrError"]["results"]
    assert len(runs) == 1, runs
    run = wait_for_run(server, runs[0]["runId"])
    assert run["status"] == "SUCCESS", server.log_tail()

    ui.open(f"/runs/{run['runId']}")
    ui.wait_text("Success", "polygon_hourly_prod")
    screenshot(ui.driver, "02-run-success")

    ui.open("/assets/polygon_parquet_fp?view=checks")
    body = ui.wait_text(*sorted(PARQUET_CHECKS))
    assert "Passed" in body or "Succeeded" in body, body[:2000]
    screenshot(ui.driver, "03-parquet-checks")

    ui.open("/assets/polygon_hourly_prod")
    ui.wait_text("Row count", "polygon_hourly_prod", "Columns")
    screenshot(ui.driver, "04-prod-asset")
    ui.open("/assets/raw_polygon_aggregates")
    ui.wait_text("Row count", "synthetic")
    screenshot(ui.driver, "04b-raw-asset")


def test_production_freshness_passes_after_the_run(ui, server):
    """The freshness daemon (every 3 s here) judges the policy after the previous test's materialization."""
    wait_for_freshness(server, "polygon_hourly_prod", "HEALTHY")
    ui.open("/assets/polygon_hourly_prod")
    ui.wait_text("Passing", "Last materialized")
    after = freshness_section(ui)
    screenshot(ui.driver, "08-prod-freshness-passing")
    assert after.lstrip().startswith("Passing") and "Last materialized" in after, after


def test_a_failing_check_shows_the_offending_rows(ui, server):
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=server.port)
    run_id = rerun_warehouse_with_a_negative_low(server, client, ONE_PARTITION)
    assert wait_for_run(server, run_id)["status"] == "FAILURE"

    ui.open("/assets/polygon_parquet_fp?view=checks")
    ui.click_text("prices_positive")
    ui.wait_text("Failed", "offending_rows", "1 offending rows")
    ui.click_text("[Show Markdown]")  # the sample, in a dialog
    ui.wait_text("NVDA", "-1")
    screenshot(ui.driver, "03b-failed-check-sample")


def test_two_day_backfill_from_the_materialize_dialog_is_one_run(ui, server):
    ui.open("/asset-groups")
    ui.launch_from_materialize_dialog(f"[{BACKFILL_RANGE[0]}...{BACKFILL_RANGE[1]}]", "Launch backfill")
    [backfill] = server.graphql(LATEST_BACKFILL)["partitionBackfillsOrError"]["results"]
    assert backfill["numPartitions"] == 2

    status, runs = wait_for_backfill(server, backfill["id"])
    assert status == "COMPLETED_SUCCESS", (status, runs, server.log_tail())
    assert all(run["status"] == "SUCCESS" for run in runs), runs
    # The two days of every partitioned asset in one run.
    [days] = [run for run in runs if RANGE_START_TAG in run_tags(run)]
    assert (run_tags(days)[RANGE_START_TAG], run_tags(days)[RANGE_END_TAG]) == BACKFILL_RANGE
    assert run_assets(days) == PARTITIONED
    # The unpartitioned assets (the splits table, the views, the dashboard) in runs of their own, each once.
    others = [name for run in runs if run is not days for name in run_assets(run)]
    assert sorted(others) == sorted(set(GROUPS) - PARTITIONED)

    ui.open(f"/runs/b/{backfill['id']}?tab=runs")
    ui.wait_text("Succeeded", "Partition selection", days["runId"][:8])
    screenshot(ui.driver, "05-backfill-one-run")
    assert backfill_runs(server, backfill["id"]) == runs  # still one run after the daemon closed it


def test_hourly_schedule_is_ready_to_switch_on(ui):
    ui.open("/locations/magsev_dagster.definitions/schedules/magsev_hourly_schedule")
    ui.wait_text("magsev_hourly_schedule", "magsev_hourly_job")
    screenshot(ui.driver, "06-hourly-schedule")
