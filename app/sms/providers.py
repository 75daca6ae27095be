"""The provider LEADKIT_SMS_PROVIDER names, and who processes visitors' numbers through it."""

from __future__ import annotations

import httpx

from app.core.i18n import N_
from app.settings import Settings
from app.sms.aliyun import AliyunProvider
from app.sms.base import SmsProvider
from app.sms.console import ConsoleProvider
from app.sms.tencent import TencentProvider

# Who receives visitors' numbers to send them their codes, by LEADKIT_SMS_PROVIDER: the
# processor the privacy notice must name (PIPL art. 21), by its registered name.
SMS_PROCESSORS: dict[str, str] = {
    "console": N_(
        "Nobody: this is a test installation, and verification codes are not actually sent."
    ),
    "aliyun": N_("Alibaba Cloud SMS (Alibaba Cloud Computing Co., Ltd.)"),
    "tencent": N_("Tencent Cloud SMS (Tencent Cloud Computing (Beijing) Co., Ltd.)"),
}


def make_provider(settings: Settings, http: httpx.AsyncClient) -> SmsProvider:
    """The provider named by LEADKIT_SMS_PROVIDER."""
    if settings.sms_provider == "aliyun":
        return AliyunProvider(settings, http)
    if settings.sms_provider == "tencent":
        return TencentProvider(settings, http)
    return ConsoleProvider()
