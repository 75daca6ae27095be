"""Where a report's layout lives: its template and stylesheet.

Its own module so that the web process can fingerprint the layout without importing
WeasyPrint, which only the renderer processes need (about a second of every worker's start).
"""

from __future__ import annotations

from app.core.templating import STATIC, TEMPLATES

TEMPLATE = "reports/report.html"
TEMPLATE_PATH = TEMPLATES / TEMPLATE
STYLESHEET = STATIC / "css" / "report.css"
