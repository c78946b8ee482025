"""Headless Chromium for browser tests: Debian's chromium driven by Debian's chromedriver via Selenium.

Both binaries come from ops/test-deps.sh (run by `make test`), so their versions always match and
nothing is downloaded at test time. Each ``Browser`` is one Chromium process; ``new_context`` opens
another window with its own profile (cookies, storage), which is how tests get a second user or a
second device of the same user.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def open_chromium(width: int = 1280, height: int = 860) -> webdriver.Chrome:
    """One headless Chromium with its own temporary profile; the caller quits it."""
    profile = tempfile.mkdtemp(prefix="parley-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--metrics-recording-only",
                f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver._parley_profile = profile  # type: ignore[attr-defined]
    return driver


def close_chromium(driver: webdriver.Chrome) -> None:
    profile = getattr(driver, "_parley_profile", None)
    try:
        driver.quit()
    finally:
        if profile:
            shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Console messages at SEVERE level (errors, uncaught exceptions, failed loads) since the last call."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


UPDATE_SCREENSHOTS = os.environ.get("PARLEY_UPDATE_SCREENSHOTS") == "1"


def screenshot(driver: webdriver.Chrome, path: Path) -> Path:
    """Save a PNG of the page. The docs' screenshots are rewritten only with PARLEY_UPDATE_SCREENSHOTS=1
    (so a test run leaves the work tree clean); otherwise the picture goes to a temp file."""
    if not UPDATE_SCREENSHOTS:
        path = Path(tempfile.mkdtemp(prefix="parley-shot-")) / path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path
