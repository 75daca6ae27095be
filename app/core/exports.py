"""A staff download as CSV: UTF-8 with a byte-order mark (so Excel reads Chinese), never
cached, and no cell a spreadsheet would run as a formula (=, +, -, @ at the start of text get a
leading apostrophe: CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from litestar import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_START) else text


def csv_answer(
    filename: str, headings: Sequence[str], rows: Iterable[Sequence[object]]
) -> Response[bytes]:
    """The rows as a CSV download named ``filename``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([cell(h) for h in headings])
    writer.writerows([cell(v) for v in row] for row in rows)
    return Response(
        ("\ufeff" + out.getvalue()).encode(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )
