"""A size budget: a visitor page and everything it loads stays small on a phone network.

The home page plus the stylesheets and scripts it references must fit in 30 KB gzipped
(each body compressed with gzip level 6, as a typical server would send it).
"""

from __future__ import annotations

import gzip
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest

pytestmark = pytest.mark.e2e

BUDGET_BYTES = 30 * 1024


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and "stylesheet" in (found.get("rel") or "").split() and found.get("href"):
            self.urls.append(str(found["href"]))
        elif tag == "script" and found.get("src"):
            self.urls.append(str(found["src"]))


def _get(url: str) -> bytes:
    # Ask for identity so the measure is ours, not whatever the server may compress.
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200, f"GET {url}: {response.status}"
        return bytes(response.read())


def test_home_page_with_its_css_and_js_fits_30kb_gzipped(live_server: str) -> None:
    html = _get(f"{live_server}/")
    parser = _Assets()
    parser.feed(html.decode("utf-8"))
    assert any(".css" in u for u in parser.urls), parser.urls
    assert any(".js" in u for u in parser.urls), parser.urls

    sizes = {"/": len(gzip.compress(html, compresslevel=6))}
    for url in parser.urls:
        absolute = urljoin(f"{live_server}/", url)
        assert absolute.startswith(live_server), f"third-party asset on a visitor page: {url}"
        sizes[url] = len(gzip.compress(_get(absolute), compresslevel=6))

    total = sum(sizes.values())
    report = ", ".join(f"{url} {size} B" for url, size in sizes.items())
    assert total <= BUDGET_BYTES, f"{total} B gzipped > {BUDGET_BYTES} B budget: {report}"
