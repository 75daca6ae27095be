"""pytest fixtures for the fake outside services. Load with
``pytest_plugins = ["tests.fakes.plugin"]`` (tests/conftest.py or a test module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.sms_gateways import FakeAliyun, FakeTencent


@pytest.fixture
def fake_aliyun() -> Iterator[FakeAliyun]:
    """A running fake Aliyun Dysmsapi with the default test credentials (see sms_gateways)."""
    with FakeAliyun() as gateway:
        yield gateway


@pytest.fixture
def fake_tencent() -> Iterator[FakeTencent]:
    """A running fake Tencent Cloud SMS with the default test credentials."""
    with FakeTencent() as gateway:
        yield gateway
