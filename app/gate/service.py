"""The phone gate: send a one-time code, check it, and produce a PhoneAuthorisation.

Defences (each a setting; docs/security.md, "SMS codes"): an allow-list of countries, 60 s
between codes per phone, hourly and daily caps per phone, a daily cap per IP, a global hourly
and daily budget of codes (with an alert to admins), a proof of work once an address or the
global rate looks abusive, 5-minute codes, single use, 5 wrong attempts then the code dies,
codes stored hashed and compared in constant time. A code the gateway did not send costs
nothing: its counters are refunded and the resend gap released.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
import unicodedata
from typing import Any, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import DataCipher
from app.core.errors import DomainError, InvalidInput, RateLimited
from app.core.i18n import N_, gettext
from app.core.phone import mask, normalise
from app.core.ratelimit import RateLimiter
from app.events.schemas import CodeRejected, EventContext
from app.events.service import Tracker
from app.gate.pow import ProofOfWork
from app.gate.store import OtpStore
from app.leads import service as leads
from app.leads.models import Lead
from app.leads.schemas import ConsentGiven, PhoneAuthorisation
from app.settings import Settings
from app.sms.base import SmsProvider, scrub
from app.visitors.models import Visitor

log = logging.getLogger("leadkit.gate")
DAY, HOUR = 86_400, 3_600
# Seconds an admin's SMS budget banner may lag codes counted by another worker process (codes
# counted by this one show at once): every admin page shows the banner, and reading the shared
# counters cost the dashboard two round trips to the side store.
ALERTS_TTL = 5.0


class ConsentRequired(
    InvalidInput,
    code="consent_required",
    message=N_("Please read and agree to the privacy notice first."),
):
    """A code was asked for without agreeing to the privacy notice."""


class WrongCode(
    InvalidInput,
    code="wrong_code",
    message=N_("The code is not right. Please check it and try again."),
):
    """The typed code is not six digits, or not the one sent."""


class CodeExpired(
    InvalidInput,
    code="code_expired",
    message=N_("This code has expired or was already used. Please get a new one."),
):
    """No live code for the number: none sent, expired, used, or out of attempts."""


class SmsUnavailable(
    DomainError,
    status=503,
    code="sms_unavailable",
    message=N_("We could not send the text message. Please try again in a minute."),
):
    """The SMS gateway could not send the code, for no reason of the number's."""

    retry_after = 60  # "in a minute": sent as Retry-After


class NumberCannotReceive(
    InvalidInput,
    code="number_cannot_receive",
    message=N_("This number cannot receive text messages. Please check it or use another number."),
):
    """The gateway says this number cannot get text messages: another try will not help."""


class BudgetSpent(
    RateLimited,
    code="sms_budget_spent",
    message=N_("Too many verification codes are being sent right now. Please try again later."),
):
    """The global budget of codes for this hour or day is spent: refused for everyone."""


CHALLENGE_URL = "/api/v1/gate/challenge"


class ChallengeRequired(
    DomainError,
    status=403,
    code="challenge_required",
    message=N_("Please complete the security check, then ask for the code again."),
):
    """A proof of work (ALTCHA) must come with this request; ``extra`` carries a challenge."""

    def __init__(self, challenge: dict[str, Any], message: str | None = None) -> None:
        super().__init__(message)
        # Extra members of the API's problem document: what a native client needs to solve.
        self.extra = {"challenge": challenge, "challenge_url": CHALLENGE_URL}


class ChallengeFailed(
    ChallengeRequired,
    code="challenge_failed",
    message=N_(
        "The security check did not pass or has expired. Please wait for it to finish again."
    ),
):
    """The proof of work came but did not verify, expired or was used already."""


Period = Literal["hour", "day"]
_ALERT_MESSAGES: dict[tuple[Period, str], str] = {
    ("hour", "near"): N_(
        "SMS codes this hour: %(count)s of the %(budget)s budgeted are sent. Once the budget "
        "is spent, no more codes are sent until the hour ends."
    ),
    ("day", "near"): N_(
        "SMS codes today: %(count)s of the %(budget)s budgeted are sent. Once the budget is "
        "spent, no more codes are sent until the day ends."
    ),
    ("hour", "reached"): N_(
        "The hourly SMS budget (%(budget)s codes) is spent: visitors get no codes until the "
        "hour ends. If this is real traffic, raise the budget; if not, someone may be abusing "
        "the phone gate."
    ),
    ("day", "reached"): N_(
        "The daily SMS budget (%(budget)s codes) is spent: visitors get no codes until the day "
        "ends. If this is real traffic, raise the budget; if not, someone may be abusing the "
        "phone gate."
    ),
}


