"""Grab test helpers: authorised visitors written straight to the database (no SMS), their
signed cookies, and a grab to claim."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import DataCipher
from app.core.phone import mask
from app.grabs.schemas import GrabCreate
from app.grabs.service import create_grab
from app.leads.models import Lead
from app.settings import Settings
from app.visitors.models import Visitor
from app.visitors.web import VISITOR_COOKIE, _signer


@dataclass(frozen=True)
class Person:
    public_id: str
    phone: str
    phone_hash: str
    cookie: str


def lead_row(cipher: DataCipher, phone: str, **fields: Any) -> Lead:
    """A Lead for ``phone`` (encrypted, hashed and masked as the app stores it), not yet added."""
    return Lead(
        phone_cipher=cipher.encrypt(phone),
        phone_hash=cipher.lookup_hash(phone),
        phone_masked=mask(phone),
        needs={},
        **fields,
    )


async def make_people(
    db: AsyncSession, settings: Settings, phones: int, visitors_per_phone: int = 1, base: int = 0
) -> list[Person]:
    """``phones`` leads, each with ``visitors_per_phone`` authorised visitors (browsers)."""
    cipher = DataCipher(settings)
    now = dt.datetime.now(dt.UTC)
    people: list[Person] = []
    for i in range(phones):
        phone = f"+86139{base + i:08d}"
        lead = lead_row(cipher, phone, status="new", notes="")
        db.add(lead)
        await db.flush()
        for _ in range(visitors_per_phone):
            public_id = secrets.token_urlsafe(16)
            db.add(
                Visitor(
                    public_id=public_id,
                    platform="browser",
                    first_seen_at=now,
                    last_seen_at=now,
                    first_touch={},
                    last_touch={},
                    lead_id=lead.id,
                    authorised_at=now,
                    auth_method="sms",
                )
            )
            people.append(
                Person(
                    public_id=public_id,
                    phone=phone,
                    phone_hash=lead.phone_hash,
                    cookie=_signer(settings.secret_key).dumps(public_id),
                )
            )
    await db.flush()
    return people


def cookies(person: Person) -> dict[str, str]:
    return {VISITOR_COOKIE: person.cookie}


def cookie_header(person: Person) -> str:
    """The Cookie header a browser of ``person`` sends (per-request cookies are deprecated
    in httpx: a header is what a real client sends anyway)."""
    return f"{VISITOR_COOKIE}={person.cookie}"


def open_grab(
    slug: str = "flash", stock: int = 10, per_phone_limit: int = 1, **extra: Any
) -> GrabCreate:
    """A grab that opened a minute ago and runs for a day."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    values: dict[str, Any] = {
        "slug": slug,
        "title": "限量抢购测试",
        "stock": stock,
        "per_phone_limit": per_phone_limit,
        "starts_at": start,
        "ends_at": start + dt.timedelta(days=1),
        "voucher_where": "旗舰店",
        **extra,
    }
    return GrabCreate(**values)


def grab_form(**fields: str) -> dict[str, str]:
    """What the marketer's grab form posts (new, or an edit, which ignores the slug): a grab of
    20 vouchers on the evening of 1 May 2030, Beijing time, with `fields` changed."""
    return {
        "slug": "sofa-day",
        "title": "沙发节",
        "offer": "",
        "image_url": "",
        "stock": "20",
        "per_phone_limit": "2",
        "starts_at": "2030-05-01T20:00",
        "ends_at": "2030-05-01T22:00",
        "voucher_prefix": "SF",
        "voucher_valid_days": "15",
        "voucher_where": "",
        **fields,
    }


def flash_form(**fields: str) -> dict[str, str]:
    """The edit form of open_grab's "flash" grab as a marketer posts it, with `fields` changed."""
    flash = dict(title="t", per_phone_limit="1", voucher_prefix="LK", voucher_valid_days="30")
    open_throughout = {"starts_at": "2020-01-01T00:00", "ends_at": "2099-01-01T00:00"}
    return grab_form(**(flash | open_throughout | fields))


async def add_grab(db: AsyncSession, data: GrabCreate) -> int:
    return (await create_grab(db, data, by="test")).id
