"""Encryption at rest: personal fields are stored as Fernet tokens.

Phone numbers, message texts and interview answers pass through these column
types on their way into the database. Keys come from ENCRYPTION_KEYS; the first
one encrypts, all of them decrypt, so a key can be rotated without downtime.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text, TypeDecorator

from bot.errors import ConfigError, PolkuError

logger = logging.getLogger(__name__)

_cipher: MultiFernet | None = None


class DecryptionError(PolkuError):
    """A stored value could not be decrypted with any configured key."""


def check_key(key: str) -> None:
    """Raise ConfigError unless `key` is a usable Fernet key."""
    try:
        Fernet(key.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "ENCRYPTION_KEYS holds a key that is not a Fernet key (32 bytes in "
            'url-safe base64); make one with: python -c "from cryptography.fernet '
            'import Fernet; print(Fernet.generate_key().decode())"'
        ) from exc


def configure(keys: tuple[str, ...]) -> None:
    """Use `keys` for every encrypted column in this process; the first encrypts."""
    global _cipher
    _cipher = MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    if _cipher is None:
        raise ConfigError("encryption is not configured; build the app first")

    return _cipher


def encrypt(value: str) -> str:
    return _current().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise DecryptionError(
            "a stored value cannot be decrypted with ENCRYPTION_KEYS; was a key "
            "removed before `flask --app wsgi keys rotate` ran?"
        ) from exc


def rotate(token: str) -> str:
    """Return `token` encrypted again with the first key."""
    return _current().rotate(token.encode("ascii")).decode("ascii")


class EncryptedText(TypeDecorator[str]):
    """Text stored encrypted; reads and writes plain `str`."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else decrypt(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON document stored encrypted."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None

        return encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(decrypt(value))
