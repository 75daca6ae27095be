"""The brand as the rest of the app reads it (a frozen value, cached per process) and the
admin's form."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile


class Brand(msgspec.Struct, frozen=True, kw_only=True):
    """What visitor pages and PDF reports show of the business. ``contact_phone`` is E.164 or
    empty; ``logo`` a PNG leadkit encoded itself (app/brand/logo.py) or empty; ``version`` goes
    up with every change (0: nothing saved yet, the settings' defaults)."""

    name: str
    color: str
    contact_phone: str = ""
    logo: bytes = b""
    version: int = 0

    @property
    def css_url(self) -> str:
        """The brand's stylesheet; the version in the query lets browsers keep it for a year."""
        return f"/brand.css?v={self.version}"

    @property
    def logo_url(self) -> str:
        return f"/brand/logo.png?v={self.version}" if self.logo else ""


class BrandForm(msgspec.Struct, kw_only=True):
    """/staff/admin/brand: checked by the service, so each problem gets its own message."""

    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    color: Annotated[str, msgspec.Meta(max_length=32)] = ""
    contact_phone: Annotated[str, msgspec.Meta(max_length=64)] = ""
    remove_logo: Annotated[str, msgspec.Meta(max_length=8)] = ""
    logo: UploadFile | None = None
