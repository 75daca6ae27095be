"""drand: public randomness a draw mixes in, fetched over HTTP and verified before use.

A drand chain is named by its hash, which is SHA-256 over the chain's parameters and public key
(``chain_hash``). The chain hash is the one thing configured (LEADKIT_DRAND_CHAIN); everything
else — the public key, genesis time, period — is fetched from ``/{chain}/info`` and accepted
only when it hashes to that value, so a wrong or hostile beacon URL cannot swap the key.

Each round's signature is then checked against that key before its randomness is used. Only
the unchained BLS scheme on G1 of quicknet is supported (``bls-unchained-g1-rfc9380``): the
signature is a G1 point over ``SHA-256(round as 8 bytes big-endian)`` hashed to G1 with
``DST``, the public key a G2 point, and the round's randomness is ``SHA-256(signature)``.

The pairing arithmetic comes from py_arkworks_bls12381 (the Ethereum Foundation's Python
binding of the audited arkworks BLS12-381 code): it hashes to G1 with a caller's DST, checks
that points are on the curve and in the prime-order subgroup, and verifies in milliseconds.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import time
from collections.abc import Callable
from typing import ClassVar, TypeVar

import httpx
import msgspec
from py_arkworks_bls12381 import GT, G1Point, G2Point

from app.settings import Settings

SCHEME = "bls-unchained-g1-rfc9380"
DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
QUICKNET_CHAIN = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
TIMEOUT_SECONDS = 5.0
# drand's own chain hash leaves the beacon id out for its first chain (id "" or "default").
DEFAULT_BEACON_IDS = ("", "default")
_HEX64 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


class DrandError(Exception):
    """The beacon could not give a verified round; ``reason`` says which way it failed."""

    reason: ClassVar[str] = "drand"


class DrandUnavailable(DrandError):
    reason = "unavailable"


class DrandNotYet(DrandError):
    reason = "not_yet"


class DrandWrongChain(DrandError):
    reason = "wrong_chain"


class DrandBadSignature(DrandError):
    reason = "bad_signature"


class DrandBadResponse(DrandError):
    reason = "bad_response"


class ChainInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A drand chain's public parameters, as a draw's proof bundle carries them."""

    hash: str
    public_key: str
    period: int
    genesis_time: int
    group_hash: str
    beacon_id: str
    scheme: str


class DrandRound(msgspec.Struct, frozen=True, kw_only=True):
    """A verified round and the chain it belongs to: the proof bundle's ``drand``."""

    round: int
    randomness: str
    signature: str
    chain: ChainInfo


class _WireMetadata(msgspec.Struct):
    beaconID: str = ""  # drand's JSON names


class _WireInfo(msgspec.Struct):
    """``/{chain}/info`` as drand serves it."""

    public_key: str
    period: int
    genesis_time: int
    hash: str
    groupHash: str
    schemeID: str
    metadata: _WireMetadata = msgspec.field(default_factory=_WireMetadata)


class _WireRound(msgspec.Struct):
    """``/{chain}/public/{round}`` as drand serves it (quicknet has no previous_signature)."""

    round: int
    randomness: str
    signature: str


def chain_hash(info: ChainInfo) -> str:
    """drand's chain hash: SHA-256(period u32 BE ‖ genesis i64 BE ‖ public key ‖ group hash
    ‖ beacon id unless default). Raises ValueError on fields that are not hex or out of range."""
    beacon_id = b"" if info.beacon_id in DEFAULT_BEACON_IDS else info.beacon_id.encode()
    try:
        head = struct.pack(">Iq", info.period, info.genesis_time)
    except struct.error as exc:
        raise ValueError(f"period or genesis time out of range: {exc}") from exc
    data = head + bytes.fromhex(info.public_key) + bytes.fromhex(info.group_hash) + beacon_id
    return hashlib.sha256(data).hexdigest()


def round_message(round_number: int) -> bytes:
    """What an unchained round signs: SHA-256 of the round number as 8 bytes big-endian."""
    return hashlib.sha256(round_number.to_bytes(8, "big")).digest()


def verify_round(public_key: str, round_number: int, signature: str) -> bytes:
    """Check a round's BLS signature; return its randomness, SHA-256(signature).

    Raises DrandBadSignature for a signature that is not a valid G1 point or does not verify,
    DrandWrongChain for a public key that is not a valid G2 point."""
    if not 1 <= round_number < 2**64:
        raise DrandBadSignature(f"round {round_number} is not a drand round number")
    try:
        key = G2Point.from_compressed_bytes(bytes.fromhex(public_key))
    except ValueError as exc:
        raise DrandWrongChain(f"the chain's public key is not a G2 point: {exc}") from exc
    try:
        raw = bytes.fromhex(signature)
        point = G1Point.from_compressed_bytes(raw)
    except ValueError as exc:
        raise DrandBadSignature(f"round {round_number}: not a G1 signature: {exc}") from exc
    # The identity point "verifies" against the identity key; neither is a real signature.
    if point == G1Point.identity() or key == G2Point.identity():
        raise DrandBadSignature(f"round {round_number}: the signature is the identity point")
    hashed = G1Point.hash_to_curve(round_message(round_number), DST)
    # e(signature, g2) == e(H(m), public key)  <=>  e(signature, g2) · e(-H(m), pk) == 1
    if not GT.pairing_check([point, -hashed], [G2Point(), key]):
        raise DrandBadSignature(f"round {round_number}: the signature does not verify")
    return hashlib.sha256(raw).digest()


