"""What ``leadkit draws verify`` prints about a proof bundle: plain English for the operator
or the sceptical viewer at a terminal (the verify page speaks the visitor's language)."""

from __future__ import annotations

import datetime as dt

from app.draws.drand import time_of
from app.draws.proof import MODE_DRAND, Mismatch, Proof


def describe(proof: Proof) -> list[str]:
    """The bundle in a few lines: mode, commitment, list, and each tier's outcome."""
    lines = [f"algorithm {proof.algorithm}, mode {proof.mode}"]
    if proof.drand is not None and proof.mode == MODE_DRAND:
        beacon = proof.drand
        try:
            when = dt.datetime.fromtimestamp(time_of(beacon.chain, beacon.round), dt.UTC)
            at = f", produced {when:%Y-%m-%d %H:%M:%S} UTC"
        except (OverflowError, ValueError, OSError):
            at = ""
        lines.append(f"drand round {beacon.round} of chain {beacon.chain.hash}{at}")
    lines += [
        f"seed commitment {proof.commitment}",
        f"entrants {proof.entrants_count}, list SHA-256 {proof.entrants_hash}",
        f"one win per phone: {'yes' if proof.one_win_per_phone else 'no'}",
    ]
    for number, tier in enumerate(proof.tiers, start=1):
        line = f"tier {number} {tier.name!r}: {tier.quantity} prizes, winners {_ids(tier.winners)}"
        if tier.reserve_quantity:
            line += f"; reserves {_ids(tier.reserves)}"
        if tier.undrawn:
            line += f"; {tier.undrawn} undrawn (fewer entrants than prizes)"
        lines.append(line)
    return lines


def verdict(mismatches: list[Mismatch]) -> list[str]:
    if not mismatches:
        return ["ok: the commitment, the list and every winner and reserve recompute exactly"]
    return [f"MISMATCH {m.code}: {m.message}" for m in mismatches] + [
        f"FAILED: {len(mismatches)} mismatch{'es' if len(mismatches) > 1 else ''}"
    ]


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) if ids else "none"
