"""Fixtures for the browser tests: a real server (granian, as `leadkit serve` runs it) on a
fresh SQLite database, and Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: it launches /usr/bin/chromium, which
`make test` installs through `.ci/system-deps test`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.served import Served, serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "e2e-admin-password-2026"
SECRET_KEY = "e2e-test-secret-key-0123456789-abcdefghi"  # 40 characters
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

# The known admin and secret key of a browser test's server (sign_in and the tokens use them).
STAFF_ENV = {
    "LEADKIT_ADMIN_USERNAME": ADMIN_USERNAME,
    "LEADKIT_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "LEADKIT_SECRET_KEY": SECRET_KEY,
}
INFO_LOGS = {"LEADKIT_LOG_LEVEL": "INFO"}  # the server's log says more than warnings
# Per-address proof of work and daily cap raised: a server whose visitors all ask for codes
# from 127.0.0.1.
MANY_CODES = {"LEADKIT_OTP_POW_IP_HOURLY": "1000", "LEADKIT_OTP_IP_DAILY_CAP": "1000"}

PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003130) NetType/WIFI "
    "Language/zh_CN"
)
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": PHONE_UA,
    "locale": "zh-CN",
}
DESKTOP: dict[str, Any] = {
    "viewport": {"width": 1280, "height": 800},
    "locale": "zh-CN",
}


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app served by `leadkit serve` (granian, one worker) on a free port with the demo
    content and a known admin password (tests/served.py); yields the base URL. Every test's
    visitor asks for codes from 127.0.0.1: the per-address proof of work and daily cap are
    raised so that how tests are shared between workers never decides whether a gate asks for
    a challenge (tests/e2e/test_gate_pow_browser.py tests those on a server of its own)."""
    with e2e_server(tmp_path_factory, "e2e", {**STAFF_ENV, **MANY_CODES, **INFO_LOGS}) as app:
        yield app.url


def server_url(name: str, env: dict[str, str] | None = None) -> Any:
    """A module's own server (e2e_server ``name`` with ``env``) as a module-scoped fixture
    that yields its URL: ``site = server_url("privacy", {...})``."""

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with e2e_server(tmp_path_factory, name, env) as app:
            yield app.url

    return fixture


@contextmanager
def e2e_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """`leadkit serve` on SQLite, one worker, with ``env``, in a fresh folder named ``name``
    (tests/served.py: migrated, the demo content seeded)."""
    with serve("sqlite", tmp_path_factory.mktemp(name), workers=1, env=env) as app:
        yield app


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium, headless, with `extra_args` after the usual ones. Missing Chromium is
    a failure, never a skip."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium and never "
            "download one. `make test` installs it via `.ci/system-deps test` "
            "(or: sudo apt-get install chromium).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (`chromium`).

    Module-scoped on purpose: while the sync Playwright API is open, the main thread has a
    running asyncio loop, so `asyncio.run()` in the rest of the suite would fail; it must be
    closed before the next test module starts.
    """
    with chromium() as launched:
        yield launched


class Tab:
    """A page in its own browser context that records console errors and page errors.

    A CSP violation (inline script or style) shows up as a console error, so `assert_clean`
    also proves the page runs within the Content-Security-Policy. Chromium also logs
    "Failed to load resource" for every 4xx/5xx response; each one the test provokes on
    purpose is announced first (`goto(..., status=...)` or `expect_failed_load(url)`) and
    excused once.
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self.page = context.new_page()
        self.errors: list[str] = []
        self._expected_failures: Counter[str] = Counter()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and self._expected_failures[where]:
            self._expected_failures[where] -= 1
            return
        self.errors.append(f"console.error at {where}: {message.text}")

    def expect_failed_load(self, url: str) -> None:
        self._expected_failures[url] += 1

    def goto(self, url: str, status: int = 200) -> Any:
        if status >= 400:
            self.expect_failed_load(url)
        response = self.page.goto(url, wait_until="networkidle")
        assert response is not None, url
        assert response.status == status, f"GET {url}: {response.status}, expected {status}"
        return response

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        # caret="initial": Playwright's default hides the caret with an inline style and leaves
        # style="" behind, which htmx copies on its next swap and the CSP then reports.
        self.page.screenshot(path=str(path), full_page=full_page, caret="initial")
        return path

    def assert_clean(self) -> None:
        assert not self.errors, "browser reported errors:\n" + "\n".join(self.errors)


@pytest.fixture
def open_tab(browser: Any) -> Iterator[Callable[..., Tab]]:
    """Opens a fresh browser context (own cookies) with a phone or desktop profile; given a
    url, the tab has loaded it (Tab.goto: a 200, the network idle)."""
    tabs: list[Tab] = []

    def open_(profile: str = "phone", url: str | None = None) -> Tab:
        options = PHONE if profile == "phone" else DESKTOP
        tab = Tab(browser.new_context(**options))
        tabs.append(tab)
        if url is not None:
            tab.goto(url)
        return tab

    yield open_
    for tab in tabs:
        tab.context.close()


@pytest.fixture
def tab(open_tab: Callable[..., Tab]) -> Tab:
    """A fresh phone tab (``open_tab("phone")``), for a test that starts as one visitor."""
    return open_tab("phone")
