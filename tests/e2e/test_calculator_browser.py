"""A calculator at phone size: answers, the teaser, the gate, then the full result."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Tab
from tests.e2e.steps import pass_gate
from tests.e2e.test_staff_browser import no_horizontal_scroll

pytestmark = pytest.mark.e2e

PHONES = {"renovation": "13500002222", "insurance": "13500002223"}


def pdf_text(data: bytes) -> str:
    """The text of a PDF, as poppler's pdftotext extracts it (installed by `make test`)."""
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    )
    return result.stdout.decode("utf-8")


@pytest.mark.parametrize("slug", ["renovation", "insurance"])
def test_calculator_to_pdf(live_server: str, open_tab: Callable[..., Tab], slug: str) -> None:
    tab = open_tab("phone")
    page = tab.page
    phone = PHONES[slug]
    tab.goto(f"{live_server}/t/{slug}")
    no_horizontal_scroll(tab)
    tab.screenshot(f"calculator-{slug}-phone")
    page.get_by_role("button", name="开始测算").click()
    page.locator("#result .headline").wait_for()
    teaser = page.locator("#result .headline").first.inner_text()
    assert "万" in teaser, teaser
    assert page.locator("table.breakdown").count() == 0
    tab.screenshot(f"calculator-{slug}-teaser-phone")
    pass_gate(tab, live_server, phone)
    page.locator("table.breakdown").wait_for()
    no_horizontal_scroll(tab)
    tab.screenshot(f"calculator-{slug}-full-phone", full_page=True)
    figures = [cell.inner_text() for cell in page.locator("table.breakdown td").all()]
    assert any("¥" in f for f in figures), figures

    # The PDF link, fetched with the visitor's own cookies (as the web-view's download would).
    link = page.locator('a[href$="/report.pdf"]')
    assert link.count() == 1
    response = tab.context.request.get(f"{live_server}{link.get_attribute('href')}")
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.body())
    assert teaser.replace(" ", "") in text.replace(" ", ""), (teaser, text[:500])
    assert phone[:3] + "****" + phone[-4:] in text  # the watermark: the masked phone
    money = [f for f in figures if "¥" in f]
    assert sum(f.replace(" ", "") in text.replace(" ", "") for f in money) >= len(money) // 2
    tab.assert_clean()
