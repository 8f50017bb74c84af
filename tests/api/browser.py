"""What the console's browser tests share: one populated deployment per test module, served
afresh for each test, headless Chromium (Debian's) through Playwright, and browser contexts
that are screenshotted when a test fails. The fixtures are registered in tests/api/conftest.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, expect, sync_playwright

from tests.api.live import LiveDeployment, build_deployment, serve_deployment
from tests.conftest import CHROMIUM

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 820, "height": 1180}
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One deployment built for the module; each test serves its own copy."""
    root = tmp_path_factory.mktemp("console-template")
    build_deployment(root)
    return root


@pytest.fixture
def live(template: Path, tmp_path: Path) -> Iterator[LiveDeployment]:
    with serve_deployment(tmp_path / "live", template=template) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    )
    yield browser
    browser.close()


class Contexts:
    """Browser contexts (each its own cookies: an officer, a party) that are screenshotted if the test fails."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[BrowserContext] = []
        self.errors: list[str] = []

    def new_page(self, viewport: ViewportSize = DESKTOP, lang: str | None = None) -> Page:
        context = self.browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
        if lang is not None:
            context.add_init_script(f"localStorage.setItem('nonsite.lang', '{lang}')")
        self.opened.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page


@pytest.fixture
def browsers(browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Contexts]:
    contexts = Contexts(browser)
    yield contexts
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = Path(os.environ.get("NONSITE_TEST_ARTIFACTS", tmp_path / "screenshots"))
        folder.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(contexts.opened):
            for j, page in enumerate(context.pages):
                path = folder / f"{request.node.name}-{i}-{j}.png"
                page.screenshot(path=path, full_page=True)
                print(f"screenshot of {page.url}: {path}", file=sys.stderr)
    for context in contexts.opened:
        context.close()
    assert not contexts.errors, f"the page raised: {contexts.errors}"


def log_in(page: Page, live: LiveDeployment, username: str) -> None:
    page.goto(f"{live.url}/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(live.password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("whoami")).to_be_visible()


def api_json(page: Page, live: LiveDeployment, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the API as the page's user (its session cookie)."""
    response = page.request.fetch(f"{live.url}{path}", method=method, data=body)
    assert response.ok, f"{method} {path}: {response.status} {response.text()}"
    return response.json()
