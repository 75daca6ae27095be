"""One style for success, one for errors, used consistently in every template.

A success message once carried both classes ("alert notice") and so showed in the error's red
on the success's green. These tests read every template and both stylesheets, so no page can
mix the two again; the browser tests look at the colours themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STYLESHEETS = (ROOT / "static" / "css" / "staff.css", ROOT / "static" / "css" / "visitor.css")

# An opening tag with a class attribute (Jinja inside the attribute is kept as text).
TAG = re.compile(
    r"<(?P<name>[a-z][a-z0-9]*)\b(?P<attrs>[^<>]*\bclass=\"(?P<class>[^\"]*)\"[^<>]*)>"
)
ROLE = re.compile(r"\brole=\"(?P<role>[^\"]*)\"")


def _tags() -> list[tuple[str, set[str], str]]:
    """(template, classes, role) of every element with a class in every template."""
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for match in TAG.finditer(path.read_text()):
            role = ROLE.search(match["attrs"])
            found.append(
                (
                    str(path.relative_to(TEMPLATES)),
                    set(match["class"].split()),
                    role["role"] if role else "",
                )
            )
    return found


def test_the_templates_are_read() -> None:
    tags = _tags()
    assert any("alert" in classes for _, classes, _ in tags)
    assert any("notice" in classes for _, classes, _ in tags)


def test_no_message_is_styled_as_both_success_and_error() -> None:
    mixed = [(t, sorted(c)) for t, c, _ in _tags() if {"alert", "notice"} <= c]
    assert not mixed, f"success and error style on one element: {mixed}"


def test_errors_are_alerts_and_successes_are_not() -> None:
    """``alert`` is the error style: it goes with role="alert" (read out at once), and a
    status message (role="status": saved, created) never wears it."""
    wrong = [
        (template, sorted(classes), role)
        for template, classes, role in _tags()
        if ("alert" in classes and role != "alert") or ("notice" in classes and role == "alert")
    ]
    assert not wrong, f"message style and role disagree: {wrong}"


def _rule(css: str, selector: str) -> str:
    match = re.search(r"(?m)^" + re.escape(selector) + r"\s*\{(?P<body>[^}]*)\}", css)
    assert match, f"no {selector} rule"
    return match["body"]


def test_each_style_is_complete_on_its_own() -> None:
    """Both styles set their own text colour, background and padding, so neither borrows
    the other's (the red text of "alert" on the green of "notice")."""
    for sheet in STYLESHEETS:
        css = sheet.read_text()
        for selector in (".alert", ".notice"):
            body = _rule(css, selector)
            for prop in ("color", "background", "padding"):
                assert re.search(rf"(^|[;\s]){prop}\s*:", body), f"{sheet.name} {selector}: {prop}"
        assert _color(_rule(css, ".alert")) != _color(_rule(css, ".notice")), sheet.name


def _color(body: str) -> str:
    match = re.search(r"(?:^|[;\s])color\s*:\s*([^;]+)", body)
    assert match
    return match[1].strip()
