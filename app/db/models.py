"""One import that registers every feature's tables on the shared metadata."""

from __future__ import annotations

from advanced_alchemy.base import orm_registry

from app.core import models as _core_models  # noqa: F401
from app.events import models as _event_models  # noqa: F401
from app.gate import models as _gate_models  # noqa: F401
from app.grabs import models as _grab_models  # noqa: F401
from app.leads import models as _lead_models  # noqa: F401
from app.links import models as _link_models  # noqa: F401
from app.staff import models as _staff_models  # noqa: F401
from app.tools import models as _tool_models  # noqa: F401
from app.visitors import models as _visitor_models  # noqa: F401

metadata = orm_registry.metadata
