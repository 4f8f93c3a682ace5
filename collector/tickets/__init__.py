"""The collector's own tickets. ``records``: rows, entries and reading; ``deadlines``: SLA state kept up to
date; ``lifecycle``: the steps people take. Callers use the names below (``tickets.step(...)``)."""

from collector.tickets.deadlines import breach_counts, known_breaches, record_breach, refresh
from collector.tickets.lifecycle import (
    STEPS,
    IllegalTransitionError,
    NoSuchTicketError,
    Step,
    TicketError,
    note,
    open_by_hand,
    step,
)
from collector.tickets.records import (
    PRIORITIES,
    PRIORITY_CRITICAL,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    add_entry,
    close,
    find_open,
    get_ticket,
    list_tickets,
    open_ticket,
    set_status,
    ticket_number,
)

__all__ = [
    "PRIORITIES",
    "PRIORITY_CRITICAL",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "STEPS",
    "IllegalTransitionError",
    "NoSuchTicketError",
    "Step",
    "TicketError",
    "add_entry",
    "breach_counts",
    "close",
    "find_open",
    "get_ticket",
    "known_breaches",
    "list_tickets",
    "note",
    "open_by_hand",
    "open_ticket",
    "record_breach",
    "refresh",
    "set_status",
    "step",
    "ticket_number",
]
