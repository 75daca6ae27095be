"""The phone gate: send a one-time code, check it, and produce a PhoneAuthorization.

Defences (each a setting): 60 s between codes per phone, hourly and daily caps per phone, a
daily cap per IP, 5-minute codes, single use, 5 wrong attempts then the code dies, codes
stored hashed and compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from app.core.crypto import DataCipher
from app.core.errors import DomainError, InvalidInput, RateLimited
from app.core.i18n import N_
from app.core.ratelimit import RateLimiter
from app.gate.schemas import PhoneAuthorization
from app.gate.sms import SmsProvider
from app.gate.store import OtpStore
from app.leads.phone import normalise
from app.settings import Settings

log = logging.getLogger("leadkit.gate")
DAY, HOUR = 86_400, 3_600


class ConsentRequired(InvalidInput):
    code = "consent_required"
    default_message = N_("Please read and agree to the privacy notice first.")


class WrongCode(InvalidInput):
    code = "wrong_code"
    default_message = N_("The code is not right. Please check it and try again.")


class CodeExpired(InvalidInput):
    code = "code_expired"
    default_message = N_("This code has expired or was already used. Please get a new one.")


class SmsUnavailable(DomainError):
    status = 503
    code = "sms_unavailable"
    default_message = N_("We could not send the text message. Please try again in a minute.")


class GateRequired(DomainError):
    status = 401
    code = "gate_required"
    default_message = N_("Please verify your phone number first.")


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class Gate:
    """The SMS gate's rules, with its collaborators passed in (store, limiter, provider)."""

    def __init__(
        self,
        settings: Settings,
        store: OtpStore,
        limiter: RateLimiter,
        provider: SmsProvider,
        cipher: DataCipher,
    ) -> None:
        self.settings, self.store, self.limiter = settings, store, limiter
        self.provider, self.cipher = provider, cipher

    async def send_code(self, phone_raw: str, *, consent: bool, ip: str) -> str:
        """Send a code to the phone; returns the normalised phone (E.164)."""
        phone = normalise(phone_raw)
        if not consent:
            raise ConsentRequired(fields={"consent": "required"})
        s = self.settings
        phone_hash = self.cipher.lookup_hash(phone)
        ip_verdict = await self.limiter.peek(f"otp:ip:{ip}", s.otp_ip_daily_cap, DAY)
        if not ip_verdict.allowed:
            raise RateLimited(
                N_("Too many codes were requested from this network today."),
                retry_after=ip_verdict.retry_after,
            )
        wait = await self.limiter.cooldown(f"otp:gap:{phone_hash}", s.otp_resend_seconds)
        if wait:
            raise RateLimited(
                N_("A code was just sent. Please wait before asking again."), retry_after=wait
            )
        for key, cap, window in (
            (f"otp:h:{phone_hash}", s.otp_phone_hourly_cap, HOUR),
            (f"otp:d:{phone_hash}", s.otp_phone_daily_cap, DAY),
            (f"otp:ip:{ip}", s.otp_ip_daily_cap, DAY),
        ):
            verdict = await self.limiter.hit(key, cap, window)
            if not verdict.allowed:
                raise RateLimited(
                    N_("Too many codes for this number. Please try again later."),
                    retry_after=verdict.retry_after,
                )
        code = new_code()
        dev_inbox = code if (self.provider.name == "console" and not s.is_prod) else ""
        await self.store.issue(phone_hash, code, s.otp_ttl_seconds, dev_code=dev_inbox)
        result = await self.provider.send_code(phone, code)
        if not result.ok:
            log.warning(
                "sms via %s failed: %s %s",
                self.provider.name,
                result.error_code,
                result.error_message,
            )
            if result.rate_limited:
                raise RateLimited(
                    N_("Too many codes for this number. Please try again later."), retry_after=HOUR
                )
            raise SmsUnavailable()
        return phone

    async def verify(self, phone_raw: str, code: str) -> PhoneAuthorization:
        """Check the code; on success the phone is authorised (the code is used up)."""
        phone = normalise(phone_raw)
        code = code.strip()
        if not (len(code) == 6 and code.isdigit()):
            raise WrongCode(fields={"code": "format"})
        outcome = await self.store.check(
            self.cipher.lookup_hash(phone), code, self.settings.otp_max_attempts
        )
        if outcome == "wrong":
            raise WrongCode(fields={"code": "wrong"})
        if outcome != "ok":
            raise CodeExpired(fields={"code": outcome})
        return PhoneAuthorization(
            phone=phone, method="sms", level="otp", verified_at=dt.datetime.now(dt.UTC)
        )

    async def dev_inbox(self, phone_raw: str) -> str | None:
        if self.settings.is_prod:
            return None
        return await self.store.dev_code(self.cipher.lookup_hash(normalise(phone_raw)))

    async def forget(self, phone_hash: str) -> None:
        """Forget a phone whose owner deleted their data: its codes, and the counters and
        resend gap that ``send_code`` keeps under its hash. Idempotent."""
        for key in (f"otp:gap:{phone_hash}", f"otp:h:{phone_hash}", f"otp:d:{phone_hash}"):
            await self.limiter.reset(key)
        await self.store.forget(phone_hash)
