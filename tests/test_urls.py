"""Links a page renders (a calculator's call to action, a grab's image, a guide's button) are
http(s) URLs or paths on this site, checked at the schema (app/core/bounds.py) and again where
they are rendered: never ``javascript:``, ``data:``, ``vbscript:`` or a protocol-relative
``//host``, however they are disguised. Every client test runs on SQLite and PostgreSQL + Redis.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from app.calculators.schemas import CallToAction
from app.core.bounds import ImageUrl, Url, is_safe_url
from app.demo.service import seed_tools
from app.tools.models import Tool, ToolVersion
from tests.grab_support import grab_form
from tests.helpers import Browserish, soup
from tests.test_bad_input import assert_problem
from tests.test_calc_editor import EDITOR, editor_form, tool_row
from tests.test_calc_flow import authorise, form_values
from tests.test_grabs import bearer

HOSTILE = [
    "javascript:alert(1)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "\njavascript:alert(1)",
    "\x00javascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "javascript&#58;alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example",
    "//evil.example/t/renovation",
    "/\\evil.example",
    "\\\\evil.example",
    "https://bank.example@evil.example",
    "https:evil.example",
    "https:///evil.example",
    "http://evil.example/\x00",
    "https://evil.example/ x",
    "\u2028javascript:alert(1)",
    "ftp://files.example/a",
    "t/renovation",
]
SAFE = [
    "",
    "https://www.example.com/booking?from=calc#top",
    "http://example.com",
    "HTTPS://EXAMPLE.COM/",
    "https://例子.中国/预约",
    "/t/renovation",
    "/t/renovation?src=calc#result",
    "/",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_refused_by_the_shared_type(url: str) -> None:
    assert not is_safe_url(url)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(url, Url)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(url, ImageUrl)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"label": "预约", "url": url}, CallToAction)


@pytest.mark.parametrize("url", SAFE)
def test_http_urls_and_site_paths_are_accepted(url: str) -> None:
    assert is_safe_url(url)
    assert msgspec.convert({"label": "预约", "url": url}, CallToAction).url == url


def test_images_are_https_or_static_only() -> None:
    for url in ("https://cdn.example.com/a.png", "/static/img/sofa.png", ""):
        assert msgspec.convert(url, ImageUrl) == url
    for url in ("http://cdn.example.com/a.png", "/t/renovation", "//cdn.example.com/a.png"):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(url, ImageUrl)


# --- the calculator editor -------------------------------------------------------------------


@pytest.fixture
def marketer(client: Browserish) -> Browserish:
    client.run(seed_tools)
    return client.sign_in("mia", "marketer")


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,x", "//evil.example"]
)
def test_editor_form_refuses_a_hostile_call_to_action(marketer: Browserish, url: str) -> None:
    before = tool_row(marketer).draft
    form = {**editor_form(marketer), "cta.url": url}
    preview = marketer.submit(f"{EDITOR}/preview", form, page=EDITOR)
    assert preview.status_code == 200
    problems = {
        str(li["data-error-for"]): li.get_text() for li in soup(preview).select("[data-error-for]")
    }
    assert "cta.url" in problems, problems
    assert "http" in problems["cta.url"]
    saved = marketer.submit(f"{EDITOR}/draft", form, page=EDITOR)
    assert saved.status_code in (400, 422)
    assert tool_row(marketer).draft == before


def test_editor_toml_refuses_a_hostile_call_to_action(marketer: Browserish) -> None:
    page = soup(marketer.get(EDITOR))
    textarea = page.select_one('textarea[name="toml"]')
    base = page.select_one('form[action$="/toml"] input[name="base"]')
    assert textarea is not None and base is not None
    changed = textarea.text.replace("[cta]\n", '[cta]\nurl = "javascript:alert(1)"\n', 1)
    assert changed != textarea.text
    before = tool_row(marketer).draft
    refused = marketer.submit(
        f"{EDITOR}/toml", {"toml": changed, "base": str(base["value"])}, page=EDITOR
    )
    assert refused.status_code in (400, 422)
    assert "cta.url" in refused.text
    assert tool_row(marketer).draft == before


def test_a_safe_call_to_action_is_saved_and_shown(marketer: Browserish) -> None:
    form = {**editor_form(marketer), "cta.url": "https://www.example.com/book"}
    saved = marketer.submit(f"{EDITOR}/draft", form, page=EDITOR, follow_redirects=False)
    assert saved.status_code in (200, 303), saved.text[:500]
    assert tool_row(marketer).draft["cta"]["url"] == "https://www.example.com/book"


def test_a_stored_hostile_call_to_action_is_never_rendered(client: Browserish) -> None:
    """Published before links were checked: the page still answers, without the link."""
    client.run(seed_tools)

    async def poison(db: Any) -> None:
        for slug, cta in (
            ("renovation", {"label": "预约", "url": "javascript:alert(1)"}),
            ("guide-demo", {"label": "预约", "href": " javascript:alert(1)"}),
        ):
            tool = (await db.execute(select(Tool).where(Tool.slug == slug))).scalar_one()
            version = (
                await db.execute(select(ToolVersion).where(ToolVersion.tool_id == tool.id))
            ).scalar_one()
            version.definition = {**version.definition, "cta": cta}

    client.run(poison)
    page = client.get("/t/renovation")
    assert page.status_code == 200
    answered = client.post("/t/renovation/evaluate", data=form_values(client, "/t/renovation"))
    assert answered.status_code == 200
    authorise(client)
    for path in ("/t/renovation", "/t/guide-demo"):
        shown = client.get(path)
        assert shown.status_code == 200
        assert "javascript:" not in shown.text.lower()


# --- grab images -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "data:image/svg+xml,<svg onload=alert(1)>", "//evil.example/a.png"],
)
def test_grab_image_urls_are_checked_on_the_api_and_the_form(client: Browserish, url: str) -> None:
    body = {"slug": "flash", "title": "t", "stock": 5, "image_url": url}
    answer = client.post("/api/v1/admin/grabs", json=body, headers=bearer(client, "marketer"))
    assert_problem(answer, 400, "image_url")
    client.sign_in("mk", "marketer")
    form = grab_form(slug="sofa", stock="5", per_phone_limit="1", image_url=url)
    refused = client.submit("/staff/grabs/new", form, page="/staff/grabs/new")
    assert refused.status_code == 400 and "image_url" in refused.text
    assert client.get("/api/v1/grabs/sofa").status_code == 404
