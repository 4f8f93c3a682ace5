"""Web page logins: a session per login, kept in the store, named by a signed cookie.

The cookie is ``<secret>.<signature>``: 256 random bits and their HMAC-SHA256 under the collector's session
key (``signing_keys``, made at first use). The store keeps only the secret's sha256, the session's CSRF
token and when it ends, so logging out, a new password, disabling or removing the user end it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from collector.people.users import Person, person_of
from collector.store.accounts import signing_keys, users, web_sessions

KEY_NAME = "web-session"


def signing_key(conn: Connection, now: datetime) -> bytes:
    """The session key: read from the store, or made and stored the first time (the first writer wins)."""
    found = conn.execute(select(signing_keys.c.secret).where(signing_keys.c.name == KEY_NAME)).scalar()
    if found is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(signing_keys).values(name=KEY_NAME, secret=secrets.token_bytes(32), created_at=now)
                )
        except IntegrityError:
            pass  # another web server made it meanwhile: take theirs
        found = conn.execute(select(signing_keys.c.secret).where(signing_keys.c.name == KEY_NAME)).scalar()
    assert found is not None
    return bytes(found)


def _sign(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(
    conn: Connection, person: Person, key: bytes, *, now: datetime, lifetime: timedelta
) -> tuple[str, str]:
    """A new session for ``person``: ``(cookie value, CSRF token)``. Sessions past their end are dropped."""
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        insert(web_sessions).values(
            id=_digest(secret), user_id=person.id, csrf=csrf, created_at=now, expires_at=now + lifetime
        )
    )
    return f"{secret}.{_sign(key, secret)}", csrf


def _secret(cookie: str, key: bytes) -> str | None:
    secret, _, signature = cookie.partition(".")
    if not secret or len(cookie) > 200 or not hmac.compare_digest(signature, _sign(key, secret)):
        return None
    return secret


def resume(conn: Connection, cookie: str, key: bytes, now: datetime) -> tuple[Person, str] | None:
    """``(person, CSRF token)`` of the session ``cookie`` names, or None: forged, ended, or user disabled."""
    secret = _secret(cookie, key)
    if secret is None:
        return None
    row: Any = conn.execute(
        select(users, web_sessions.c.csrf, web_sessions.c.expires_at)
        .join(users, users.c.id == web_sessions.c.user_id)
        .where(web_sessions.c.id == _digest(secret))
    ).first()
    if row is None or row.expires_at <= now or row.disabled_at is not None:
        return None
    return person_of(row), row.csrf


def end(conn: Connection, cookie: str, key: bytes) -> None:
    """End the session ``cookie`` names (logging out); nothing if it names none."""
    secret = _secret(cookie, key)
    if secret is not None:
        conn.execute(delete(web_sessions).where(web_sessions.c.id == _digest(secret)))
