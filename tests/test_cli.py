"""The real ``leadkit`` console script, run as an operator would, against a scratch database."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import TestClient

from app.asgi import create_app
from app.db.migrate import current_head
from app.settings import env_names, load_settings
from tests.conftest import PG_HOST, PG_PORT, PG_UP, PG_USER, TEST_SECRET
from tests.helpers import Browserish
from tests.served import scratch_postgres

LEADKIT = Path(sys.executable).parent / "leadkit"
SALES_PASSWORD = "sales-password-42"


class Cli:
    """Runs ``leadkit`` in a clean environment: only the variables a test sets."""

    def __init__(self, tmp_path: Path) -> None:
        self.workdir = tmp_path
        self.db_path = tmp_path / "cli.db"
        self.data_dir = tmp_path / "data"
        # Nothing from the caller's environment (CI, `make test` exports PORT) leaks in.
        self.env = {
            key: value for key, value in os.environ.items() if key not in env_names().values()
        }
        self.env |= {
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.db_path}",
            "LEADKIT_DATA_DIR": str(self.data_dir),
            "LEADKIT_LOG_LEVEL": "WARNING",
        }

    def __call__(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LEADKIT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **env},
            cwd=self.workdir,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        result = self(*args, stdin=stdin, **env)
        assert result.returncode == 0, f"leadkit {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()

    def app_client(self) -> TestClient:
        settings = load_settings(
            {},
            database_url=self.env["DATABASE_URL"],
            secret_key=TEST_SECRET,
            data_dir=str(self.data_dir),
            log_level="WARNING",
        )
        return TestClient(app=create_app(settings), base_url="http://testserver.local")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    assert LEADKIT.exists(), f"no console script at {LEADKIT}: run `make install`"
    return Cli(tmp_path)


@pytest.fixture
def migrated(cli: Cli) -> Cli:
    cli.ok("db", "upgrade")
    return cli


def test_db_upgrade_is_idempotent(cli: Cli) -> None:
    first = cli.ok("db", "upgrade")
    assert "database at head" in first.stdout
    assert cli.query("SELECT version_num FROM alembic_version") == [(current_head(),)]
    cli.ok("db", "upgrade")
    assert cli.query("SELECT version_num FROM alembic_version") == [(current_head(),)]
    assert cli.query("PRAGMA journal_mode") == [("wal",)]


def _login(stdout: str) -> tuple[str, str]:
    username = re.search(r"^\s*username: (\S+)$", stdout, re.M)
    password = re.search(r"^\s*password: (\S+)$", stdout, re.M)
    assert username and password, stdout
    return username.group(1), password.group(1)


def test_demo_prints_the_same_login_every_time(migrated: Cli) -> None:
    username, password = _login(migrated.ok("demo").stdout)
    assert username == "admin"
    assert len(password) >= 10
    again = migrated.ok("demo")
    assert _login(again.stdout) == (username, password)
    users = {
        str(name): role for name, role in migrated.query("SELECT username, role FROM staff_user")
    }
    assert users == {"admin": "admin", "marketer": "marketer", "host": "host", "sales": "sales"}
    with migrated.app_client() as raw:
        assert Browserish(raw).login(username, password).status_code == 303


def test_user_create_reads_the_password_from_stdin(migrated: Cli) -> None:
    args = ("user", "create", "xiaozhang", "--role", "sales", "--password-stdin")
    created = migrated.ok(*args, stdin=SALES_PASSWORD + "\n")
    assert "xiaozhang" in created.stdout
    assert SALES_PASSWORD not in created.stdout + created.stderr
    assert migrated.query("SELECT username, role FROM staff_user") == [("xiaozhang", "sales")]
    with migrated.app_client() as raw:
        client = Browserish(raw)
        assert client.login("xiaozhang", SALES_PASSWORD).status_code == 303
        assert client.get("/staff/admin/users").status_code == 403


def test_user_create_refuses_a_duplicate_and_a_short_password(migrated: Cli) -> None:
    args = ("user", "create", "xiaozhang", "--role", "sales", "--password-stdin")
    migrated.ok(*args, stdin=SALES_PASSWORD + "\n")
    duplicate = migrated(*args, stdin="another-password-1\n")
    assert duplicate.returncode != 0
    assert "already taken" in duplicate.stderr
    short = migrated(
        "user", "create", "xiaoli", "--role", "host", "--password-stdin", stdin="short\n"
    )
    assert short.returncode != 0
    assert "password" in short.stderr
    assert migrated.query("SELECT username FROM staff_user") == [("xiaozhang",)]


def test_token_create_prints_the_token_last_and_it_authenticates(migrated: Cli) -> None:
    result = migrated.ok("token", "create", "--role", "marketer", "--name", "crm")
    token = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"lk_[A-Za-z0-9_\-]{20,}", token), result.stdout
    # Only a hash is stored.
    assert token not in str(migrated.query("SELECT * FROM api_token"))
    with migrated.app_client() as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json() == {"name": "crm", "role": "marketer", "via": "token"}
        wrong = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}x"})
        assert wrong.status_code == 401


def test_check_reports_the_configuration_and_a_healthy_database(migrated: Cli) -> None:
    result = migrated.ok("check")
    assert "database: ok" in result.stdout
    assert "redis: absent" in result.stdout
    assert re.search(r"^DATABASE_URL\s+sqlite\+aiosqlite:///", result.stdout, re.M)


def test_check_never_prints_secrets(migrated: Cli) -> None:
    secrets = {
        "LEADKIT_SECRET_KEY": TEST_SECRET,
        "LEADKIT_DATA_KEY": "data-key-that-must-stay-secret-0123456789",
        "LEADKIT_SMS_ACCESS_KEY_SECRET": "sms-gateway-secret-0123",
        "LEADKIT_ADMIN_PASSWORD": "admin-password-0123",
    }
    result = migrated("check", **secrets)
    for name, value in secrets.items():
        assert value not in result.stdout + result.stderr
        assert re.search(rf"^{name}\s+\(set\)$", result.stdout, re.M), name
    with_passwords = migrated(
        "check",
        DATABASE_URL="postgresql+asyncpg://leadkit:db-password-0123@127.0.0.1:1/leadkit",
        REDIS_URL="redis://:redis-password-0123@127.0.0.1:1/0",
    )
    assert with_passwords.returncode == 1
    assert "password-0123" not in with_passwords.stdout + with_passwords.stderr
    assert "postgresql+asyncpg://leadkit:***@127.0.0.1:1/leadkit" in with_passwords.stdout


def test_check_fails_when_the_database_does_not_answer(cli: Cli) -> None:
    result = cli("check", DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/leadkit")
    assert result.returncode == 1
    assert "database: FAILED" in result.stdout


def test_check_fails_on_an_unmigrated_database(cli: Cli) -> None:
    result = cli("check")
    assert result.returncode == 1
    assert "leadkit db upgrade" in result.stdout


@pytest.mark.parametrize(
    "args", [("check",), ("db", "upgrade"), ("demo",), ("serve", "--port", "1")]
)
def test_prod_without_a_secret_refuses_every_command(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args, LEADKIT_ENV="prod")
    assert result.returncode != 0
    assert "LEADKIT_SECRET_KEY" in result.stderr
    assert not cli.db_path.exists()


@pytest.fixture
def pg_database() -> Iterator[str]:
    if not PG_UP:
        pytest.skip(f"PostgreSQL does not answer on {PG_HOST}:{PG_PORT}")
    with scratch_postgres(
        f"leadkit_cli_test_{os.getpid()}", host=PG_HOST, port=PG_PORT, user=PG_USER
    ) as url:
        yield url


def test_db_upgrade_and_check_on_postgresql(cli: Cli, pg_database: str) -> None:
    cli.ok("db", "upgrade", DATABASE_URL=pg_database)
    cli.ok("db", "upgrade", DATABASE_URL=pg_database)
    check = cli.ok("check", DATABASE_URL=pg_database)
    assert "database: ok (up to date)" in check.stdout

    async def version() -> list[str]:
        conn = await asyncpg.connect(pg_database.replace("+asyncpg", ""))
        try:
            return [row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version")]
        finally:
            await conn.close()

    assert asyncio.run(version()) == [current_head()]
