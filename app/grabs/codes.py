"""Voucher codes: the grab's prefix plus 12 Crockford base-32 characters (60 random bits).

Stored upper-case without separators (``LK7K3M9QX2PF4H``), shown in groups of four after the
prefix (``LK 7K3M 9QX2 PF4H``), encoded as-is in the QR code. What staff type is normalised
first: case, spaces and dashes do not matter and the letters Crockford treats as look-alikes
(O → 0, I/L → 1) are read as the digits.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
BODY_LENGTH = 12
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code(prefix: str) -> str:
    return prefix.upper() + "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))


def display(code: str, prefix_length: int | None = None) -> str:
    """``LK7K3M9QX2PF4H`` → ``LK 7K3M 9QX2 PF4H`` (the body is always the last 12 characters)."""
    split = len(code) - BODY_LENGTH if prefix_length is None else prefix_length
    head, body = code[:split], code[split:]
    groups = [body[i : i + 4] for i in range(0, len(body), 4)]
    return " ".join([head, *groups]) if head else " ".join(groups)


def normalise(typed: str, max_length: int = 64) -> str:
    """What staff typed or scanned → the stored form (the prefix keeps its own letters)."""
    compact = "".join(ch for ch in typed[:max_length].upper() if ch.isalnum())
    if len(compact) <= BODY_LENGTH:
        return compact.translate(_ALIASES)
    split = len(compact) - BODY_LENGTH
    return compact[:split] + compact[split:].translate(_ALIASES)