def time_of(info: ChainInfo, round_number: int) -> int:
    """When a round is produced (Unix seconds): round 1 at genesis, then one per period."""
    return info.genesis_time + (round_number - 1) * info.period


def round_at(info: ChainInfo, when: float) -> int:
    """The latest round produced at or before ``when``; 0 before genesis."""
    elapsed = math.floor(when) - info.genesis_time
    return 0 if elapsed < 0 else elapsed // info.period + 1


def round_after(info: ChainInfo, when: float) -> int:
    """The first round produced strictly after ``when``: announce it before the entry window
    closes, and nobody — leadkit included — knows its randomness while entries are taken."""
    return round_at(info, when) + 1


def check_chain(info: ChainInfo, expected: str) -> None:
    """Raise DrandWrongChain unless ``info`` is the chain named ``expected`` with our scheme."""
    try:
        computed = chain_hash(info)
    except ValueError as exc:
        raise DrandWrongChain(f"the chain information is malformed: {exc}") from exc
    if computed != expected or info.hash != expected:
        raise DrandWrongChain(
            f"the beacon serves chain {info.hash} (its parameters hash to {computed}), "
            f"not the configured {expected}"
        )
    if info.scheme != SCHEME:
        raise DrandWrongChain(f"chain {expected} uses scheme {info.scheme}; only {SCHEME} is known")
    if info.period < 1:
        raise DrandWrongChain(f"chain {expected} has a period of {info.period} s")


class DrandClient:
    """One drand beacon: ``/{chain}/info`` (checked against the chain hash, kept once good)
    and ``/{chain}/public/{round}`` (each round's signature verified)."""

    def __init__(
        self,
        base_url: str,
        chain: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not _HEX64.fullmatch(chain):
            raise ValueError("a drand chain hash is 64 lowercase hex digits")
        self.base_url = base_url.rstrip("/")
        self.chain = chain
        self._timeout = timeout
        self._clock = clock
        self._transport = transport
        self._info: ChainInfo | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DrandClient:
        return cls(settings.drand_url, settings.drand_chain)

    async def info(self) -> ChainInfo:
        if self._info is None:
            wire = await self._get(f"/{self.chain}/info", _WireInfo)
            info = ChainInfo(
                hash=wire.hash,
                public_key=wire.public_key,
                period=wire.period,
                genesis_time=wire.genesis_time,
                group_hash=wire.groupHash,
                beacon_id=wire.metadata.beaconID,
                scheme=wire.schemeID,
            )
            check_chain(info, self.chain)
            self._info = info
        return self._info

    async def round_after(self, when: float) -> int:
        return round_after(await self.info(), when)

    async def fetch(self, round_number: int) -> DrandRound:
        """The verified round; DrandNotYet before its time, other DrandErrors as they come."""
        if round_number < 1:
            raise ValueError(f"drand rounds are numbered from 1, not {round_number}")
        info = await self.info()
        due = time_of(info, round_number)
        if due > self._clock():
            raise DrandNotYet(f"drand round {round_number} is produced at {due} (Unix time)")
        wire = await self._get(f"/{self.chain}/public/{round_number}", _WireRound)
        if wire.round != round_number:
            raise DrandBadResponse(f"asked for round {round_number}, got round {wire.round}")
        randomness = verify_round(info.public_key, round_number, wire.signature).hex()
        if wire.randomness != randomness:
            raise DrandBadSignature(
                f"round {round_number}: the randomness is not SHA-256 of the signature"
            )
        return DrandRound(
            round=round_number, randomness=randomness, signature=wire.signature, chain=info
        )

    async def _get(self, path: str, into: type[T]) -> T:
        url = self.base_url + path
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport
            ) as client:
                # No Accept header: a drand relay answers JSON whatever is asked, and what is
                # not JSON is refused below (DrandBadResponse).
                answer = await client.get(url)
        except httpx.HTTPError as exc:
            raise DrandUnavailable(
                f"the drand beacon at {url} did not answer ({type(exc).__name__}: {exc})"
            ) from exc
        if answer.status_code != 200:
            raise DrandUnavailable(f"the drand beacon at {url} answered {answer.status_code}")
        try:
            return msgspec.json.decode(answer.content, type=into)
        except msgspec.DecodeError as exc:
            raise DrandBadResponse(f"the drand beacon at {url} sent {exc}") from exc
