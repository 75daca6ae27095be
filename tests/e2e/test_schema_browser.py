"""/schema in Chromium: Swagger UI from the vendored files renders every API operation with no
console error (no CSP violation, no CDN request), and offers the bearer-token Authorize dialog."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Tab

pytestmark = pytest.mark.e2e


def test_api_schema_viewer(live_server: str, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab("desktop")
    requested: list[str] = []
    tab.page.on("request", lambda request: requested.append(request.url))
    tab.goto(f"{live_server}/schema")
    page = tab.page
    page.wait_for_selector(".opblock", timeout=15_000)
    assert page.locator(".info .title").inner_text().startswith("leadkit API")
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    paths = {p.replace("\u200b", "").strip() for p in paths}
    assert {"/api/v1/gate/code", "/api/v1/grabs/{slug}/claim", "/api/v1/me"} <= paths, paths
    assert not any(p.startswith(("/staff", "/t/", "/dev/")) for p in paths), paths
    # Open one operation: its problem answers are documented as application/problem+json.
    page.locator(".opblock-summary-path", has_text="/api/v1/vouchers/redeem").first.click()
    page.wait_for_selector(".opblock.is-open .responses-table")
    assert "application/problem+json" in page.locator(".opblock.is-open").inner_text()
    # The bearer-token scheme is offered.
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.wait_for()
    assert "bearerToken" in dialog.inner_text()
    tab.screenshot("schema-viewer", full_page=False)
    page.keyboard.press("Escape")
    # Everything came from this server: no CDN, no validator badge.
    assert requested and all(url.startswith((live_server, "data:")) for url in requested), [
        url for url in requested if not url.startswith((live_server, "data:"))
    ]
    tab.assert_clean()
