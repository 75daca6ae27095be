"""What the scheduled kinds (grabs, draws) share: a row of the kind's own table beside its tool
row, open on a schedule (``starts_at``, ``ends_at``) unless a host overrides it (``mode``), read
back as a frozen value the feature passes around and caches (app/core/schedule.py has the
window's rules)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from app.core.clock import aware
from app.core.schedule import form_time
from app.tools.models import Tool

Info = TypeVar("Info")


def frozen_of(info: Callable[..., Info], tool: Tool, row: Any, **derived: Any) -> Info:
    """A scheduled kind's ``row`` and its tool as the frozen value ``info`` (a msgspec Struct or
    a dataclass): the tool's version shown, address and title, the window in UTC, the
    ``derived`` fields, and every other field the row's column of that name (``id``,
    ``tool_id``, ``mode``, the kind's own settings)."""
    values = {
        "tool_version": tool.current_version or 1,
        "slug": tool.slug,
        "title": tool.title,
        "starts_at": aware(row.starts_at) if row.starts_at else None,
        "ends_at": aware(row.ends_at) if row.ends_at else None,
        **derived,
    }
    for name in _field_names(info):
        if name not in values:
            values[name] = getattr(row, name)
    return info(**values)


@functools.cache
def _field_names(info: Any) -> tuple[str, ...]:
    if dataclasses.is_dataclass(info):
        return tuple(field.name for field in dataclasses.fields(info))
    return tuple(info.__struct_fields__)


def form_values(info: Any) -> dict[str, str]:
    """What a scheduled kind's staff edit form shows of ``info`` (its frozen value) before the
    kind's own settings: the address, title and picture, and the window in China time."""
    return {
        "slug": info.slug,
        "title": info.title,
        "image_url": info.image_url,
        "starts_at": form_time(info.starts_at),
        "ends_at": form_time(info.ends_at),
    }
