"""SMS one-time-code delivery: one adapter per gateway, each with a configurable endpoint so
tests point it at a fake gateway on 127.0.0.1 that speaks the real protocol.

Providers: ``console`` (development: logs the code), ``aliyun`` (Dysmsapi SendSms 2017-05-25,
RPC signature HMAC-SHA1), ``tencent`` (SMS SendSms 2021-01-11, TC3-HMAC-SHA256).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import httpx
import msgspec

from app.settings import Settings

log = logging.getLogger("leadkit.sms")


class SmsResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the gateway said. ``retryable`` marks transient failures (busy, system error)."""

    ok: bool
    provider_id: str = ""
    error_code: str = ""
    error_message: str = ""
    retryable: bool = False
    # The gateway refused because of its own frequency limits for this number.
    rate_limited: bool = False


class SmsProvider(Protocol):
    name: str

    async def send_code(self, phone_e164: str, code: str) -> SmsResult:
        """Send ``code`` to ``phone_e164`` (e.g. "+8613812345678"). Never raises for gateway
        answers; network failures and timeouts come back as ``ok=False, retryable=True``."""
        ...


class ConsoleProvider:
    """Development only: the code goes to the log (and to the dev inbox, see gate.service)."""

    name = "console"

    async def send_code(self, phone_e164: str, code: str) -> SmsResult:
        log.warning("SMS to %s: code %s (console provider: nothing was sent)", phone_e164, code)
        return SmsResult(ok=True, provider_id="console")


async def post(
    http: httpx.AsyncClient,
    url: str,
    *,
    gateway: str,
    masked_phone: str,
    timeout: float,  # noqa: ASYNC109 (also the per-phase httpx timeout)
    content: bytes,
    headers: dict[str, str],
) -> httpx.Response | SmsResult:
    """POST to a gateway under a hard deadline. Transport failures (timeouts, refused or reset
    connections, bad URLs) come back as retryable results, never as exceptions."""
    try:
        async with asyncio.timeout(timeout):
            return await http.post(url, content=content, headers=headers, timeout=timeout)
    except (TimeoutError, httpx.TimeoutException):
        log.warning("%s SendSms to %s timed out after %ss", gateway, masked_phone, timeout)
        return SmsResult(
            ok=False, error_code="timeout", error_message="gateway timed out", retryable=True
        )
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        log.warning("%s SendSms to %s failed: %s", gateway, masked_phone, type(exc).__name__)
        return SmsResult(
            ok=False, error_code="network_error", error_message=str(exc), retryable=True
        )


def make_provider(settings: Settings, http: httpx.AsyncClient) -> SmsProvider:
    """The provider named by LEADKIT_SMS_PROVIDER."""
    if settings.sms_provider == "aliyun":
        from app.gate.sms_aliyun import AliyunProvider

        return AliyunProvider(settings, http)
    if settings.sms_provider == "tencent":
        from app.gate.sms_tencent import TencentProvider

        return TencentProvider(settings, http)
    return ConsoleProvider()
