"""The brand's rules: what a name, a colour and a contact phone may be, saving a change (an
admin's, audited), and the stylesheet visitor pages take their colours from."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.brand.models import BRAND_ROW, BrandRow
from app.brand.schemas import Brand
from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_
from app.core.phone import InvalidPhone, normalise_contact
from app.settings import Settings
from app.staff.audit import audit
from app.staff.schemas import Staff

# The colour visitor pages had before there was a brand (static/css/visitor.css).
DEFAULT_COLOR = "#e8572a"
MAX_NAME = 32
COLOR = re.compile(r"^#[0-9a-fA-F]{6}\Z")
# White text on the colour (buttons) and the colour on white (links) must stay readable: WCAG's
# 3:1 for large text and controls. The default orange is 3.6:1.
MIN_CONTRAST = 3.0


def default_brand(settings: Settings) -> Brand:
    """The brand until an admin saves one: LEADKIT_BRAND_NAME and the default colour."""
    return Brand(name=settings.brand_name, color=DEFAULT_COLOR)


def _brand(row: BrandRow) -> Brand:
    return Brand(
        name=row.name,
        color=row.color,
        contact_phone=row.contact_phone,
        logo=bytes(row.logo or b""),
        version=row.version,
    )


async def saved_version(db: AsyncSession) -> int | None:
    """The saved brand's version (a one-column read), or None when none was ever saved."""
    return await db.scalar(select(BrandRow.version).where(BrandRow.id == BRAND_ROW))


async def load(db: AsyncSession) -> Brand | None:
    row = await db.get(BrandRow, BRAND_ROW)
    return None if row is None else _brand(row)


def _relative_luminance(color: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(color: str) -> float:
    """WCAG contrast ratio of ``color`` (#rrggbb) against white, from 1 to 21."""
    return 1.05 / (_relative_luminance(color) + 0.05)


def clean_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise InvalidInput(N_("The brand needs a name."), fields={"name": "required"})
    # Control and invisible format characters (newlines, zero-width, bidi overrides) are not
    # part of a name and could make one read as another.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise InvalidInput(
            N_("The name contains characters that cannot be shown."), fields={"name": "invalid"}
        )
    if len(name) > MAX_NAME:
        raise InvalidInput(
            N_("The name can have at most %(n)s characters."), fields={"name": "long"}, n=MAX_NAME
        )
    return name


def clean_color(raw: str) -> str:
    color = raw.strip()
    if not COLOR.match(color):
        raise InvalidInput(
            N_("The colour must be written as # and six hexadecimal digits, like #e8572a."),
            fields={"color": "format"},
        )
    color = color.lower()
    if contrast_with_white(color) < MIN_CONTRAST:
        raise InvalidInput(
            N_(
                "This colour is too light: white text on it, and it on white, would be hard "
                "to read. Choose a darker one."
            ),
            fields={"color": "contrast"},
        )
    return color


def clean_phone(raw: str) -> str:
    if not raw.strip():
        return ""
    try:
        return normalise_contact(raw)
    except InvalidPhone as exc:
        raise InvalidInput(
            N_("The contact phone is not a valid number, e.g. 021 6123 4567 or 400 820 8820."),
            fields={"contact_phone": "invalid"},
        ) from exc


async def save(
    db: AsyncSession,
    actor: Staff,
    *,
    name: str,
    color: str,
    contact_phone: str,
    logo: bytes | None,
    remove_logo: bool,
    ip: str = "",
) -> Brand:
    """Save the brand (``logo``: a new PNG from prepare_logo, or None to keep the current one)
    as its next version; audited. Flushes, never commits: the caller's transaction decides."""
    fields = {
        "name": clean_name(name),
        "color": clean_color(color),
        "contact_phone": clean_phone(contact_phone),
    }
    row = (
        await db.execute(select(BrandRow).where(BrandRow.id == BRAND_ROW).with_for_update())
    ).scalar()
    if row is None:
        row = BrandRow(id=BRAND_ROW, version=0, logo=b"", updated_by="", **fields)
        db.add(row)
    else:
        for key, value in fields.items():
            setattr(row, key, value)
    logo_change = "kept"
    if logo is not None:
        row.logo, logo_change = logo, "replaced"
    elif remove_logo and row.logo:
        row.logo, logo_change = b"", "removed"
    row.version += 1
    row.updated_by = actor.username
    try:
        await db.flush()
    except IntegrityError as exc:  # a first save racing another admin's first save
        raise Conflict(
            N_("Someone else saved the brand just now: look at it and save again.")
        ) from exc
    await audit(
        db,
        actor,
        "brand.update",
        fields["name"],
        {"version": row.version, "color": fields["color"], "logo": logo_change},
        ip,
    )
    return _brand(row)


def _darker(color: str, factor: float = 0.84) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c * factor):02x}" for c in (r, g, b))


def stylesheet(brand: Brand) -> str:
    """/brand.css: the brand's colours as the custom properties visitor.css uses. A stylesheet
    rather than a style attribute: the Content-Security-Policy allows no inline style."""
    # The colour was checked when saved; checked again here, so nothing else reaches the CSS.
    color = brand.color if COLOR.match(brand.color) else DEFAULT_COLOR
    return f":root {{ --brand: {color}; --brand-dark: {_darker(color)}; }}\n"
