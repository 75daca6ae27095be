"""The tool kinds this installation serves: one line per kind (app/tools/kinds.py)."""

from __future__ import annotations

from app.calculators.kind import KIND as CALCULATOR
from app.draws.kind import KIND as DRAW
from app.grabs.kind import KIND as GRAB
from app.guides.kind import KIND as GUIDE
from app.tools.kinds import Kinds

# Demo content is seeded in this order (guide-demo first, as links and tests expect).
KINDS = Kinds(GUIDE, GRAB, CALCULATOR, DRAW)
