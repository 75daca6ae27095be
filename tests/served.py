"""A served leadkit: the `leadkit` command as an operator runs it — `db upgrade`, `demo`, then
`serve` (granian worker processes) on a free port — on a database of its own.

The building blocks (`free_port`, `run_leadkit`, `running_server`) are shared by every test that
needs a real server (the browser tests, the grab storm); `serve()` is the whole thing on SQLite
or PostgreSQL + Redis, and the module-scoped `served` fixture (loaded as a plugin by
tests/conftest.py) gives each test module one served pair of worker processes per backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60.0  # a loaded CI machine: the PDF workers warm up before /healthz answers
REQUEST_TIMEOUT = 10.0  # a served request that takes longer is a hang
SECRET_KEY = "served-test-secret-key-0123456789-abcdefghij"
ADMIN_PASSWORD = "served-admin-password-2026"
_COUNTER = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any leadkit setting, plus ``values``: a served app
    reads only what the test gives it."""
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("LEADKIT_", "DATABASE_", "REDIS_"))
    }
    return {**keep, "PYTHONUNBUFFERED": "1", **values}


def run_leadkit(*args: str, env: dict[str, str], log: Path, timeout: float = 120) -> str:
    """Run the installed `leadkit` command; its stdout, or the test fails with its log."""
    result = subprocess.run(
        [str(BIN / "leadkit"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    with log.open("a") as out:
        out.write(f"$ leadkit {' '.join(args)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        pytest.fail(
            f"`leadkit {' '.join(args)}` exited {result.returncode}:\n{log.read_text()}",
            pytrace=False,
        )
    return result.stdout


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_server(env: dict[str, str], log: Path, workers: int = 1) -> Iterator[str]:
    """`leadkit serve` on a free port until the block ends; yields the base URL once
    /healthz answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "leadkit"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*command, "--workers", str(workers)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(
                    f"leadkit serve exited {proc.returncode} before answering:\n{log.read_text()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"leadkit serve did not answer GET {url}/healthz with 200 within "
                    f"{STARTUP_SECONDS:.0f}s:\n{log.read_text()}",
                    pytrace=False,
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def scratch_postgres(
    name: str, *, host: str | None = None, port: int | None = None, user: str | None = None
) -> Iterator[str]:
    """A PostgreSQL database of its own, made empty and dropped afterwards; yields its
    SQLAlchemy URL. The one way the tests, the CLI tests and the benches get a database."""
    host = host or os.environ.get("LEADKIT_TEST_PG_HOST", "127.0.0.1")
    port = port or int(os.environ.get("LEADKIT_TEST_PG_PORT", "5432"))
    user = user or os.environ.get("LEADKIT_TEST_PG_USER", "postgres")
    admin_dsn = f"postgresql://{user}@{host}:{port}/postgres"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{user}@{host}:{port}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drop_redis_keys(url: str, prefix: str) -> None:
    """Delete every key under ``prefix``: what a run of tests or a bench left in Redis."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@dataclass
class Served:
    """A running `leadkit serve` with the demo content, and ways to talk to it."""

    url: str
    backend: str
    env: dict[str, str]
    log: Path

    def leadkit(self, *args: str) -> str:
        return run_leadkit(*args, env=self.env, log=self.log)

    def token(self, role: str, name: str | None = None) -> str:
        """A new API token of ``role``, through `leadkit token create` (the last line)."""
        out = self.leadkit("token", "create", "--role", role, "--name", name or f"served-{role}")
        return out.strip().splitlines()[-1]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request from a fresh client that keeps no cookies (a new visitor every time)."""
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        return httpx.request(method, self.url + path, **kwargs)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def serve(
    backend: str, tmp: Path, *, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """Migrate, seed the demo content and serve on ``backend`` ("sqlite" or "postgres", the
    latter with Redis) in ``tmp``; the database and Redis keys are the run's own."""
    from tests.conftest import POSTGRES_SKIP, REDIS_TEST_URL

    run = f"{os.getpid()}_{next(_COUNTER)}"
    values = {
        "LEADKIT_ENV": "dev",  # the console SMS provider: nothing is ever sent
        "LEADKIT_SECRET_KEY": SECRET_KEY,
        "LEADKIT_DATA_DIR": str(tmp),
        "LEADKIT_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LEADKIT_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    log = tmp / "server.log"
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            values |= {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/leadkit.db", "REDIS_URL": ""}
        elif backend == "postgres":
            if POSTGRES_SKIP:
                pytest.skip(POSTGRES_SKIP)
            prefix = f"leadkit-served-{run}:"
            values |= {
                "DATABASE_URL": stack.enter_context(scratch_postgres(f"leadkit_served_{run}")),
                "REDIS_URL": REDIS_TEST_URL,
                "LEADKIT_REDIS_PREFIX": prefix,
            }
            stack.callback(drop_redis_keys, REDIS_TEST_URL, prefix)
        else:
            raise ValueError(f"unknown backend {backend!r}")
        full_env = clean_env(**values)
        run_leadkit("db", "upgrade", env=full_env, log=log)
        run_leadkit("demo", env=full_env, log=log)
        url = stack.enter_context(running_server(full_env, log, workers=workers))
        yield Served(url=url, backend=backend, env=full_env, log=log)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`leadkit serve --workers 2` with the demo content, once per backend per test module."""
    tmp = tmp_path_factory.mktemp(f"served-{request.param}")
    with serve(str(request.param), tmp, workers=2) as app:
        yield app
