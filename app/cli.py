"""The ``leadkit`` command: serve, migrate, manage staff and tokens, seed demo content, check."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import DomainError
from app.db.engine import make_engine, make_sessionmaker
from app.settings import Settings, SettingsError, env_names, load_settings
from app.staff.schemas import ROLES, ApiTokenCreate, StaffCreate

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                return await work(db)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc


@click.group()
def main() -> None:
    """leadkit: lead-magnet tools behind a phone gate."""


@main.command()
@click.option("--host", default=None, help="Bind address (default: HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: PORT or 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (LEADKIT_WORKERS).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the app with granian; crashed workers are restarted (app/serve.py)."""
    from app.serve import serve as run

    settings = _settings()
    run(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations."""
    from app.db.migrate import upgrade

    settings = _settings()
    if settings.is_sqlite:
        from pathlib import Path

        from sqlalchemy.engine.url import make_url

        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "display_name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create(username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Create a staff member (asks for the password)."""
    from app.staff import service

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
    try:
        data = msgspec.convert(
            {
                "username": username,
                "password": password,
                "role": role,
                "display_name": display_name,
            },
            StaffCreate,
        )
    except msgspec.ValidationError as exc:
        raise click.ClickException(f"invalid: {exc}") from exc
    created = _in_transaction(_settings(), lambda db: service.create_user(db, None, data))
    click.echo(f"created {created.username} ({role})")


@main.group()
def token() -> None:
    """API tokens for the JSON API."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True)
def token_create(role: str, name: str) -> None:
    """Create a token; the token alone is printed on the last line."""
    from app.staff import tokens

    data = msgspec.convert({"name": name, "role": role}, ApiTokenCreate)
    _, raw = _in_transaction(_settings(), lambda db: tokens.create_token(db, None, data))
    click.echo(f"token for {name} ({role}); it is shown only once:", err=True)
    click.echo(raw)


@main.command()
def demo() -> None:
    """Seed demo content (idempotent) and print the admin login."""
    from app.demo.service import seed

    settings = _settings()
    login = _in_transaction(
        settings,
        lambda db: seed(
            db,
            admin_username=settings.admin_username,
            admin_password=settings.admin_password,
            data_dir=settings.data_dir,
        ),
    )
    url = f"http://{settings.host}:{settings.port}/staff/login"
    click.echo("")
    click.echo("=" * 60)
    click.echo(f"  leadkit staff login: {url}")
    click.echo(f"  username: {login.username}")
    if login.password:
        click.echo(f"  password: {login.password}")
        click.echo(
            "  (demo staff marketer / host / sales share this password)"
            if login.created or login.password
            else ""
        )
    else:
        click.echo("  password: (changed since first run; not shown)")
    click.echo("=" * 60)


@main.command()
def check() -> None:
    """Report the configuration and whether the database and Redis answer."""
    settings = _settings()
    for field, name in env_names().items():
        click.echo(f"{name:32} {_shown(field, getattr(settings, field))}")
    ok = asyncio.run(_connectivity(settings))
    sys.exit(0 if ok else 1)


def _shown(field: str, value: Any) -> Any:
    """A setting as `check` prints it: secrets, and passwords inside URLs, are never shown."""
    if field.endswith(("_key", "_secret", "_password")):
        return "(set)" if value else ""
    if field.endswith("_url") and value:
        from sqlalchemy.engine.url import make_url

        try:
            return make_url(value).render_as_string(hide_password=True)
        except Exception:  # not a URL SQLAlchemy can parse: show nothing rather than leak
            return "(set)"
    return value


async def _connectivity(settings: Settings) -> bool:
    from sqlalchemy import text

    from app.core.redis import make_redis
    from app.db.migrate import current_head

    ok = True
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            try:
                version = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar()
            except Exception:
                version = None
        head = current_head()
        state = (
            "up to date"
            if version == head
            else f"at {version}, head is {head}: run `leadkit db upgrade`"
        )
        click.echo(f"database: ok ({state})")
        ok = ok and version == head
    except Exception as exc:
        click.echo(f"database: FAILED ({exc.__class__.__name__}: {exc})")
        ok = False
    finally:
        await engine.dispose()
    redis = make_redis(settings)
    if redis is None:
        click.echo("redis: absent (embedded mode)")
    else:
        try:
            await redis.ping()
            click.echo("redis: ok")
        except Exception as exc:
            click.echo(f"redis: FAILED ({exc.__class__.__name__}: {exc})")
            ok = False
        finally:
            await redis.aclose()
    return ok


@main.group()
def grabs() -> None:
    """Limited-quantity grabs."""


@grabs.command("check")
@click.argument("slug")
def grabs_check(slug: str) -> None:
    """Verify a grab's invariants; exit 1 when one fails.

    won + remaining = initial (in SQL, and in Redis when it is used), SQL claims = Redis
    winners (after writing out the claims still queued in Redis), no phone over its limit."""
    settings = _settings()

    async def run() -> Any:
        from app.core.ratelimit import MemoryRateLimiter
        from app.core.redis import make_redis
        from app.grabs.service import make_grabs

        engine = make_engine(settings)
        redis = make_redis(settings)
        grabs = make_grabs(settings, engine, make_sessionmaker(engine), redis, MemoryRateLimiter())
        try:
            return await grabs.check(slug)
        finally:
            if redis is not None:
                await redis.aclose()
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"grab {report.slug}: initial {report.initial}, won {report.won} by {report.phones} "
        f"phones, remaining {report.remaining}, most per phone {report.max_per_phone} "
        f"(limit {report.limit})"
    )
    if report.deleted:
        click.echo(f"of which {report.deleted} won by people who since deleted their data")
    if report.redis_won is not None:
        click.echo(f"redis: won {report.redis_won}, remaining {report.redis_remaining}")
    for problem in report.problems:
        click.echo(f"FAILED: {problem}", err=True)
    click.echo("ok" if report.ok else "invariants FAILED")
    sys.exit(0 if report.ok else 1)


@main.group()
def draws() -> None:
    """Live-stream lucky draws."""


@draws.command("verify")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--chain",
    default=None,
    help="The drand chain hash to trust (default: LEADKIT_DRAND_CHAIN, quicknet).",
)
def draws_verify(file: Any, chain: str | None) -> None:
    """Recompute a draw's proof bundle (JSON, '-' for stdin) offline; exit 1 on a mismatch."""
    from app.draws.entrants import DrawInputError
    from app.draws.proof import decode_proof, verify
    from app.draws.report import describe, verdict

    trusted = chain or _settings().drand_chain
    try:
        proof = decode_proof(file.read())
    except DrawInputError as exc:
        raise click.ClickException(str(exc)) from exc
    mismatches = verify(proof, trusted_chain=trusted)
    for line in describe(proof) + verdict(mismatches):
        click.echo(line)
    sys.exit(1 if mismatches else 0)


@draws.command("check")
@click.argument("slug")
def draws_check(slug: str) -> None:
    """Check a draw's stored data; exit 1 on a mismatch, 2 when there is no such draw.

    One line per check: the entries in SQL against the count the draw shows, every entry's
    chances against what its referrals earn, and once closed the commitment, the entrant
    list's hash and count, the drand round and every drawn tier's winners and reserves,
    recomputed from the stored entries and the seed as `draws verify` does. With Redis, the
    draw's entry stream is written to SQL first, then SQL's entries, Redis's entries and
    count and the draw's tally are compared."""
    from app.draws.check import check_draw
    from app.draws.definition import DrawNotFound

    settings = _settings()

    async def work(db: AsyncSession) -> Any:
        try:
            return await check_draw(db, slug, trusted_chain=settings.drand_chain)
        except DrawNotFound:
            return None

    report = _in_transaction(settings, work)
    if report is None:
        raise click.BadParameter(f"there is no draw {slug!r}", param_hint="SLUG")
    click.echo(f"draw {report.slug}: {report.state}, {report.drawn} of {report.tiers} tiers drawn")
    for line in report.lines:
        click.echo(str(line))
    wrong = sum(not line.ok for line in report.lines)
    click.echo("ok" if not wrong else f"FAILED: {wrong} mismatch{'es' if wrong > 1 else ''}")
    sys.exit(1 if wrong else 0)


@main.group()
def outbox() -> None:
    """The outbox: everything leadkit sends."""


@outbox.command("status")
def outbox_status() -> None:
    """How many messages are waiting, sent and given up."""
    from app.outbox.service import counts

    found = _in_transaction(_settings(), counts)
    click.echo("  ".join(f"{status} {count}" for status, count in found.items()))
