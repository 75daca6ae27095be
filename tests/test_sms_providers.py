"""The Aliyun and Tencent SMS adapters against fake gateways that verify the real signatures,
plus the signing code against the worked examples published in each vendor's documentation."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import httpx
import pytest

from app.settings import load_settings
from app.sms.aliyun import (
    AliyunProvider,
    aliyun_phone,
    canonical_query,
    percent_encode,
    rpc_signature,
    string_to_sign,
)
from app.sms.base import SmsProvider
from app.sms.console import ConsoleProvider
from app.sms.providers import make_provider
from app.sms.tencent import TencentProvider, canonical_request, tc3_signature
from tests.fakes import SIGN_NAME, FakeAliyun, FakeTencent

PHONE = "+8613812345678"
CODE = "482913"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


# The templates the gateways' own examples use (the fakes default to others).
TEMPLATES = {"aliyun": "SMS_154950909", "tencent": "449739"}


def sender_for(
    gw: FakeAliyun | FakeTencent, http: httpx.AsyncClient, **overrides: object
) -> SmsProvider:
    """The provider make_provider builds for settings that point at the fake ``gw``."""
    values = {"sms_template": TEMPLATES[gw.kind]} | overrides
    return make_provider(load_settings({}, **gw.settings_overrides(**values)), http)


def aliyun(gw: FakeAliyun, http: httpx.AsyncClient, **overrides: object) -> AliyunProvider:
    provider = sender_for(gw, http, **overrides)
    assert isinstance(provider, AliyunProvider)
    return provider


def tencent(gw: FakeTencent, http: httpx.AsyncClient, **overrides: object) -> TencentProvider:
    provider = sender_for(gw, http, **overrides)
    assert isinstance(provider, TencentProvider)
    return provider


@pytest.fixture(params=["aliyun", "tencent"])
def gateway(request: pytest.FixtureRequest) -> FakeAliyun | FakeTencent:
    """Each fake gateway in turn, for what both adapters must do alike."""
    fake: FakeAliyun | FakeTencent = request.getfixturevalue(f"fake_{request.param}")
    return fake


# --- signing against the vendors' published examples -------------------------------------


def test_aliyun_signature_matches_the_published_example() -> None:
    # Aliyun SMS documentation, "HTTP协议及签名": AccessKeyId testId, secret testSecret.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert canonical_query(params) == (
        "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"
        "&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B"
        "%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1"
        "&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
        "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
        "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
    )
    assert string_to_sign(params).startswith("GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms")
    assert rpc_signature(params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@pytest.mark.parametrize(
    ("secret_key", "expected"),
    [
        # Tencent Cloud API 3.0 "签名方法 v3" (zh docs, masked key as printed there)
        (
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
        ),
        # the same example in the international docs
        (
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        ),
    ],
)
def test_tc3_signature_matches_the_published_example(secret_key: str, expected: str) -> None:
    # CVM DescribeInstances, timestamp 1551113065 (2019-02-25), payload byte for byte.
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    canonical = canonical_request("cvm.tencentcloudapi.com", payload)
    assert canonical.endswith("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    signature = tc3_signature(secret_key, timestamp=1551113065, canonical=canonical, service="cvm")
    assert signature == expected


def test_percent_encoding_follows_rfc3986() -> None:
    assert percent_encode("a b*c~d+e/f") == "a%20b%2Ac~d%2Be%2Ff"
    assert percent_encode("装") == "%E8%A3%85"
    assert percent_encode("-_.") == "-_."


def test_aliyun_phone_format() -> None:
    assert aliyun_phone("+8613812345678") == "13812345678"
    assert aliyun_phone("+85291234567") == "85291234567"
    assert aliyun_phone("+14155550123") == "14155550123"


def test_make_provider_picks_the_adapter() -> None:
    http = httpx.AsyncClient()
    assert isinstance(make_provider(load_settings({}), http), ConsoleProvider)
    assert make_provider(load_settings({}, sms_provider="aliyun"), http).name == "aliyun"
    assert make_provider(load_settings({}, sms_provider="tencent"), http).name == "tencent"


# --- Aliyun against the fake ---------------------------------------------------------------


# Each gateway's message id for an accepted send, and PHONE as it travels to the gateway.
ACCEPTED_ID = {"aliyun": r".+\^0", "tencent": r"2640:.+"}
SENT_AS = {"aliyun": "13812345678", "tencent": PHONE}
ADAPTER = {"aliyun": AliyunProvider, "tencent": TencentProvider}


async def test_send_is_accepted(gateway: FakeAliyun | FakeTencent, http: httpx.AsyncClient) -> None:
    provider = sender_for(gateway, http)
    assert isinstance(provider, ADAPTER[gateway.kind])
    result = await provider.send_code(PHONE, CODE)
    assert result.ok, result
    assert re.fullmatch(ACCEPTED_ID[gateway.kind], result.provider_id), result.provider_id
    [message] = gateway.messages
    assert message.phone == PHONE
    assert message.phone_as_sent == SENT_AS[gateway.kind]
    assert message.code == CODE
    assert message.sign_name == "装修小助手"
    assert message.template == TEMPLATES[gateway.kind]
    assert gateway.last_code("13812345678") == CODE
    assert gateway.last_code(PHONE) == CODE


async def test_aliyun_special_characters_survive_signing(http: httpx.AsyncClient) -> None:
    odd = "装修 小助手*~(测试)+&="
    with FakeAliyun(secret="s3cr3t/+=*~ &?") as gw:
        result = await aliyun(gw, http, sms_sign_name=odd, sms_template="SMS 1*~").send_code(
            "+85291234567", "007"
        )
        assert result.ok, result
        [message] = gw.messages
    assert message.sign_name == odd
    assert message.template == "SMS 1*~"
    assert message.phone_as_sent == "85291234567"
    assert message.code == "007"


async def test_aliyun_unknown_key_id_is_refused(
    fake_aliyun: FakeAliyun, http: httpx.AsyncClient
) -> None:
    result = await aliyun(fake_aliyun, http, sms_access_key_id="LTAI-nobody").send_code(PHONE, CODE)
    assert not result.ok
    assert result.error_code == "InvalidAccessKeyId.NotFound"


async def test_aliyun_accepts_a_timestamp_within_its_window(
    fake_aliyun: FakeAliyun, http: httpx.AsyncClient
) -> None:
    settings = load_settings({}, **fake_aliyun.settings_overrides())
    recent = AliyunProvider(settings, http, clock=lambda: time.time() - 10 * 60)
    assert (await recent.send_code(PHONE, CODE)).ok


async def test_aliyun_replayed_nonce_is_refused(
    fake_aliyun: FakeAliyun, http: httpx.AsyncClient
) -> None:
    query, body = aliyun(fake_aliyun, http).signed_request(PHONE, CODE)
    first = await http.post(fake_aliyun.url + "/", params=query, data=body)
    again = await http.post(fake_aliyun.url + "/", params=query, data=body)
    assert first.json()["Code"] == "OK"
    assert again.status_code == 400
    assert again.json()["Code"] == "SignatureNonceUsed"
    assert len(fake_aliyun.messages) == 1


async def test_aliyun_keeps_the_number_and_code_out_of_the_url() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Code": "OK", "BizId": "1^0", "Message": "OK"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        settings = load_settings({}, sms_provider="aliyun", sms_sign_name=SIGN_NAME)
        result = await AliyunProvider(settings, client).send_code(PHONE, CODE)
    assert result.ok and result.provider_id == "1^0"
    [request] = seen
    assert request.method == "POST"
    assert str(request.url).startswith("https://dysmsapi.aliyuncs.com/?Signature=")
    assert "13812345678" not in str(request.url) and CODE not in str(request.url)
    form = dict(parse_qsl(request.content.decode()))
    assert form["PhoneNumbers"] == "13812345678"
    assert json.loads(form["TemplateParam"]) == {"code": CODE}
    assert form["SignName"] == SIGN_NAME


async def test_fake_aliyun_checks_numbers(fake_aliyun: FakeAliyun, http: httpx.AsyncClient) -> None:
    provider = aliyun(fake_aliyun, http)
    result = await provider.send_code("+86123", CODE)
    assert result.error_code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert not result.retryable
    assert fake_aliyun.messages == []


async def test_aliyun_out_of_credit_is_logged_as_error(
    fake_aliyun: FakeAliyun, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_aliyun.fail_next("isv.AMOUNT_NOT_ENOUGH")
    with caplog.at_level(logging.ERROR, logger="leadkit.sms"):
        await aliyun(fake_aliyun, http).send_code(PHONE, CODE)
    assert any("out of credit" in r.getMessage() for r in caplog.records)
    assert all(CODE not in r.getMessage() for r in caplog.records)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_gateways_do_not_raise(http: httpx.AsyncClient) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    for name in ("aliyun", "tencent"):
        settings = load_settings({}, sms_provider=name, sms_endpoint=endpoint)
        result = await make_provider(settings, http).send_code(PHONE, CODE)
        assert not result.ok
        assert result.retryable
        assert result.error_code == "network_error"


# --- what both adapters do alike, against each fake ----------------------------------------


async def test_settings_overrides_helper(
    gateway: FakeAliyun | FakeTencent, http: httpx.AsyncClient
) -> None:
    sender = make_provider(load_settings({}, **gateway.settings_overrides()), http)
    assert (await sender.send_code(PHONE, "123456")).ok
    assert gateway.last_code(PHONE) == "123456"


WRONG_SECRET = {"aliyun": "SignatureDoesNotMatch", "tencent": "AuthFailure.SignatureFailure"}


async def test_wrong_secret_is_refused(
    gateway: FakeAliyun | FakeTencent, http: httpx.AsyncClient
) -> None:
    sender = sender_for(gateway, http, sms_access_key_secret="not-the-secret")
    result = await sender.send_code(PHONE, CODE)
    assert not result.ok
    assert result.error_code == WRONG_SECRET[gateway.kind]
    assert not result.retryable and not result.rate_limited
    assert gateway.messages == []


STALE_TIMESTAMP = {"aliyun": "InvalidTimeStamp.Expired", "tencent": "AuthFailure.SignatureExpire"}


async def test_stale_timestamp_is_refused(
    gateway: FakeAliyun | FakeTencent, http: httpx.AsyncClient
) -> None:
    settings = load_settings({}, **gateway.settings_overrides())
    adapter = AliyunProvider if isinstance(gateway, FakeAliyun) else TencentProvider
    stale = adapter(settings, http, clock=lambda: time.time() - 16 * 60)
    result = await stale.send_code(PHONE, CODE)
    assert not result.ok
    assert result.error_code == STALE_TIMESTAMP[gateway.kind]
    assert gateway.messages == []


async def test_stalled_gateway_times_out(
    gateway: FakeAliyun | FakeTencent, http: httpx.AsyncClient
) -> None:
    gateway.stall_next(5)
    result = await sender_for(gateway, http, sms_timeout_seconds=0.5).send_code(PHONE, CODE)
    assert not result.ok
    assert result.retryable
    assert result.error_code == "timeout"


@pytest.mark.parametrize(
    ("kind", "status", "body", "content_type"),
    [
        ("aliyun", 500, b"<html>Internal Server Error</html>", "text/html"),
        ("aliyun", 200, b"not json", "text/html"),
        ("tencent", 500, b"<html>oops</html>", "application/json"),
        ("tencent", 200, b"{not json", "application/json"),
        ("tencent", 200, b'{"Response": {}}', "application/json"),
        ("tencent", 200, b"[]", "application/json"),
    ],
)
async def test_garbage_answer_does_not_raise(
    request: pytest.FixtureRequest,
    http: httpx.AsyncClient,
    kind: str,
    status: int,
    body: bytes,
    content_type: str,
) -> None:
    gw: FakeAliyun | FakeTencent = request.getfixturevalue(f"fake_{kind}")
    gw.answer_raw_next(status, body, content_type)
    result = await sender_for(gw, http).send_code(PHONE, CODE)
    assert not result.ok
    assert result.retryable


# --- Tencent against the fake --------------------------------------------------------------


async def test_tencent_special_characters_survive_signing(http: httpx.AsyncClient) -> None:
    odd = 'Zhuang "修" 小助手\\*~/'
    with FakeTencent(secret_key="k/+= *~&") as gw:
        result = await tencent(gw, http, sms_sign_name=odd).send_code(PHONE, "000001")
        assert result.ok, result
        assert gw.messages[0].sign_name == odd
        assert gw.last_code(PHONE) == "000001"


async def test_tencent_tampered_body_is_refused(
    fake_tencent: FakeTencent, http: httpx.AsyncClient
) -> None:
    payload, headers = tencent(fake_tencent, http).request_parts(PHONE, CODE)
    tampered = payload.replace(CODE.encode(), b"999999")
    answer = await http.post(fake_tencent.url + "/", content=tampered, headers=headers)
    assert answer.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    answer = await http.post(fake_tencent.url + "/", content=payload, headers=headers)
    assert answer.json()["Response"]["SendStatusSet"][0]["Code"] == "Ok"
    assert fake_tencent.codes_for(PHONE) == [CODE]


# Aliyun's error codes: (code, retryable, rate_limited); its answers say nothing per number.
ALIYUN_ERRORS = [
    ("isv.BUSINESS_LIMIT_CONTROL", False, True),
    ("isv.MOBILE_NUMBER_ILLEGAL", False, False),
    ("isv.AMOUNT_NOT_ENOUGH", False, False),
    ("isp.SYSTEM_ERROR", True, False),
    ("isv.SOMETHING_NEW", False, False),
]
# Tencent's: (code, per_number: in the number's SendStatusSet rather than Response.Error,
# retryable, rate_limited).
TENCENT_ERRORS = [
    ("LimitExceeded.PhoneNumberDailyLimit", True, False, True),
    ("LimitExceeded.PhoneNumberThirtySecondLimit", False, False, True),
    ("InternalError", False, True, False),
    ("InternalError.Timeout", True, True, False),
    ("FailedOperation.InsufficientBalanceInSmsPackage", True, False, False),
    ("InvalidParameterValue.IncorrectPhoneNumber", True, False, False),
    ("UnsupportedOperation.Something", False, False, False),
]


@pytest.mark.parametrize(
    ("kind", "code", "per_number", "retryable", "rate_limited"),
    [
        *(("aliyun", code, None, *flags) for code, *flags in ALIYUN_ERRORS),
        *(("tencent", *row) for row in TENCENT_ERRORS),
    ],
)
async def test_error_codes(
    request: pytest.FixtureRequest,
    http: httpx.AsyncClient,
    kind: str,
    code: str,
    per_number: bool | None,
    retryable: bool,
    rate_limited: bool,
) -> None:
    gw: FakeAliyun | FakeTencent = request.getfixturevalue(f"fake_{kind}")
    gw.fail_next(code, "gateway says no", per_number=per_number)
    result = await sender_for(gw, http).send_code(PHONE, CODE)
    assert not result.ok
    assert result.error_code == code
    assert result.error_message == "gateway says no"
    assert (result.retryable, result.rate_limited) == (retryable, rate_limited)
    assert gw.messages == []
    # the forced answer is used up: the next send goes through
    assert (await sender_for(gw, http).send_code(PHONE, CODE)).ok


async def test_tencent_bad_number_is_refused(
    fake_tencent: FakeTencent, http: httpx.AsyncClient
) -> None:
    result = await tencent(fake_tencent, http).send_code("+86123", CODE)
    assert not result.ok
    assert result.error_code == "InvalidParameterValue.IncorrectPhoneNumber"
    assert not result.retryable


@pytest.mark.parametrize("spelling", ["Ok", "OK", "ok"])
async def test_tencent_success_code_spelling(spelling: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        status = {"SerialNo": "2640:1", "PhoneNumber": body["PhoneNumberSet"][0]}
        status.update(Code=spelling, Message="send success")
        return httpx.Response(200, json={"Response": {"SendStatusSet": [status], "RequestId": "r"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        settings = load_settings({}, sms_provider="tencent")
        result = await TencentProvider(settings, client).send_code(PHONE, CODE)
    assert result.ok
    assert result.provider_id == "2640:1"


async def test_tencent_signs_the_default_public_host() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Response": {"Error": {"Code": "InternalError"}}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        settings = load_settings({}, sms_provider="tencent", sms_region="ap-beijing")
        result = await TencentProvider(settings, client).send_code(PHONE, CODE)
    assert result.retryable
    [request] = seen
    assert str(request.url) == "https://sms.tencentcloudapi.com/"
    assert request.headers["Host"] == "sms.tencentcloudapi.com"
    assert request.headers["X-TC-Action"] == "SendSms"
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["X-TC-Region"] == "ap-beijing"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(request.content) == {
        "PhoneNumberSet": [PHONE],
        "SmsSdkAppId": "",
        "SignName": "",
        "TemplateId": "",
        "TemplateParamSet": [CODE],
    }


# --- endpoints behind a path, numbers that cannot receive, messages safe to log ------------


@pytest.mark.parametrize("endpoint_path", ["/sms/v1", "/sms/v1/"])
async def test_tencent_signs_the_path_it_posts_to(
    http: httpx.AsyncClient, endpoint_path: str
) -> None:
    # A gateway behind a path-routing proxy: the canonical URI is the path requested, as the
    # official SDK signs its request URI (signing "/" there was a signature mismatch).
    with FakeTencent(base_path="/sms/v1") as gw:
        endpoint = gw.url.removesuffix("/sms/v1") + endpoint_path
        result = await tencent(gw, http, sms_endpoint=endpoint).send_code(PHONE, CODE)
        assert result.ok, result
        assert gw.last_code(PHONE) == CODE


async def test_aliyun_endpoint_with_a_path(http: httpx.AsyncClient) -> None:
    # RPC signatures cover "/" whatever the path; the request must still go to the path.
    with FakeAliyun(base_path="/sms/v1") as gw:
        result = await aliyun(gw, http, sms_endpoint=gw.url).send_code(PHONE, CODE)
        assert result.ok, result
        assert gw.last_code(PHONE) == CODE
        elsewhere = await aliyun(gw, http, sms_endpoint=gw.url.removesuffix("/sms/v1")).send_code(
            PHONE, CODE
        )
        assert elsewhere.error_code == "InvalidAction.NotFound"


@pytest.mark.parametrize(
    ("kind", "code", "invalid_number"),
    [
        ("aliyun", "isv.MOBILE_NUMBER_ILLEGAL", True),
        ("aliyun", "isp.SYSTEM_ERROR", False),
        ("aliyun", "isv.BUSINESS_LIMIT_CONTROL", False),
        ("aliyun", "isv.AMOUNT_NOT_ENOUGH", False),
        ("tencent", "InvalidParameterValue.IncorrectPhoneNumber", True),
        ("tencent", "FailedOperation.PhoneNumberInBlacklist", True),
        ("tencent", "UnsupportedOperation.UnsupportedRegion", True),
        ("tencent", "InternalError.Timeout", False),
        ("tencent", "LimitExceeded.PhoneNumberDailyLimit", False),
        ("tencent", "FailedOperation.InsufficientBalanceInSmsPackage", False),
    ],
)
async def test_marks_numbers_that_cannot_receive(
    request: pytest.FixtureRequest,
    http: httpx.AsyncClient,
    kind: str,
    code: str,
    invalid_number: bool,
) -> None:
    gw: FakeAliyun | FakeTencent = request.getfixturevalue(f"fake_{kind}")
    gw.fail_next(code)
    result = await sender_for(gw, http).send_code(PHONE, CODE)
    assert not result.ok
    assert result.invalid_number is invalid_number
    assert not (result.invalid_number and result.retryable)


async def test_gateway_messages_keep_no_number_or_string_to_sign(
    fake_aliyun: FakeAliyun, http: httpx.AsyncClient
) -> None:
    # Aliyun echoes its whole string to sign (AccessKeyId, number, code) on a mismatch.
    result = await aliyun(fake_aliyun, http, sms_access_key_secret="wrong").send_code(PHONE, CODE)
    assert result.error_code == "SignatureDoesNotMatch"
    last = fake_aliyun.last_rejection()
    assert last is not None and "13812345678" in last.message  # what the gateway said
    assert "13812345678" not in result.error_message
    assert fake_aliyun.access_key_id not in result.error_message
    assert "string to sign" in result.error_message  # the useful part is kept
