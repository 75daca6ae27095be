"""`leadkit draws check SLUG` (docs/draws.md, "Checking a draw"), on both backends: a clean
draw passes, an entry or a winner changed in SQL after the close is reported with exit 1, an
unknown slug is exit 2."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import main
from app.core.state import part
from app.draws.models import DrawEntry, DrawWinner
from app.draws.schemas import TierCreate
from app.settings import Settings, env_name
from tests.helpers import Browserish
from tests.test_draws import closed_draw, enter, host, make_draw, people

TIERS = [TierCreate(name="一等奖", quantity=2, reserves=1), TierCreate(name="二等奖", quantity=3)]


def settings_of(client: Browserish) -> Settings:
    return part(client.app, Settings)


def check(client: Browserish, slug: str = "live") -> Result:
    """The command, in this process, on the app's own database."""
    settings = part(client.app, Settings)
    env = {
        env_name(field): str(getattr(settings, field))
        for field in ("database_url", "redis_url", "redis_prefix", "secret_key", "data_dir")
    }
    return CliRunner().invoke(main, ["draws", "check", slug], env=env)


def lines(result: Result) -> dict[str, str]:
    """Each check's line by its name ("entrants", "tier 1 一等奖", …)."""
    found = {}
    for line in result.output.splitlines():
        name, sep, rest = line.partition(": ")
        if sep and rest.startswith(("ok", "MISMATCH")):
            found[name] = rest
    return found


def sql(client: Browserish, statement: Any) -> None:
    async def work(db: AsyncSession) -> None:
        await db.execute(statement)

    client.run(work)


def test_a_clean_draw_passes_at_every_stage(client: Browserish) -> None:
    make_draw(client, tiers=TIERS)
    host(client, "open")
    for person in people(client, 8):
        assert enter(client, person).result == "entered"
    opened = check(client)
    assert opened.exit_code == 0, opened.output
    stores = "SQL 8, Redis 8" if settings_of(client).redis_url else "SQL 8"
    assert lines(opened)["entrants"].startswith(f"ok ({stores}; the draw shows 8 (live count))")
    assert lines(opened)["commitment"].startswith("ok")
    host(client, "close")
    host(client, "draw", tier=1)
    partly = check(client)
    assert partly.exit_code == 0, partly.output
    found = lines(partly)
    assert found["entrants"].startswith(f"ok ({stores}; the draw shows 8 (frozen at the close))")
    assert found["chances"] == "ok (8 entries, 8 chances, none above what referrals earn)"
    assert found["entrant list"].startswith("ok (8 stored entries hash to ")
    assert found["drand"] == "ok (not used, commit-reveal)"
    assert found["tier 1 一等奖"].startswith("ok (winners ")
    assert found["tier 2 二等奖"] == "ok (not drawn yet)"
    host(client, "draw", tier=2)
    drawn = check(client)
    assert drawn.exit_code == 0, drawn.output
    assert "2 of 2 tiers drawn" in drawn.output and drawn.output.endswith("ok\n")


def test_an_entry_changed_after_the_close_is_reported(client: Browserish) -> None:
    closed_draw(client, 6, tiers=TIERS)
    host(client, "draw", tier=1)
    sql(client, update(DrawEntry).where(DrawEntry.id == 3).values(chances=4))
    result = check(client)
    assert result.exit_code == 1, result.output
    found = lines(result)
    assert found["chances"].startswith("MISMATCH (entry 3 has 4 chances; its 0 referrals allow")
    assert found["entrant list"].startswith("MISMATCH (the entrant list hashes to ")
    assert found["commitment"].startswith("ok")
    assert result.output.splitlines()[-1].startswith("FAILED: ")


def test_a_winner_changed_after_the_draw_is_reported(client: Browserish) -> None:
    closed_draw(client, 9, tiers=TIERS)
    host(client, "draw", tier=1)
    host(client, "draw", tier=2)

    async def swap(db: AsyncSession) -> None:
        picks = (await db.execute(select(DrawWinner).order_by(DrawWinner.id))).scalars().all()
        first = picks[0]
        assert (first.tier, first.reserve, first.rank) == (1, False, 1)
        entries = set((await db.execute(select(DrawEntry.id))).scalars())
        first.entry_id = min(entries - {p.entry_id for p in picks})  # someone who won nothing

    client.run(swap)
    result = check(client)
    assert result.exit_code == 1, result.output
    found = lines(result)
    assert found["tier 1 一等奖"].startswith("MISMATCH (tier 1 (一等奖): the winners are [")
    assert found["tier 2 二等奖"].startswith("ok")
    assert found["entrant list"].startswith("ok")


def test_an_unknown_draw_is_a_usage_error(client: Browserish) -> None:
    result = check(client, "no-such-draw")
    assert result.exit_code == 2
    assert "there is no draw 'no-such-draw'" in result.output


def test_referral_chances_pass_up_to_the_cap_and_not_beyond(client: Browserish) -> None:
    make_draw(client, referrals=True, referral_cap=2)
    host(client, "open")
    (alice,) = people(client, 1)
    code = enter(client, alice).code
    assert code
    for base in (20, 21, 22):
        assert enter(client, people(client, 1, base=base)[0], ref=code).result == "entered"
    earned = check(client)
    assert earned.exit_code == 0, earned.output
    assert lines(earned)["chances"] == "ok (4 entries, 6 chances, none above what referrals earn)"
    sql(client, update(DrawEntry).where(DrawEntry.code == code).values(chances=4))
    beyond = check(client)
    assert beyond.exit_code == 1, beyond.output
    assert lines(beyond)["chances"] == (
        "MISMATCH (entry 1 has 4 chances; its 3 referrals allow at most 3 "
        "(referral chances on, cap 2))"
    )
