"""The labels staff pages show for stored codes (statuses, events, channels, …): msgids,
translated where they are rendered (``_(labels.status[code])``)."""

from __future__ import annotations

from app.events.labels import EVENT_LABELS, VALUE_LABELS
from app.leads.schemas import STATUS_LABELS, VISITOR_PLATFORM_LABELS
from app.links.schemas import CHANNEL_LABELS, KIND_LABELS
from app.vouchers.schemas import STATUS_LABELS as VOUCHER_STATUS_LABELS

LABELS = {
    "status": STATUS_LABELS,
    "event": EVENT_LABELS,
    "channel": CHANNEL_LABELS,
    "kind": KIND_LABELS,
    "platform": VISITOR_PLATFORM_LABELS,
    "voucher": VOUCHER_STATUS_LABELS,
    # How a consent was given: the method of the phone authorisation that gave it.
    "method": VALUE_LABELS["method"],
}
