"""API tokens for scripts, monitoring and the CLI's remote commands: ``hezo_<id>_<secret>``.

The id finds the token; the secret (256 random bits) is kept only as its sha256, compared in constant time.
A token acts as its user, with the user's role and customer; it ends when it expires, is revoked, or its
user is disabled or removed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from collector import audit
from collector.errors import InvalidError, NotFoundError
from collector.people.users import Person, find, person_of
from collector.store.accounts import api_tokens, users

PREFIX = "hezo"
#: ``last_used_at`` is written at most this often per token: a busy script costs no write per request.
USED_EVERY = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(
    conn: Connection,
    name: str,
    *,
    now: datetime,
    by: str,
    label: str = "api",
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """A new token for user ``name``: ``(id, token)``. The token is shown once; only its digest is kept."""
    if not 1 <= len(label) <= 64:
        raise InvalidError("a token's label has 1 to 64 characters")
    if expires_at is not None and expires_at <= now:
        raise InvalidError("a token must expire in the future")
    row = find(conn, name)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(
            id=token_id,
            user_id=row.id,
            label=label,
            secret_sha256=_digest(secret),
            created_at=now,
            expires_at=expires_at,
        )
    )
    until = f", until {expires_at.isoformat()}" if expires_at else ""
    audit.record(conn, now, "token-add", f"{name}: token {token_id} {label!r}{until}", actor=by, subject=name)
    return token_id, f"{PREFIX}_{token_id}_{secret}"


def verify(conn: Connection, token: str, now: datetime) -> Person | None:
    """The person ``token`` acts as, or None: unknown, wrong, expired, or its user disabled."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(token) > 200:
        return None
    _, token_id, secret = parts
    row = conn.execute(
        select(users, api_tokens.c.secret_sha256, api_tokens.c.expires_at, api_tokens.c.last_used_at)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.id == token_id)
    ).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    if row.disabled_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= USED_EVERY:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))
    return person_of(row)


def list_tokens(conn: Connection, name: str | None = None) -> list[dict[str, Any]]:
    """Tokens (never their secrets) with their user's name, oldest first; of one user if ``name``."""
    query = (
        select(api_tokens.c.id, users.c.name.label("user"), api_tokens.c.label, api_tokens.c.created_at)
        .add_columns(api_tokens.c.expires_at, api_tokens.c.last_used_at)
        .join(users, users.c.id == api_tokens.c.user_id)
        .order_by(api_tokens.c.created_at, api_tokens.c.id)
    )
    if name is not None:
        query = query.where(users.c.id == find(conn, name).id)
    return [dict(row._mapping) for row in conn.execute(query)]


def revoke(conn: Connection, token_id: str, *, now: datetime, by: str) -> None:
    """Revoke a token by its id (``hezo_<id>_...``, as ``users tokens`` lists it)."""
    row = conn.execute(
        select(api_tokens.c.id, users.c.name)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.id == token_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no token {token_id!r}")
    conn.execute(delete(api_tokens).where(api_tokens.c.id == token_id))
    audit.record(conn, now, "token-revoke", f"{row.name}: token {token_id}", actor=by, subject=row.name)