class BudgetAlert(msgspec.Struct, frozen=True, kw_only=True):
    """A budget reached or nearly reached, read from the shared counters by any worker."""

    period: Period
    level: Literal["near", "reached"]
    count: int
    budget: int

    @property
    def text(self) -> str:
        return gettext(_ALERT_MESSAGES[(self.period, self.level)]) % {
            "count": self.count,
            "budget": self.budget,
        }


class GateRequired(
    DomainError,
    status=401,
    code="gate_required",
    message=N_("Please verify your phone number first."),
):
    """A visitor's step needs a verified phone (a lead) and has none, or it is gone."""


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
        self.pow = ProofOfWork(settings, limiter)
        self._alerts: tuple[float, tuple[BudgetAlert, ...]] | None = None  # (until, alerts)
        self._counted = 0  # codes counted or refunded by this process: cached alerts are older

    def _budgets(self) -> tuple[tuple[Period, str, int, int], ...]:
        s = self.settings
        return (
            ("hour", "otp:budget:h", s.otp_hourly_budget, HOUR),
            ("day", "otp:budget:d", s.otp_daily_budget, DAY),
        )

    async def challenge_required(self, ip: str) -> bool:
        """Whether a code for ``ip`` needs a proof of work now: this address asked for many
        codes this hour, or all visitors together have spent much of the hourly budget."""
        s = self.settings
        from_ip = await self.limiter.peek(f"otp:iph:{ip}", s.otp_pow_ip_hourly, HOUR)
        if from_ip.count >= s.otp_pow_ip_hourly:
            return True
        spent = await self.limiter.peek("otp:budget:h", s.otp_hourly_budget, HOUR)
        return spent.count * 100 >= s.otp_hourly_budget * s.otp_pow_budget_percent

    async def send_code(self, phone_raw: str, *, consent: bool, ip: str, proof: str = "") -> str:
        """Send a code to the phone; returns the normalised phone (E.164). ``proof``: an ALTCHA
        payload, needed once ``challenge_required`` says so."""
        s = self.settings
        phone = normalise(phone_raw, allowed=s.allowed_country_codes)
        if not consent:
            raise ConsentRequired(fields={"consent": "required"})
        phone_hash = self.cipher.lookup_hash(phone)
        ip_verdict = await self.limiter.peek(f"otp:ip:{ip}", s.otp_ip_daily_cap, DAY)
        if not ip_verdict.allowed:
            raise RateLimited(
                N_("Too many codes were requested from this network today."),
                retry_after=ip_verdict.retry_after,
            )
        for period, key, budget, window in self._budgets():
            verdict = await self.limiter.peek(key, budget, window)
            if not verdict.allowed:
                await self._alert(period, "reached", verdict.count, budget, verdict.retry_after)
                raise BudgetSpent(retry_after=verdict.retry_after)
        if await self.challenge_required(ip):
            await self._check_proof(proof)
        gap = f"otp:gap:{phone_hash}"
        wait = await self.limiter.cooldown(gap, s.otp_resend_seconds)
        if wait:
            raise RateLimited(
                N_("A code was just sent. Please wait before asking again."), retry_after=wait
            )
        taken = await self._reserve(phone_hash, ip, gap)
        sent = False
        try:
            code = new_code()
            dev_inbox = code if (self.provider.name == "console" and not s.is_prod) else ""
            await self.store.issue(phone_hash, code, s.otp_ttl_seconds, dev_code=dev_inbox)
            result = await self.provider.send_code(phone, code)
            sent = result.ok
        finally:
            if not sent:
                # Nothing reached the phone: the attempt must not cost the visitor their resend
                # gap or caps, nor the business its budget.
                await self._refund(taken, gap)
        if result.ok:
            # What an operator reading DEBUG needs: which gateway, which number (masked).
            log.debug("sms via %s: a code sent to %s", self.provider.name, mask(phone))
        else:
            log.warning(
                "sms via %s failed: %s %s",
                self.provider.name,
                result.error_code,
                scrub(result.error_message),
            )
            if result.invalid_number:
                raise NumberCannotReceive(fields={"phone": "cannot_receive"})
            if result.rate_limited:
                raise RateLimited(
                    N_("Too many codes for this number. Please try again later."), retry_after=HOUR
                )
            raise SmsUnavailable()
        return phone

    async def _check_proof(self, proof: str) -> None:
        if not proof:
            raise ChallengeRequired(self.pow.challenge())
        outcome = await self.pow.check(proof)
        if outcome != "ok":
            log.info("proof of work refused: %s", outcome)
            raise ChallengeFailed(self.pow.challenge())

    async def _reserve(self, phone_hash: str, ip: str, gap: str) -> list[tuple[str, int, float]]:
        """Count this code against every cap and budget in one round trip; when one is
        exceeded, take every count back (a refused request costs nothing) and refuse."""
        s = self.settings
        at = time.time()
        checks = [
            (f"otp:h:{phone_hash}", s.otp_phone_hourly_cap, HOUR),
            (f"otp:d:{phone_hash}", s.otp_phone_daily_cap, DAY),
            (f"otp:ip:{ip}", s.otp_ip_daily_cap, DAY),
            # Never refuses: counts codes per address and hour for ``challenge_required``.
            (f"otp:iph:{ip}", 1_000_000_000, HOUR),
            *((key, budget, window) for _, key, budget, window in self._budgets()),
        ]
        verdicts = await self.limiter.hit_all(checks)
        self._forget_alerts()
        taken = [(key, window, at) for key, _, window in checks]
        refused = [i for i, verdict in enumerate(verdicts) if not verdict.allowed]
        for (period, _, budget, _), verdict in zip(self._budgets(), verdicts[4:], strict=True):
            if verdict.count * 100 >= budget * s.otp_budget_alert_percent:
                level = "reached" if verdict.count >= budget else "near"
                await self._alert(
                    period, level, min(verdict.count, budget), budget, verdict.retry_after
                )
        if not refused:
            return taken
        await self._refund(taken, gap)
        first = refused[0]
        retry_after = verdicts[first].retry_after
        if first >= 4:
            raise BudgetSpent(retry_after=retry_after)
        if first == 2:
            raise RateLimited(
                N_("Too many codes were requested from this network today."),
                retry_after=retry_after,
            )
        raise RateLimited(
            N_("Too many codes for this number. Please try again later."), retry_after=retry_after
        )

    async def _refund(self, taken: list[tuple[str, int, float]], gap: str) -> None:
        try:
            for key, window, at in taken:
                await self.limiter.refund(key, window, at)
            await self.limiter.release(gap)
            self._forget_alerts()
        except Exception:
            # The counters are a side store; failing to refund must not hide the real outcome.
            log.exception("could not refund the SMS counters")

    async def _alert(self, period: Period, level: str, count: int, budget: int, left: int) -> None:
        """Log a budget alert at WARNING once per window and level, whichever worker sees it
        first (the once-only mark lives in the shared store until the window ends)."""
        if await self.limiter.cooldown(f"otp:budget:alert:{period}:{level}", max(1, left)):
            return
        log.warning(
            "SMS budget %s: %d of %d codes this %s (LEADKIT_OTP_%s_BUDGET)",
            "spent" if level == "reached" else "nearly spent",
            count,
            budget,
            period,
            "HOURLY" if period == "hour" else "DAILY",
        )

    async def budget_alerts(self) -> list[BudgetAlert]:
        """The budgets reached or nearly reached in the current windows, for admins; read
        again after ``ALERTS_TTL`` seconds, or at once after this process counted a code."""
        cached, counted = self._alerts, self._counted
        if cached is not None and time.monotonic() < cached[0]:
            return list(cached[1])
        alerts = []
        for period, key, budget, window in self._budgets():
            count = (await self.limiter.peek(key, budget, window)).count
            if count >= budget:
                alerts.append(
                    BudgetAlert(period=period, level="reached", count=count, budget=budget)
                )
            elif count * 100 >= budget * self.settings.otp_budget_alert_percent:
                alerts.append(BudgetAlert(period=period, level="near", count=count, budget=budget))
        if counted == self._counted:  # no code was counted meanwhile
            self._alerts = (time.monotonic() + ALERTS_TTL, tuple(alerts))
        return alerts

    def _forget_alerts(self) -> None:
        self._counted += 1
        self._alerts = None

    async def authorise(
        self,
        db: AsyncSession,
        tracker: Tracker,
        visitor: Visitor,
        *,
        phone: str,
        code: str,
        consent: ConsentGiven,
        ctx: EventContext,
    ) -> tuple[Lead, bool]:
        """Check the code and, when it is right, authorise the visitor: the lead, the consent
        and the events, in the caller's transaction. A refused code is recorded as such."""
        try:
            auth = await self.verify(phone, code)
        except DomainError as exc:
            tracker.track(ctx, CodeRejected(reason=exc.code))
            raise
        return await leads.authorise(db, self.cipher, tracker, visitor, auth, consent, ctx)

    async def verify(self, phone_raw: str, code: str) -> PhoneAuthorisation:
        """Check the code; on success the phone is authorised (the code is used up)."""
        phone = normalise(phone_raw)
        # NFKC: a Chinese keyboard in full-width mode types １２３４５６ for 123456. Only the
        # six ASCII digits are compared (str.isdigit alone takes any script's digits): anything
        # else is refused as malformed and costs no attempt.
        code = unicodedata.normalize("NFKC", code).strip()
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise WrongCode(fields={"code": "format"})
        outcome = await self.store.check(
            self.cipher.lookup_hash(phone), code, self.settings.otp_max_attempts
        )
        if outcome == "wrong":
            raise WrongCode(fields={"code": "wrong"})
        if outcome != "ok":
            raise CodeExpired(fields={"code": outcome})
        return PhoneAuthorisation(
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
