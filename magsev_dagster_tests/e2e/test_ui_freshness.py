"""The freshness of production as the Dagster UI shows it, in headless Chromium.

Before its first run the asset's freshness is unknown; after one materialization the freshness daemon
evaluates the policy (a rewrite within 30 min of every hourly tick) and the asset page shows it as
passing. GraphQL is the oracle, the browser what a user sees. Screenshots in test-output/e2e/.
"""

from __future__ import annotations

import pytest
from dagster_graphql import DagsterGraphQLClient

from magsev_dagster_tests.e2e.browser import screenshot
from magsev_dagster_tests.e2e.test_ui_browser import browser, server, ui  # noqa: F401  (fixtures)
from magsev_dagster_tests.fakes.webserver import (
    LOCATION, REPOSITORY, freshness, wait_for_freshness, wait_for_run,
)
from magsev_dagster_tests.helpers import JOB

pytestmark = pytest.mark.e2e

PARTITION = "2026-11-25"  # Wednesday: a past NYSE session


POLICY_TEXT = ("Deadline: At 35 minutes past the hour",
               "Fresh if materialized no earlier than 30 minutes before each deadline.")


def freshness_section(ui) -> str:
    """The asset page's 'Freshness policy' block (up to the next heading)."""
    body = ui.wait_text("Freshness policy", *POLICY_TEXT)
    return body.split("Freshness policy", 1)[1].split("Compute details", 1)[0]


def test_production_freshness_unknown_then_passing_on_the_asset_page(ui, server):
    assert freshness(server, "polygon_hourly_prod")["freshnessStatusInfo"]["freshnessStatus"] == "UNKNOWN"
    ui.open("/assets/polygon_hourly_prod")
    before = freshness_section(ui)
    screenshot(ui.driver, "07-prod-freshness-unknown")
    assert "Not evaluated" in before and "Passing" not in before, before

    client = DagsterGraphQLClient("127.0.0.1", port_number=server.port, timeout=60)
    run_id = client.submit_job_execution(JOB, repository_location_name=LOCATION, repository_name=REPOSITORY,
                                         tags={"dagster/partition": PARTITION})
    assert wait_for_run(server, run_id)["status"] == "SUCCESS", server.log_tail()
    wait_for_freshness(server, "polygon_hourly_prod", "HEALTHY")

    ui.open("/assets/polygon_hourly_prod")
    ui.wait_text("Passing", "Last materialized")
    after = freshness_section(ui)
    screenshot(ui.driver, "08-prod-freshness-passing")
    assert after.lstrip().startswith("Passing") and "Last materialized" in after, after
