"""Passwords: argon2id through argon2-cffi, with its default parameters (RFC 9106's low-memory profile:
3 passes over 64 MiB, 4 lanes). The encoded hash carries its own parameters and salt, so stronger parameters
later only need ``needs_rehash`` at the next login."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from collector.errors import InvalidError

MIN_LENGTH = 10
MAX_LENGTH = 1024

_HASHER = PasswordHasher()
#: Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY = _HASHER.hash("not the password of anyone")


def check_strength(password: str) -> None:
    """``InvalidError`` for a password too short or too long to take."""
    if len(password) < MIN_LENGTH:
        raise InvalidError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidError(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (checked for strength first)."""
    check_strength(password)
    return _HASHER.hash(password)


def verify(encoded: str | None, password: str) -> bool:
    """Whether ``password`` matches ``encoded``; without a hash the work is the same and the answer no."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(encoded or _DUMMY, password) and encoded is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """Whether ``encoded`` was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(encoded)
