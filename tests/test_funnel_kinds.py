"""Each kind's funnel is its own (``Kind.funnel``), and one visitor who walks a kind's visitor
path is counted at every step the server records; the steps only the browser reports are
driven in Chromium (tests/e2e/test_funnel_browser.py).

The path is walked as a visitor's browser would, through the pages and the gate's API, then the
funnel page is read as a marketer sees it.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.core.state import part
from app.demo.service import seed_tools
from app.events.labels import EVENT_LABELS
from app.events.schemas import EVENT_NAMES
from app.kinds import KINDS
from app.tools.kinds import Kind, Kinds
from tests.grab_support import add_grab, open_grab
from tests.helpers import Browserish, soup
from tests.test_calc_flow import form_values
from tests.test_funnel import total_counts
from tests.test_leads_staff import flush, login

# What only the page's script reports (static/js/leadkit.js), per kind: driven in Chromium.
BROWSER_STEPS = {
    "calculator": {"step_started", "download"},
    "grab": set(),
    "guide": {"cta_clicked"},
    "draw": set(),
}


def walk_calculator(client: Browserish) -> str:
    assert client.get("/t/renovation").status_code == 200
    values = form_values(client, "/t/renovation")
    teaser = client.post("/t/renovation/evaluate", data=values, headers={"HX-Request": "true"})
    assert teaser.status_code == 200 and soup(teaser).find(id="gate") is not None
    client.authorise("13600001111", tool="renovation")
    assert soup(client.get("/t/renovation")).select_one("table.breakdown") is not None
    return "renovation"


def walk_draw(client: Browserish) -> str:
    from app.draws.schemas import DrawCreate, TierCreate
    from app.draws.service import Draws

    draws = part(client.app, Draws)

    async def make(db: Any) -> None:
        body = DrawCreate(slug="lucky", title="抽奖", tiers=[TierCreate(name="一等奖", quantity=1)])
        await draws.create(db, body)
        await draws.open(db, "lucky")

    client.run(make)
    assert soup(client.get("/t/lucky")).find(id="gate") is not None
    client.authorise("13600004444", tool="lucky")
    page = client.get("/t/lucky")
    entered = client.post(
        "/t/lucky/enter",
        data={"_csrf_token": str(soup(page).find("meta", attrs={"name": "csrf-token"})["content"])},
    )
    assert 'data-result="entered"' in entered.text

    async def host(db: Any) -> None:
        await draws.close(db, "lucky")
        await draws.draw_tier(db, "lucky", 1)

    client.run(host)
    page = client.get("/t/lucky")
    claimed = client.post(
        "/t/lucky/claim",
        data={"_csrf_token": str(soup(page).find("meta", attrs={"name": "csrf-token"})["content"])},
    )
    assert 'data-prize="claimed"' in claimed.text
    return "lucky"


def walk_grab(client: Browserish) -> str:
    client.run(add_grab, open_grab("flash", stock=5))
    page = client.get("/t/flash")
    assert soup(page).find(id="gate") is not None  # what the visitor sees: the gate
    client.authorise("13600002222", tool="flash")
    html = soup(client.get("/t/flash"))
    form = html.select_one("form[action='/t/flash/grab']")
    assert form is not None
    data = {
        "_csrf_token": str(html.find("meta", attrs={"name": "csrf-token"})["content"]),
        "idempotency_key": str(form.select_one("input[name=idempotency_key]")["value"]),
    }
    won = client.post("/t/flash/grab", data=data, headers={"HX-Request": "true"})
    assert soup(won).select_one(".grab-outcome-won") is not None
    return "flash"


def walk_guide(client: Browserish) -> str:
    page = client.get("/t/guide-demo")
    assert soup(page).find(id="gate") is not None
    client.authorise("13600003333", tool="guide-demo")
    html = soup(client.get("/t/guide-demo"))
    assert html.select_one("#result") is not None
    link = html.select_one('a[href="/t/guide-demo/guide.pdf"]')
    assert link is not None, "the guide offers its PDF"
    pdf = client.get(str(link["href"]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    return "guide-demo"


WALKS = {
    "calculator": walk_calculator,
    "grab": walk_grab,
    "guide": walk_guide,
    "draw": walk_draw,
}


def test_every_kind_declares_a_funnel_of_known_labelled_events() -> None:
    assert {kind.name for kind in KINDS} == set(WALKS)
    for kind in KINDS:
        assert kind.funnel[0] == "tool_viewed", kind.name
        assert set(kind.funnel) <= set(EVENT_NAMES), kind.name
        assert set(kind.funnel) <= set(EVENT_LABELS), f"{kind.name}: a step without a label"
        assert BROWSER_STEPS[kind.name] < set(kind.funnel)
    # The kinds' own steps: a grab is won, a guide downloaded; neither has a calculator's.
    assert {"grab_clicked", "grab_won"} <= set(KINDS["grab"].funnel)
    assert "step_started" not in KINDS["grab"].funnel
    assert {"download", "cta_clicked"} <= set(KINDS["guide"].funnel)


def test_a_misspelt_step_is_refused_at_start_up() -> None:
    guide = KINDS["guide"]
    with pytest.raises(ValueError, match="funnel"):
        Kind(name="x", label="X", render=guide.render, funnel=("tool_viewed", "gate_shwon"))
    with pytest.raises(ValueError, match="funnel"):
        Kind(name="x", label="X", render=guide.render, funnel=("tool_viewed", "tool_viewed"))


@pytest.mark.parametrize("kind", sorted(WALKS))
def test_the_visitor_path_counts_at_every_server_step(client: Browserish, kind: str) -> None:
    client.run(seed_tools)
    slug = WALKS[kind](client)
    flush(client)
    client.make_staff("mara", "marketer")
    login(client, "mara")
    page = client.get("/staff/funnels", params={"tool": slug})
    assert page.status_code == 200
    counts = total_counts(page)
    steps = part(client.app, Kinds)[kind].funnel
    assert list(counts) == list(steps), "the page shows the kind's own steps, in order"
    expected = {step: 0 if step in BROWSER_STEPS[kind] else 1 for step in steps}
    assert counts == expected
    # Each step has its label on the page, never its event name.
    names = [li.select_one(".step-name").get_text(strip=True) for li in _steps(page)]
    assert not any(name in EVENT_NAMES for name in names), names


def _steps(page: Any) -> list[Any]:
    return list(soup(page).select("#funnel-total li"))


def test_a_tool_of_a_kind_no_longer_served_shows_its_views(client: Browserish) -> None:
    client.run(seed_tools)
    assert client.get("/t/guide-demo").status_code == 200
    flush(client)

    async def retire(db: Any) -> None:
        from sqlalchemy import update

        from app.tools.models import Tool

        await db.execute(update(Tool).where(Tool.slug == "guide-demo").values(kind="quiz"))

    client.run(retire)
    client.make_staff("mara", "marketer")
    login(client, "mara")
    page = client.get("/staff/funnels", params={"tool": "guide-demo"})
    assert page.status_code == 200
    assert total_counts(page) == {"tool_viewed": 1}
