"""Bulk import of accounts and tracked links from one CSV file, all or nothing.

One row per link, or per account when the link columns are empty::

    account_kind,account_name,platform,owner,link_code,channel,campaign,target_tool
    品牌号,装修家·官方号,抖音,,live11,直播,双11直播,guide-demo
    员工号,设计师小林,douyin,marketer,,,,

Kinds, channels and platforms are accepted as keys (brand, live, douyin) or Chinese labels
(品牌号, 直播, 抖音); headers as the names above or their Chinese labels. Every row is checked
before anything is written: one bad row and nothing is imported. Accounts are matched by
(kind, name) and links by code, so importing the same file again creates nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_
from app.links.models import Account, TrackedLink
from app.links.schemas import (
    ACCOUNT_CAPS,
    CHANNEL_LABELS,
    KIND_LABELS,
    PLATFORM_LABELS,
    ImportSummary,
    RowError,
)
from app.links.service import account_counts, clean_name, code_problem, tool_slugs
from app.staff.audit import audit
from app.staff.models import StaffUser
from app.staff.schemas import Staff

MAX_IMPORT_BYTES = 1_048_576
MAX_ROWS = 5000
NAME_MAX = 64

COLUMNS = (
    "account_kind",
    "account_name",
    "platform",
    "owner",
    "link_code",
    "channel",
    "campaign",
    "target_tool",
)
REQUIRED_COLUMNS = ("account_kind", "account_name")
COLUMN_ALIASES = {
    "账号类型": "account_kind",
    "账号名称": "account_name",
    "平台": "platform",
    "负责人": "owner",
    "渠道码": "link_code",
    "渠道": "channel",
    "活动": "campaign",
    "目标工具": "target_tool",
}
KIND_ALIASES = {"品牌号": "brand", "员工号": "employee", "合作号": "partner", "投流": "ads"}
CHANNEL_ALIASES = {
    "直播": "live",
    "短视频": "video",
    "主页": "profile",
    "搜索": "search",
    "扫码": "qr",
    "分享": "share",
}
PLATFORM_ALIASES = {"抖音": "douyin", "微信": "wechat", "其他": "other"}


class ImportRejected(
    InvalidInput, message=N_("Nothing was imported: fix the rows listed below and try again.")
):
    """The file has problems; nothing was imported. ``errors`` lists them by row."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__()
        self.errors = errors


def _lookup(keys: dict[str, str], aliases: dict[str, str]) -> dict[str, str]:
    """Accepted spellings → key: the key itself, the English label, the Chinese label."""
    table = {key: key for key in keys}
    table.update({label.lower(): key for key, label in keys.items()})
    table.update(aliases)
    return table


_KINDS = _lookup(KIND_LABELS, KIND_ALIASES)
_CHANNELS = _lookup(CHANNEL_LABELS, CHANNEL_ALIASES)
_PLATFORMS = _lookup(PLATFORM_LABELS, PLATFORM_ALIASES)


def decode(raw: bytes) -> str:
    """Text of an uploaded file: UTF-8 (with or without the BOM Excel writes), UTF-16 with a
    BOM, or GB18030 (older Excel on Chinese Windows)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRejected(
        [RowError(row=1, column="", message=N_("The file is not UTF-8 or GB18030 text."))]
    )


@dataclass
class _Row:
    number: int
    kind: str
    name: str
    platform: str
    owner: str
    code: str
    channel: str
    campaign: str
    target: str
    ok: bool = True  # False: the row's own cells have problems, already reported

    @property
    def has_link(self) -> bool:
        return bool(self.code or self.channel or self.campaign or self.target)


def _read(text: str) -> tuple[list[_Row], list[RowError]]:
    """Rows whose cells are well-formed, and the problems with the rest."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    # Rows pasted from a spreadsheet into the text box are tab-separated.
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    errors: list[RowError] = []
    try:
        header = next(reader, None)
    except csv.Error:
        header = None
    if not header or not any(cell.strip() for cell in header):
        return [], [RowError(row=1, column="", message=N_("The file is empty."))]
    columns = [COLUMN_ALIASES.get(cell.strip(), cell.strip().lower()) for cell in header]
    for cell, column in zip(header, columns, strict=True):
        if column not in COLUMNS:
            errors.append(RowError(row=1, column=cell[:40], message=N_("Unknown column.")))
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            errors.append(RowError(row=1, column=column, message=N_("This column is missing.")))
    if errors:
        return [], errors
    rows: list[_Row] = []
    try:
        for cells in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_ROWS:
                errors.append(
                    RowError(
                        row=number,
                        column="",
                        message=N_("Too many rows: at most %(max)s in one file."),
                        params={"max": MAX_ROWS},
                    )
                )
                break
            if len(cells) > len(columns):
                errors.append(
                    RowError(
                        row=number,
                        column="",
                        message=N_("This row has more cells than the header."),
                    )
                )
                continue
            values = dict(zip(columns, (cell.strip() for cell in cells), strict=False))
            row, problems = _row(number, values)
            errors.extend(problems)
            rows.append(row)
    except csv.Error:
        errors.append(
            RowError(row=reader.line_num, column="", message=N_("This row is not valid CSV."))
        )
    return rows, errors


