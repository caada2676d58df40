"""The API documentation in a real browser (Debian's Chromium, headless) against a real server on
loopback, as on a machine without internet: /docs (Swagger UI) and /redoc list the operations,
and every request the pages make (scripts, styles, the OpenAPI document, workers) goes to the
server itself.

The browser reaches the server by a name, `chatsvc.test`, that it resolves to 127.0.0.1, and
resolves no other name: an asset that still points at a CDN shows up as a request to another host
(and fails, as it would air-gapped). A name rather than the bare address, as a deployment is
reached (Swagger UI treats localhost and 127.0.0.1 apart)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    async_playwright,
    expect,
)

from tests.fixtures.app import Live
from tests.ui.conftest import CHROMIUM

ARTIFACTS = Path(os.environ.get("CHATSVC_TEST_ARTIFACTS", "test-artifacts"))
WAIT_MS = 20_000
HOST = "chatsvc.test"


@pytest.fixture
async def offline_browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-pings",
                f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND",
            ],
        )
        yield found
        await found.close()


class Recorded:
    """Every request of a browser context (its pages and their workers); those the page's
    Content-Security-Policy refused (the browser never sent them); those that failed else."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.refused: list[str] = []
        self.failed: list[str] = []

    def _failed(self, request: Request) -> None:
        if request.failure == "csp":
            self.refused.append(request.url)
        else:
            self.failed.append(f"{request.url} {request.failure}")

    async def page(self, browser: Browser) -> tuple[BrowserContext, Page]:
        context = await browser.new_context()
        context.on("request", lambda request: self.urls.append(request.url))
        context.on("requestfailed", self._failed)
        return context, await context.new_page()

    def paths(self) -> set[str]:
        return {urlsplit(url).path for url in self.urls}

    def hosts(self) -> set[str]:
        """The hosts of the requests sent; data: and blob: URLs (inline images, ReDoc's search
        worker) load nothing from anywhere."""
        return {
            urlsplit(url).hostname or url
            for url in self.urls
            if urlsplit(url).scheme not in ("data", "blob") and url not in self.refused
        }


def named(live: Live, path: str) -> str:
    return f"http://{HOST}:{urlsplit(live.base_url).port}{path}"


async def test_swagger_ui_lists_the_operations_with_nothing_from_outside(
    offline_browser: Browser, live: Live
) -> None:
    recorded = Recorded()
    context, page = await recorded.page(offline_browser)
    await page.goto(named(live, "/docs"))

    # Swagger UI's element of an operation: operations-<tag>-<operation id>
    await expect(page.locator("#operations-assistants-create_assistant")).to_be_visible(
        timeout=WAIT_MS
    )
    await expect(page.locator("#operations-operations-healthz")).to_contain_text("/healthz")
    await expect(page.locator(".info .title")).to_contain_text("chatsvc")
    # The icon is the chat page's, served here (headless Chromium does not fetch icons itself).
    icon = await page.evaluate(
        "fetch(document.querySelector('link[rel~=icon]').href)"
        ".then(r => [r.status, r.headers.get('content-type')])"
    )
    assert icon == [200, "image/svg+xml"]
    await page.screenshot(path=str(ARTIFACTS / "docs-swagger-ui.png"))
    await context.close()

    assert {
        "/docs",
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
        "/openapi.json",
    } <= recorded.paths(), recorded.urls
    assert recorded.hosts() == {HOST}, recorded.urls
    assert recorded.refused == []
    assert recorded.failed == []


async def test_redoc_lists_the_operations_with_nothing_from_outside(
    offline_browser: Browser, live: Live
) -> None:
    recorded = Recorded()
    context, page = await recorded.page(offline_browser)
    await page.goto(named(live, "/redoc"))

    # ReDoc's section of an operation: operation/<operation id>
    operation = page.locator('[data-section-id="operation/create_assistant"]')
    await expect(operation).to_contain_text("/assistants/", timeout=WAIT_MS)
    await page.screenshot(path=str(ARTIFACTS / "docs-redoc.png"))
    await context.close()

    assert {"/redoc", "/docs-assets/redoc.standalone.js", "/openapi.json"} <= recorded.paths(), (
        recorded.urls
    )
    assert recorded.hosts() == {HOST}, recorded.urls
    # ReDoc's script has one outside URL of its own, its maker's logo (hard-coded): the page's
    # Content-Security-Policy refuses it, so the browser never sends it (the logo is hidden).
    assert recorded.refused == ["https://cdn.redoc.ly/redoc/logo-mini.svg"]
    assert recorded.failed == []
