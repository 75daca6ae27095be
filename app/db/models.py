"""One import that registers every feature's tables on the shared metadata."""

from __future__ import annotations

from advanced_alchemy.base import orm_registry

from app.core import models as _core_models  # noqa: F401
from app.staff import models as _staff_models  # noqa: F401

metadata = orm_registry.metadata
