"""A grab page when the server's live streams are full: the stream is answered "poll", the
page polls the grab's JSON instead and still follows the grab as the host changes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab, e2e_server
from tests.served import Served

pytestmark = pytest.mark.e2e

STATUS = "/api/v1/grabs/grab-demo"


@pytest.fixture(scope="module")
def streams_full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that refuses every live stream (a cap of 0 per address) and asks pages to
    poll every second."""
    env = {"LEADKIT_STREAMS_PER_IP": "0", "LEADKIT_STREAM_POLL_SECONDS": "1"}
    with e2e_server(tmp_path_factory, "streams-full", env) as app:
        yield app


def test_the_grab_page_polls_when_streams_are_full(
    streams_full: Served, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab("phone")
    page = tab.page
    with page.expect_response(lambda r: r.url.endswith(f"{STATUS}/events")) as answer:
        page.goto(f"{streams_full.url}/t/grab-demo", wait_until="load")
    assert "event: poll" in answer.value.text()
    expect(page.locator('.grab-state[data-when="scheduled"]')).to_be_visible()

    # The page polls at the server's pace (every second here, not its own default of 3 s).
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith(STATUS) else None)
    page.wait_for_timeout(8_000)
    assert len(polls) >= 4, polls

    # The host closes the grab; the phone learns it by polling alone.
    token = streams_full.token("host")
    closed = streams_full.request(
        "POST", "/api/v1/admin/grabs/grab-demo/close", headers={"Authorization": f"Bearer {token}"}
    )
    assert closed.status_code == 200, closed.text
    expect(page.locator('.grab-state[data-when="closed"]')).to_be_visible(timeout=10_000)
    expect(page.locator('.grab-state[data-when="scheduled"]')).to_be_hidden()
    tab.screenshot("grab-polling-when-streams-full-phone")
    tab.assert_clean()
