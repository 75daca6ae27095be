"""Settings: one environment variable per field, each with a default, read once.

Every field is documented in README.md's configuration table; a test fails when one is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, get_type_hints
from urllib.parse import urlsplit

import msgspec

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0000000000"  # noqa: S105 (refused in prod)

# Fields whose variable is not simply LEADKIT_<FIELD>: these follow widespread conventions.
_CONVENTIONAL_NAMES = {
    "host": "HOST",
    "port": "PORT",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
}


class SettingsError(ValueError):
    """The environment describes a configuration leadkit refuses to run with."""


@dataclass(frozen=True)
class Range:
    """The numbers a field takes: at least ``low``, at most ``high`` (None: no ceiling), written
    beside the field (``backlog: Annotated[int, Range(128)]``). An error names the field's
    variable: "LEADKIT_BACKLOG must be at least 128"."""

    low: float
    high: float | None = None


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: Annotated[int, Range(1, 65535)] = 8000
    workers: Annotated[int, Range(1)] = 1
    # Capacity: connections and live streams (docs/deploying.md, "Connections and live rooms").
    backlog: Annotated[int, Range(128)] = 2048
    max_connections: Annotated[int, Range(16)] = 4096
    streams_per_worker: Annotated[int, Range(0)] = 3072
    streams_per_ip: Annotated[int, Range(0)] = 20
    stream_poll_seconds: Annotated[int, Range(1)] = 5
    database_url: str = "sqlite+aiosqlite:///./var/leadkit.db"
    db_pool_size: int = 10
    db_side_pool_size: int = 4
    redis_url: str = ""
    redis_prefix: str = "leadkit:"
    redis_max_connections: int = 50
    secret_key: str = DEV_SECRET_KEY
    data_dir: str = "./var"
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    frame_ancestors: str = "'self'"
    max_body_bytes: Annotated[int, Range(1024)] = 1_048_576
    session_ttl_hours: int = 12
    # Staff sign-in limits (docs/security.md, "Staff sign-in").
    login_max_per_ip: Annotated[int, Range(1)] = 30
    login_max_per_user_ip: Annotated[int, Range(1)] = 8
    login_window_seconds: Annotated[int, Range(1)] = 900
    login_slowdown_after: Annotated[int, Range(0)] = 3
    login_slowdown_base_seconds: Annotated[float, Range(0)] = 1.0
    # The wait is the sign-in's own response time: more than a minute and proxies time out.
    login_slowdown_max_seconds: Annotated[float, Range(0, 60)] = 10.0
    login_max_concurrent_checks: Annotated[int, Range(1)] = 2
    login_max_queued_checks: Annotated[int, Range(0)] = 8
    trust_proxy: bool = False
    admin_username: str = "admin"
    admin_password: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_key: str = ""
    brand_name: str = "leadkit"
    report_workers: int = 1
    privacy_notice_version: str = "2026-11-01"
    # What the privacy notice says (PIPL art. 17): who is responsible for the data (empty: the
    # brand's name), how to reach them (empty: the brand's contact phone), how long it is kept.
    privacy_business_name: str = ""
    privacy_contact: str = ""
    privacy_retention_days: Annotated[int, Range(1, 36500)] = 365
    visitor_cookie_days: int = 365
    events_flush_seconds: float = 1.0
    events_batch_max: int = 100
    events_ip_per_minute: int = 1200
    events_visitor_per_minute: int = 300
    sms_provider: Literal["console", "aliyun", "tencent"] = "console"
    sms_endpoint: str = ""
    sms_access_key_id: str = ""
    sms_access_key_secret: str = ""
    sms_sign_name: str = ""
    sms_template: str = ""
    sms_app_id: str = ""
    sms_region: str = "ap-guangzhou"
    sms_timeout_seconds: float = 5.0
    # The template of messages sent through the outbox when the sender names none.
    sms_notify_template: str = ""
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    otp_resend_seconds: int = 60
    otp_phone_hourly_cap: int = 5
    otp_phone_daily_cap: int = 10
    otp_ip_daily_cap: int = 30
    # SMS pumping defences (docs/security.md, "SMS codes").
    otp_hourly_budget: Annotated[int, Range(1)] = 100
    otp_daily_budget: Annotated[int, Range(1)] = 1000
    otp_budget_alert_percent: Annotated[int, Range(0, 100)] = 80
    otp_allowed_countries: str = "86"
    otp_pow_ip_hourly: Annotated[int, Range(0)] = 5
    otp_pow_budget_percent: Annotated[int, Range(0, 100)] = 50
    otp_pow_cost: Annotated[int, Range(1)] = 5000
    otp_pow_ttl_seconds: Annotated[int, Range(30)] = 600
    grab_ip_per_minute: int = 600
    grab_visitor_per_minute: int = 30
    voucher_undo_minutes: int = 10
    # drand, the public randomness a draw mixes in (docs/draws.md): the beacon and its chain hash.
    drand_url: str = "https://api.drand.sh"
    drand_chain: str = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
    # The outbox's sender (docs/development.md, "The outbox"): how often it looks for due
    # messages without a wake-up, how many it takes at once, retries and the claim's lease.
    outbox_poll_seconds: Annotated[float, Range(0.05, 3600)] = 2.0
    outbox_batch: Annotated[int, Range(1, 500)] = 20
    outbox_max_attempts: Annotated[int, Range(1, 100)] = 8
    outbox_backoff_seconds: Annotated[float, Range(0.01, 86400)] = 5.0
    outbox_lease_seconds: Annotated[int, Range(5, 86400)] = 60

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

    @property
    def allowed_country_codes(self) -> frozenset[int]:
        """LEADKIT_OTP_ALLOWED_COUNTRIES as numbers: "86, 852" -> {86, 852}."""
        parts = self.otp_allowed_countries.split(",")
        return frozenset(int(part) for part in parts if part.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return _CONVENTIONAL_NAMES.get(field, f"LEADKIT_{field.upper()}")


def env_names() -> dict[str, str]:
    return {field: env_name(field) for field in Settings.__struct_fields__}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from ``environ`` (default: the process environment) plus overrides."""
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {
        field: environ[name] for field, name in env_names().items() if environ.get(name, "") != ""
    }
    raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(str(exc))) from exc
    _check(settings)
    return settings


