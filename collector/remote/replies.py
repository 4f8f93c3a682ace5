"""The agents' replies to commands: each updates its command and is audited; the results of service tests
asked for a ticket are added to that ticket's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from collector import audit, tickets
from collector.store.schema import commands as command_table
from collector.store.schema import tickets as ticket_table
from protocol import Envelope
from protocol.commands import FINAL_STATUSES


class Replies:
    """Applies replies as ingest stores them; ``handle`` is ingest's ``on_reply``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def handle(self, envelope: Envelope, received_at: datetime) -> None:
        """Apply one reply (called by ingest on the writer thread, after the batch holding it is stored)."""
        body = envelope.body
        command_id = str(body.get("command"))
        status = str(body.get("status", "progress"))
        with self.engine.begin() as conn:
            row = conn.execute(select(command_table).where(command_table.c.id == command_id)).first()
            known = row is not None and (row.site, row.agent) == (envelope.site, envelope.agent)
            detail = _describe(body)
            if status != "progress":
                event = status if known else f"{status}-unknown"
                audit.record(
                    conn,
                    received_at,
                    event,
                    detail or status,
                    actor=f"agent:{envelope.agent}",
                    site=envelope.site,
                    agent=envelope.agent,
                    command_id=command_id,
                    action=row.action if row is not None else body.get("action"),
                )
            if not known or row is None or row.status in FINAL_STATUSES:
                return
            if status == "refused" and row.status != "sent":
                # A second delivery of a command the agent already took (QoS 1 resends after a reconnect) is
                # refused as replayed: on record above, but it does not undo the command that is running.
                return
            values: dict[str, Any] = {"status": status, "updated_at": received_at}
            if isinstance(body.get("progress"), int | float):
                values["progress"] = float(body["progress"])
            if detail:
                values["message"] = detail
            if isinstance(body.get("result"), dict):
                values["result"] = body["result"]
            conn.execute(update(command_table).where(command_table.c.id == command_id).values(**values))
            if row.ticket and row.action == "service-tests" and status in FINAL_STATUSES:
                _attach_tests(conn, row.ticket, command_id, status, body, received_at)


def _attach_tests(  # noqa: PLR0917
    conn: Connection, number: str, command_id: str, status: str, body: dict[str, Any], at: datetime
) -> None:
    ticket_id = conn.execute(select(ticket_table.c.id).where(ticket_table.c.number == number)).scalar()
    if ticket_id is None:
        return
    result = body.get("result") or {}
    if status == "done":
        lines = [
            f"{c['driver']} {c['target']}: {c['runs'] - c['failed']}/{c['runs']} answered"
            f" ({c['loss_pct']}% loss); last: {c['last']['detail']}"
            for c in result.get("checks", [])
        ]
        text = f"Service tests ({command_id}): {'pass' if result.get('ok') else 'FAIL'}. " + "; ".join(lines)
    else:
        text = f"Service tests ({command_id}) {status}: {body.get('reason') or body.get('message')}"
    tickets.add_entry(conn, ticket_id, at, "service-tests", text)


def _describe(body: dict[str, Any]) -> str:
    """``reason: message`` of a reply, or whichever of the two it has."""
    parts = [str(body[name]) for name in ("reason", "message") if body.get(name)]
    return ": ".join(parts)
