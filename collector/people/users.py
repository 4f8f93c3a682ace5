"""Users: a name, a role, a password (argon2id), and for a customer's own users the customer they belong to.

Roles, from least to most (docs/security.md has what each may do):

- ``viewer``: reads everything; with ``customer`` set, reads only that customer's sites, devices, tickets
  and contracts, and none of the provider's own records (audit, commands, bundles, notifications).
- ``engineer``: a viewer who also moves tickets along, opens them, adds notes, sends commands to agents,
  adds and removes maintenance windows and sends notifications again.
- ``admin``: an engineer who also keeps the contract registry.

Every change here is audited with ``by`` as its actor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from collector import audit
from collector.errors import ConflictError, InvalidError, NotFoundError
from collector.people import passwords
from collector.store.accounts import api_tokens, users, web_sessions


class Role(StrEnum):
    """What a user may do; each role may do what the ones before it may."""

    VIEWER = "viewer"
    ENGINEER = "engineer"
    ADMIN = "admin"


RANKS = {Role.VIEWER: 0, Role.ENGINEER: 1, Role.ADMIN: 2}

#: Lower-case letters, digits, ``.``, ``_``, ``@``, ``-``: an e-mail address fits. No ``:``, which the
#: collector's own actors carry (``local:ann``, ``collector:sequence gap``).
NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
#: Names the collector writes as actors itself; a user called so would pass for it.
RESERVED = frozenset({"api", "auto-evidence", "cli", "collector", "local", "system", "web"})


@dataclass(frozen=True)
class Person:
    """Someone authenticated: a user of the store, or the local command line (``id`` 0)."""

    id: int
    name: str
    role: Role
    customer: str | None = None

    @property
    def actor(self) -> str:
        """Who the audit and the ticket timeline say did it."""
        return self.name

    def may(self, role: Role) -> bool:
        """Whether this person's role is ``role`` or above."""
        return RANKS[self.role] >= RANKS[role]


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise InvalidError(
            f"user name {name!r}: 1 to 64 of a-z, 0-9, '.', '_', '@', '-', starting with a letter or digit"
        )
    if name in RESERVED:
        raise InvalidError(f"user name {name!r} is what the collector calls itself; choose another")


def check_role(role: str, customer: str | None) -> Role:
    try:
        found = Role(role)
    except ValueError:
        raise InvalidError(f"role {role!r}: one of {', '.join(Role)}") from None
    if customer is not None:
        if not customer.strip() or len(customer) > 255:
            raise InvalidError(
                "customer: the name of a customer, as contracts carry it (1 to 255 characters)"
            )
        if found is not Role.VIEWER:
            raise InvalidError("a customer's user is a viewer: customers read, the provider's staff act")
    return found


def person_of(row: Row[Any]) -> Person:
    return Person(row.id, row.name, Role(row.role), row.customer)


def find(conn: Connection, name: str) -> Row[Any]:
    """The user's row; ``NotFoundError`` if there is none."""
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no user {name!r}")
    return row


def add(
    conn: Connection,
    name: str,
    role: str,
    *,
    now: datetime,
    by: str,
    password: str | None = None,
    customer: str | None = None,
) -> Person:
    """Add a user; ``password`` None makes a user with API tokens only (a script, a monitoring system)."""
    check_name(name)
    found_role = check_role(role, customer)
    if conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
        raise ConflictError(f"user {name!r} exists already")
    encoded = passwords.hash_password(password) if password is not None else None
    inserted = conn.execute(
        insert(users).values(
            name=name,
            role=found_role.value,
            customer=customer,
            password_hash=encoded,
            created_at=now,
            password_changed_at=now if encoded else None,
        )
    ).inserted_primary_key
    assert inserted is not None
    user_id = inserted[0]
    scope = f", customer {customer}" if customer else ""
    audit.record(conn, now, "user-add", f"{name}: {found_role}{scope}", actor=by, subject=name)
    return Person(int(user_id), name, found_role, customer)


def list_users(conn: Connection) -> list[dict[str, Any]]:
    """Every user without its password hash, with how many tokens it has, by name."""
    per_user: dict[int, int] = {}
    for (user_id,) in conn.execute(select(api_tokens.c.user_id)):
        per_user[user_id] = per_user.get(user_id, 0) + 1
    rows = []
    for row in conn.execute(select(users).order_by(users.c.name)):
        item = dict(row._mapping)
        item["has_password"] = item.pop("password_hash") is not None
        item["disabled"] = row.disabled_at is not None
        item["tokens"] = per_user.get(row.id, 0)
        rows.append(item)
    return rows


def set_password(conn: Connection, name: str, password: str, *, now: datetime, by: str) -> None:
    """Give ``name`` a new password; its web sessions end (its tokens stay)."""
    row = find(conn, name)
    conn.execute(
        update(users)
        .where(users.c.id == row.id)
        .values(password_hash=passwords.hash_password(password), password_changed_at=now)
    )
    conn.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
    audit.record(conn, now, "user-passwd", f"{name}: new password, sessions ended", actor=by, subject=name)


def set_disabled(conn: Connection, name: str, disabled: bool, *, now: datetime, by: str) -> None:
    """Disable ``name`` (its sessions end, its tokens are refused until enabled again) or enable it."""
    row = find(conn, name)
    conn.execute(update(users).where(users.c.id == row.id).values(disabled_at=now if disabled else None))
    if disabled:
        conn.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
    event = "user-disable" if disabled else "user-enable"
    audit.record(conn, now, event, name, actor=by, subject=name)


def remove(conn: Connection, name: str, *, now: datetime, by: str) -> None:
    """Remove ``name`` with its tokens and sessions. What it did stays attributed to it."""
    row = find(conn, name)
    conn.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
    conn.execute(delete(api_tokens).where(api_tokens.c.user_id == row.id))
    conn.execute(delete(users).where(users.c.id == row.id))
    audit.record(conn, now, "user-remove", name, actor=by, subject=name)


def log_in(conn: Connection, name: str, password: str, *, now: datetime) -> Person | None:
    """The user ``name`` if ``password`` is theirs and they are enabled, else None (audited either way).

    An unknown name costs the same argon2 work as a wrong password, so timing does not tell them apart.
    """
    row = conn.execute(select(users).where(users.c.name == name[:64])).first()
    good = passwords.verify(row.password_hash if row is not None else None, password)
    if row is None or not good or row.disabled_at is not None:
        why = "unknown user" if row is None else "disabled" if good else "wrong password"
        audit.record(conn, now, "login-failed", f"{name[:64]!r}: {why}", actor="web", subject=name[:128])
        return None
    values: dict[str, Any] = {"last_login_at": now}
    if passwords.needs_rehash(row.password_hash):
        values["password_hash"] = passwords.hash_password(password)
    conn.execute(update(users).where(users.c.id == row.id).values(**values))
    audit.record(conn, now, "login", row.name, actor=row.name, subject=row.name)
    return person_of(row)
