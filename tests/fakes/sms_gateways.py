"""Fake SMS gateways on 127.0.0.1 that speak the real Aliyun and Tencent Cloud protocols.

Each fake re-implements the gateway's side of the signature on its own (nothing here imports
app code), so a signing bug in the app shows up as the gateway's real refusal. They check the
credentials, the signature, the timestamp window and (Aliyun) nonce reuse, validate the
business parameters, answer with the real JSON shapes and record every accepted message.

Usage (sync or async tests alike)::

    with FakeAliyun() as gw:                       # or FakeTencent()
        settings = load_settings({}, **gw.settings_overrides())
        ... send a code through the app ...
        gw.last_code("+8613812345678")             # -> "123456"
        gw.messages                                # [SentMessage(...), ...]
        gw.fail_next("isv.BUSINESS_LIMIT_CONTROL") # the next accepted request gets this code
        gw.stall_next(2.0)                         # the next request waits 2 s first
        gw.answer_raw_next(500, b"<html>oops")     # the next request gets this raw answer

A gateway reached through a path (a proxy at https://sms.example/sms/v1) is
``FakeAliyun(base_path="/sms/v1")``: ``url`` then ends with that path, and requests elsewhere
are refused. Number-level refusals (``isv.MOBILE_NUMBER_ILLEGAL``,
``InvalidParameterValue.IncorrectPhoneNumber``, ``FailedOperation.PhoneNumberInBlacklist``…)
come from ``fail_next(code)`` in the place the real gateway puts them.

The pytest fixtures ``fake_aliyun`` and ``fake_tencent`` live in ``tests.fakes.plugin``
(``pytest_plugins = ["tests.fakes.plugin"]``).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from base64 import b64encode
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import parse_qsl, urlsplit

ALIYUN_KEY_ID = "LTAI5tFakeAccessKeyId"
ALIYUN_SECRET = "fake-aliyun-secret~with *odd& chars"
TENCENT_SECRET_ID = "AKIDFakeSecretId0000000000000000"
TENCENT_SECRET_KEY = "fake-tencent-secret-key"
TENCENT_APP_ID = "1400000001"
SIGN_NAME = "装修小助手"
ALIYUN_TEMPLATE = "SMS_123456789"
TENCENT_TEMPLATE = "1234567"


class GatewayOptions(TypedDict, total=False):
    """What every fake gateway may be started with."""

    # None: accept any; a set: only these (the gateway's "unknown sign name/template").
    sign_names: set[str] | None
    templates: set[str] | None
    # "" or "/sms/v1": where the API answers (a gateway behind a path-routing proxy).
    base_path: str


@dataclass(frozen=True)
class SentMessage:
    """One message the gateway accepted (one per number)."""

    phone: str  # normalised E.164, e.g. "+8613812345678"
    phone_as_sent: str  # exactly as in the request ("13812345678" for Aliyun mainland)
    code: str
    sign_name: str
    template: str
    params: dict[str, Any] = field(default_factory=dict)  # all template parameters
    at: float = 0.0


@dataclass(frozen=True)
class Rejection:
    """A request the gateway refused (auth, timestamp, nonce, parameters or a forced error)."""

    code: str
    message: str


@dataclass(frozen=True)
class _Stall:
    seconds: float


@dataclass(frozen=True)
class _Raw:
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class _Fail:
    code: str
    message: str
    per_number: bool


def normalise_phone(phone: str) -> str:
    """ "13812345678", "8613812345678", "008613812345678" and "+8613812345678" all become
    "+8613812345678"; other numbers become "+" + their digits."""
    digits = phone.strip().removeprefix("+").removeprefix("00")
    if len(digits) == 11 and digits.startswith("1"):
        return "+86" + digits
    return "+" + digits


# --- independent re-implementations of the encodings the gateways use -------------------

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _rfc3986(text: str) -> str:
    """Byte-wise RFC 3986 percent-encoding with upper-case hex (Aliyun's POP rules)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def _parse_aliyun_timestamp(text: str) -> float | None:
    try:
        parsed = time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


class _Gateway:
    """Shared plumbing: the HTTP server thread, the script of forced answers, the records."""

    kind = "gateway"
    default_template = ""

    def __init__(self, *, max_skew_seconds: float, **options: Unpack[GatewayOptions]) -> None:
        self.max_skew_seconds = max_skew_seconds
        self.sign_names = options.get("sign_names")
        self.templates = options.get("templates")
        self.base_path = options.get("base_path", "").rstrip("/")
        self.messages: list[SentMessage] = []
        self.rejections: list[Rejection] = []
        self.requests = 0
        self._script: deque[_Stall | _Raw | _Fail] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                gateway._serve(self)

            def do_POST(self) -> None:
                gateway._serve(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.kind}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def settings_overrides(self, **extra: object) -> dict[str, object]:
        """Keyword arguments for ``app.settings.load_settings`` pointing at this fake."""
        values: dict[str, object] = {
            "sms_provider": self.kind,
            "sms_endpoint": self.url,
            "sms_sign_name": next(iter(self.sign_names)) if self.sign_names else SIGN_NAME,
            "sms_template": next(iter(self.templates)) if self.templates else self.default_template,
            **self.credentials(),
        }
        return values | extra

    def credentials(self) -> dict[str, object]:
        """The settings that let a provider in: keys, and whatever else the gateway checks."""
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to put in LEADKIT_SMS_ENDPOINT, e.g. "http://127.0.0.1:41234"."""
        assert self._server is not None, "the fake gateway is not running"
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}{self.base_path}"

    # scripting ---------------------------------------------------------------------------

    def fail_next(
        self, code: str, message: str = "", *, times: int = 1, per_number: bool | None = None
    ) -> None:
        """The next ``times`` requests that pass authentication are refused with ``code``
        (and the gateway's usual message for it unless ``message`` is given). Tencent only:
        ``per_number`` puts the code in ``SendStatusSet`` instead of ``Response.Error``; by
        default LimitExceeded.*, FailedOperation.* and InvalidParameterValue.* go per number."""
        if per_number is None:
            per_number = self._per_number(code)
        with self._lock:
            for _ in range(times):
                self._script.append(_Fail(code, message or self._message_for(code), per_number))

    def stall_next(self, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` requests wait ``seconds`` before being handled (and are then
        handled normally unless the gateway is stopping: a slow gateway may still deliver)."""
        with self._lock:
            for _ in range(times):
                self._script.append(_Stall(seconds))

    def answer_raw_next(
        self,
        status: int = 500,
        body: bytes = b"<html>502 Bad Gateway</html>",
        content_type: str = "text/html",
    ) -> None:
        """The next request gets this answer, whatever it was."""
        with self._lock:
            self._script.append(_Raw(status, body, content_type))

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.rejections.clear()
            self._script.clear()
            self.requests = 0

    # reading -----------------------------------------------------------------------------

    def messages_to(self, phone: str) -> list[SentMessage]:
        wanted = normalise_phone(phone)
        with self._lock:
            return [m for m in self.messages if m.phone == wanted]

    def codes_for(self, phone: str) -> list[str]:
        return [m.code for m in self.messages_to(phone)]

    def last_code(self, phone: str) -> str | None:
        """The code in the latest accepted message to ``phone`` (any format), or None."""
        codes = self.codes_for(phone)
        return codes[-1] if codes else None

    def last_rejection(self) -> Rejection | None:
        with self._lock:
            return self.rejections[-1] if self.rejections else None

    # internals ---------------------------------------------------------------------------

    def _per_number(self, code: str) -> bool:
        return False

    def _at_api_path(self, path: str) -> bool:
        """Requests go to the base path, with or without its trailing slash."""
        return path.rstrip("/") == self.base_path

    def _message_for(self, code: str) -> str:
        return code

    def _take(self, kinds: tuple[type, ...]) -> Any:
        with self._lock:
            if self._script and isinstance(self._script[0], kinds):
                return self._script.popleft()
        return None

    def _record(self, message: SentMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def _reject(self, code: str, message: str) -> None:
        with self._lock:
            self.rejections.append(Rejection(code, message))

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self.requests += 1
        step = self._take((_Stall, _Raw))
        if isinstance(step, _Stall) and self._stopping.wait(step.seconds):
            return  # stopping: the client has long given up
        if isinstance(step, _Raw):
            self._send(h, step.status, step.body, step.content_type)
            return
        status, answer = self._handle(h, body)
        self._send(
            h,
            status,
            json.dumps(answer, ensure_ascii=False).encode("utf-8"),
            "application/json;charset=utf-8",
        )

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout): nothing to answer


# --- Aliyun ---------------------------------------------------------------------------

_ALIYUN_MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isp.SYSTEM_ERROR": "isp.SYSTEM_ERROR",
}


def _aliyun_number_ok(number: str) -> bool:
    """SendSms takes mainland numbers as 11 digits, optionally prefixed "+", "+86", "86" or
    "0086", and other numbers as country code + number."""
    digits = number.removeprefix("+")
    if not digits.isdigit():
        return False
    mainland = digits.removeprefix("0086") if digits.startswith("0086") else digits
    if len(mainland) == 13 and mainland.startswith("86"):
        mainland = mainland[2:]
    if len(mainland) == 11 and mainland.startswith("1"):
        return True
    return 7 <= len(digits) <= 15 and not digits.startswith(("0", "86"))


class FakeAliyun(_Gateway):
    """Dysmsapi SendSms 2017-05-25 (RPC style, HMAC-SHA1), GET or POST form."""

    kind = "aliyun"
    default_template = ALIYUN_TEMPLATE

    def __init__(
        self,
        *,
        access_key_id: str = ALIYUN_KEY_ID,
        secret: str = ALIYUN_SECRET,
        max_skew_seconds: float = 15 * 60,
        **options: Unpack[GatewayOptions],
    ) -> None:
        super().__init__(max_skew_seconds=max_skew_seconds, **options)
        self.access_key_id = access_key_id
        self.secret = secret
        self._nonces: set[str] = set()

    def credentials(self) -> dict[str, object]:
        return {"sms_access_key_id": self.access_key_id, "sms_access_key_secret": self.secret}

    def _message_for(self, code: str) -> str:
        return _ALIYUN_MESSAGES.get(code, code)

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
        self._reject(code, message)
        body: dict[str, Any] = {"RequestId": str(uuid.uuid4()).upper(), "Code": code}
        body["Message"] = message
        if status != 200:
            body["HostId"] = "dysmsapi.aliyuncs.com"
            body["Recommend"] = "https://next.api.aliyun.com/troubleshoot?q=" + code
        return status, body

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, Any]]:
        split = urlsplit(h.path)
        if not self._at_api_path(split.path):
            return self._error(404, "InvalidAction.NotFound", "Specified api is not found.")
        try:
            pairs = parse_qsl(split.query, keep_blank_values=True, strict_parsing=bool(split.query))
            if h.command == "POST" and body:
                ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype != "application/x-www-form-urlencoded":
                    raise ValueError("a POST body must be a form")
                pairs += parse_qsl(
                    body.decode("utf-8"), keep_blank_values=True, strict_parsing=True
                )
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "InvalidParameter", "The request could not be parsed.")
        params: dict[str, str] = {}
        for key, value in pairs:
            if key in params:
                return self._error(400, "InvalidParameter", f"Duplicate parameter {key}.")
            params[key] = value

        for name in (
            "AccessKeyId",
            "Action",
            "Signature",
            "SignatureMethod",
            "SignatureNonce",
            "SignatureVersion",
            "Timestamp",
            "Version",
        ):
            if not params.get(name):
                return self._error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if params["AccessKeyId"] != self.access_key_id:
            return self._error(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return self._error(
                400, "InvalidSignatureMethod", "Specified signature method is not supported."
            )

        canonical = "&".join(
            f"{_rfc3986(k)}={_rfc3986(params[k])}" for k in sorted(params) if k != "Signature"
        )
        # The RPC style signs "/" whatever path the request took (as Aliyun's SDKs do).
        to_sign = f"{h.command}&{_rfc3986('/')}&{_rfc3986(canonical)}"
        expected = b64encode(
            hmac.new(f"{self.secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(expected, params["Signature"]):
            return self._error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{to_sign}",
            )

        sent_at = _parse_aliyun_timestamp(params["Timestamp"])
        if sent_at is None:
            return self._error(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        if abs(time.time() - sent_at) > self.max_skew_seconds:
            return self._error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        with self._lock:
            replayed = params["SignatureNonce"] in self._nonces
            self._nonces.add(params["SignatureNonce"])
        if replayed:
            return self._error(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )

        if params["Action"] != "SendSms" or params["Version"] != "2017-05-25":
            return self._error(404, "InvalidVersion", "Specified parameter Version is not valid.")
        if params.get("Format", "XML") != "JSON":
            return self._error(400, "InvalidParameter", "This fake only answers Format=JSON.")
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._error(400, f"Missing{name}", f"{name} is mandatory for this action.")

        forced = self._take((_Fail,))
        if isinstance(forced, _Fail):
            return self._error(200, forced.code, forced.message)

        if self.sign_names is not None and params["SignName"] not in self.sign_names:
            return self._error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if self.templates is not None and params["TemplateCode"] not in self.templates:
            return self._error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return self._error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(template_params, dict) or not all(
            isinstance(v, str) for v in template_params.values()
        ):
            return self._error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if "code" not in template_params:
            return self._error(200, "isv.TEMPLATE_MISSING_PARAMETERS", "模版缺少变量")

        numbers = params["PhoneNumbers"].split(",")
        if not all(_aliyun_number_ok(number) for number in numbers):
            return self._error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")

        now = time.time()
        for number in numbers:
            self._record(
                SentMessage(
                    phone=normalise_phone(number),
                    phone_as_sent=number,
                    code=template_params["code"],
                    sign_name=params["SignName"],
                    template=params["TemplateCode"],
                    params=template_params,
                    at=now,
                )
            )
        biz_id = f"{random.randrange(10**17, 10**18)}^0"
        return 200, {
            "Message": "OK",
            "RequestId": str(uuid.uuid4()).upper(),
            "Code": "OK",
            "BizId": biz_id,
        }


# --- Tencent --------------------------------------------------------------------------

_TENCENT_MESSAGES = {
    "LimitExceeded.PhoneNumberDailyLimit": "the number of sms messages sent from a single "
    "mobile number every day exceeds the upper limit",
    "LimitExceeded.PhoneNumberOneHourLimit": "the number of sms messages sent from a single "
    "mobile number within 1 hour exceeds the upper limit",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "the number of sms messages sent from a "
    "single mobile number within 30 seconds exceeds the upper limit",
    "InternalError": "An internal error has occurred. Retry your request.",
    "InternalError.Timeout": "request timed out",
    "FailedOperation.InsufficientBalanceInSmsPackage": "insufficient balance in sms package",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect phone number",
    "FailedOperation.PhoneNumberInBlacklist": "phone number in blacklist",
    "UnsupportedOperation.UnsupportedRegion": "unsupported region",
}
# Codes that Tencent reports per number, inside SendStatusSet, rather than as Response.Error.
_PER_NUMBER_PREFIXES = ("LimitExceeded.", "FailedOperation.", "InvalidParameterValue.")


class FakeTencent(_Gateway):
    """Tencent Cloud SMS SendSms 2021-01-11 (API 3.0, TC3-HMAC-SHA256)."""

    kind = "tencent"
    default_template = TENCENT_TEMPLATE

    def __init__(
        self,
        *,
        secret_id: str = TENCENT_SECRET_ID,
        secret_key: str = TENCENT_SECRET_KEY,
        app_id: str = TENCENT_APP_ID,
        max_skew_seconds: float = 5 * 60,
        **options: Unpack[GatewayOptions],
    ) -> None:
        super().__init__(max_skew_seconds=max_skew_seconds, **options)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.app_id = app_id

    def credentials(self) -> dict[str, object]:
        return {
            "sms_access_key_id": self.secret_id,
            "sms_access_key_secret": self.secret_key,
            "sms_app_id": self.app_id,
            "sms_region": "ap-guangzhou",
        }

    def _per_number(self, code: str) -> bool:
        return code.startswith(_PER_NUMBER_PREFIXES)

    def _message_for(self, code: str) -> str:
        return _TENCENT_MESSAGES.get(code, code)

    def _error(self, code: str, message: str) -> tuple[int, dict[str, Any]]:
        self._reject(code, message)
        return 200, {
            "Response": {
                "Error": {"Code": code, "Message": message},
                "RequestId": str(uuid.uuid4()),
            }
        }

    def _verify(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[str, str] | None:
        """None when the request is authentic, else (error code, message)."""
        auth = h.headers.get("Authorization", "")
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return "AuthFailure.InvalidAuthorization", "Authorization header is invalid."
        fields: dict[str, str] = {}
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if not eq:
                return "AuthFailure.InvalidAuthorization", "Authorization header is invalid."
            fields[name] = value
        try:
            secret_id, date, service, terminator = fields["Credential"].split("/")
            signed_headers = fields["SignedHeaders"]
            signature = fields["Signature"]
        except (KeyError, ValueError):
            return "AuthFailure.InvalidAuthorization", "Authorization header is invalid."
        if secret_id != self.secret_id:
            return "AuthFailure.SecretIdNotFound", "The SecretId is not found."
        raw_ts = h.headers.get("X-TC-Timestamp", "")
        if not raw_ts.isdigit():
            return "MissingParameter", "The request is missing a required parameter `Timestamp`."
        timestamp = int(raw_ts)
        if abs(time.time() - timestamp) > self.max_skew_seconds:
            return (
                "AuthFailure.SignatureExpire",
                "Signature expired. Timestamp and server time cannot differ by more than "
                "5 minutes.",
            )
        if service != "sms" or terminator != "tc3_request":
            return "AuthFailure.SignatureFailure", "Credential scope is invalid."
        if date != time.strftime("%Y-%m-%d", time.gmtime(timestamp)):
            return "AuthFailure.SignatureFailure", "Credential date does not match the timestamp."
        names = signed_headers.split(";")
        if "content-type" not in names or "host" not in names or names != sorted(names):
            return "AuthFailure.SignatureFailure", "SignedHeaders must list content-type;host."
        canonical_headers = ""
        for name in names:
            header = h.headers.get(name)
            if header is None:
                return "AuthFailure.SignatureFailure", f"Signed header {name} is missing."
            canonical_headers += f"{name}:{header.strip().lower()}\n"
        split = urlsplit(h.path)
        canonical = "\n".join(
            [
                h.command,
                split.path or "/",
                split.query if h.command == "GET" else "",
                canonical_headers,
                signed_headers,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/{service}/{terminator}"
        to_sign = "\n".join(
            ["TC3-HMAC-SHA256", raw_ts, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = ("TC3" + self.secret_key).encode()
        for part in (date, service, terminator):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return (
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. "
                "Please check your signature is correct.",
            )
        return None

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, Any]]:
        if h.command != "POST":
            return self._error("InvalidParameter", "This fake only accepts POST with JSON.")
        if not self._at_api_path(urlsplit(h.path).path):
            return self._error("InvalidAction", "The action requested is invalid.")
        refused = self._verify(h, body)
        if refused is not None:
            return self._error(*refused)
        if not (h.headers.get("Content-Type") or "").lower().startswith("application/json"):
            return self._error("InvalidParameter", "Content-Type must be application/json.")
        if h.headers.get("X-TC-Action") != "SendSms":
            return self._error("InvalidAction", "The action requested is invalid.")
        if h.headers.get("X-TC-Version") != "2021-01-11":
            return self._error("NoSuchVersion", "The requested version does not exist.")
        if not h.headers.get("X-TC-Region"):
            return self._error("MissingParameter", "The request is missing `Region`.")
        try:
            request = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return self._error("FailedOperation.JsonParseFail", "failed to parse the JSON body")
        if not isinstance(request, dict):
            return self._error("FailedOperation.JsonParseFail", "failed to parse the JSON body")
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if not request.get(name):
                return self._error("MissingParameter", f"The request is missing `{name}`.")
        if request["SmsSdkAppId"] != self.app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist.")
        sign_name = request.get("SignName", "")
        if not sign_name or (self.sign_names is not None and sign_name not in self.sign_names):
            return self._error(
                "FailedOperation.SignatureIncorrectOrUnapproved",
                "signature incorrect or unapproved",
            )
        if self.templates is not None and request["TemplateId"] not in self.templates:
            return self._error(
                "FailedOperation.TemplateIncorrectOrUnapproved", "template incorrect or unapproved"
            )
        template_params = request.get("TemplateParamSet") or []
        if (
            not isinstance(template_params, list)
            or not template_params
            or not all(isinstance(p, str) and p.isdigit() and len(p) <= 6 for p in template_params)
        ):
            return self._error(
                "InvalidParameterValue.TemplateParameterFormatError",
                "verification code template parameters must be 0-6 digits",
            )
        phones = request["PhoneNumberSet"]
        if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
            return self._error("InvalidParameter", "PhoneNumberSet must be a list of strings.")

        forced = self._take((_Fail,))
        if isinstance(forced, _Fail) and not forced.per_number:
            return self._error(forced.code, forced.message)

        statuses = []
        now = time.time()
        for phone in phones:
            entry: dict[str, Any] = {
                "SerialNo": "",
                "PhoneNumber": phone,
                "Fee": 0,
                "SessionContext": "",
                "IsoCode": "CN" if phone.startswith("+86") else "",
            }
            digits = phone.removeprefix("+")
            valid = digits.isdigit() and (
                (digits.startswith("86") and len(digits) == 13 and digits[2] == "1")
                or (not digits.startswith("86") and 8 <= len(digits) <= 15)
            )
            if isinstance(forced, _Fail):
                entry.update(Code=forced.code, Message=forced.message)
                self._reject(forced.code, forced.message)
            elif not valid:
                entry.update(
                    Code="InvalidParameterValue.IncorrectPhoneNumber",
                    Message="incorrect phone number",
                )
                self._reject("InvalidParameterValue.IncorrectPhoneNumber", phone)
            else:
                entry.update(
                    SerialNo=f"2640:{random.randrange(10**27, 10**28)}",
                    Fee=1,
                    Code="Ok",
                    Message="send success",
                )
                self._record(
                    SentMessage(
                        phone=normalise_phone(phone),
                        phone_as_sent=phone,
                        code=template_params[0],
                        sign_name=sign_name,
                        template=request["TemplateId"],
                        params={"TemplateParamSet": list(template_params)},
                        at=now,
                    )
                )
            statuses.append(entry)
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}
