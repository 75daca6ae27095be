"""`leadkit grabs check` exit codes, and claims against two `leadkit serve` worker processes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.db.engine import make_engine, make_sessionmaker
from app.settings import Settings, env_name
from tests.conftest import POSTGRES_SKIP, REDIS_PREFIX, REDIS_TEST_URL, TEST_SECRET, _clean_postgres
from tests.grab_support import add_grab, cookie_header, make_people, open_grab
from tests.served import clean_env, running_server

LEADKIT = Path(sys.executable).parent / "leadkit"


def _env(settings: Settings) -> dict[str, str]:
    return clean_env(
        **{
            env_name("database_url"): settings.database_url,
            env_name("redis_url"): settings.redis_url,
            env_name("redis_prefix"): settings.redis_prefix,
            env_name("secret_key"): TEST_SECRET,
            env_name("data_dir"): settings.data_dir,
            env_name("grab_visitor_per_minute"): "100000",
            env_name("grab_ip_per_minute"): "100000",
        }
    )


def _check(settings: Settings, slug: str = "flash") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LEADKIT), "grabs", "check", slug],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _sql(settings: Settings, statement: str) -> None:
    async def run() -> None:
        engine = make_engine(settings)
        async with engine.begin() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres-redis"])
def proc_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    from tests.conftest import _base_settings

    if request.param == "sqlite":
        db = tmp_path / "leadkit.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), db)
        return _base_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{db}")
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    url = request.getfixturevalue("pg_url")
    _clean_postgres(url)
    return _base_settings(
        tmp_path, database_url=url, redis_url=REDIS_TEST_URL, redis_prefix=REDIS_PREFIX
    )


def _seed(settings: Settings, stock: int, limit: int, phones: int, per_phone: int) -> list:
    async def run() -> list:
        engine = make_engine(settings)
        async with make_sessionmaker(engine)() as db, db.begin():
            await add_grab(db, open_grab(stock=stock, per_phone_limit=limit))
            people = await make_people(db, settings, phones, per_phone)
        await engine.dispose()
        return people

    return asyncio.run(run())


def test_two_worker_processes_never_oversell(proc_settings: Settings, tmp_path: Path) -> None:
    people = _seed(proc_settings, stock=60, limit=2, phones=80, per_phone=2)
    log = tmp_path / "serve.log"
    with running_server(_env(proc_settings), log, workers=2) as base:

        async def storm() -> list[tuple[int, str]]:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

                async def one(i: int) -> tuple[int, str]:
                    person = people[i % len(people)]
                    headers = {"Idempotency-Key": f"k{i // 2}"} if i % 4 < 2 else {}
                    headers["Cookie"] = cookie_header(person)
                    # On SQLite a writer too busy answers 429 "tap again" (nothing claimed),
                    # and the visitor taps again, as the message asks (tests/test_grabs_
                    # concurrency.py's _tap does the same in-process).
                    for _ in range(200):
                        response = await http.post("/api/v1/grabs/flash/claim", headers=headers)
                        if response.status_code != 429:
                            break
                        await asyncio.sleep(0.05)
                    return response.status_code, response.json().get("result", "")

                return await asyncio.gather(*[one(i) for i in range(500)])

        answers = asyncio.run(storm())
        assert {status for status, _ in answers} == {200}
        results = Counter(result for _, result in answers)
        assert results["won"] >= 60 and set(results) <= {"won", "sold_out", "already_claimed"}
        time.sleep(1.5)  # the Redis writer drains the stream within a second
    checked = _check(proc_settings)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "won 60 by" in checked.stdout and "remaining 0" in checked.stdout


def test_check_exit_codes(proc_settings: Settings) -> None:
    people = _seed(proc_settings, stock=5, limit=1, phones=3, per_phone=1)
    assert people
    fine = _check(proc_settings)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "initial 5, won 0" in fine.stdout
    missing = _check(proc_settings, "no-such-grab")
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    _sql(proc_settings, "UPDATE grab SET stock = stock - 1")  # a unit vanished
    broken = _check(proc_settings)
    assert broken.returncode == 1
    assert "won 0 + remaining 4 != initial 5" in broken.stderr
