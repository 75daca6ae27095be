"""Settings: one environment variable per field, each with a default, read once.

Every field is documented in README.md's configuration table; a test fails when one is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

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


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    database_url: str = "sqlite+aiosqlite:///./var/leadkit.db"
    db_pool_size: int = 10
    redis_url: str = ""
    redis_prefix: str = "leadkit:"
    redis_max_connections: int = 50
    secret_key: str = DEV_SECRET_KEY
    data_dir: str = "./var"
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    frame_ancestors: str = "'self'"
    max_body_bytes: int = 1_048_576
    session_ttl_hours: int = 12
    login_max_per_ip: int = 30
    login_max_per_user: int = 8
    login_window_seconds: int = 900
    trust_proxy: bool = False
    admin_username: str = "admin"
    admin_password: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_key: str = ""
    brand_name: str = "leadkit"
    report_workers: int = 1
    privacy_notice_version: str = "2026-11-01"
    visitor_cookie_days: int = 365
    events_flush_seconds: float = 1.0
    events_batch_max: int = 100
    events_ip_per_minute: int = 1200
    sms_provider: Literal["console", "aliyun", "tencent"] = "console"
    sms_endpoint: str = ""
    sms_access_key_id: str = ""
    sms_access_key_secret: str = ""
    sms_sign_name: str = ""
    sms_template: str = ""
    sms_app_id: str = ""
    sms_region: str = "ap-guangzhou"
    sms_timeout_seconds: float = 5.0
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    otp_resend_seconds: int = 60
    otp_phone_hourly_cap: int = 5
    otp_phone_daily_cap: int = 10
    otp_ip_daily_cap: int = 30
    grab_ip_per_minute: int = 600
    grab_visitor_per_minute: int = 30
    voucher_undo_minutes: int = 10

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

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
    if settings.port < 1 or settings.port > 65535:
        raise SettingsError("PORT must be between 1 and 65535")
    if settings.workers < 1:
        raise SettingsError("LEADKIT_WORKERS must be at least 1")
    if settings.max_body_bytes < 1024:
        raise SettingsError("LEADKIT_MAX_BODY_BYTES must be at least 1024")
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
