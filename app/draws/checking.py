"""The verify page's check (/t/{slug}/verify), made in the page's own server call.

Two questions, both answered from public facts only:

1. Does the proof bundle hold together? ``proof.verify`` recomputes it: the seed against the
   commitment, the entrant list against its hash and count, the drand round, and every tier's
   winners, reserves and undrawn prizes.
2. Is it the draw that was announced? The bundle is compared with what the draw published
   while it ran (``DrawStatus``): the commitment from the start, the list's hash and count
   from the close, and each tier's winners as shown on the page and the big screen (masked
   phones). A winner who did not claim in time is replaced by the tier's next reserve, in
   order, so the announced winners are the drawn winners less those replaced, then the first
   reserves, as many as were called up.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from app.core.i18n import N_
from app.draws.proof import Proof, verify
from app.draws.schemas import DrawStatus

# What each mismatch code means, for the page (proof.verify's codes, then the page's own).
CHECK_LABELS: dict[str, str] = {
    "algorithm": N_("The bundle names another algorithm."),
    "seed": N_("The revealed seed is malformed."),
    "commitment": N_("The seed does not hash to the commitment."),
    "entrants": N_("The entrant list is not in its canonical form."),
    "entrants_hash": N_("The entrant list does not hash to the published hash."),
    "entrants_count": N_("The entrant list does not hold the published number of entrants."),
    "mode": N_("The mode does not match the randomness used."),
    "drand_chain": N_("The drand chain parameters do not match the chain."),
    "drand_untrusted_chain": N_("The drand round is not from the trusted chain."),
    "drand_scheme": N_("The drand round uses an unsupported scheme."),
    "drand_signature": N_("The drand round's signature does not verify."),
    "drand_randomness": N_("The drand randomness does not match its signature."),
    "tiers": N_("The prize tiers are malformed."),
    "winners": N_("The recomputed winners differ from the bundle's."),
    "reserves": N_("The recomputed reserves differ from the bundle's."),
    "undrawn": N_("The number of undrawn prizes differs."),
    "published_commitment": N_("The seed is not the one committed to when the draw was published."),
    "published_entrants": N_("The entrant list is not the one frozen when entries closed."),
    "announced_winners": N_("The announced winners are not the recomputed winners."),
}


class TierCheck(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    announced: list[str]  # masked phones, as the page shows them
    winners: list[str]  # recomputed from the bundle, masked
    reserves: list[str]
    undrawn: int
    matches: bool


class Check(msgspec.Struct, frozen=True, kw_only=True):
    matches: bool
    problems: list[str]  # codes of CHECK_LABELS, each once, in the order found
    tiers: list[TierCheck]


def announced_as_drawn(
    announced: Sequence[str], winners: Sequence[str], reserves: Sequence[str]
) -> bool:
    """Whether ``announced`` is ``winners`` with k of them replaced (left out, order kept)
    followed by the first k ``reserves``, for some k."""
    if len(announced) != len(winners):
        return False
    for called in range(min(len(announced), len(reserves)) + 1):
        kept = len(announced) - called
        if list(announced[kept:]) == list(reserves[:called]) and _in_order(
            announced[:kept], winners
        ):
            return True
    return False


def _in_order(part: Sequence[str], whole: Sequence[str]) -> bool:
    rest = iter(whole)
    return all(any(item == other for other in rest) for item in part)


def check(proof: Proof, published: DrawStatus, *, trusted_chain: str | None) -> Check:
    problems = [m.code for m in verify(proof, trusted_chain=trusted_chain)]
    if proof.commitment != published.commitment:
        problems.append("published_commitment")
    if (proof.entrants_hash, proof.entrants_count) != (
        published.entrants_hash,
        published.entrants,
    ):
        problems.append("published_entrants")
    phones = {entrant.id: entrant.phone for entrant in proof.entrants}
    tiers: list[TierCheck] = []
    for drawn, shown in zip(proof.tiers, published.tiers, strict=False):
        winners = [phones.get(i, "?") for i in drawn.winners]
        reserves = [phones.get(i, "?") for i in drawn.reserves]
        matches = announced_as_drawn(shown.winners, winners, reserves)
        if not matches:
            problems.append("announced_winners")
        tiers.append(
            TierCheck(
                name=drawn.name,
                announced=list(shown.winners),
                winners=winners,
                reserves=reserves,
                undrawn=drawn.undrawn,
                matches=matches,
            )
        )
    if len(proof.tiers) != len(published.tiers):
        problems.append("tiers")
    unique = list(dict.fromkeys(problems))
    return Check(matches=not unique, problems=unique, tiers=tiers)
