"""Personal data at rest: phone numbers are AES-GCM encrypted, with an HMAC for lookup.

Both keys are derived (HKDF) from LEADKIT_DATA_KEY; in development, when it is empty, from
LEADKIT_SECRET_KEY, so a fresh checkout works (production refuses an empty data key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import Settings


def _derive(material: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"leadkit", info=purpose).derive(
        material
    )


class DataCipher:
    """Encrypts and looks up personal identifiers (phone numbers)."""

    def __init__(self, settings: Settings) -> None:
        material = (settings.data_key or settings.secret_key).encode()
        self._aead = AESGCM(_derive(material, b"phone-encryption"))
        self._hash_key = _derive(material, b"phone-lookup")

    def encrypt(self, value: str) -> str:
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(
            nonce + self._aead.encrypt(nonce, value.encode(), None)
        ).decode()

    def decrypt(self, token: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode())
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()

    def lookup_hash(self, value: str) -> str:
        """A keyed hash: equal inputs match, but the table alone reveals nothing."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()