def _row(number: int, values: dict[str, str]) -> tuple[_Row, list[RowError]]:
    errors: list[RowError] = []

    def fail(column: str, message: str, **params: str | int) -> None:
        errors.append(RowError(row=number, column=column, message=message, params=params))

    def choice(column: str, table: dict[str, str], message: str, default: str = "") -> str:
        raw = values.get(column, "")
        if not raw:
            if not default:
                fail(column, N_("Required."))
            return default
        key = table.get(raw.lower())
        if key is None:
            fail(column, message, value=raw[:40])
            return ""
        return key

    def text(column: str, required: bool = False) -> str:
        value = clean_name(values.get(column, ""))
        if required and not value:
            fail(column, N_("Required."))
        elif len(value) > NAME_MAX:
            fail(column, N_("At most %(max)s characters."), max=NAME_MAX)
        return value

    kind = choice(
        "account_kind",
        _KINDS,
        N_("Unknown account kind “%(value)s”: use 品牌号, 员工号, 合作号 or 投流."),
    )
    name = text("account_name", required=True)
    platform = choice(
        "platform",
        _PLATFORMS,
        N_("Unknown platform “%(value)s”: use 抖音, 微信 or 其他."),
        "douyin",
    )
    owner = values.get("owner", "").lower()
    row = _Row(number, kind, name, platform, owner, "", "", "", "")
    row.code = values.get("link_code", "")
    row.campaign = text("campaign")
    row.target = values.get("target_tool", "")
    if row.has_link or values.get("channel"):
        row.channel = choice(
            "channel",
            _CHANNELS,
            N_("Unknown channel “%(value)s”: use 直播, 短视频, 主页, 搜索, 扫码 or 分享."),
        )
        if not row.code:
            fail("link_code", N_("A link row needs a code, so that a second import finds it."))
        elif problem := code_problem(row.code):
            fail("link_code", problem)
        if not row.target:
            fail("target_tool", N_("Required."))
    row.ok = not errors
    return row, errors


async def import_csv(
    db: AsyncSession, actor: Staff | None, text: str, ip: str = ""
) -> ImportSummary:
    """Check every row, then create the accounts and links that do not exist yet.

    Raises ImportRejected, listing every problem by row, and writes nothing when any row is bad.
    """
    rows, errors = _read(text)
    slugs = set(await tool_slugs(db))
    usernames = {
        name: id_ for name, id_ in await db.execute(select(StaffUser.username, StaffUser.id))
    }
    accounts = {(a.kind, a.name): a for a in (await db.execute(select(Account))).scalars()}
    links = await _links_by_code(db, [row.code for row in rows if row.code])
    counts = await account_counts(db)
    over_cap: set[str] = set()
    new_accounts: dict[tuple[str, str], _Row] = {}
    codes_seen: dict[str, int] = {}
    new_links: list[_Row] = []
    existing_links = 0

    def fail(at: _Row, column: str, message: str, **params: str | int) -> None:
        errors.append(RowError(row=at.number, column=column, message=message, params=params))

    for row in rows:
        key = (row.kind, row.name)
        if row.owner and row.owner not in usernames:
            fail(
                row, "owner", N_("No staff member with username “%(value)s”."), value=row.owner[:40]
            )
        if row.target and row.target not in slugs:
            fail(row, "target_tool", N_("No tool with slug “%(value)s”."), value=row.target[:40])
        if not row.ok:
            continue
        if key not in accounts and key not in new_accounts:
            new_accounts[key] = row
            counts[row.kind] = counts.get(row.kind, 0) + 1
            if counts[row.kind] > ACCOUNT_CAPS[row.kind] and row.kind not in over_cap:
                over_cap.add(row.kind)
                fail(
                    row,
                    "account_kind",
                    N_("Too many accounts of this kind: at most %(cap)s."),
                    cap=ACCOUNT_CAPS[row.kind],
                )
        if not row.has_link:
            continue
        lowered = row.code.lower()
        if lowered in codes_seen:
            fail(
                row,
                "link_code",
                N_("Code “%(value)s” is already on row %(row)s of this file."),
                value=row.code,
                row=codes_seen[lowered],
            )
            continue
        codes_seen[lowered] = row.number
        link = links.get(lowered)
        if link is None:
            new_links.append(row)
        elif (
            link.code == row.code
            and (link.account.kind, link.account.name) == key
            and link.channel == row.channel
            and link.target_slug == row.target
        ):
            existing_links += 1
        else:
            fail(
                row,
                "link_code",
                N_("Code “%(value)s” is already used for another account, channel or tool."),
                value=row.code,
            )
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: e.row))
    for key, row in new_accounts.items():
        account = Account(
            kind=row.kind, name=row.name, platform=row.platform, owner_id=usernames.get(row.owner)
        )
        db.add(account)
        accounts[key] = account
    await _flush(db)
    for row in new_links:
        db.add(
            TrackedLink(
                code=row.code,
                account_id=accounts[(row.kind, row.name)].id,
                channel=row.channel,
                campaign=row.campaign,
                target_slug=row.target,
                is_active=True,
            )
        )
    await _flush(db)
    summary = ImportSummary(
        rows=len(rows),
        accounts_created=len(new_accounts),
        accounts_existing=len({(r.kind, r.name) for r in rows}) - len(new_accounts),
        links_created=len(new_links),
        links_existing=existing_links,
    )
    await audit(
        db,
        actor,
        "links.import",
        f"{summary.rows} rows",
        {"accounts_created": summary.accounts_created, "links_created": summary.links_created},
        ip,
    )
    return summary


async def _flush(db: AsyncSession) -> None:
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent import or form created the same account or code
        raise Conflict() from exc


async def _links_by_code(db: AsyncSession, codes: list[str]) -> dict[str, TrackedLink]:
    """Existing links whose code matches one of ``codes`` without case, by lowered code."""
    found: dict[str, TrackedLink] = {}
    lowered = sorted({code.lower() for code in codes})
    for start in range(0, len(lowered), 500):
        chunk = lowered[start : start + 500]
        query = select(TrackedLink).where(func.lower(TrackedLink.code).in_(chunk))
        for link in (await db.execute(query)).scalars():
            found[link.code.lower()] = link
    return found
