"""The links table says what each link brought: the tool it opens by its title, its clicks
(link_opened events) and its leads (leads whose first or last link it is), all links of a page
counted together — the number of queries does not grow with the number of links."""

from __future__ import annotations

from app.demo.service import seed_tools
from app.guides.kind import DEMO_GUIDE
from tests.helpers import Browserish, soup, statements
from tests.test_leads_staff import become_lead, flush, login

PAGE = "/staff/links"


def _rows(client: Browserish) -> dict[str, dict[str, str]]:
    """{code: {column: text}} of the links table."""
    page = client.get(PAGE)
    assert page.status_code == 200
    found = {}
    for row in soup(page).select("#link-list tbody tr"):
        code = row.select_one("td.code code").get_text(strip=True)
        found[code] = {
            "tool": row.select_one("td.tool").get_text(" ", strip=True),
            "clicks": row.select_one("td.clicks").get_text(strip=True),
            "leads": row.select_one("td.leads").get_text(strip=True),
        }
    return found


def test_each_link_shows_its_tool_title_clicks_and_leads(client: Browserish) -> None:
    client.run(seed_tools)
    become_lead(client, "live01", "13812345678")  # a click and a lead (first = last = live01)
    become_lead(client, "live01", None)  # a click, no lead
    # One visitor opens video01 first, then live01, then leaves a number: one lead whose
    # first link is video01 and last link live01.
    client.raw.cookies.clear()
    assert client.get("/s/video01", follow_redirects=False).status_code == 302
    assert client.get("/s/live01", follow_redirects=False).status_code == 302
    client.authorise("13987654321")
    flush(client)
    client.make_staff("mara", "marketer")
    login(client, "mara")

    rows = _rows(client)
    assert rows["live01"] == {"tool": DEMO_GUIDE["title"], "clicks": "3", "leads": "2"}
    assert rows["video01"] == {"tool": DEMO_GUIDE["title"], "clicks": "1", "leads": "1"}
    assert rows["share01"] == {"tool": DEMO_GUIDE["title"], "clicks": "0", "leads": "0"}
    page = soup(client.get(PAGE))
    headings = [th.get_text(strip=True) for th in page.select("#link-list thead th")]
    assert "点击" in headings and "线索" in headings
    # The slug is not what the marketer reads, neither in the table nor in the form.
    form = page.select_one("#link-form select[name=target_slug]")
    assert form is not None
    options = {o["value"]: o.get_text(strip=True) for o in form.select("option")}
    assert options["guide-demo"] == DEMO_GUIDE["title"]


def test_the_figures_cost_the_same_queries_for_many_links(client: Browserish) -> None:
    client.run(seed_tools)
    become_lead(client, "live01", "13812345678")
    flush(client)
    client.make_staff("mara", "marketer")
    login(client, "mara")
    client.get(PAGE)  # warm caches
    with statements(client) as few:
        assert len(_rows(client)) == 3
    token = client.csrf(PAGE)
    account = soup(client.get(PAGE)).select_one("#link-form select[name=account_id] option")
    assert account is not None
    for n in range(12):
        made = client.post(
            PAGE,
            data={
                "_csrf_token": token,
                "account_id": account["value"],
                "channel": "video",
                "target_slug": "renovation",
                "code": f"many{n:02d}",
            },
        )
        assert made.status_code == 200, made.text
    with statements(client) as many:
        rows = _rows(client)
    assert len(rows) == 15
    assert rows["many00"]["clicks"] == "0"
    assert len(many) == len(few), "a query per link"
