"""What every SMS provider shares: the result of a send, the provider protocol, the guarded
POST to a gateway, and scrubbing a gateway's message before it is logged or kept."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import httpx
import msgspec

from app.core.phone import mask
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
    # The gateway says this number cannot receive text messages (malformed, unsubscribed,
    # a region the account cannot reach): asking again will not help.
    invalid_number: bool = False

    @classmethod
    def refusal(
        cls, code: str, message: str, *, retryable: bool, rate_limited: bool, invalid_number: bool
    ) -> SmsResult:
        """The gateway refused with its ``code``: never to be retried at once when it was the
        gateway's limit for this number (``rate_limited``), whatever else the code says."""
        return cls(
            ok=False,
            error_code=code,
            error_message=message,
            retryable=retryable and not rate_limited,
            rate_limited=rate_limited,
            invalid_number=invalid_number,
        )


class SmsProvider(Protocol):
    name: str

    async def send_code(self, phone_e164: str, code: str) -> SmsResult:
        """Send ``code`` to ``phone_e164`` (e.g. "+8613812345678"). Never raises for gateway
        answers; network failures and timeouts come back as ``ok=False, retryable=True``."""
        ...

    async def send(self, phone_e164: str, template: str, params: Mapping[str, str]) -> SmsResult:
        """Send the approved ``template`` with its ``params`` (a notice, through the outbox);
        answers as ``send_code`` does."""
        ...


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


class GatewayProvider:
    """A provider that POSTs one signed request to an HTTP gateway. A gateway's module says
    how to build the request (``request``) and how to read the answer (``interpret``);
    ``clock`` (epoch seconds) is for tests."""

    name = "gateway"
    default_endpoint = ""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._endpoint = settings.sms_endpoint or self.default_endpoint
        self._url = self._endpoint.rstrip("/") + "/"

    def request(
        self, phone_e164: str, template: str, params: Mapping[str, str]
    ) -> tuple[str, bytes, dict[str, str]]:
        """The URL, the body bytes and the headers of one signed send of ``template``."""
        raise NotImplementedError

    def interpret(self, response: httpx.Response, masked: str) -> SmsResult:
        """The gateway's answer as a result (``masked`` is the number, for the logs)."""
        raise NotImplementedError

    async def send_code(self, phone_e164: str, code: str) -> SmsResult:
        return await self.send(phone_e164, self._settings.sms_template, {"code": code})

    async def send(self, phone_e164: str, template: str, params: Mapping[str, str]) -> SmsResult:
        url, content, headers = self.request(phone_e164, template, params)
        masked = mask(phone_e164)
        answer = await post(
            self._http,
            url,
            gateway=self.name,
            masked_phone=masked,
            timeout=self._settings.sms_timeout_seconds,
            content=content,
            headers=headers,
        )
        if isinstance(answer, SmsResult):
            return answer
        return self.interpret(answer, masked)

    def unreadable(self, response: httpx.Response, masked: str) -> SmsResult:
        """An answer without the gateway's JSON (a proxy's error page, an empty body):
        retryable, with the HTTP status as the code when it is an error."""
        status = response.status_code
        log.warning("%s SendSms to %s: HTTP %s without a JSON answer", self.name, masked, status)
        return SmsResult(
            ok=False,
            error_code=f"http_{status}" if status >= 400 else "bad_response",
            error_message=scrub(response.text),
            retryable=True,
        )
