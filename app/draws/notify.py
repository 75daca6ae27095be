"""Telling winners: one SMS per winner, queued in the outbox (app/outbox/sms.py) in the draw's
own transaction — if the draw rolls back, no text leaves; once it commits, the outbox delivers
it at least once, and the key ``draw:{draw id}:winner:{winner row id}`` queues one message per
winner row (a retried tap, a second worker or a replayed tier never texts twice; a reserve
called up is a row of its own, so it gets its own text).

The text is the approved template LEADKIT_SMS_NOTIFY_TEMPLATE with three parameters, in this
order: ``draw`` (the draw's title), ``prize`` (the tier's name) and ``deadline`` (claim by,
China time). A winner whose lead is gone or withdrew consent is told on the draw page only.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time
from app.core.crypto import DataCipher
from app.draws.definition import DrawInfo
from app.leads.models import Lead
from app.outbox.sms import send_sms

PARAM_LENGTH = 20  # gateways cap a template variable's length (Aliyun: 35 characters)


class Notice:
    """Queues the winners' texts; one per app (the ``Draws`` service holds it)."""

    def __init__(self, cipher: DataCipher, template: str = "") -> None:
        self.cipher = cipher
        self.template = template  # empty: LEADKIT_SMS_NOTIFY_TEMPLATE

    async def winners(
        self,
        db: AsyncSession,
        draw: DrawInfo,
        tier: int,
        picks: list[tuple[int, int | None]],
        claim_by: dt.datetime,
    ) -> int:
        """Queue a text to each pick ``(winner row id, lead id)``; the number queued."""
        leads = {p[1] for p in picks if p[1] is not None}
        if not leads:
            return 0
        phones = {
            lead_id: cipher_text
            for lead_id, cipher_text in await db.execute(
                select(Lead.id, Lead.phone_cipher).where(
                    Lead.id.in_(leads), Lead.status != "withdrawn"
                )
            )
        }
        params = {
            "draw": draw.title[:PARAM_LENGTH],
            "prize": draw.tiers[tier - 1].name[:PARAM_LENGTH],
            "deadline": china_time(claim_by),
        }
        queued = 0
        for winner_id, lead_id in picks:
            if lead_id is None or lead_id not in phones:
                continue
            message = await send_sms(
                db,
                self.cipher,
                self.cipher.decrypt(phones[lead_id]),
                self.template,
                params,
                key=f"draw:{draw.id}:winner:{winner_id}",
            )
            queued += message is not None
        return queued
