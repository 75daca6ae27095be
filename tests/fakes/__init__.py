"""Fakes of outside services for tests.

SMS gateways (``tests.fakes.sms_gateways``): ``FakeAliyun`` and ``FakeTencent``, context managers
that run a fake gateway on 127.0.0.1 speaking the real protocol. Their pytest fixtures
``fake_aliyun`` / ``fake_tencent`` live in ``tests.fakes.plugin``; load them with
``pytest_plugins = ["tests.fakes.plugin"]`` (in tests/conftest.py or a test module)::

    def test_gate_sends_a_code(fake_aliyun):
        settings = load_settings({}, **fake_aliyun.settings_overrides())
        ...
        assert fake_aliyun.last_code("+8613812345678") == "123456"
"""

from __future__ import annotations

from tests.fakes.sms_gateways import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    ALIYUN_TEMPLATE,
    SIGN_NAME,
    TENCENT_APP_ID,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    TENCENT_TEMPLATE,
    FakeAliyun,
    FakeTencent,
    Rejection,
    SentMessage,
    normalise_phone,
)

__all__ = [
    "ALIYUN_KEY_ID",
    "ALIYUN_SECRET",
    "ALIYUN_TEMPLATE",
    "SIGN_NAME",
    "TENCENT_APP_ID",
    "TENCENT_SECRET_ID",
    "TENCENT_SECRET_KEY",
    "TENCENT_TEMPLATE",
    "FakeAliyun",
    "FakeTencent",
    "Rejection",
    "SentMessage",
    "normalise_phone",
]
