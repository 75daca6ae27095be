"""The outbox's first kind, ``sms``: a text through the configured SMS provider.

``send_sms`` enqueues one (in the caller's transaction); the handler sends it. The number is
kept encrypted in the payload (as leads keep theirs) next to its masked form, which is all
that staff pages and logs ever show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import DataCipher
from app.core.i18n import N_
from app.core.phone import mask
from app.outbox.sender import Delivery, Handler, Undeliverable
from app.outbox.service import LABELS, RECIPIENTS, enqueue
from app.settings import Settings
from app.sms.base import SmsProvider

SMS = "sms"


class SmsNotSent(Exception):
    """The gateway did not accept the message; the sender tries again later."""


async def send_sms(
    db: AsyncSession,
    cipher: DataCipher,
    phone_e164: str,
    template: str,
    params: Mapping[str, str],
    *,
    key: str | None = None,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Queue a text to ``phone_e164`` (E.164, normalised): the approved ``template`` (empty:
    LEADKIT_SMS_NOTIFY_TEMPLATE) with its ``params`` (in the order a positional template wants
    them). ``key`` names the cause (``draw:7:winner:12``): the same key never sends twice.
    The message's id, or None when the key was already queued."""
    payload = {
        "to": cipher.encrypt(phone_e164),
        "masked": mask(phone_e164),
        "template": template,
        "params": {str(name): str(value) for name, value in params.items()},
    }
    return await enqueue(db, SMS, payload, key=key, not_before=not_before)


def _recipient(payload: dict[str, Any]) -> str:
    return str(payload["masked"])


LABELS[SMS] = N_("Text message")
RECIPIENTS[SMS] = _recipient


def sms_handler(settings: Settings, provider: SmsProvider, cipher: DataCipher) -> Handler:
    """The handler of ``sms`` messages: one send through ``provider``. A number the gateway
    says cannot receive texts makes the message dead; any other refusal is retried."""

    async def deliver(message: Delivery) -> None:
        payload = message.payload
        template = payload["template"] or settings.sms_notify_template
        result = await provider.send(cipher.decrypt(payload["to"]), template, payload["params"])
        if result.ok:
            return
        # The gateway's code and message are already scrubbed (app/sms/base.py).
        error = f"{result.error_code}: {result.error_message}".strip(": ")
        if result.invalid_number:
            raise Undeliverable(error)
        raise SmsNotSent(error)

    return deliver
