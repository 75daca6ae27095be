"""A tool's funnel: distinct visitors per step, conversion, breakdown, date range."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.analytics.funnel import funnel, percent
from app.demo.service import seed_tools
from app.guides.kind import KIND as GUIDE
from tests.helpers import Browserish, soup
from tests.test_leads_staff import become_lead, flush, login


@pytest.fixture
def three_visitors(client: Browserish) -> None:
    """Three visitors view guide-demo (live01, video01, direct); the first two verify."""
    client.run(seed_tools)
    become_lead(client, "live01", "13812345678")
    become_lead(client, "video01", "13987654321")
    become_lead(client, None, None)
    flush(client)
    client.raw.cookies.clear()
    client.make_staff("mara", "marketer")
    client.make_staff("sam", "sales")
    login(client, "mara")


def total_counts(page: Any) -> dict[str, int]:
    return {
        li["data-step"]: int(li.select_one(".count").text)
        for li in soup(page).select("#funnel-total li")
    }


def table(page: Any) -> dict[str, dict[str, str]]:
    """{group key: {step: cell text}} from the breakdown table."""
    return {
        tr["data-group"]: {
            td["data-step"]: td.get_text(" ", strip=True) for td in tr.select("td[data-step]")
        }
        for tr in soup(page).select("#funnel-table tbody tr")
    }


def test_counts_and_conversion(client: Browserish, three_visitors: None) -> None:
    page = client.get("/staff/funnels", params={"tool": "guide-demo"})
    assert page.status_code == 200
    counts = total_counts(page)
    assert list(counts) == list(GUIDE.funnel)  # the guide's own steps
    assert counts == {
        "tool_viewed": 3,
        "gate_shown": 3,
        "code_sent": 2,
        "phone_verified": 2,
        "result_shown": 0,
        "download": 0,
        "cta_clicked": 0,
    }
    verified = soup(page).select_one('#funnel-total li[data-step="phone_verified"] .conv').text
    assert "较上一步 100.0%" in verified and "较第一步 66.7%" in verified
    gate = soup(page).select_one('#funnel-total li[data-step="gate_shown"] .conv').text
    assert "较上一步 100.0%" in gate
    # A step nobody reached in the range gets no conversion.
    shown = soup(page).select_one('#funnel-total li[data-step="result_shown"] .conv').text
    assert "较上一步 —" in shown and "较第一步 —" in shown
    # The default tool is the first one, and the default range the last 30 days.
    assert total_counts(client.get("/staff/funnels")) == counts


def test_breakdown_by_channel_and_account(client: Browserish, three_visitors: None) -> None:
    by_channel = table(client.get("/staff/funnels", params={"tool": "guide-demo", "by": "channel"}))
    assert set(by_channel) == {"live", "video", "", "total"}
    assert by_channel["live"]["tool_viewed"] == "1"
    assert by_channel["live"]["phone_verified"].startswith("1 ")
    assert by_channel["video"]["phone_verified"].startswith("1 ")
    assert by_channel[""]["tool_viewed"] == "1"
    assert by_channel[""]["phone_verified"].startswith("0 ")
    assert by_channel["total"]["tool_viewed"] == "3"
    assert by_channel["total"]["phone_verified"] == "2 100.0% / 66.7%"

    page = client.get("/staff/funnels", params={"tool": "guide-demo", "by": "account"})
    labels = {
        tr["data-group"]: tr.select_one("th").get_text(" ", strip=True)
        for tr in soup(page).select("#funnel-table tbody tr")
    }
    assert sorted(labels.values()) == sorted(
        ["装修家·官方号 品牌号", "设计师小林 员工号", "未归因", "总计"]
    )
    rows = list(labels.values())
    assert rows[-2:] == ["未归因", "总计"]  # unattributed, then the total, last


def test_date_range(client: Browserish, three_visitors: None) -> None:
    past = client.get(
        "/staff/funnels", params={"tool": "guide-demo", "from": "2020-01-01", "to": "2020-01-31"}
    )
    assert past.status_code == 200
    assert set(total_counts(past).values()) == {0}
    assert "—" in soup(past).select_one('#funnel-total li[data-step="gate_shown"] .conv').text

    for params in ({"from": "2026-02-30"}, {"to": "yesterday"}, {"from": "2026-3-1"}):
        bad = client.get("/staff/funnels", params={"tool": "guide-demo", **params})
        assert bad.status_code == 400
        assert "YYYY-MM-DD" in soup(bad).select_one(".alert").text
        assert soup(bad).select_one("#funnel-total") is None
    reversed_range = client.get("/staff/funnels", params={"from": "2026-03-02", "to": "2026-03-01"})
    assert reversed_range.status_code == 400
    assert "开始日期晚于结束日期" in reversed_range.text
    assert client.get("/staff/funnels", params={"tool": "nope"}).status_code == 404


def test_who_sees_funnels(client: Browserish, three_visitors: None) -> None:
    client.make_staff("hana", "host")
    assert client.get("/staff/funnels").status_code == 200  # marketer
    login(client, "sam")
    assert client.get("/staff/funnels").status_code == 403
    login(client, "hana")
    assert client.get("/staff/funnels").status_code == 403


def test_funnel_query_on_its_own(client: Browserish, three_visitors: None) -> None:
    async def run(db: Any) -> Any:
        from sqlalchemy import select

        from app.tools.models import Tool

        tool_id = (await db.execute(select(Tool.id).where(Tool.slug == "guide-demo"))).scalar_one()
        now = dt.datetime.now(dt.UTC)
        day = dt.timedelta(days=1)
        return await funnel(db, tool_id, GUIDE.funnel, now - day, now + day)

    result = client.run(run)
    assert result.steps == GUIDE.funnel
    assert result.total.counts == [3, 3, 2, 2, 0, 0, 0]
    assert result.groups == []
    assert percent(2, 3) == 66.7 and percent(1, 0) is None
