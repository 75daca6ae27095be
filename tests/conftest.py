"""Fixtures: the real app on a real database, once per backend.

Storage-dependent tests take ``client`` (or ``app``) and run on SQLite and again on
PostgreSQL + Redis when 127.0.0.1:5432 and :6379 answer; each test gets a clean database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.asgi import create_app
from app.db.migrate import upgrade
from app.settings import Settings, load_settings
from tests.helpers import Browserish, answers

# Fake third parties (SMS gateways, …) as fixtures: fake_aliyun, fake_tencent; and `served`,
# the app as `leadkit serve` runs it (tests/served.py).
pytest_plugins = ["tests.fakes.plugin", "tests.served"]

PG_HOST = os.environ.get("LEADKIT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("LEADKIT_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("LEADKIT_TEST_PG_USER", "postgres")
REDIS_TEST_URL = os.environ.get("LEADKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
# Our own key prefix, per run, so parallel runs on one Redis never touch each other's keys.
REDIS_PREFIX = f"leadkit-test-{os.getpid()}:"
TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnop"


PG_UP = answers(PG_HOST, PG_PORT)
REDIS_UP = answers("127.0.0.1", int(REDIS_TEST_URL.split(":")[-1].split("/")[0]))
POSTGRES_SKIP = (
    None
    if PG_UP and REDIS_UP
    else f"PostgreSQL ({PG_HOST}:{PG_PORT}: {'up' if PG_UP else 'absent'}) and Redis "
    f"({REDIS_TEST_URL}: {'up' if REDIS_UP else 'absent'}) are needed for the postgres backend"
)


# LEADKIT_TEST_BACKENDS=sqlite (make test-fast) runs the SQLite half only; the default is both.
BACKENDS = {
    name.strip()
    for name in os.environ.get("LEADKIT_TEST_BACKENDS", "sqlite,postgres").split(",")
    if name.strip()
}
# In CI the PostgreSQL + Redis half is expected: missing services fail the run, never skip it.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Fixtures that start real server processes: such tests are marked `served`.
SERVED_FIXTURES = {"served", "live_server", "proc_settings", "served_sqlite", "served_postgres"}


def pytest_report_header(config: pytest.Config) -> list[str]:
    if "postgres" not in BACKENDS:
        return ["leadkit backends: sqlite only (LEADKIT_TEST_BACKENDS)"]
    if POSTGRES_SKIP:
        return [f"leadkit backends: sqlite only; SKIPPING postgres+redis: {POSTGRES_SKIP}"]
    return ["leadkit backends: sqlite, postgres+redis"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and "postgres" in BACKENDS and POSTGRES_SKIP:
        pytest.exit(f"CI=true expects both backends: {POSTGRES_SKIP}", returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests that start server processes `served`; leave out the PostgreSQL half when
    LEADKIT_TEST_BACKENDS says so."""
    kept, dropped = [], []
    for item in items:
        if SERVED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.served)
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_postgres = any(str(v).startswith("postgres") for v in params.values())
        (dropped if on_postgres and "postgres" not in BACKENDS else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _base_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": TEST_SECRET,
        "data_dir": str(tmp),
        "redis_url": "",
        "admin_password": "",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """argon2's cheapest parameters for the suite's many staff sign-ins (~0.2 s each with the
    production parameters). Production hashing is unchanged; the browser tests' servers, being
    separate processes, still use it."""
    from argon2 import PasswordHasher, profiles

    from app.staff import passwords

    saved = passwords._hasher, passwords._DUMMY_HASH
    cheap = PasswordHasher.from_parameters(profiles.CHEAPEST)
    passwords._hasher = cheap
    passwords._DUMMY_HASH = cheap.hash("unknown-user")
    yield
    passwords._hasher, passwords._DUMMY_HASH = saved


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    # tests.served is a plugin (pytest_plugins): imported here, not above, so that pytest
    # imports it first and rewrites its asserts.
    from tests.served import scratch_postgres

    with scratch_postgres(
        f"leadkit_test_{os.getpid()}", host=PG_HOST, port=PG_PORT, user=PG_USER
    ) as url:
        upgrade(url)
        yield url


def _clean_postgres(url: str) -> None:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def truncate() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            tables = [
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            ]
            if tables:
                await conn.execute(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
        finally:
            await conn.close()

    asyncio.run(truncate())
    from tests.served import drop_redis_keys

    drop_redis_keys(REDIS_TEST_URL, REDIS_PREFIX)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if backend == "sqlite":
        db = tmp_path / "leadkit.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), db)
        return _base_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{db}")
    url = request.getfixturevalue("pg_url")
    _clean_postgres(url)
    return _base_settings(
        tmp_path, database_url=url, redis_url=REDIS_TEST_URL, redis_prefix=REDIS_PREFIX
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[Browserish]:
    with TestClient(app=app, base_url="http://testserver.local") as test_client:
        yield Browserish(test_client)


@pytest.fixture(autouse=True)
def one_connection_per_request() -> Iterator[None]:
    """Fail any test during which a request took a second main-database connection while it
    held one (app/db/engine.py: on SQLite that self-deadlocks, on PostgreSQL it starves the
    pool)."""
    from app.core.scope import violations

    violations.clear()
    yield
    found, violations[:] = list(violations), []
    assert not found, "one connection per request was broken:\n" + "\n".join(found[:3])