def _explain(message: str) -> str:
    # msgspec says "at `$.port`"; name the variable the operator actually sets.
    for field, name in env_names().items():
        message = message.replace(f"`$.{field}`", name)
    return f"invalid setting: {message}"


def _check(settings: Settings) -> None:
    _check_bounds(settings)
    _check_capacity(settings)
    _check_sms_defences(settings)
    _check_drand(settings)
    if not settings.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    weak_secret = settings.secret_key == DEV_SECRET_KEY or len(settings.secret_key) < 32
    if settings.is_prod and weak_secret:
        raise SettingsError(
            "LEADKIT_ENV=prod refuses the default or a short LEADKIT_SECRET_KEY: "
            "set it to at least 32 random characters (python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')"
        )
    if settings.is_prod and settings.sms_provider == "console":
        raise SettingsError(
            "LEADKIT_ENV=prod needs a real LEADKIT_SMS_PROVIDER (aliyun or tencent): "
            "the console provider sends nothing"
        )
    if settings.is_prod and len(settings.data_key) < 32:
        raise SettingsError(
            "LEADKIT_ENV=prod needs LEADKIT_DATA_KEY (at least 32 random characters): it "
            "encrypts phone numbers at rest; keep it apart from LEADKIT_SECRET_KEY and back it up"
        )


def _ranges() -> dict[str, Range]:
    """The fields that must lie in a range, in their order, with the range."""
    hints = get_type_hints(Settings, include_extras=True)
    return {
        field: extra
        for field, hint in hints.items()
        for extra in getattr(hint, "__metadata__", ())
        if isinstance(extra, Range)
    }


_RANGES = _ranges()


def _check_bounds(settings: Settings) -> None:
    for field, bounds in _RANGES.items():
        value, low, high = getattr(settings, field), bounds.low, bounds.high
        if high is None and value < low:
            raise SettingsError(f"{env_name(field)} must be at least {low}")
        if high is not None and not low <= value <= high:
            raise SettingsError(f"{env_name(field)} must be between {low} and {high}")


def _check_sms_defences(settings: Settings) -> None:
    codes = [part.strip() for part in settings.otp_allowed_countries.split(",")]
    if not codes or not all(c.isascii() and c.isdigit() and 1 <= len(c) <= 3 for c in codes):
        raise SettingsError(
            "LEADKIT_OTP_ALLOWED_COUNTRIES must be country calling codes separated by commas, "
            'e.g. "86" or "86,852,853"'
        )
    if settings.sms_endpoint and not _is_plain_http_url(settings.sms_endpoint):
        # The request is signed over its path and host: a query or fragment would be sent
        # unsigned (or dropped) and the gateway would refuse every code.
        raise SettingsError(
            "LEADKIT_SMS_ENDPOINT must be an http:// or https:// URL without a query or "
            "fragment, e.g. https://dysmsapi.aliyuncs.com or https://sms.example/sms/v1"
        )


def _check_capacity(settings: Settings) -> None:
    # Streams live for minutes; page loads must always find a free connection beside them.
    if settings.streams_per_worker > settings.max_connections * 9 // 10:
        raise SettingsError(
            "LEADKIT_STREAMS_PER_WORKER must leave at least a tenth of LEADKIT_MAX_CONNECTIONS "
            f"to page loads: at most {settings.max_connections * 9 // 10} with "
            f"LEADKIT_MAX_CONNECTIONS={settings.max_connections}"
        )


def _check_drand(settings: Settings) -> None:
    if not _is_plain_http_url(settings.drand_url):
        raise SettingsError(
            "LEADKIT_DRAND_URL must be an http:// or https:// URL without a query or fragment, "
            "e.g. https://api.drand.sh"
        )
    chain = settings.drand_chain
    if len(chain) != 64 or any(c not in "0123456789abcdef" for c in chain):
        raise SettingsError(
            "LEADKIT_DRAND_CHAIN must be a drand chain hash: 64 lowercase hex digits, e.g. "
            "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971 (quicknet)"
        )


def _is_plain_http_url(value: str) -> bool:
    """An http:// or https:// URL with a host, and neither a query nor a fragment."""
    url = urlsplit(value)
    return (
        url.scheme in ("http", "https") and bool(url.netloc) and not url.query and not url.fragment
    )
