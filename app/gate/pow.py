"""Proof of work before an SMS code, with ALTCHA (PoW v2): the server signs a challenge, the
visitor's browser (the vendored ``altcha`` widget) or a native client finds a counter whose
derived key starts with the challenge's prefix, and the server checks it.

Challenges are HMAC-signed with a key derived from LEADKIT_SECRET_KEY (no extra secret to
manage), carry their expiry inside the signed parameters, and are single use: a solved
challenge is spent in the shared rate-limit store, so every worker refuses its replay.
Nothing leaves the server: no third-party service, no CDN.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Literal

import altcha

from app.core.ratelimit import RateLimiter
from app.settings import Settings

ALGORITHM = "PBKDF2/SHA-256"
# The derived key must start with this byte: 256 tries on average, each ``cost`` PBKDF2
# iterations (about a second on a mid-range phone at the default cost of 5,000).
KEY_PREFIX = "00"
# A payload is base64 of a small JSON document; anything longer is not one of ours.
MAX_PAYLOAD = 4096

Outcome = Literal["ok", "invalid", "expired", "replayed"]


class ProofOfWork:
    def __init__(self, settings: Settings, limiter: RateLimiter) -> None:
        self._settings = settings
        self._limiter = limiter
        self._key = hmac.new(
            settings.secret_key.encode(), b"leadkit altcha challenge", hashlib.sha256
        ).hexdigest()

    def challenge(self) -> dict[str, Any]:
        """A fresh signed challenge, as the widget and ``altcha.solve_challenge`` read it."""
        made = altcha.create_challenge(
            algorithm=ALGORITHM,
            cost=self._settings.otp_pow_cost,
            key_prefix=KEY_PREFIX,
            expires_at=int(time.time()) + self._settings.otp_pow_ttl_seconds,
            hmac_secret=self._key,
        )
        challenge: dict[str, Any] = made.to_dict()
        return challenge

    async def check(self, payload: str) -> Outcome:
        """Verify a solution and spend its challenge: "ok" once, "replayed" after that."""
        if not payload or len(payload) > MAX_PAYLOAD:
            return "invalid"
        try:
            result = altcha.verify_solution(payload, self._key)
        except Exception:  # any malformed payload is simply not a solution
            return "invalid"
        if result.expired:
            return "expired"
        if not result.verified:
            return "invalid"
        parsed = altcha.Payload.from_base64(payload)
        signature = str(parsed.challenge.signature)
        expires_at = parsed.challenge.parameters.expires_at or 0
        # Remember the spent challenge until it would have expired anyway.
        keep = max(1, int(expires_at - time.time()) + 1)
        spent = hashlib.sha256(signature.encode()).hexdigest()
        taken = await self._limiter.cooldown(f"pow:{spent}", keep)
        return "ok" if taken == 0 else "replayed"
