"""The table and column shapes the migrations share, each written once.

A migration is history: what a function here emits must never change, or an old migration
would build another schema than the one it built when it was written. A new shape is a new
function (or a new keyword with a default that emits what was emitted before).

Every name is spelled out as the models' naming convention wrote it when the migration was
generated (pk_<table>, fk_<table>_<column>_<target>, uq_<table>_<first column>,
ck_<table>_<name>, ix_<table>_<column>), so the migrations do not depend on today's models.
Constraints and indexes are created in name order, as Alembic's autogenerate wrote them:
SQLite keeps a table's statement as it was written, so the order is part of the schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op


def id_column() -> sa.Column[int]:
    """The surrogate key: BIGINT, INTEGER on SQLite (so that it is the rowid)."""
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def moment(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A point in time, stored in UTC."""
    return sa.Column(name, DateTimeUTC(timezone=True), nullable=nullable)


def _column(name: str, type_: sa.types.TypeEngine[Any], nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=nullable)


# One column of each plain type, NOT NULL unless ``nullable=True``: ``string('slug', 64)`` is
# ``sa.Column('slug', sa.String(length=64), nullable=False)``.


def string(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return _column(name, sa.String(length=length), nullable)


def text(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return _column(name, sa.Text(), nullable)


def integer(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return _column(name, sa.Integer(), nullable)


def big_integer(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return _column(name, sa.BigInteger(), nullable)


def flag(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A boolean."""
    return _column(name, sa.Boolean(), nullable)


def json(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return _column(name, sa.JSON(), nullable)


def binary(name: str, length: int | None = None, *, nullable: bool = False) -> sa.Column[Any]:
    return _column(name, sa.LargeBinary(length=length), nullable)


def date(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return _column(name, sa.Date(), nullable)


def timestamps() -> tuple[sa.Column[Any], sa.Column[Any]]:
    """created_at and updated_at, the last columns of every audited table."""
    return moment("created_at"), moment("updated_at")


@dataclass(frozen=True)
class Reference:
    """A BIGINT column holding another table's id, with its foreign key (see ``reference``)."""

    column: str
    target: str
    ondelete: str
    nullable: bool


def reference(
    column: str, target: str, *, ondelete: str, nullable: bool | None = None
) -> Reference:
    """``column`` holds an id of ``target``; nullable when the row outlives it (SET NULL)."""
    return Reference(
        column, target, ondelete, ondelete == "SET NULL" if nullable is None else nullable
    )


def create_table(
    name: str,
    *columns: sa.Column[Any] | Reference,
    primary_key: Sequence[str] = ("id",),
    checks: Mapping[str, str] | None = None,
    unique: Sequence[str | tuple[str, ...]] = (),
    named_unique: Mapping[str, tuple[str, ...]] | None = None,
    indexes: Sequence[str] = (),
    named_indexes: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Create table ``name`` and its indexes.

    The table starts with ``id_column()``, its primary key, unless ``primary_key`` names other
    columns. ``checks`` maps a check's name (``ck_<table>_<name>``) to its SQL; ``unique`` lists
    one column or a tuple of columns (named after the first); ``indexes`` lists the columns with
    an index of their own; ``named_unique`` and ``named_indexes`` map a name the convention
    would not give to the columns.
    """
    items: list[sa.Column[Any] | sa.Constraint] = []
    if tuple(primary_key) == ("id",):
        items.append(id_column())
    foreign_keys: dict[str, Reference] = {}
    for column in columns:
        if isinstance(column, Reference):
            foreign_keys[f"fk_{name}_{column.column}_{column.target}"] = column
            column = sa.Column(column.column, sa.BigInteger(), nullable=column.nullable)
        items.append(column)
    for check, sql in sorted((checks or {}).items()):
        items.append(sa.CheckConstraint(sql, name=op.f(f"ck_{name}_{check}")))
    for fk_name, ref in sorted(foreign_keys.items()):
        target = [f"{ref.target}.id"]
        fk = sa.ForeignKeyConstraint(
            [ref.column], target, name=op.f(fk_name), ondelete=ref.ondelete
        )
        items.append(fk)
    items.append(sa.PrimaryKeyConstraint(*primary_key, name=op.f(f"pk_{name}")))
    uniques: dict[str, Sequence[str]] = dict(named_unique or {})
    for entry in unique:
        together = entry if isinstance(entry, tuple) else (entry,)
        uniques[op.f(f"uq_{name}_{together[0]}")] = together
    for uq_name, uq_columns in sorted(uniques.items()):
        items.append(sa.UniqueConstraint(*uq_columns, name=uq_name))
    op.create_table(name, *items)
    all_indexes: dict[str, Sequence[str]] = dict(named_indexes or {})
    for indexed in indexes:
        all_indexes[op.f(f"ix_{name}_{indexed}")] = [indexed]
    for ix_name, ix_columns in sorted(all_indexes.items()):
        op.create_index(ix_name, name, list(ix_columns), unique=False)


def drop_tables(*names: str) -> None:
    """Drop ``names`` in this order (a table's indexes go with it)."""
    for name in names:
        op.drop_table(name)
