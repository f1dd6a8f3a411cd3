"""Headless Chromium for the console's browser tests: Debian's ``chromium`` driven by
Playwright (a browser download cannot work here), pages checked for console errors and
Content-Security-Policy violations, and a screenshot of every page, at laptop and at phone
size, under ``test-results/browser/<test>/`` (``SHOPSTACK_TEST_OUTPUT`` moves the root)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from shopstack_devstack.paths import REPO_ROOT

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalPlatform

CHROMIUM = os.environ.get("SHOPSTACK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(os.environ.get("SHOPSTACK_TEST_OUTPUT", REPO_ROOT / "test-results")) / "browser"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Every violation the page meets, kept where the test can read it (init scripts run before
# the page's own and are not subject to its CSP).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""
# Chromium reports a page answered with an error status as a console error of its own.
STATUS_MESSAGE = re.compile(r"the server responded with a status of (\d{3})")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make test-browser` installs Debian's chromium "
            "(apt-get install -y chromium), or set SHOPSTACK_CHROMIUM"
        )
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


@dataclass
class PageWatch:
    """What went wrong on the pages of one test: console errors, uncaught exceptions and
    CSP violations. ``expect_status`` names the error statuses a step meant to get."""

    page: Page
    folder: Path
    errors: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)
    shots: list[Path] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = STATUS_MESSAGE.search(message.text)
        if status and int(status[1]) in self.expected_statuses:
            return
        self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def expect_status(self, *statuses: int) -> None:
        self.expected_statuses = set(statuses)

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def assert_clean(self) -> None:
        problems = self.errors + [f"CSP: {v}" for v in self.csp_violations()]
        assert problems == [], f"on {self.page.url}: {problems}"
        self.expected_statuses = set()

    def capture(self, name: str) -> None:
        """Screenshots of the page at laptop and phone size; on the phone the page must not
        scroll sideways (wide tables scroll inside their card)."""
        self.page.wait_for_load_state("networkidle")
        self.assert_clean()
        self.folder.mkdir(parents=True, exist_ok=True)
        laptop = self.folder / f"{len(self.shots) // 2 + 1:02d}-{name}.png"
        self.page.screenshot(path=laptop, full_page=True)
        self.page.set_viewport_size(PHONE)
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        phone = laptop.with_name(laptop.stem + "-phone.png")
        self.page.screenshot(path=phone, full_page=True)
        self.page.set_viewport_size(LAPTOP)
        self.shots += [laptop, phone]
        assert overflow <= 0, f"{name} is {overflow}px wider than a phone's screen"
        self.assert_clean()


@pytest.fixture
def watch(browser: Browser, request: pytest.FixtureRequest, base_url: str) -> Iterator[PageWatch]:
    context = browser.new_context(base_url=base_url, viewport=LAPTOP)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.set_default_timeout(20_000)
    folder = OUTPUT / re.sub(r"[^\w.-]+", "-", request.node.name)
    if folder.exists():
        shutil.rmtree(folder)
    watched = PageWatch(page=page, folder=folder)
    page.on("console", watched.on_console)
    page.on("pageerror", lambda error: watched.errors.append(f"uncaught: {error}"))
    # Destructive buttons ask first (console.js); the tests answer yes.
    page.on("dialog", lambda dialog: dialog.accept())
    yield watched
    context.close()


@pytest.fixture(scope="module")
def base_url(running_platform: LocalPlatform) -> str:
    return running_platform.url
