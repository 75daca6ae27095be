"""The outbox (docs/development.md, "The outbox"), on real databases: a message leaves only
if the transaction that wrote it commits, once; failures back off and end dead; a claimed
message whose worker died is delivered after its lease; senders racing over one table
deliver each message once; the SMS kind reaches a (fake) gateway; admins see and retry."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import now
from app.core.crypto import DataCipher
from app.core.models import AuditEntry
from app.core.state import part
from app.db.engine import make_engine, make_sessionmaker
from app.outbox.models import DEAD, PENDING, SENT, OutboxMessage
from app.outbox.sender import MAX_BACKOFF, Delivery, Outbox, backoff, short_error
from app.outbox.service import enqueue
from app.outbox.sms import SMS, send_sms, sms_handler
from app.settings import Settings
from app.sms.providers import make_provider
from tests.fakes import FakeAliyun, FakeTencent
from tests.helpers import Browserish, soup
from tests.test_cli import Cli

PHONE = "+8613812345678"


class Clock:
    """A time the test moves by hand, from a second after it was made (what the test queues
    meanwhile is due)."""

    def __init__(self) -> None:
        self.at = now() + dt.timedelta(seconds=1)

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


class Recorder:
    """A handler that notes every delivery; ``fail`` makes it raise instead."""

    def __init__(self, fail: BaseException | None = None, pause: float = 0) -> None:
        self.delivered: list[Delivery] = []
        self.fail = fail
        self.pause = pause

    async def __call__(self, message: Delivery) -> None:
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.fail is not None:
            raise self.fail
        self.delivered.append(message)

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.delivered]


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker]:
    """A sessionmaker on an engine of its own (as another worker process would have)."""
    engine = make_engine(settings)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def sender(
    settings: Settings,
    sessions: async_sessionmaker,
    handler: Any,
    clock: Callable[[], dt.datetime] = now,
    **overrides: Any,
) -> Outbox:
    outbox = Outbox(msgspec.structs.replace(settings, **overrides), sessions, clock=clock)
    outbox.register("test", handler)
    return outbox


async def add(sessions: async_sessionmaker, n: int = 1, **kwargs: Any) -> list[int | None]:
    async with sessions() as db, db.begin():
        return [await enqueue(db, "test", {"n": i}, **kwargs) for i in range(n)]


async def row(sessions: async_sessionmaker, message_id: int | None) -> OutboxMessage:
    async with sessions() as db:
        message = await db.get(OutboxMessage, message_id)
        assert message is not None
        return message


async def rows(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


# --- the rules, stated ----------------------------------------------------------------------


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    assert backoff(1, 5, 1.0) == dt.timedelta(seconds=5)
    assert backoff(2, 5, 1.0) == dt.timedelta(seconds=10)
    assert backoff(4, 5, 1.0) == dt.timedelta(seconds=40)
    assert backoff(3, 5, 0.8) == dt.timedelta(seconds=16)
    assert backoff(40, 5, 1.0) == MAX_BACKOFF == dt.timedelta(hours=6)


def test_a_failure_is_kept_short_and_without_numbers() -> None:
    kept = short_error(RuntimeError("gateway refused +8613812345678 " + "x" * 500))
    assert kept.startswith("RuntimeError: gateway refused [number]")
    assert "13812345678" not in kept
    assert len(kept) == 200
    assert short_error(TimeoutError()) == "TimeoutError"


# --- the transaction rule -------------------------------------------------------------------


async def test_a_rolled_back_message_is_never_sent(settings: Settings) -> None:
    handler = Recorder()
    async with database(settings) as sessions:
        async with sessions() as db:
            assert await enqueue(db, "test", {"n": 1}) is not None
            await db.rollback()
        outbox = sender(settings, sessions, handler)
        assert await outbox.run_once() == 0
        async with sessions() as db:
            assert await rows(db) == 0
    assert handler.delivered == []


async def test_a_committed_message_is_sent_once_with_its_id(settings: Settings) -> None:
    handler = Recorder()
    async with database(settings) as sessions:
        [message_id] = await add(sessions)
        outbox = sender(settings, sessions, handler)
        assert await outbox.run_once() == 1
        assert await outbox.run_once() == 0
        sent = await row(sessions, message_id)
    assert handler.ids == [message_id]
    assert handler.delivered[0].payload == {"n": 0}
    assert handler.delivered[0].attempt == 1
    assert (sent.status, sent.attempts, sent.locked_until, sent.last_error) == (SENT, 1, None, "")
    assert sent.sent_at is not None


async def test_a_commit_wakes_the_running_sender(settings: Settings) -> None:
    handler = Recorder()
    async with database(settings) as sessions:
        outbox = sender(settings, sessions, handler, outbox_poll_seconds=3600)
        await outbox.start()
        try:
            await asyncio.sleep(0.1)  # its first look found nothing; now it waits an hour
            [message_id] = await add(sessions)
            for _ in range(100):
                if handler.delivered:
                    break
                await asyncio.sleep(0.05)
        finally:
            await outbox.stop()
    assert handler.ids == [message_id]


async def test_a_message_not_before_a_time_waits_for_it(settings: Settings) -> None:
    handler, clock = Recorder(), Clock()
    async with database(settings) as sessions:
        [message_id] = await add(sessions, not_before=clock.at + dt.timedelta(minutes=10))
        outbox = sender(settings, sessions, handler, clock)
        clock.advance(599)
        assert await outbox.run_once() == 0
        clock.advance(2)
        assert await outbox.run_once() == 1
    assert handler.ids == [message_id]


async def test_the_same_key_is_queued_once(settings: Settings) -> None:
    handler = Recorder()
    async with database(settings) as sessions:
        first = await add(sessions, key="draw:1:winner:7")
        again = await add(sessions, 2, key="draw:1:winner:7")  # later, and twice in one go
        other = await add(sessions, key="draw:1:winner:8")
        outbox = sender(settings, sessions, handler)
        await outbox.run_once()
        async with sessions() as db:
            assert await rows(db) == 2
    assert first[0] is not None and other[0] is not None
    assert again == [None, None]
    assert sorted(handler.ids) == sorted([first[0], other[0]])


# --- failures -------------------------------------------------------------------------------


async def test_failures_back_off_longer_each_time_then_give_up(settings: Settings) -> None:
    handler, clock = Recorder(fail=RuntimeError("refused for +8613812345678")), Clock()
    async with database(settings) as sessions:
        [message_id] = await add(sessions)
        outbox = sender(
            settings, sessions, handler, clock, outbox_max_attempts=3, outbox_backoff_seconds=10
        )
        waits = []
        for attempt in (1, 2):
            assert await outbox.run_once() == 1
            failed = await row(sessions, message_id)
            assert (failed.status, failed.attempts) == (PENDING, attempt)
            wait = (failed.next_attempt_at - clock.at).total_seconds()
            waits.append(wait)
            assert await outbox.run_once() == 0  # not due before its time
            clock.advance(wait + 0.01)
        assert await outbox.run_once() == 1
        dead = await row(sessions, message_id)
        clock.advance(10_000)
        assert await outbox.run_once() == 0  # dead stays dead
    assert 8 <= waits[0] < 12 and 16 <= waits[1] < 24  # 10 s, then 20 s, ±20 %
    assert (dead.status, dead.attempts) == (DEAD, 3)
    assert dead.last_error == "RuntimeError: refused for [number]"


async def test_a_send_that_outlives_half_its_lease_is_abandoned_and_retried(
    settings: Settings,
) -> None:
    hung = Recorder(pause=3600)
    async with database(settings) as sessions:
        [message_id] = await add(sessions)
        outbox = sender(settings, sessions, hung, outbox_lease_seconds=5)
        started = asyncio.get_running_loop().time()
        assert await outbox.run_once() == 1
        took = asyncio.get_running_loop().time() - started
        retried = await row(sessions, message_id)
    assert 2.4 < took < 60  # cut at half of the 5 s lease, not after the hung hour (a loose
    # upper bound: a busy machine may be slow, never an hour slow)
    assert (retried.status, retried.attempts, retried.locked_until) == (PENDING, 1, None)
    assert retried.last_error == "TimeoutError"


async def test_a_dead_worker_s_lease_runs_out_and_another_delivers(settings: Settings) -> None:
    clock, stuck, handler = Clock(), Recorder(pause=3600), Recorder()
    async with database(settings) as first, database(settings) as second:
        [message_id] = await add(first)
        doomed = sender(settings, first, stuck, clock, outbox_lease_seconds=60)
        sending = asyncio.create_task(doomed.run_once())
        await asyncio.sleep(0.3)
        sending.cancel()  # the worker dies mid-send: its claim stays behind
        with pytest.raises(asyncio.CancelledError):
            await sending
        held = await row(first, message_id)
        assert held.locked_by == doomed.name and held.status == PENDING

        survivor = sender(settings, second, handler, clock)
        clock.advance(59)
        assert await survivor.run_once() == 0  # the lease still holds
        clock.advance(2)
        assert await survivor.run_once() == 1
        sent = await row(second, message_id)
    assert handler.ids == [message_id]  # the same id: the receiver can tell it is a repeat
    assert handler.delivered[0].attempt == 2
    assert (sent.status, sent.attempts) == (SENT, 2)


# A worker process that claims what is due and hangs in the handler until it is killed.
HANGING_WORKER = """
import asyncio, sys
from app.outbox.sender import make_outbox
from app.settings import load_settings

