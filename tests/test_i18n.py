"""Translations: the zh_CN catalog is complete and current, and pages speak the chosen language."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from app.core.web import LOCALE_COOKIE
from tests.helpers import Browserish, soup

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "app" / "locales"


def _catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _messages(catalog: Catalog) -> dict[str, object]:
    return {
        (message.id if isinstance(message.id, str) else message.id[0]): message
        for message in catalog
        if message.id
    }


def _lang(page: httpx.Response) -> str:
    html = soup(page).html
    assert html is not None
    return str(html["lang"])


def _extract_command(output: Path) -> list[str]:
    """The Makefile's `pybabel extract` line, writing to ``output`` instead of the real .pot,
    so this test checks exactly what `make i18n` would extract."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(line for line in makefile.splitlines() if "pybabel extract" in line)
    args = shlex.split(line.strip())
    args[0] = str(Path(sys.executable).parent / "pybabel")
    args[args.index("-o") + 1] = str(output)
    return args


def test_every_message_has_a_chinese_translation() -> None:
    catalog = _catalog(LOCALES / "zh_CN" / "LC_MESSAGES" / "messages.po", "zh_CN")
    messages = [message for message in catalog if message.id]
    assert messages
    for message in messages:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(isinstance(s, str) and s.strip() for s in strings), (
            f"no translation for {message.id!r}"
        )
        assert not message.fuzzy, f"fuzzy translation for {message.id!r}"
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalog.check()]
    assert not problems, f"placeholders differ between msgid and translation: {problems}"


def test_catalogs_are_up_to_date_with_the_sources(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(_extract_command(pot), cwd=ROOT, check=True, capture_output=True)
    extracted = set(_messages(_catalog(pot)))
    assert "Staff sign-in" in extracted
    for locale in ("zh_CN", "en"):
        have = set(_messages(_catalog(LOCALES / locale / "LC_MESSAGES" / "messages.po", locale)))
        missing = sorted(extracted - have)
        assert not missing, f"{locale} catalog lacks {missing}: run `make i18n` and translate"


def test_default_language_is_chinese(client: Browserish) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert _lang(page) == "zh-CN"
    assert "实用小工具" in page.text
    assert LOCALE_COOKIE not in page.cookies


@pytest.mark.parametrize("path", ["/", "/staff/login"])
def test_lang_query_switches_to_english_and_is_remembered(client: Browserish, path: str) -> None:
    page = client.get(f"{path}?lang=en")
    assert page.status_code == 200
    assert _lang(page) == "en"
    assert page.cookies.get(LOCALE_COOKIE) == "en"
    body = soup(page).body
    assert body is not None
    assert not re.search(r"[\u4e00-\u9fff]", body.get_text(" ").replace("中文", ""))
    # The cookie keeps English on the next page without the query.
    home = client.get("/")
    assert "Useful tools, answers in a minute" in home.text
    back = client.get("/?lang=zh_CN")
    assert "实用小工具" in back.text
    assert back.cookies.get(LOCALE_COOKIE) == "zh_CN"


def test_unknown_language_falls_back_to_the_default(client: Browserish) -> None:
    page = client.get("/?lang=xx")
    assert page.status_code == 200
    assert _lang(page) == "zh-CN"
    assert LOCALE_COOKIE not in page.cookies
