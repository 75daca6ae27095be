"""SMS one-time-code delivery: one adapter per gateway, each with a configurable endpoint so
tests point it at a fake gateway on 127.0.0.1 that speaks the real protocol.

Providers: ``console`` (development: logs the code), ``aliyun`` (Dysmsapi SendSms 2017-05-25,
RPC signature HMAC-SHA1), ``tencent`` (SMS SendSms 2021-01-11, TC3-HMAC-SHA256).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Protocol

import httpx
import msgspec

from app.core.i18n import N_
from app.settings import Settings

log = logging.getLogger("leadkit.sms")

# Who receives visitors' numbers to send them their codes, by LEADKIT_SMS_PROVIDER: the
# processor the privacy notice must name (PIPL art. 21), by its registered name.
SMS_PROCESSORS: dict[str, str] = {
    "console": N_(
        "Nobody: this is a test installation, and verification codes are not actually sent."
    ),
    "aliyun": N_("Alibaba Cloud SMS (Alibaba Cloud Computing Co., Ltd.)"),
    "tencent": N_("Tencent Cloud SMS (Tencent Cloud Computing (Beijing) Co., Ltd.)"),
}


class SmsResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the gateway said. ``retryable`` marks transient failures (busy, system error)."""

    ok: bool
    provider_id: str = ""
    error_code: str = ""
    error_message: str = ""
    retryable: bool = False
    # The gateway refused because of its own frequency limits for this number.
    rate_limited: bool = False
    # The gateway says this number cannot receive text messages (malformed, unsubscribed,
    # a region the account cannot reach): asking again will not help.
    invalid_number: bool = False


# What a gateway or transport message may carry that must not reach the logs: Aliyun echoes
# its whole string to sign (AccessKeyId, number, code) when a signature does not match; an
# exception may quote the URL with its signed query; numbers are personal data.
_STRING_TO_SIGN = re.compile(r"(string to sign is:?).*", re.IGNORECASE | re.DOTALL)
_QUERY = re.compile(r"\?[^\s'\"<>]*")
_NUMBER = re.compile(r"\+?\d[\d\s-]{5,}\d")


def scrub(text: str, limit: int = 200) -> str:
    """A gateway's or transport's message, safe to log and keep: no signed query, no string
    to sign, no phone number (runs of 7+ digits), at most ``limit`` characters."""
    text = _STRING_TO_SIGN.sub(r"\1 [removed]", text)
    text = _QUERY.sub("?[removed]", text)
    return _NUMBER.sub("[number]", text)[:limit]


# Loggers of the HTTP client libraries: httpx logs every request URL at INFO (Aliyun's carries
# AccessKeyId and Signature), httpcore logs connection details at DEBUG.
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore")


def quiet_http_client_logs() -> None:
    """Keep outbound HTTP clients' request logs out of leadkit's logs at every level up to
    INFO, whatever LEADKIT_LOG_LEVEL says; their warnings and errors still come through.
    Every outbound call that matters is logged by its caller, without secrets."""
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


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
            ok=False, error_code="network_error", error_message=scrub(str(exc)), retryable=True
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
