"""The agents enrolled with this collector (``hezo-collector agents enrol``): with ``ingest.enrolled_only``,
the only ones whose messages are taken; every other agent's messages are kept aside as ``not-enrolled``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, tuple_, update

from collector.errors import ConflictError, NotFoundError
from collector.store.database import upsert_ignore
from collector.store.schema import agents, enrolments


def enrolled(conn: Connection, agents: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``agents`` (site, agent) are enrolled and not revoked."""
    wanted = sorted(set(agents))
    if not wanted:
        return set()
    key = tuple_(enrolments.c.site, enrolments.c.agent)
    query = select(enrolments.c.site, enrolments.c.agent).where(
        key.in_(wanted), enrolments.c.revoked_at.is_(None)
    )
    return {(row.site, row.agent) for row in conn.execute(query)}


def enrol(conn: Connection, site: str, agent: str, *, by: str, at: datetime) -> None:
    """Enrol ``site/agent`` (again, if it was revoked); ``ConflictError`` if it is enrolled already."""
    where = and_(enrolments.c.site == site, enrolments.c.agent == agent)
    again = conn.execute(
        update(enrolments)
        .where(where, enrolments.c.revoked_at.is_not(None))
        .values(
            enrolled_at=at,
            enrolled_by=by,
            revoked_at=None,
            revoked_by=None,
            credential_sha256=None,
            credential_at=None,
            credential_by=None,
        )
    ).rowcount
    if again:
        return
    made = conn.execute(
        upsert_ignore(conn, enrolments).values(site=site, agent=agent, enrolled_at=at, enrolled_by=by)
    ).rowcount
    if not made:
        raise ConflictError(f"agent {site}/{agent} is enrolled already (agents rotate gives it a new login)")


def revoke(conn: Connection, site: str, agent: str, *, by: str, at: datetime) -> None:
    """Stop taking ``site/agent``'s messages; ``NotFoundError`` if it is not enrolled.

    The agent is offline from now on (its devices get no tickets: nothing more will be known of them), and
    it is gone on purpose, so it holds no "agents silent" ticket of its site either (incidents/holds.py).
    """
    done = conn.execute(
        update(enrolments)
        .where(enrolments.c.site == site, enrolments.c.agent == agent, enrolments.c.revoked_at.is_(None))
        .values(revoked_at=at, revoked_by=by, credential_sha256=None, credential_at=at, credential_by=by)
    ).rowcount
    if not done:
        raise NotFoundError(f"agent {site}/{agent} is not enrolled")
    conn.execute(
        update(agents)
        .where(agents.c.site == site, agents.c.agent == agent, agents.c.online.is_(True))
        .values(online=False, status_changed_at=at)
    )


def set_credential(
    conn: Connection, site: str, agent: str, digest: str | None, *, by: str, at: datetime
) -> None:
    """Record which broker login ``site/agent`` holds (``digest``: its password's SHA-256; None: no login).

    ``NotFoundError`` if the agent is not enrolled.
    """
    done = conn.execute(
        update(enrolments)
        .where(enrolments.c.site == site, enrolments.c.agent == agent, enrolments.c.revoked_at.is_(None))
        .values(credential_sha256=digest, credential_at=at, credential_by=by)
    ).rowcount
    if not done:
        raise NotFoundError(
            f"agent {site}/{agent} is not enrolled (hezo-collector agents enrol {site}/{agent})"
        )


def enrolled_agents(conn: Connection) -> list[tuple[str, str]]:
    """Every agent enrolled and not revoked, in order."""
    query = (
        select(enrolments.c.site, enrolments.c.agent)
        .where(enrolments.c.revoked_at.is_(None))
        .order_by(enrolments.c.site, enrolments.c.agent)
    )
    return [(row.site, row.agent) for row in conn.execute(query)]


def list_enrolments(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(enrolments).order_by(enrolments.c.site, enrolments.c.agent))
    return [dict(row._mapping) for row in rows]