async def main():
    outbox = make_outbox(load_settings({}, database_url=sys.argv[1], secret_key="k" * 40))
    async def hang(message):
        print("claimed", message.id, flush=True)
        await asyncio.sleep(3600)
    outbox.register("test", hang)
    await outbox.run_once()

asyncio.run(main())
"""


async def test_a_killed_worker_process_loses_nothing(settings: Settings) -> None:
    clock, handler = Clock(), Recorder()
    async with database(settings) as sessions:
        [message_id] = await add(sessions)
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HANGING_WORKER,
            settings.database_url,
            stdout=asyncio.subprocess.PIPE,
        )
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), 60)
        assert line.decode().split() == ["claimed", str(message_id)]
        worker.kill()  # SIGKILL mid-send: no clean-up of any kind
        await worker.wait()

        survivor = sender(settings, sessions, handler, clock)
        assert await survivor.run_once() == 0  # its lease still holds
        clock.at = now() + dt.timedelta(seconds=settings.outbox_lease_seconds + 1)
        assert await survivor.run_once() == 1
        sent = await row(sessions, message_id)
    assert handler.ids == [message_id]
    assert (sent.status, sent.attempts) == (SENT, 2)


async def test_senders_racing_deliver_each_message_exactly_once(settings: Settings) -> None:
    handler = Recorder(pause=0.002)
    async with database(settings) as first, database(settings) as second:
        ids = await add(first, 200)
        senders = [
            sender(settings, first, handler, outbox_batch=7),
            sender(settings, second, handler, outbox_batch=7),
        ]
        claimed = {s.name: 0 for s in senders}

        async def drain(outbox: Outbox) -> None:
            while n := await outbox.run_once():
                claimed[outbox.name] += n

        await asyncio.gather(*(drain(s) for s in senders))
        async with first() as db:
            statuses = dict(
                (await db.execute(select(OutboxMessage.status, func.count()).group_by(text("1"))))
                .tuples()
                .all()
            )
    assert sorted(handler.ids) == sorted(ids)  # every message, none twice
    assert statuses == {SENT: 200}
    assert sum(claimed.values()) == 200
    if not settings.is_sqlite:  # SKIP LOCKED: both took their share at the same time
        assert min(claimed.values()) > 0


# --- the SMS kind ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["aliyun", "tencent"])
async def test_an_sms_reaches_the_gateway(
    settings: Settings, kind: str, request: pytest.FixtureRequest
) -> None:
    gw: FakeAliyun | FakeTencent = request.getfixturevalue(f"fake_{kind}")
    settings = msgspec.structs.replace(
        settings, **gw.settings_overrides(sms_notify_template=gw.default_template)
    )
    cipher = DataCipher(settings)
    async with database(settings) as sessions, httpx.AsyncClient(trust_env=False) as http:
        outbox = Outbox(settings, sessions)
        outbox.register(SMS, sms_handler(settings, make_provider(settings, http), cipher))
        async with sessions() as db, db.begin():
            message_id = await send_sms(db, cipher, PHONE, "", {"code": "204518"}, key="won:1")
        assert await outbox.run_once() == 1
        sent = await row(sessions, message_id)
        async with sessions() as db:
            stored = str(await db.scalar(text("SELECT payload FROM outbox_message")))
    [message] = gw.messages_to(PHONE)
    assert (message.code, message.template) == ("204518", gw.default_template)
    assert sent.status == SENT
    assert "13812345678" not in stored and "138****5678" in stored  # encrypted, and masked


async def test_a_number_the_gateway_refuses_is_given_up_at_once(
    settings: Settings, fake_aliyun: FakeAliyun
) -> None:
    settings = msgspec.structs.replace(settings, **fake_aliyun.settings_overrides())
    cipher = DataCipher(settings)
    fake_aliyun.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    async with database(settings) as sessions, httpx.AsyncClient(trust_env=False) as http:
        outbox = Outbox(settings, sessions)
        outbox.register(SMS, sms_handler(settings, make_provider(settings, http), cipher))
        async with sessions() as db, db.begin():
            message_id = await send_sms(db, cipher, PHONE, "SMS_1", {"code": "1"})
        await outbox.run_once()
        dead = await row(sessions, message_id)
    assert (dead.status, dead.attempts) == (DEAD, 1)
    assert dead.last_error.startswith("Undeliverable: isv.MOBILE_NUMBER_ILLEGAL")
    assert "13812345678" not in dead.last_error


# --- the admin page -------------------------------------------------------------------------


def test_admins_see_masked_recipients_and_retry_a_dead_message(client: Browserish) -> None:
    cipher = part(client.app, DataCipher)

    async def queue(db: AsyncSession) -> tuple[int | None, int | None]:
        dead = await send_sms(db, cipher, PHONE, "SMS_1", {"code": "1"}, key="a")
        waiting = await send_sms(db, cipher, "+8613900001111", "SMS_1", {"code": "2"}, key="b")
        await db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == dead)
            .values(status=DEAD, attempts=8, last_error="isv.BUSINESS_LIMIT_CONTROL: x")
        )
        return dead, waiting

    dead_id, _ = client.run(queue)
    client.sign_in("boss", "admin")
    page = client.get("/staff/admin/outbox?status=dead")
    assert page.status_code == 200
    html = soup(page)
    dead_row = html.find(id=f"outbox-{dead_id}")
    assert dead_row is not None and "138****5678" in dead_row.text
    assert "13812345678" not in page.text and "13900001111" not in page.text
    assert len(html.select("#outbox-list tbody tr")) == 1  # the filter shows the dead one
    assert dead_row.find("button") is not None

    retried = client.submit(f"/staff/admin/outbox/{dead_id}/retry", {}, page="/staff/admin/outbox")
    assert retried.status_code == 200
    again = client.submit(f"/staff/admin/outbox/{dead_id}/retry", {}, page="/staff/admin/outbox")
    assert again.status_code == 409  # no longer dead: nothing to retry

    async def look(db: AsyncSession) -> tuple[str | None, list[str]]:
        status = await db.scalar(select(OutboxMessage.status).where(OutboxMessage.id == dead_id))
        trail = await db.scalars(
            select(AuditEntry.target).where(AuditEntry.action == "outbox.retry")
        )
        return status, list(trail)

    # The app's own sender (console provider) takes the retried message at once.
    for _ in range(100):
        if client.run(look)[0] == SENT:
            break
        time.sleep(0.05)
    assert client.run(look) == (SENT, [f"outbox_message:{dead_id}"])
    assert client.get("/staff/admin/outbox?status=nonsense").status_code == 400


def test_only_admins_see_the_outbox(client: Browserish) -> None:
    client.sign_in("xiaowang", "marketer")
    assert client.get("/staff/admin/outbox").status_code == 403


async def test_the_command_counts_messages_by_status(settings: Settings, tmp_path: Path) -> None:
    async with database(settings) as sessions:
        ids = await add(sessions, 3)
        async with sessions() as db, db.begin():
            await db.execute(
                update(OutboxMessage).where(OutboxMessage.id == ids[0]).values(status=DEAD)
            )
    shown = await asyncio.to_thread(
        Cli(tmp_path).ok, "outbox", "status", DATABASE_URL=settings.database_url
    )
    assert shown.stdout.split() == ["pending", "2", "sent", "0", "dead", "1"]
