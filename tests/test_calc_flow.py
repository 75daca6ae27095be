"""Calculators for visitors: answers → teaser → gate → full result → PDF; the JSON API."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.state import part
from app.demo.service import seed_tools
from app.reports.service import ReportRenderer
from tests import helpers
from tests.helpers import Browserish, soup

PHONE = "13612345678"


@pytest.fixture
def visitor(client: Browserish) -> Browserish:
    client.run(seed_tools)
    page = client.get("/t/renovation")
    assert page.status_code == 200
    return client


def form_values(client: Browserish, path: str) -> dict[str, str]:
    form = soup(client.get(path)).select_one("form.calc-form")
    assert form is not None
    return helpers.form_values(form)


def authorise(client: Browserish) -> None:
    client.authorise(PHONE, tool="renovation")


def test_teaser_then_gate_then_full_result_and_pdf(visitor: Browserish) -> None:
    values = form_values(visitor, "/t/renovation")
    assert values, "the calculator form has fields"
    result = visitor.post("/t/renovation/evaluate", data=values, headers={"HX-Request": "true"})
    assert result.status_code == 200, result.text[:500]
    page = soup(result)
    assert page.select_one("#result .headline") is not None
    assert page.select_one("#gate") is not None
    assert page.select_one("table.breakdown") is None
    assert visitor.get("/t/renovation/report.pdf").status_code == 401

    authorise(visitor)
    unlocked = soup(visitor.get("/t/renovation"))
    assert unlocked.select_one("table.breakdown") is not None
    assert unlocked.select_one("#gate") is None
    pdf = visitor.get("/t/renovation/report.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    again = visitor.get("/t/renovation/report.pdf")
    assert again.content == pdf.content
    assert part(visitor.app, ReportRenderer).renders == 1  # the second download came from the cache

    async def needs(db: Any) -> dict:
        from sqlalchemy import select

        from app.leads.models import Lead

        return (await db.execute(select(Lead))).scalar_one().needs

    lead_needs = visitor.run(needs)
    assert any("装修" in title for title in lead_needs), lead_needs


def test_bad_answers_get_field_errors_and_store_nothing(visitor: Browserish) -> None:
    values = form_values(visitor, "/t/renovation")
    bad = {**values, "area": "-999999999"}
    response = visitor.post("/t/renovation/evaluate", data=bad, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert soup(response).select_one(".field-error") is not None
    assert visitor.count("submission") == 0


def test_json_api(visitor: Browserish) -> None:
    values = form_values(visitor, "/t/insurance")
    teaser = visitor.post("/api/v1/calculators/insurance/evaluate", json={"inputs": values})
    assert teaser.status_code == 200, teaser.text
    body = teaser.json()
    assert body["teaser"] and "full" not in body and body["authorised"] is False
    wrong = visitor.post(
        "/api/v1/calculators/insurance/evaluate", json={"inputs": {**values, "age": "abc"}}
    )
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "invalid_inputs"
    assert "age" in wrong.json()["errors"]
    assert visitor.post("/api/v1/calculators/nope/evaluate", json={"inputs": {}}).status_code == 404
    assert (
        visitor.post("/api/v1/calculators/guide-demo/evaluate", json={"inputs": {}}).status_code
        == 404
    )
    authorise(visitor)
    full = visitor.post("/api/v1/calculators/insurance/evaluate", json={"inputs": values})
    assert full.json()["full"]


def test_answer_problems_speak_the_visitors_language(visitor: Browserish) -> None:
    """A refused answer is worded in the page's language: Chinese by default, English with
    ?lang=en (the field's label is the marketer's own text, in either)."""
    values = form_values(visitor, "/t/renovation")
    bad = {**values, "area": "abc"}
    chinese = visitor.post("/api/v1/calculators/renovation/evaluate", json={"inputs": bad})
    english = visitor.post("/api/v1/calculators/renovation/evaluate?lang=en", json={"inputs": bad})
    assert chinese.status_code == english.status_code == 422
    assert chinese.json()["errors"] == {"area": "建筑面积需要填写数字"}
    assert english.json()["errors"] == {"area": "建筑面积 must be a number"}
    page = visitor.post("/t/renovation/evaluate?lang=en", data=bad, headers={"HX-Request": "true"})
    assert page.status_code == 422
    assert "建筑面积 must be a number" in soup(page).select_one(".field-error").get_text()


def test_the_json_api_refreshes_the_leads_needs_too(visitor: Browserish) -> None:
    """An authorised visitor's answers become the lead's needs whichever door they came
    through: the page's form or the JSON API (which used to leave them empty)."""
    from sqlalchemy import select

    from app.leads.models import Lead

    async def needs(db: Any) -> dict:
        return (await db.execute(select(Lead))).scalar_one().needs

    values = form_values(visitor, "/t/insurance")
    authorise(visitor)
    assert visitor.run(needs) == {}
    answered = visitor.post("/api/v1/calculators/insurance/evaluate", json={"inputs": values})
    assert answered.status_code == 200 and answered.json()["full"]
    lead_needs = visitor.run(needs)
    assert lead_needs, "the API's answers are the lead's needs"
    assert any("保" in title for title in lead_needs), lead_needs


def test_answers_are_looked_up_only_for_browsers_that_answered(visitor: Browserish) -> None:
    assert "lk_ans" not in visitor.cookies
    values = form_values(visitor, "/t/renovation")
    assert visitor.post("/t/renovation/evaluate", data=values).status_code == 200
    assert visitor.cookies.get("lk_ans") == "1"
    assert soup(visitor.get("/t/renovation")).select_one("#result .headline") is not None
    # Without the hint the page skips the look-up and shows the empty form; nothing is lost.
    visitor.cookies.delete("lk_ans")
    page = soup(visitor.get("/t/renovation"))
    assert page.select_one("#result") is None and page.select_one("form.calc-form") is not None
    assert visitor.count("submission") == 1
