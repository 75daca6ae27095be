"""Per-process caches hold plain frozen values, never session-bound ORM rows.

A refused request rolls its session back, which expires every row that session loaded. When a
cache kept such a row, every later request in the same process that took it from the cache
failed with ``DetachedInstanceError`` (500) until the entry lapsed. These tests make a refused
request be the one that fills the cache, then open the page again in the same process.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec
import pytest

from app.demo.service import seed_tools
from app.tools import service as tools
from app.tools.schemas import PublishedTool, PublishedVersion
from tests.helpers import Browserish
from tests.served import Served

SLUGS = ("renovation", "insurance", "guide-demo", "grab-demo")


@pytest.fixture
def seeded(client: Browserish) -> Browserish:
    client.run(seed_tools)
    return client


def refused(client: Browserish, slug: str) -> None:
    """A request that looks the published tool up, then is refused (its session rolls back)."""
    if slug in ("renovation", "insurance"):
        answer = client.post(
            f"/api/v1/calculators/{slug}/evaluate", json={"inputs": {"area": "x", "age": "x"}}
        )
        assert answer.status_code == 422, answer.text
    else:
        # The calculator endpoint loads any published tool, then refuses other kinds.
        answer = client.post(f"/api/v1/calculators/{slug}/evaluate", json={"inputs": {}})
        assert answer.status_code == 404, answer.text


@pytest.mark.parametrize("slug", SLUGS)
def test_a_refused_request_that_filled_the_cache_leaves_the_page_working(
    seeded: Browserish, slug: str
) -> None:
    refused(seeded, slug)
    for _ in range(3):
        page = seeded.get(f"/t/{slug}")
        assert page.status_code == 200, page.text[:300]


def test_page_refused_answer_page_in_one_process(seeded: Browserish) -> None:
    """The reported sequence: open the calculator, send a bad answer, open it again. The bad
    answer reloads the tool once the first look-up has lapsed."""
    assert seeded.get("/t/renovation").status_code == 200
    time.sleep(tools.PUBLISHED_TTL + 0.05)
    refused(seeded, "renovation")
    for path in ("/t/renovation", "/t/renovation", "/t/insurance"):
        page = seeded.get(path)
        assert page.status_code == 200, page.text[:300]
    good = seeded.post("/api/v1/calculators/renovation/evaluate", json={"inputs": {}})
    assert good.status_code in (200, 422), good.text  # answered, never a 500


def test_served_worker_answers_after_a_refused_answer(served: Served) -> None:
    """The reported sequence on `leadkit serve`, as curl ran it: one visitor on one kept-alive
    connection (so one worker process), a bad answer once the tool's cache entry has lapsed,
    then the page again."""
    with httpx.Client(base_url=served.url, timeout=10) as browser:
        for _ in range(3):
            assert browser.get("/t/renovation").status_code == 200
            time.sleep(tools.PUBLISHED_TTL + 0.1)
            bad = browser.post(
                "/api/v1/calculators/renovation/evaluate", json={"inputs": {"area": "x"}}
            )
            assert bad.status_code == 422, bad.text
            for path in ("/t/renovation", "/t/renovation", "/t/guide-demo"):
                page = browser.get(path)
                assert page.status_code == 200, (path, page.text[:300], served.log_tail())


def test_published_hands_out_frozen_values_and_private_definitions(seeded: Browserish) -> None:
    async def look(db: Any) -> tuple[Any, Any, dict, dict]:
        tool, version = await tools.published(db, "renovation")
        first = await tools.definition(db, version)
        first["title"] = "changed"
        first["steps"][0]["title"] = "changed too"
        second = await tools.definition(db, version)
        return tool, version, first, second

    tool, version, first, second = seeded.run(look)
    assert first["title"] == "changed"
    assert isinstance(tool, PublishedTool) and isinstance(version, PublishedVersion)
    assert not hasattr(tool, "_sa_instance_state") and not hasattr(version, "_sa_instance_state")
    with pytest.raises(AttributeError):
        tool.title = "x"  # type: ignore[misc]
    assert (tool.slug, tool.kind, tool.status) == ("renovation", "calculator", "published")
    assert version.tool_id == tool.id and version.number == tool.current_version
    # A caller changing its copy, even deep inside, changes nothing for the next caller.
    assert second["title"] != "changed"
    assert second["steps"][0]["title"] != "changed too"
    assert msgspec.json.encode(second)  # plain data


def test_find_published_is_a_value_or_none(seeded: Browserish) -> None:
    async def look(db: Any) -> tuple[Any, Any]:
        return await tools.find_published(db, "guide-demo"), await tools.find_published(db, "no")

    found, missing = seeded.run(look)
    assert isinstance(found, PublishedTool) and found.slug == "guide-demo"
    assert missing is None
