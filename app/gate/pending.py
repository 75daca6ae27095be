"""A code on its way: which phone this visitor asked a code for, and when.

A web-view often reloads the page after the visitor switches to the SMS app. Without this the
gate came back as the phone form, and asking again was refused for the rest of the resend gap:
the code already received could not be typed in. The server writes the pending verification
into a cookie of its own (``lk_gate``): the phone encrypted with the data key (app/core/crypto)
together with the visitor's id and the time the code went out, so only the server can read it
and only for the visitor it was made for. Each page that carries the gate reads it back and
shows the code box with the masked number and what is left of the resend countdown, until the
code's lifetime is over or the phone is authorised.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import Cookie

from app.core.crypto import DataCipher
from app.core.state import part
from app.core.web import cookie
from app.gate.service import Gate
from app.settings import Settings

PENDING_COOKIE = "lk_gate"


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    """A code sent to ``phone`` (E.164) for visitor ``visitor`` at ``sent_at`` (epoch s)."""

    visitor: str
    phone: str
    sent_at: int

    def resend_in(self, settings: Settings, now: float) -> int:
        """Seconds before another code may be asked for (0: now)."""
        return max(0, int(self.sent_at + settings.otp_resend_seconds - now))


def pending_cookie(settings: Settings, cipher: DataCipher, visitor: str, phone: str) -> Cookie:
    """The cookie that remembers a code just sent to ``phone`` for this visitor."""
    value = Pending(visitor=visitor, phone=phone, sent_at=int(time.time()))
    return Cookie(
        key=PENDING_COOKIE,
        value=cipher.encrypt(msgspec.json.encode(value).decode()),
        path="/",
        max_age=settings.otp_ttl_seconds,
        httponly=True,
        secure=settings.is_prod,
        samesite="lax",
    )


def forget_pending(settings: Settings) -> Cookie:
    """Deletes the cookie (the phone is authorised: nothing is pending any more)."""
    return Cookie(
        key=PENDING_COOKIE,
        value="",
        path="/",
        max_age=0,
        httponly=True,
        secure=settings.is_prod,
        samesite="lax",
    )


def read_pending(
    scope: Any, settings: Settings, cipher: DataCipher, visitor: str, now: float | None = None
) -> Pending | None:
    """The code pending for ``visitor``, if the request carries one that is still alive: made
    by this server, for this visitor, less than the code's lifetime ago."""
    token = cookie(scope, PENDING_COOKIE)
    if not token or len(token) > 512:
        return None
    try:
        found = msgspec.json.decode(cipher.decrypt(token), type=Pending)
    except Exception:  # forged, damaged, or made with another key: as if there were none
        return None
    now = time.time() if now is None else now
    if found.visitor != visitor or not 0 <= now - found.sent_at < settings.otp_ttl_seconds:
        return None
    return found


def pending_for(request: Request[Any, Any, Any], visitor: str) -> Pending | None:
    """``read_pending`` with the app's settings and data key."""
    gate = part(request, Gate)
    return read_pending(request.scope, gate.settings, gate.cipher, visitor)
