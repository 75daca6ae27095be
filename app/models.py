"""One import that registers every feature's tables on the shared metadata (Alembic, tests),
and the side store's tables (app/db/engine.py)."""

from __future__ import annotations

from typing import cast

from advanced_alchemy.base import orm_registry
from sqlalchemy import Table

from app.bookings import models as _booking_models  # noqa: F401
from app.brand import models as _brand_models  # noqa: F401
from app.core import models as _core_models
from app.draws import models as _draw_models  # noqa: F401
from app.events import models as _event_models  # noqa: F401
from app.gate import models as _gate_models
from app.grabs import models as _grab_models  # noqa: F401
from app.leads import models as _lead_models  # noqa: F401
from app.links import models as _link_models  # noqa: F401
from app.outbox import models as _outbox_models  # noqa: F401
from app.staff import models as _staff_models  # noqa: F401
from app.tools import models as _tool_models  # noqa: F401
from app.visitors import models as _visitor_models  # noqa: F401

metadata = orm_registry.metadata
# Counters and one-time codes: kept apart from the durable record (app/db/engine.py).
SIDE_TABLES: tuple[Table, ...] = (
    _core_models.rate_counter,
    cast(Table, _gate_models.OtpCode.__table__),
)
