"""The labels staff pages show for stored codes (statuses, events, channels, …): msgids,
translated where they are rendered (``_(labels.status[code])``)."""

from __future__ import annotations

from app.leads.schemas import EVENT_LABELS, STATUS_LABELS, VISITOR_PLATFORM_LABELS
from app.links.schemas import CHANNEL_LABELS, KIND_LABELS
from app.vouchers.schemas import STATUS_LABELS as VOUCHER_STATUS_LABELS

LABELS = {
    "status": STATUS_LABELS,
    "event": EVENT_LABELS,
    "channel": CHANNEL_LABELS,
    "kind": KIND_LABELS,
    "platform": VISITOR_PLATFORM_LABELS,
    "voucher": VOUCHER_STATUS_LABELS,
}
