"""Phone numbers: parse, validate, normalise to E.164, mask for display."""

from __future__ import annotations

import re

import phonenumbers

from app.core.errors import InvalidInput
from app.core.i18n import N_

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# What people type around a number; letters, control characters and the rest are refused.
ALLOWED = re.compile(r"^\+?[\d\s().\-]+$")
_MAX_INPUT = 32


class InvalidPhone(InvalidInput):
    code = "invalid_phone"
    default_message = N_("Please enter a valid mobile phone number.")


def normalise(raw: str, default_region: str = "CN") -> str:
    """E.164 (``+8613812345678``) for a mainland mobile or a valid foreign number."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text or len(text) > _MAX_INPUT or not ALLOWED.match(text):
        raise InvalidPhone(fields={"phone": "invalid"})
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(fields={"phone": "invalid"}) from exc
    national = str(number.national_number)
    if number.country_code == 86:
        if not MAINLAND_MOBILE.match(national):
            raise InvalidPhone(fields={"phone": "invalid"})
    elif not phonenumbers.is_valid_number(number):
        raise InvalidPhone(fields={"phone": "invalid"})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str) -> str:
    """``+8613812345678`` → ``138****5678``; foreign numbers keep their country code."""
    if e164.startswith("+86") and len(e164) == 14:
        national = e164[3:]
        return f"{national[:3]}****{national[-4:]}"
    return f"{e164[:4]}****{e164[-2:]}"


def display(e164: str) -> str:
    """How a visitor reads their own number back: ``137 0000 1111`` (foreign: international)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 86
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)
