"""Encryption at rest for everything a patient writes: authenticated (Fernet), key-rotatable.

The cipher is process-wide because SQLAlchemy column types have no other way to reach it: the
bot and each command line tool set it once, at start, before touching the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from pathlib import Path
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import BindParameter, ColumnElement, Dialect, Text, TypeDecorator
from sqlalchemy.sql import operators
from sqlalchemy.sql.operators import OperatorType

log = logging.getLogger(__name__)

# Every Fernet token starts with its version byte, 0x80, which base64 spells "gAAAAA".
TOKEN_PREFIX = "gAAAAA"

# The lookup-hash secret of a key is HMAC-SHA256(the key's 32 decoded bytes, this label): a
# secret of its own, so a lookup hash reveals nothing about the Fernet keys, and changing the
# label (v2) would invalidate every stored hash at once.
LOOKUP_LABEL = b"integration-companion/lookup/v1"

# A column whose `info` holds {LOOKUP_HASH_OF: "<an encrypted column of the same table>"} stores
# `Cipher.lookup_hash` of that column's value as text (str(value) for an EncryptedInt);
# `python -m bot keys rotate` recomputes it from the decrypted column under the newest key.
LOOKUP_HASH_OF = "lookup_hash_of"


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
        self._lookup_secrets = [
            hmac.new(base64.urlsafe_b64decode(key), LOOKUP_LABEL, hashlib.sha256).digest()
            for key in keys
        ]

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

    def lookup_hash(self, value: str) -> str:
        """A keyed hash for equality lookups (hex HMAC-SHA256), under the first key's secret.

        Equal values give equal hashes, so a column of them can be indexed and compared in SQL;
        without the key, a dump cannot tell which value a hash stands for, not even by trying
        every Telegram id.
        """
        return _hmac_hex(self._lookup_secrets[0], value)

    def lookup_hashes(self, value: str) -> list[str]:
        """The value's lookup hash under every key, newest first: a lookup matches rows hashed
        before a rotation as well as after it."""
        return [_hmac_hex(secret, value) for secret in self._lookup_secrets]


def _hmac_hex(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


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


class EncryptedComparisonError(TypeError):
    """SQL compared an encrypted column with a value, or sorted by it: each token differs, even
    for equal values, so the database cannot do it; do it in Python after reading the rows."""


T = TypeVar("T")

# Sorting by a token sorts nothing the patient would recognise.
_ORDERING = frozenset({operators.asc_op, operators.desc_op})


class _EncryptedComparator(TypeDecorator.Comparator[Any]):
    """Refuses SQL that compares an encrypted column with a value, or sorts by it: it would
    quietly match nothing. `IS NULL` works; so do comparisons with another column, which
    SQLAlchemy makes itself when it looks columns up."""

    def operate(self, op: OperatorType, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
        if op in _ORDERING or (
            op not in (operators.is_, operators.is_not) and not _all_columns(other)
        ):
            raise EncryptedComparisonError(f"{op.__name__} on an encrypted column")
        return super().operate(op, *other, **kwargs)

    def reverse_operate(self, op: OperatorType, other: Any, **kwargs: Any) -> ColumnElement[Any]:
        if not _all_columns((other,)):
            raise EncryptedComparisonError(f"{op.__name__} on an encrypted column")
        return super().reverse_operate(op, other, **kwargs)


def _all_columns(others: tuple[Any, ...]) -> bool:
    return bool(others) and all(
        isinstance(o, ColumnElement) and not isinstance(o, BindParameter) for o in others
    )


class Encrypted(TypeDecorator[T]):
    """A value stored as a Fernet token, written as text; the application reads and writes T.

    Every column whose type is a subclass is encrypted at rest: `python -m bot keys rotate`,
    the key check at start and the tests find them from the models, so a new encrypted column
    needs nothing more than one of these types (EncryptedInt serves BigInteger ids too).
    """

    impl = Text
    cache_ok = True
    comparator_factory = _EncryptedComparator

    def to_text(self, value: T) -> str:
        raise NotImplementedError

    def from_text(self, text: str) -> T:
        raise NotImplementedError

    def process_bind_param(self, value: T | None, dialect: Dialect) -> str | None:
        return None if value is None else current_cipher().encrypt(self.to_text(value))

    def process_result_value(self, value: Any | None, dialect: Dialect) -> T | None:
        return None if value is None else self.from_text(current_cipher().decrypt(value))


class EncryptedText(Encrypted[str]):
    """Text: what a patient wrote, a Telegram file id, a kind chosen from a list."""

    cache_ok = True

    def to_text(self, value: str) -> str:
        return str(value)  # a StrEnum member as its value

    def from_text(self, text: str) -> str:
        return text


class EncryptedInt(Encrypted[int]):
    """A whole number: a mood score, minutes, seconds, an id that is nobody else's business."""

    cache_ok = True

    def to_text(self, value: int) -> str:
        return str(int(value))

    def from_text(self, text: str) -> int:
        return int(text)


def is_encrypted(column_type: object) -> bool:
    return isinstance(column_type, Encrypted)


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
