"""Connection credentials encrypted at rest: Fernet tokens under keys from the environment.

`CONNECTION_KEYS` (settings, from LEDGERLINE_CONNECTION_KEYS) lists Fernet keys, newest first:
new values are encrypted with the first, any listed key decrypts, and `manage.py
connections_rotate_keys` re-encrypts every stored value under the first (cryptography's MultiFernet).
Values never leave this module in clear except to the connector that needs them.
"""
from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _keys() -> list[bytes]:
    keys = [k.encode() if isinstance(k, str) else k for k in getattr(settings, "CONNECTION_KEYS", []) if k]
    if not keys:
        # Demo and tests only (settings refuse to start without keys elsewhere): a key derived from
        # SECRET_KEY, so the demo needs no set-up.
        digest = hashlib.sha256(f"ledgerline-connections:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest)]
    return keys


def _box() -> MultiFernet:
    try:
        return MultiFernet([Fernet(k) for k in _keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(f"LEDGERLINE_CONNECTION_KEYS holds a key that is not a Fernet key: {exc}") from None


def encrypt(values: dict) -> str:
    return _box().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_box().decrypt(token.encode()))
    except InvalidToken:
        raise ImproperlyConfigured(
            "a connection's credentials cannot be decrypted with LEDGERLINE_CONNECTION_KEYS "
            "(was the key that encrypted them removed?)") from None


def rotate(token: str) -> str:
    return _box().rotate(token.encode()).decode() if token else token


class Credentials(dict):
    """Decrypted credentials: a dict whose repr never shows the values (safe in logs and tracebacks)."""

    def __repr__(self) -> str:
        return f"Credentials({sorted(self)} hidden)"

    __str__ = __repr__


class EncryptedCredentialsField(models.TextField):
    """A dict of secrets stored as one Fernet token; reads give `Credentials`."""

    def from_db_value(self, value, expression, connection):
        return Credentials(decrypt(value)) if value else Credentials()

    def to_python(self, value):
        if isinstance(value, dict):
            return Credentials(value)
        return Credentials(decrypt(value)) if value else Credentials()

    def get_prep_value(self, value):
        if not value:
            return ""
        if isinstance(value, str):
            return value  # already a token
        return encrypt(dict(value))

    def value_to_string(self, obj):
        return "(encrypted)"
