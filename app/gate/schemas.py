"""The gate's inputs and answers. What it produces, a PhoneAuthorisation, is the leads' type
(app/leads/schemas.py): every gate method hands one to the lead it authorises."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

PhoneInput = Annotated[str, msgspec.Meta(max_length=32)]
CodeInput = Annotated[str, msgspec.Meta(max_length=16)]
ProofInput = Annotated[str, msgspec.Meta(max_length=4096)]


class CodeRequest(msgspec.Struct, kw_only=True, frozen=True):
    """POST /api/v1/gate/code. ``consent`` must be literally true (the unticked box)."""

    phone: PhoneInput
    # The tool whose gate this is (its slug), so the gate's events count in its funnel.
    tool: Annotated[str, msgspec.Meta(max_length=64)] = ""
    # Any, not bool: the body decoder would turn "true" or 1 into True; only JSON true counts.
    consent: Any = None
    # A solved ALTCHA proof of work (base64), when a 403 asked for one.
    altcha: ProofInput = ""


class CodeVerify(msgspec.Struct, kw_only=True, frozen=True):
    phone: PhoneInput
    code: CodeInput
    tool: Annotated[str, msgspec.Meta(max_length=64)] = ""


class CodeSentAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """202 from POST /api/v1/gate/code."""

    status: Literal["sent"]
    phone: str  # E.164, as the code was sent to it
    expires_in: int  # seconds the code stays valid
    resend_in: int  # seconds before another code may be asked for


class VerifiedAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """200 from POST /api/v1/gate/verify: the visitor is authorised."""

    status: Literal["authorised"]
    method: Literal["sms"]


class ProofParameters(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    """What a proof-of-work challenge asks (ALTCHA PoW v2): find the counter whose derived key
    (``algorithm`` over nonce + counter as big-endian uint32, salted, ``cost`` iterations,
    ``keyLength`` bytes) starts with ``keyPrefix``."""

    algorithm: str  # "PBKDF2/SHA-256"
    nonce: str  # hex
    salt: str  # hex
    cost: int
    key_length: int
    key_prefix: str  # hex
    expires_at: int  # epoch seconds


class ProofChallenge(msgspec.Struct, kw_only=True, frozen=True):
    """GET /api/v1/gate/challenge: send it back, with the solution, as ``altcha``."""

    parameters: ProofParameters
    signature: str  # HMAC of the parameters: change nothing in them


class CodeRequestForm(msgspec.Struct, kw_only=True, frozen=True):
    """The gate partial's form: the checkbox posts "on" when ticked and nothing otherwise."""

    phone: PhoneInput = ""
    consent: Annotated[str, msgspec.Meta(max_length=8)] = ""
    code: CodeInput = ""
    next: Annotated[str, msgspec.Meta(max_length=256)] = ""
    altcha: ProofInput = ""  # the widget's hidden field, when the proof of work was asked for
