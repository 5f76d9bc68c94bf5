"""Encryption at rest for everything a patient writes: authenticated (Fernet), key-rotatable.

The cipher is process-wide because SQLAlchemy column types have no other way to reach it: the
bot and each command line tool set it once, at start, before touching the database.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Dialect, Text, TypeDecorator

log = logging.getLogger(__name__)

# Every Fernet token starts with its version byte, 0x80, which base64 spells "gAAAAA".
TOKEN_PREFIX = "gAAAAA"


class DataKeyError(Exception):
    """The keys are missing, unreadable or do not open this database."""


class Cipher:
    """Encrypts with the first key; decrypts with any of them."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise DataKeyError("no encryption key given")
        try:
            self._fernets = [Fernet(key) for key in keys]
        except ValueError:
            raise DataKeyError(
                "an encryption key is malformed: each must be 32 url-safe base64-encoded bytes "
                "(make one with `python -m bot keys new`)"
            ) from None
        self._multi = MultiFernet(self._fernets)

    def encrypt(self, text: str) -> str:
        return self._multi.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._multi.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise DataKeyError("a row cannot be decrypted with the keys given") from None

    def is_current(self, token: str) -> bool:
        """Whether the token is already under the first (newest) key."""
        try:
            self._fernets[0].decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        return self._multi.rotate(token.encode("ascii")).decode("ascii")


_cipher: Cipher | None = None


def use_cipher(cipher: Cipher) -> None:
    global _cipher
    _cipher = cipher


def current_cipher() -> Cipher:
    if _cipher is None:
        raise RuntimeError("no cipher set: call use_cipher() at start, before using the database")
    return _cipher


def is_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token; the application reads and writes plain str."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else current_cipher().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else current_cipher().decrypt(value)


def parse_keys(text: str) -> list[bytes]:
    """DATA_KEYS, or a key file: keys separated by commas or lines, the first encrypts."""
    keys = text.replace("\n", ",").split(",")
    return [key.strip().encode("ascii") for key in keys if key.strip()]


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def create_key_file(path: Path) -> None:
    """A new key in a file only its owner can read (0600), created atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(new_key() + "\n")
