"""Settings: every variable documented, defaults that run, and refusals that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.asgi import create_app
from app.db.migrate import upgrade
from app.settings import DEV_SECRET_KEY, Settings, SettingsError, env_names, load_settings
from app.staff.auth import SESSION_COOKIE, session_cookie
from tests.helpers import Browserish

README = Path(__file__).resolve().parent.parent / "README.md"
PROD_SECRET = "p" * 48
# Everything else production insists on, so each test below varies one thing only.
PROD_ENV = {
    "LEADKIT_ENV": "prod",
    "LEADKIT_SECRET_KEY": PROD_SECRET,
    "LEADKIT_DATA_KEY": "d" * 48,
    "LEADKIT_SMS_PROVIDER": "aliyun",
}


def _configuration_table() -> dict[str, list[str]]:
    """Rows of README's configuration table: variable name -> the other cells."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Configuration\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section is not None, "README.md has no '## Configuration' section"
    rows: dict[str, list[str]] = {}
    for line in section.group(1).splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        if name:
            rows[name.group(1)] = cells[1:]
    return rows


@pytest.mark.parametrize("name", sorted(env_names().values()))
def test_every_setting_has_a_row_in_the_readme(name: str) -> None:
    rows = _configuration_table()
    assert name in rows, f"{name} is missing from README.md's configuration table"
    assert len(rows[name]) >= 2 and rows[name][-1], f"{name} has no description in README.md"


def test_readme_documents_no_setting_that_does_not_exist() -> None:
    stale = set(_configuration_table()) - set(env_names().values())
    assert not stale, f"README.md documents unknown settings: {sorted(stale)}"


def test_defaults_load_from_an_empty_environment() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.env == "dev"
    assert settings.database_url == "sqlite+aiosqlite:///./var/leadkit.db"
    assert settings.port == 8000
    assert settings.redis_url == ""


def test_variables_are_read_and_converted() -> None:
    settings = load_settings(
        {
            "PORT": "9001",
            "LEADKIT_TRUST_PROXY": "true",
            "LEADKIT_FRAME_ANCESTORS": "'self' https://www.example.com",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "LEADKIT_DEFAULT_LOCALE": "en",
            # An empty variable means "use the default", as when a compose file leaves it blank.
            "HOST": "",
        }
    )
    assert settings.port == 9001
    assert settings.trust_proxy is True
    assert settings.frame_ancestors == "'self' https://www.example.com"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.default_locale == "en"
    assert settings.host == "127.0.0.1"


@pytest.mark.parametrize("secret", [None, DEV_SECRET_KEY, "too-short-secret"])
def test_prod_refuses_the_default_or_a_short_secret(secret: str | None) -> None:
    environ = {key: value for key, value in PROD_ENV.items() if key != "LEADKIT_SECRET_KEY"}
    if secret is not None:
        environ["LEADKIT_SECRET_KEY"] = secret
    with pytest.raises(SettingsError, match="LEADKIT_SECRET_KEY"):
        load_settings(environ)


def test_prod_runs_with_a_long_secret() -> None:
    settings = load_settings(PROD_ENV)
    assert settings.is_prod
    assert settings.secret_key == PROD_SECRET


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "0"),
        ("LEADKIT_ENV", "staging"),
        ("DATABASE_URL", "mysql://root@127.0.0.1/leadkit"),
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1/leadkit"),
        ("LEADKIT_TRUST_PROXY", "maybe"),
        ("LEADKIT_WORKERS", "0"),
        ("LEADKIT_DEFAULT_LOCALE", "fr"),
        ("LEADKIT_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    assert variable in str(caught.value)


def test_session_cookie_is_secure_only_in_prod() -> None:
    dev = session_cookie(load_settings({}), "raw-token")
    prod = session_cookie(load_settings(PROD_ENV), "raw-token")
    assert dev.secure is False
    assert prod.secure is True
    assert prod.httponly is True
    assert prod.samesite == "lax"


def test_prod_app_sets_secure_cookies_and_hsts(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'leadkit.db'}"
    upgrade(database_url)
    settings = load_settings(
        PROD_ENV,
        database_url=database_url,
        data_dir=str(tmp_path),
        frame_ancestors="'self' https://www.example.com",
        log_level="WARNING",
    )
    # https: the client keeps Secure cookies (CSRF, session) only for an https origin.
    with TestClient(app=create_app(settings), base_url="https://testserver.local") as raw:
        client = Browserish(raw)
        home = client.get("/")
        assert "max-age=" in home.headers["strict-transport-security"]
        csp = home.headers["content-security-policy"]
        assert "frame-ancestors 'self' https://www.example.com" in csp
        assert "'unsafe-inline'" not in csp
        client.make_staff("boss", "admin")
        response = client.login("boss")
        assert response.status_code == 303
        session = [
            header
            for header in response.headers.get_list("set-cookie")
            if header.startswith(f"{SESSION_COOKIE}=")
        ]
        assert len(session) == 1
        attributes = {part.strip().lower() for part in session[0].split(";")}
        assert {"secure", "httponly", "samesite=lax"} <= attributes
