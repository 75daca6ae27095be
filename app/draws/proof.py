"""The proof bundle of a draw and its verification (docs/draws.md, "The proof bundle").

``prove`` draws and returns the bundle ``GET /api/v1/draws/{slug}/proof`` serves and
``leadkit draws verify`` reads; ``verify`` recomputes everything in it — commitment, list hash
and count, the drand round, every tier's winners, reserves and undrawn prizes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import msgspec

from app.draws.drand import SCHEME, DrandError, DrandRound, chain_hash, verify_round
from app.draws.entrants import DrawInputError, Entrant, FrozenList, list_problems
from app.draws.fairness import ALGORITHM, TierRule, commitment, draw, rule_problems

MODE_COMMIT_REVEAL = "commit-reveal"
MODE_DRAND = "drand"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ProofTier(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    quantity: int
    reserve_quantity: int
    winners: list[int]
    reserves: list[int]
    undrawn: int


class Proof(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``GET /api/v1/draws/{slug}/proof`` and the file ``leadkit draws verify`` reads."""

    algorithm: str
    mode: str  # "commit-reveal" or "drand"
    seed: str  # hex, 32 bytes
    commitment: str  # hex SHA-256 of the seed
    entrants_hash: str  # hex SHA-256 of the canonical list
    entrants_count: int
    one_win_per_phone: bool
    entrants: list[Entrant]
    drand: DrandRound | None = None
    tiers: list[ProofTier]


class Mismatch(msgspec.Struct, frozen=True):
    """One thing ``verify`` found wrong; ``code`` is stable, ``message`` says what and where."""

    code: str
    message: str


def prove(
    seed: bytes,
    frozen: FrozenList,
    rules: Sequence[TierRule],
    *,
    one_win_per_phone: bool,
    beacon: DrandRound | None = None,
) -> Proof:
    """Draw and return the bundle that lets anyone check the draw."""
    randomness = bytes.fromhex(beacon.randomness) if beacon else None
    tiers = draw(seed, frozen, rules, one_win_per_phone=one_win_per_phone, randomness=randomness)
    return Proof(
        algorithm=ALGORITHM,
        mode=MODE_DRAND if beacon else MODE_COMMIT_REVEAL,
        seed=seed.hex(),
        commitment=commitment(seed),
        entrants_hash=frozen.hash,
        entrants_count=frozen.count,
        one_win_per_phone=one_win_per_phone,
        entrants=frozen.entrants,
        drand=beacon,
        # Each tier as drawn, published field by field (``undrawn`` is the result's property).
        tiers=[msgspec.convert(t, ProofTier, from_attributes=True) for t in tiers],
    )


def encode_proof(proof: Proof) -> bytes:
    return msgspec.json.encode(proof)


def decode_proof(data: bytes) -> Proof:
    """A bundle from JSON; DrawInputError names what is missing or of the wrong type."""
    try:
        return msgspec.json.decode(data, type=Proof)
    except msgspec.DecodeError as exc:
        raise DrawInputError(f"not a draw proof bundle: {exc}") from exc


def verify(proof: Proof, *, trusted_chain: str | None = None) -> list[Mismatch]:
    """Recompute the bundle: commitment, list hash and count, the drand round (chain, scheme,
    signature, randomness) and every tier's winners, reserves and undrawn prizes. Empty when
    everything matches. ``trusted_chain``: the drand chain hash the verifier trusts."""
    found: list[Mismatch] = []

    def mismatch(code: str, message: str) -> None:
        found.append(Mismatch(code, message))

    if proof.algorithm != ALGORITHM:
        mismatch("algorithm", f"algorithm {proof.algorithm!r} is not {ALGORITHM!r}")
        return found
    if not _HEX64.fullmatch(proof.seed):
        mismatch("seed", "the seed is not 64 lowercase hex digits (32 bytes)")
        return found
    seed = bytes.fromhex(proof.seed)
    if commitment(seed) != proof.commitment:
        mismatch(
            "commitment",
            f"SHA-256 of the seed is {commitment(seed)}, "
            f"the published commitment {proof.commitment}",
        )
    frozen = FrozenList.of(proof.entrants)
    problems = list_problems(frozen)
    for problem in problems:
        mismatch("entrants", f"the entrant list is not canonical: {problem}")
    if frozen.hash != proof.entrants_hash:
        mismatch(
            "entrants_hash",
            f"the entrant list hashes to {frozen.hash}, "
            f"the published hash is {proof.entrants_hash}",
        )
    if frozen.count != proof.entrants_count:
        mismatch(
            "entrants_count",
            f"the list has {frozen.count} entrants, the published count is {proof.entrants_count}",
        )
    randomness = _check_drand(proof, trusted_chain, mismatch)
    rules = [TierRule(t.name, t.quantity, t.reserve_quantity) for t in proof.tiers]
    rule_errors = rule_problems(rules)
    for problem in rule_errors:
        mismatch("tiers", problem)
    if problems or rule_errors or (proof.drand is not None and randomness is None):
        return found  # nothing meaningful to recompute the winners from
    tiers = draw(
        seed, frozen, rules, one_win_per_phone=proof.one_win_per_phone, randomness=randomness
    )
    for number, (claimed, computed) in enumerate(zip(proof.tiers, tiers), start=1):  # noqa: B905
        for code, published, expected in (
            ("winners", claimed.winners, list(computed.winners)),
            ("reserves", claimed.reserves, list(computed.reserves)),
            ("undrawn", claimed.undrawn, computed.undrawn),
        ):
            if published != expected:
                mismatch(
                    code,
                    f"tier {number} ({claimed.name}): the {code} are {expected}, "
                    f"the bundle says {published}",
                )
    return found


def _check_drand(
    proof: Proof, trusted_chain: str | None, mismatch: Callable[[str, str], None]
) -> bytes | None:
    """Check the drand part of a bundle; the randomness to draw with (None without drand or
    when it is not even 32 bytes of hex)."""
    expected_mode = MODE_COMMIT_REVEAL if proof.drand is None else MODE_DRAND
    if proof.mode != expected_mode:
        mismatch("mode", f"the mode is {proof.mode!r} but the bundle is {expected_mode!r}")
    beacon = proof.drand
    if beacon is None:
        return None
    chain = beacon.chain
    try:
        computed = chain_hash(chain)
    except ValueError as exc:
        computed = f"nothing ({exc})"
    if computed != chain.hash:
        mismatch(
            "drand_chain",
            f"the drand chain parameters hash to {computed}, not the chain {chain.hash}",
        )
    if trusted_chain is not None and chain.hash != trusted_chain:
        mismatch(
            "drand_untrusted_chain",
            f"drand chain {chain.hash} is not the trusted chain {trusted_chain}",
        )
    if chain.scheme != SCHEME:
        mismatch("drand_scheme", f"drand scheme {chain.scheme!r} is not {SCHEME!r}")
    if not _HEX64.fullmatch(beacon.randomness):
        mismatch("drand_randomness", "the drand randomness is not 64 lowercase hex digits")
        return None
    try:
        signed = verify_round(chain.public_key, beacon.round, beacon.signature).hex()
    except DrandError as exc:
        mismatch("drand_signature", f"drand round {beacon.round}: {exc}")
    else:
        if signed != beacon.randomness:
            mismatch(
                "drand_randomness",
                f"drand round {beacon.round}: the randomness is "
                f"{beacon.randomness}, SHA-256 of the signature is {signed}",
            )
    return bytes.fromhex(beacon.randomness)
