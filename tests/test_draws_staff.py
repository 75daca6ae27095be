"""The staff side of draws (issue 13) on both backends: the marketer's form (every field, bad
input refused in Chinese with nothing saved, edits versioned and refused once the rules bind),
the draw's page (masked phones, the audited reveal, who referred whom, CSV exports), the host
console (roles, the question before a close or a draw and its Cancel, redraw only after the
deadline, every action audited) and the winners' texts through the outbox (the console provider)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import AuditEntry
from app.draws.models import Draw, DrawWinner
from app.draws.schemas import TierCreate
from app.outbox.models import SENT, OutboxMessage
from app.tools.models import Tool, ToolVersion
from tests.helpers import Browserish, soup
from tests.test_draws import closed_draw, enter, entered_crowd, host, make_draw, people

FORM = {
    "slug": "live-0820",
    "title": "直播间抽奖",
    "description": "今晚 20:30 开奖",
    "image_url": "/static/img/draw.png",
    "starts_at": "",
    "ends_at": "",
    "claim_hours": "24",
    "one_win_per_phone": "1",
    "requires_tool": "",
    "passphrase": "装修 好",
    "referrals": "1",
    "referral_cap": "3",
}
TIERS = [
    {"name": "一等奖：全屋设计", "quantity": "2", "reserves": "1", "prefix": "", "days": "", "where": ""},  # noqa: E501
    {"name": "二等奖：¥500 券", "quantity": "5", "reserves": "2", "prefix": "cj", "days": "90", "where": "任一门店"},  # noqa: E501
]  # fmt: skip


def post_form(
    client: Browserish, path: str, fields: dict[str, str], tiers: list[dict[str, str]]
) -> Any:
    """The form as a browser posts it: the tier fields repeated, one group per row."""
    pairs = [("_csrf_token", client.csrf("/staff/draws/")), *fields.items()]
    for t in tiers:
        pairs += [(f"tier_{k}", v) for k, v in t.items()]
    return client.raw.post(
        path,
        content="&".join(f"{k}={_q(v)}" for k, v in pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def _q(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text)


def rows(client: Browserish, model: Any, *where: Any) -> int:
    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return client.run(work)  # type: ignore[no-any-return]


def audited(client: Browserish, prefix: str = "draw.") -> list[str]:
    async def work(db: AsyncSession) -> list[str]:
        found = await db.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.startswith(prefix))
            .order_by(AuditEntry.id)
        )
        return list(found)

    return client.run(work)  # type: ignore[no-any-return]


# --- the marketer's form ------------------------------------------------------------------


def test_a_marketer_creates_a_draw_with_every_field(client: Browserish) -> None:
    client.sign_in("mia", "marketer")
    assert client.get("/staff/draws/new").status_code == 200
    answer = post_form(client, "/staff/draws/new", FORM, TIERS)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/staff/draws/live-0820"

    async def stored(db: AsyncSession) -> Draw:
        found = await db.scalar(select(Draw))
        assert found is not None
        return found

    draw = client.run(stored)
    assert draw.tiers == [
        {"name": "一等奖：全屋设计", "quantity": 2, "reserves": 1, "voucher": None},
        {
            "name": "二等奖：¥500 券",
            "quantity": 5,
            "reserves": 2,
            "voucher": {"prefix": "CJ", "valid_days": 90, "where": "任一门店"},
        },
    ]
    assert (draw.claim_hours, draw.referrals, draw.referral_cap, draw.passphrase) == (
        24,
        True,
        3,
        "装修好",
    )
    assert draw.one_win_per_phone and draw.image_url == "/static/img/draw.png"
    assert audited(client) == ["draw.create"]
    listing = soup(client.get("/staff/draws/"))
    card = listing.select_one('[data-draw="live-0820"]')
    assert card is not None and "直播间抽奖" in card.text and "0 人参与" in card.text


@pytest.mark.parametrize(
    ("change", "tiers", "message"),
    [
        ({"slug": "Bad Slug"}, TIERS, "地址为 2 到 64 个"),
        ({"title": ""}, TIERS, "请填写抽奖标题"),
        ({"image_url": "javascript:alert(1)"}, TIERS, "图片地址必须以"),
        ({"claim_hours": "0"}, TIERS, "领奖时限为 1 到 720"),
        ({"referral_cap": "lots"}, TIERS, "助力机会上限"),
        ({"starts_at": "tomorrow"}, TIERS, "请填写开始日期"),
        (
            {"starts_at": "2030-01-02T20:00", "ends_at": "2030-01-01T20:00"},
            TIERS,
            "结束时间必须晚于开始时间",
        ),
        ({"passphrase": "!!!"}, TIERS, "口令至少"),
        ({"requires_tool": "no-such-tool"}, TIERS, "no-such-tool"),
        ({}, [], "请至少添加一个奖项"),
        ({}, [{**TIERS[0], "quantity": "0"}], "奖项 1：奖品数量"),
        ({}, [TIERS[0], {**TIERS[1], "prefix": "C1"}], "奖项 2：券码前缀"),
        ({}, [TIERS[0], {**TIERS[1], "days": "9999"}], "奖项 2：券的有效期"),
        ({}, [{**TIERS[0], "reserves": "-1"}], "奖项 1：候补"),
    ],
)
def test_bad_input_is_refused_in_chinese_and_nothing_saved(
    client: Browserish, change: dict[str, str], tiers: list[dict[str, str]], message: str
) -> None:
    client.sign_in("mia", "marketer")
    answer = post_form(client, "/staff/draws/new", FORM | change, tiers)
    assert answer.status_code == 400, answer.text
    alert = soup(answer).select_one(".alert")
    assert alert is not None and message in alert.text, alert
    assert rows(client, Tool, Tool.kind == "draw") == 0 and audited(client) == []
    page = soup(answer)  # what was typed is shown again
    assert page.select_one('input[name="title"]')["value"] == (FORM | change)["title"]


def test_edits_publish_versions_and_the_rules_bind_once_people_enter(client: Browserish) -> None:
    client.sign_in("mia", "marketer")
    assert post_form(client, "/staff/draws/new", FORM, TIERS).status_code == 303
    form = soup(client.get("/staff/draws/live-0820/edit"))
    assert form.select_one('input[name="passphrase"]')["value"] == "装修好"
    assert [i["value"] for i in form.select('input[name="tier_name"]')][:2] == [
        t["name"] for t in TIERS
    ]
    edited = post_form(
        client, "/staff/draws/live-0820/edit", FORM | {"title": "新标题"}, [TIERS[0]]
    )
    assert edited.status_code == 303, edited.text

    def versions() -> int:
        return rows(client, ToolVersion)

    assert versions() == 2
    host(client, "open", "live-0820")
    [alice] = people(client, 1)
    assert enter(client, alice, "live-0820", answer="装修好").result == "entered"
    refused = post_form(client, "/staff/draws/live-0820/edit", FORM, TIERS)
    assert refused.status_code == 409
    assert "奖项和规则保持发布时的样子" in soup(refused).select_one(".alert").text

    async def tiers(db: AsyncSession) -> int:
        return len((await db.scalar(select(Draw.tiers))) or [])

    assert client.run(tiers) == 1 and versions() == 2  # nothing changed
    ok = post_form(client, "/staff/draws/live-0820/edit", FORM | {"title": "再改标题"}, [TIERS[0]])
    assert ok.status_code == 303 and versions() == 3
    assert audited(client) == ["draw.create", "draw.update", "draw.update"]


# --- roles --------------------------------------------------------------------------------


def test_roles_decide_who_hosts_and_who_edits(client: Browserish) -> None:
    make_draw(client)
    client.sign_in("sam", "sales")
    assert client.get("/staff/draws/live/console").status_code == 403
    assert client.get("/staff/draws/").status_code == 403
    client.raw.cookies.clear()
    client.sign_in("hal", "host")
    assert client.get("/staff/draws/live/console").status_code == 200
    assert client.get("/staff/draws/").status_code == 200
    for path in ("/staff/draws/new", "/staff/draws/live", "/staff/draws/live/entrants.csv"):
        assert client.get(path).status_code == 403, path
    assert client.get("/staff/draws/nope/console").status_code == 404


# --- the host console ---------------------------------------------------------------------


def console(client: Browserish, **form: str) -> Any:
    return client.submit("/staff/draws/live/console", form, page="/staff/draws/live/console")


def test_the_console_asks_before_a_close_or_a_draw_and_cancel_changes_nothing(
    client: Browserish,
) -> None:
    make_draw(client, tiers=[TierCreate(name="一等奖", quantity=2, reserves=1)])
    client.sign_in("hal", "host")
    opened = soup(console(client, action="open"))
    assert opened.select_one("#draw-console")["data-state"] == "open"
    entered_crowd(client, 5)
    asked = soup(console(client, action="close"))
    assert "冻结" in asked.select_one(".draw-confirm").text
    assert asked.select_one("#draw-console")["data-state"] == "open"  # nothing changed yet
    closed = soup(console(client, action="close", confirm="yes"))
    assert closed.select_one("#draw-console")["data-state"] == "closed"
    question = soup(console(client, action="draw", tier="1"))
    assert "一等奖" in question.select_one(".draw-confirm").text
    assert rows(client, DrawWinner) == 0
    cancel = question.select_one("[data-cancel]")["href"]
    after_cancel = soup(client.get(cancel))
    assert after_cancel.select_one(".draw-confirm") is None and rows(client, DrawWinner) == 0
    drawn = soup(console(client, action="draw", tier="1", confirm="yes"))
    winners = [li.text for li in drawn.select("[data-winner]")]
    assert len(winners) == 2 and all("****" in w for w in winners)
    redraw = drawn.select_one('button[data-action="redraw"]')
    assert redraw is not None and redraw.has_attr("disabled")
    assert audited(client) == ["draw.open", "draw.close", "draw.draw"]
    assert console(client, action="pick", tier="1").status_code == 400
    assert console(client, action="draw", tier="7", confirm="yes").status_code == 400
    assert rows(client, DrawWinner) == 3  # two winners and a reserve, drawn once

    async def lapse(db: AsyncSession) -> None:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        await db.execute(update(DrawWinner).where(DrawWinner.status == "won").values(claim_by=past))

    client.run(lapse)
    page = soup(client.get("/staff/draws/live/console"))
    assert not page.select_one('button[data-action="redraw"]').has_attr("disabled")
    console(client, action="redraw", tier="1")
    assert rows(client, DrawWinner, DrawWinner.status == "redrawn") == 1
    assert audited(client)[-1] == "draw.redraw"


def test_the_console_refuses_a_draw_while_entries_are_open(client: Browserish) -> None:
    make_draw(client)
    client.sign_in("mia", "marketer")
    console(client, action="open")
    refused = console(client, action="draw", tier="1", confirm="yes")
    assert refused.status_code == 409
    assert "请先截止报名" in soup(refused).select_one(".alert").text
    assert rows(client, DrawWinner) == 0 and audited(client) == ["draw.open"]


# --- the draw's page and exports ----------------------------------------------------------


def drawn_with_a_referral(client: Browserish) -> None:
    make_draw(client, referrals=True, tiers=[TierCreate(name="一等奖", quantity=1, reserves=1)])
    host(client, "open")
    alice, bob, carol = people(client, 3)
    code = enter(client, alice).code
    assert enter(client, bob, ref=code).result == "entered"
    enter(client, carol)
    host(client, "close")
    host(client, "draw")


def test_the_draw_page_masks_phones_and_the_reveal_is_audited(client: Browserish) -> None:
    drawn_with_a_referral(client)
    client.sign_in("mia", "marketer")
    page = soup(client.get("/staff/draws/live"))
    phones = [td.text for td in page.select(".draw-entrants [data-phone]")]
    assert len(phones) == 3 and all("****" in p for p in phones)
    referred = [td.text for td in page.select(".draw-entrants [data-referrer]") if td.text.strip()]
    assert len(referred) == 1 and "139****0000" in referred[0]  # bob came through alice
    assert page.select_one(".draw-winners [data-phone]") is not None
    assert page.select_one('form[action="/staff/draws/live/reveal"]') is None
    assert (
        client.submit("/staff/draws/live/reveal", {}, page="/staff/draws/live").status_code == 403
    )
    client.raw.cookies.clear()
    client.sign_in("ada", "admin")
    shown = client.submit("/staff/draws/live/reveal", {}, page="/staff/draws/live")
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    full = [td.text for td in soup(shown).select(".draw-entrants [data-phone]")]
    assert "139 0000 0000" in full or "13900000000" in "".join(full).replace(" ", "")
    assert audited(client) == ["draw.reveal_phones"]


def read_csv(answer: Any) -> list[list[str]]:
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def test_exports_are_masked_for_marketers_full_for_admins_and_audited(client: Browserish) -> None:
    drawn_with_a_referral(client)
    client.sign_in("mia", "marketer")
    entrants = read_csv(client.get("/staff/draws/live/entrants.csv"))
    assert entrants[0][:3] == ["编号", "手机号", "机会数"]
    assert len(entrants) == 4 and all("****" in r[1] for r in entrants[1:])
    assert sum(1 for r in entrants[1:] if r[4]) == 1  # one was referred
    winners = read_csv(client.get("/staff/draws/live/winners.csv"))
    assert [r[6] for r in winners[1:]] == ["已中奖，待领取", "候补"]
    client.raw.cookies.clear()
    client.sign_in("ada", "admin")
    full = read_csv(client.get("/staff/draws/live/entrants.csv"))
    assert all("****" not in r[1] and r[1].replace(" ", "").startswith("139") for r in full[1:])
    assert audited(client) == ["draw.export", "draw.export", "draw.export"]


# --- the winners' texts -------------------------------------------------------------------


def outbox_rows(client: Browserish) -> list[tuple[str, str, dict[str, Any]]]:
    async def work(db: AsyncSession) -> list[tuple[str, str, dict[str, Any]]]:
        found = await db.execute(
            select(OutboxMessage.key, OutboxMessage.status, OutboxMessage.payload).order_by(
                OutboxMessage.id
            )
        )
        return [(str(k), str(s), dict(p)) for k, s, p in found]

    return client.run(work)  # type: ignore[no-any-return]


def wait_sent(client: Browserish, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    for _ in range(200):
        found = outbox_rows(client)
        if len(found) == n and all(s == SENT for _, s, _ in found):
            return found
        time.sleep(0.05)
    return outbox_rows(client)


def test_each_winner_is_texted_once_through_the_outbox(client: Browserish) -> None:
    closed_draw(client, 4, tiers=[TierCreate(name="一等奖", quantity=2, reserves=1)])
    host(client, "draw")
    host(client, "draw")  # a replay texts nobody again
    sent = wait_sent(client, 2)

    async def winner_ids(db: AsyncSession) -> list[int]:
        return list(await db.scalars(select(DrawWinner.id).where(DrawWinner.status == "won")))

    draw_id = client.run(lambda db: db.scalar(select(Draw.id)))
    assert sorted(k for k, _, _ in sent) == sorted(
        f"draw:{draw_id}:winner:{i}" for i in client.run(winner_ids)
    )
    assert all(s == SENT and "****" in p["masked"] and "139" not in p["to"] for _, s, p in sent)
    assert sent[0][2]["params"] == {
        "draw": "直播抽奖",
        "prize": "一等奖",
        "deadline": sent[0][2]["params"]["deadline"],
    }

    async def lapse(db: AsyncSession) -> None:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        await db.execute(update(DrawWinner).where(DrawWinner.status == "won").values(claim_by=past))

    client.run(lapse)
    host(client, "redraw")  # the reserve called up gets a text of its own
    assert len(wait_sent(client, 3)) == 3
