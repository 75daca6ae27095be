"""Tencent Cloud SMS ``SendSms``, version 2021-01-11, signed with TC3-HMAC-SHA256 (API 3.0).

One POST of a JSON body to the endpoint; the signature covers the method, the path requested
("/" on the public endpoint, as the official SDK signs its request URI), an empty query, the
``content-type`` and ``host`` headers and the SHA-256 of the exact body bytes, under a
credential scope ``<UTC date>/sms/tc3_request``. The host we sign is taken from the endpoint URL
(port included when it has one) and sent as the Host header, so a fake gateway on 127.0.0.1
verifies the same string.

Answers are HTTP 200 with ``{"Response": {...}}``: either ``SendStatusSet`` (one entry per
number, ``Code`` "Ok" on success) or ``Error: {Code, Message}`` for the whole request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.sms.base import GatewayProvider, SmsResult, scrub

log = logging.getLogger("leadkit.sms.tencent")

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com/"
SERVICE = "sms"
ACTION = "SendSms"
API_VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host"

_OUT_OF_CREDIT = {"FailedOperation.InsufficientBalanceInSmsPackage"}
# The number itself cannot get the message: malformed, on the do-not-disturb list (the owner
# unsubscribed), or in a region the account or template cannot reach.
_INVALID_NUMBER = {
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.PhoneNumberParseFail",
    "UnsupportedOperation.UnsupportedRegion",
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
}
# Besides InternalError*: the API-level call rate limit and a busy backend.
_RETRYABLE_CODES = {"RequestLimitExceeded", "ResourceUnavailable"}


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def canonical_request(host: str, payload: bytes, path: str = "/") -> str:
    """POST, the path requested ("/" on the public endpoint), empty query, the two signed
    headers, then the payload hash."""
    return (
        f"POST\n{path}\n\n"
        f"content-type:{CONTENT_TYPE}\nhost:{host}\n\n"
        f"{SIGNED_HEADERS}\n"
        f"{_sha256_hex(payload)}"
    )


def credential_scope(timestamp: int, service: str = SERVICE) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return f"{date}/{service}/tc3_request"


def tc3_signature(
    secret_key: str, *, timestamp: int, canonical: str, service: str = SERVICE
) -> str:
    """hex(HMAC(SecretSigning, StringToSign)) with the TC3 key derivation."""
    scope = credential_scope(timestamp, service)
    date = scope.split("/", 1)[0]
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{_sha256_hex(canonical.encode('utf-8'))}"
    secret_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    secret_id: str,
    secret_key: str,
    *,
    host: str,
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
    path: str = "/",
) -> str:
    signature = tc3_signature(
        secret_key,
        timestamp=timestamp,
        canonical=canonical_request(host, payload, path),
        service=service,
    )
    scope = credential_scope(timestamp, service)
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    )


def _failure(code: str, message: str) -> SmsResult:
    return SmsResult.refusal(
        code,
        message,
        retryable=code.startswith("InternalError") or code in _RETRYABLE_CODES,
        rate_limited=code.startswith("LimitExceeded."),
        invalid_number=code in _INVALID_NUMBER,
    )


class TencentProvider(GatewayProvider):
    """SendSms through Tencent Cloud SMS."""

    name = "tencent"
    default_endpoint = DEFAULT_ENDPOINT

    @property
    def _host(self) -> str:
        """The host we sign and send as the Host header: the endpoint's, port included."""
        return urlsplit(self._endpoint).netloc.lower()

    @property
    def _path(self) -> str:
        """The canonical URI is the path actually requested: an endpoint behind a path
        (https://sms.example/sms/v1) is signed as /sms/v1/, not /."""
        return urlsplit(self._url).path

    def request_parts(self, phone_e164: str, code: str) -> tuple[bytes, dict[str, str]]:
        """One signed SendSms of the code template (LEADKIT_SMS_TEMPLATE)."""
        return self.message_parts(phone_e164, self._settings.sms_template, {"code": code})

    def message_parts(
        self, phone_e164: str, template: str, params: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body bytes and headers of one signed SendSms. Tencent's template
        parameters are positional: ``params`` in their order ({1}, {2}, …)."""
        s = self._settings
        payload = json.dumps(
            {
                "PhoneNumberSet": [phone_e164],
                "SmsSdkAppId": s.sms_app_id,
                "SignName": s.sms_sign_name,
                "TemplateId": template,
                "TemplateParamSet": list(params.values()),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        timestamp = int(self._clock())
        headers = {
            "Authorization": authorization(
                s.sms_access_key_id,
                s.sms_access_key_secret,
                host=self._host,
                payload=payload,
                timestamp=timestamp,
                path=self._path,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": ACTION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": API_VERSION,
            "X-TC-Region": s.sms_region,
        }
        return payload, headers

    def request(
        self, phone_e164: str, template: str, params: Mapping[str, str]
    ) -> tuple[str, bytes, dict[str, str]]:
        payload, headers = self.message_parts(phone_e164, template, params)
        return self._url, payload, headers

    def interpret(self, response: httpx.Response, masked: str) -> SmsResult:
        try:
            body = response.json()
        except ValueError:
            body = None
        reply: Any = body.get("Response") if isinstance(body, dict) else None
        if not isinstance(reply, dict):
            return self.unreadable(response, masked)
        error = reply.get("Error")
        if isinstance(error, dict):
            return self._refused(str(error.get("Code", "")), str(error.get("Message", "")), masked)
        statuses = reply.get("SendStatusSet")
        first = statuses[0] if isinstance(statuses, list) and statuses else None
        if not isinstance(first, dict):
            log.warning("tencent SendSms to %s: no SendStatusSet in the answer", masked)
            return SmsResult(
                ok=False,
                error_code="bad_response",
                error_message="no SendStatusSet",
                retryable=True,
            )
        code = str(first.get("Code", ""))
        # Documented as "Ok"; accepted in any case in case the spelling differs.
        if code.lower() == "ok":
            return SmsResult(ok=True, provider_id=str(first.get("SerialNo", "")))
        return self._refused(code, str(first.get("Message", "")), masked)

    def _refused(self, code: str, message: str, masked: str) -> SmsResult:
        message = scrub(message)
        if code in _OUT_OF_CREDIT:
            log.error("tencent SMS package is exhausted (%s): %s; top it up", code, message)
        elif code.startswith(("AuthFailure", "UnauthorizedOperation")):
            log.error("tencent SendSms refused the credentials (%s): %s", code, message)
        else:
            log.warning("tencent SendSms to %s refused: %s %s", masked, code, message)
        return _failure(code, message)
