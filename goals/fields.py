"""A text field encrypted at rest, for the secrets staff store: forge tokens and model API keys.

Fernet (AES-128-CBC with an HMAC, from the `cryptography` package Goalpost already installs for web push): a
well-kept, authenticated scheme with nothing for us to get wrong, so a database dump or backup without
settings.GOALPOST_FIELD_KEY reveals no secret and a tampered value fails to decrypt rather than decrypting to junk.
"""

from __future__ import annotations

import base64
import logging
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

log = logging.getLogger(__name__)


def _derive(key: str) -> Fernet:
    # Any string (an env value or the generated var/field_key) becomes a Fernet key through HKDF.
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"goalpost encrypted field").derive(
        key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


@cache
def _fernet(keys: str) -> MultiFernet:
    """GOALPOST_FIELD_KEY may list several keys, comma-separated: the first encrypts, any decrypts (rotation)."""
    return MultiFernet([_derive(key.strip()) for key in keys.split(",") if key.strip()])


def encrypt(plaintext: str) -> str:
    return _fernet(settings.GOALPOST_FIELD_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext; empty (and a logged warning) when the key has changed since it was stored."""
    try:
        return _fernet(settings.GOALPOST_FIELD_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        log.warning("An encrypted field does not decrypt with GOALPOST_FIELD_KEY: store the secret again.")
        return ""


class EncryptedTextField(models.TextField):
    """Plaintext in Python, a Fernet token in the database; the empty string stays empty (no secret set)."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)
