"""Headless Chromium from the system packages (Debian `chromium` + `chromium-driver`) driven by Selenium.

No browser is downloaded: without the system binaries (or the selenium package) the tests skip and
say why, or fail when `CI` is set. Screenshots go to test-output/e2e/ at the checkout root.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from magsev_dagster_tests.requirements import missing, require_module

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "e2e"

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=2400,1300",
)


def system_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or a pytest skip naming what is missing and how to get it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        missing(
            "system Chromium not installed (needs `chromium` and `chromium-driver` from Debian: "
            "apt-get install -y chromium chromium-driver, which `make test` and `make test-e2e` do)"
        )
    return chromium, driver


@contextmanager
def chromium_driver() -> Iterator[object]:
    webdriver = require_module("selenium.webdriver", "selenium not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = system_chromium()
    profile = tempfile.mkdtemp(prefix="magsev-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
