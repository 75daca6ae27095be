"""The README and docs/ stand on their own: every file they send a reader to is in this
repository, and every link lands on a heading that exists.

The README once sent readers to a design file outside the repository (../shared/DESIGN.md),
which nobody who cloned leadkit could open.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")])

LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
CODE_SPAN = re.compile(r"`(?P<text>[^`\n]+)`")
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INDENTED = re.compile(r"^(?: {4}|\t).*$", re.MULTILINE)


def _prose(page: Path) -> str:
    """The page without its code blocks (commands and samples are not references)."""
    return INDENTED.sub("", FENCED.sub("", page.read_text()))


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(page), re.MULTILINE)
    return {_anchor(h) for h in headings}


def test_the_pages_are_found() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "development.md", "design.md"} <= names


def test_no_page_points_outside_the_repository() -> None:
    outside = [
        f"{page.relative_to(ROOT)}: {match[0]}"
        for page in PAGES
        for match in re.finditer(r"\.\./shared|/work/shared", page.read_text())
    ]
    assert outside == []


def test_every_link_lands() -> None:
    broken = []
    for page in PAGES:
        for match in LINK.finditer(_prose(page)):
            target = match["target"]
            if re.match(r"^[a-z]+:", target):  # http(s), mailto: not ours to check
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_every_named_document_exists() -> None:
    """A document named in passing (`DESIGN.md`) is one a reader can open."""
    missing = []
    documents = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts}
    for page in PAGES:
        for match in CODE_SPAN.finditer(_prose(page)):
            text = match["text"]
            if not text.endswith(".md"):
                continue
            candidate = (page.parent / text).resolve()
            if not candidate.exists() and Path(text).name not in documents:
                missing.append(f"{page.relative_to(ROOT)}: `{text}`")
    assert missing == []
