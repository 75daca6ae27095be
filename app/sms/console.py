"""The development provider: the code goes to the log, nothing is sent."""

from __future__ import annotations

import logging

from app.sms.base import SmsResult

log = logging.getLogger("leadkit.sms")


class ConsoleProvider:
    """Development only: the code goes to the log (and to the dev inbox, see gate.service)."""

    name = "console"

    async def send_code(self, phone_e164: str, code: str) -> SmsResult:
        log.warning("SMS to %s: code %s (console provider: nothing was sent)", phone_e164, code)
        return SmsResult(ok=True, provider_id="console")
