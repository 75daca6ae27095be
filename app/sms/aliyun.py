"""Aliyun (Alibaba Cloud) Dysmsapi ``SendSms``, version 2017-05-25, over the RPC-style API.

Every request carries the common parameters plus ``Signature``: HMAC-SHA1 (key = AccessKeySecret
+ "&") over ``METHOD&%2F&enc(canonical query)``, where the canonical query is the parameters
sorted by name, each name and value percent-encoded per RFC 3986 and joined as ``k=v`` with "&".
We POST: common parameters and the signature in the query string, the business parameters
(number, sign, template, code) as a form body, so neither the number nor the code is ever part
of a URL. Both are encoded with the signing encoder, so what the gateway decodes and re-encodes
is exactly what we signed.

Answers: ``{"Code": "OK", "BizId", "RequestId", "Message"}`` on success; business errors come
back as HTTP 200 with another ``Code`` (``isv.*``, ``isp.*``); signature, timestamp and nonce
errors as HTTP 4xx with the same JSON shape.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from app.sms.base import GatewayProvider, SmsResult, scrub

log = logging.getLogger("leadkit.sms.aliyun")

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
API_VERSION = "2017-05-25"
REGION_ID = "cn-hangzhou"

# Gateway codes with a known meaning; anything else is "not ok" with the gateway's code.
# isv.BUSINESS_LIMIT_CONTROL: the platform's per-number caps (by default 1/minute, 5/hour,
# 10/day).
_RATE_LIMITED = {"isv.BUSINESS_LIMIT_CONTROL"}
# Transient; any HTTP 5xx answer is treated as transient too.
_RETRYABLE = {
    "isp.SYSTEM_ERROR",
    "SignatureNonceUsed",  # a fresh request carries a fresh nonce
    "Throttling.User",  # API call rate (not per number)
    "ServiceUnavailable",
}
# The number itself cannot get the message (非法手机号): the visitor should use another one.
_INVALID_NUMBER = {"isv.MOBILE_NUMBER_ILLEGAL"}
_OUT_OF_CREDIT = {"isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE"}
_CONFIG_ERRORS = {
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "InvalidTimeStamp.Expired",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL",
    "isp.RAM_PERMISSION_DENY",
}


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's RPC signature wants it: unreserved characters
    (A-Z a-z 0-9 - _ . ~) stay, everything else is %XX of its UTF-8 bytes, so a space is %20,
    "*" is %2A and "~" is kept."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, encoded ``k=v&k=v`` string (without ``Signature``)."""
    return "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}"
        for key in sorted(params)
        if key != "Signature"
    )


def string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    # Always "/" in the RPC style, whatever path the endpoint has (Aliyun's SDKs sign it so):
    # an endpoint behind a path (a proxy at https://sms.example/sms/v1) keeps its signature.
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def rpc_signature(params: Mapping[str, str], secret: str, method: str = "GET") -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new(
        (secret + "&").encode("utf-8"),
        string_to_sign(params, method).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_phone(phone_e164: str) -> str:
    """Mainland numbers as their 11 national digits, others as country code + number."""
    digits = phone_e164.strip().removeprefix("+")
    if digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    return digits


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunProvider(GatewayProvider):
    """SendSms through Aliyun's Dysmsapi."""

    name = "aliyun"
    default_endpoint = DEFAULT_ENDPOINT

    def signed_request(self, phone_e164: str, code: str) -> tuple[dict[str, str], dict[str, str]]:
        """One signed SendSms of the code template (LEADKIT_SMS_TEMPLATE)."""
        return self.signed_message(phone_e164, self._settings.sms_template, {"code": code})

    def signed_message(
        self, phone_e164: str, template: str, params: Mapping[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """One signed SendSms as (query parameters, form body parameters).

        The common parameters and ``Signature`` go in the query; the business parameters
        (number, sign, template, code) go in the POST body so the phone number and the code
        never appear in a URL (access logs, httpx's request log). The signature covers both,
        with method POST, as Aliyun's SDKs do for body parameters.
        """
        s = self._settings
        query = {
            "AccessKeyId": s.sms_access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": REGION_ID,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "Timestamp": _timestamp(self._clock()),
            "Version": API_VERSION,
        }
        body = {
            "PhoneNumbers": aliyun_phone(phone_e164),
            "SignName": s.sms_sign_name,
            "TemplateCode": template,
            "TemplateParam": json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")),
            "OutId": secrets.token_hex(8),
        }
        query["Signature"] = rpc_signature(query | body, s.sms_access_key_secret, "POST")
        return query, body

    def request(
        self, phone_e164: str, template: str, params: Mapping[str, str]
    ) -> tuple[str, bytes, dict[str, str]]:
        query, body = self.signed_message(phone_e164, template, params)
        # Both halves are encoded with the signing encoder, so the gateway decodes exactly
        # the values we signed.
        url = f"{self._url}?Signature={percent_encode(query['Signature'])}&{canonical_query(query)}"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return url, canonical_query(body).encode("ascii"), headers

    def interpret(self, response: httpx.Response, masked: str) -> SmsResult:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("Code"), str):
            return self.unreadable(response, masked)
        code = body["Code"]
        message = scrub(str(body.get("Message", "")))
        if code == "OK" and status < 400:
            return SmsResult(ok=True, provider_id=str(body.get("BizId", "")))
        if code in _OUT_OF_CREDIT:
            log.error("aliyun SMS account is out of credit (%s): %s; top it up", code, message)
        elif code in _CONFIG_ERRORS:
            log.error("aliyun SendSms refused the configuration (%s): %s", code, message)
        else:
            log.warning("aliyun SendSms to %s refused: %s %s", masked, code, message)
        return SmsResult.refusal(
            code,
            message,
            retryable=code in _RETRYABLE or status >= 500,
            rate_limited=code in _RATE_LIMITED,
            invalid_number=code in _INVALID_NUMBER,
        )
