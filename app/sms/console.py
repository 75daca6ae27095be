"""The development provider: the code goes to the log, nothing is sent."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.core.phone import mask
from app.sms.base import SmsResult

log = logging.getLogger("leadkit.sms")


class ConsoleProvider:
    """Development only: the code goes to the log (and to the dev inbox, see gate.service)."""

    name = "console"

    async def send_code(self, phone_e164: str, code: str) -> SmsResult:
        log.warning("SMS to %s: code %s (console provider: nothing was sent)", phone_e164, code)
        return SmsResult(ok=True, provider_id="console")

    async def send(self, phone_e164: str, template: str, params: Mapping[str, str]) -> SmsResult:
        log.warning(
            "SMS to %s: template %r with %s (console provider: nothing was sent)",
            mask(phone_e164),
            template,
            dict(params),
        )
        return SmsResult(ok=True, provider_id="console")
