"""Phone numbers, everywhere: parse and validate, normalise to E.164, and the three ways a
number is shown: masked (``138****5678``), read back (``138 1234 5678``) and dialled."""

from __future__ import annotations

import re
from collections.abc import Collection

import phonenumbers

from app.core.errors import InvalidInput
from app.core.i18n import N_

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# What people type around a number; letters, control characters and the rest are refused.
ALLOWED = re.compile(r"^\+?[\d\s().\-]+$")
_MAX_INPUT = 32


class InvalidPhone(
    InvalidInput, code="invalid_phone", message=N_("Please enter a valid mobile phone number.")
):
    """What was typed cannot be a mobile phone number."""


class CountryNotAllowed(
    InvalidPhone,
    code="country_not_allowed",
    message=N_("Text messages cannot be sent to numbers from this country or region."),
):
    """A valid number whose country code is not among those allowed codes."""


def _parse(raw: str, default_region: str) -> phonenumbers.PhoneNumber:
    """What someone typed as a number, parsed; InvalidPhone when it cannot be one."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text or len(text) > _MAX_INPUT or not ALLOWED.match(text):
        raise InvalidPhone(fields={"phone": "invalid"})
    try:
        return phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(fields={"phone": "invalid"}) from exc


def normalise(raw: str, default_region: str = "CN", allowed: Collection[int] | None = None) -> str:
    """E.164 (``+8613812345678``) for a mainland mobile or a valid foreign number.

    ``allowed``: the country calling codes accepted (LEADKIT_OTP_ALLOWED_COUNTRIES); any other
    valid number is refused with CountryNotAllowed. SMS pumping sends codes to premium-rate
    international ranges, so only the countries a business serves should get codes."""
    number = _parse(raw, default_region)
    if allowed is not None and number.country_code not in allowed:
        raise CountryNotAllowed(fields={"phone": "country"})
    national = str(number.national_number)
    if number.country_code == 86:
        if not MAINLAND_MOBILE.match(national):
            raise InvalidPhone(fields={"phone": "invalid"})
    elif not phonenumbers.is_valid_number(number):
        raise InvalidPhone(fields={"phone": "invalid"})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_contact(raw: str, default_region: str = "CN") -> str:
    """E.164 of any valid number people can call: a landline (``021 6123 4567``), a 400
    number, a mobile. For a business's own contact numbers; visitors' numbers, which must take
    a text message, go through ``normalise``."""
    number = _parse(raw, default_region)
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(fields={"phone": "invalid"})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str) -> str:
    """``+8613812345678`` → ``138****5678``; foreign numbers keep their country code."""
    if e164.startswith("+86") and len(e164) == 14:
        national = e164[3:]
        return f"{national[:3]}****{national[-4:]}"
    return f"{e164[:4]}****{e164[-2:]}"


def display(e164: str) -> str:
    """How people read a number: ``137 0000 1111``, ``021 6123 4567`` (foreign: international).
    Every number shown in full goes through here (templates: the ``phone`` filter)."""
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


def dial(e164: str) -> str:
    """What a phone in China dials: ``+8613812345678`` → ``13812345678``; others stay E.164."""
    return e164[3:] if e164.startswith("+86") and len(e164) == 14 else e164
