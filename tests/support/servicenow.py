"""A fake ServiceNow instance, for the servicenow sink's tests, following the published Table API
(``/api/now/table/{table}``) for ``incident`` and ``sys_journal_field``.

As documented: ``{"result": ...}`` bodies, a record or a list; ``sysparm_query`` encoded queries (``^`` for
AND, ``=``, ``!=``, ``IN``, ``>=``, ``ORDERBY``/``ORDERBYDESC``), ``sysparm_fields``, ``sysparm_limit`` and
``sysparm_display_value`` (``false``, ``true``, ``all``: ``{"value", "display_value"}``); 201 and a
``Location`` on a created record; journal fields (``comments``, ``work_notes``) written to
``sys_journal_field`` rather than kept on the record; times as ``YYYY-MM-DD HH:MM:SS`` in UTC; errors as
``{"error": {"message", "detail"}, "status": "failure"}``: 401 without a valid Basic login, 403 for a
data policy (resolving without a resolution code and notes) or an ACL (changing a closed incident), 404
for no such record; 429 with ``Retry-After``. Engineers work on incidents through the test's own methods.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.fakeapi import Call, FakeApi, Reply, Route

USERNAME = "hezo.integration"
PASSWORD = "s3cret-pass"
#: user_name: (sys_id, name)
USERS = {
    USERNAME: ("6816f79cc0a8016401c5a33be04be441", "hezo integration"),
    "beth.agent": ("46d44a23a9fe19810012d100cca80666", "Beth Agent"),
}
STATES = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed", "8": "Canceled"}
#: Reference fields and the table they refer to (read as {"link", "value"} or with a display value).
REFERENCES = {"resolved_by": "sys_user", "caller_id": "sys_user", "assignment_group": "sys_user_group"}
JOURNAL = ("comments", "work_notes")
TIME = "%Y-%m-%d %H:%M:%S"


@dataclass
class Condition:
    field: str
    operator: str
    value: str

    def holds(self, record: dict[str, str]) -> bool:
        have = record.get(self.field, "")
        if self.operator == "IN":
            return have in self.value.split(",")
        return {
            "=": have == self.value,
            "!=": have != self.value,
            ">=": have >= self.value,
            ">": have > self.value,
            "<=": have <= self.value,
            "<": have < self.value,
        }[self.operator]


def parse_query(text: str) -> tuple[list[Condition], list[tuple[str, bool]]]:
    """An encoded query: its conditions (all must hold) and its ordering (field, descending)."""
    conditions, order = [], []
    for part in filter(None, text.split("^")):
        if part.startswith("ORDERBYDESC"):
            order.append((part[len("ORDERBYDESC") :], True))
        elif part.startswith("ORDERBY"):
            order.append((part[len("ORDERBY") :], False))
        else:
            match = re.fullmatch(r"([a-z_]+)(IN|!=|>=|<=|=|>|<)(.*)", part)
            if match is None:
                raise ValueError(f"cannot read the query part {part!r}")
            conditions.append(Condition(match[1], match[2], match[3]))
    return conditions, order


class FakeServiceNow(FakeApi):
    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[str, str]]] = {"incident": {}, "sys_journal_field": {}}
        self.clock = lambda: datetime.now(UTC)
        super().__init__()

    def routes(self) -> list[Route]:
        table = r"/api/now/table/(?P<table>incident|sys_journal_field)"
        return [
            ("GET", re.compile(table), self._list),
            ("POST", re.compile(table), self._create),
            ("GET", re.compile(table + r"/(?P<sys_id>[0-9a-f]{32})"), self._get),
            ("PATCH", re.compile(table + r"/(?P<sys_id>[0-9a-f]{32})"), self._update),
            ("PUT", re.compile(table + r"/(?P<sys_id>[0-9a-f]{32})"), self._update),
        ]

    def authorised(self, call: Call) -> bool:
        expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        return call.headers.get("authorization") == f"Basic {expected}"

    def unauthorised(self) -> Reply:
        return self._error(401, "User Not Authenticated", "Required to provide Auth information")

    def error(self, status: int, text: str) -> Reply:
        return self._error(status, text, None)

    @staticmethod
    def _error(status: int, message: str, detail: str | None) -> Reply:
        return Reply(status, {"error": {"message": message, "detail": detail}, "status": "failure"})

    # -- the Table API ----------------------------------------------------------------------------------

    def _list(self, call: Call, match: re.Match[str]) -> Reply:
        try:
            conditions, order = parse_query(call.query.get("sysparm_query", ""))
        except ValueError as exc:
            return self._error(400, "Invalid query", str(exc))
        records = [
            record
            for record in self.tables[match["table"]].values()
            if all(condition.holds(record) for condition in conditions)
        ]
        for field, descending in reversed(order):
            records.sort(key=lambda record: record.get(field, ""), reverse=descending)
        limit = int(call.query.get("sysparm_limit", "10000"))
        return Reply(200, {"result": [self._shape(call, record) for record in records[:limit]]})

    def _get(self, call: Call, match: re.Match[str]) -> Reply:
        record = self.tables[match["table"]].get(match["sys_id"])
        if record is None:
            return self._error(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        return Reply(200, {"result": self._shape(call, record)})

    def _create(self, call: Call, match: re.Match[str]) -> Reply:
        if match["table"] != "incident" or not isinstance(call.body, dict):
            return self._error(
                403, "Operation Failed", "ACL Exception Insert Failed due to security constraints"
            )
        sys_id = uuid.uuid4().hex
        record = self._stamp(
            {"sys_id": sys_id, "number": f"INC{10001 + len(self.tables['incident']):07d}", "state": "1"}
        )
        record["sys_created_on"], record["sys_created_by"] = record["sys_updated_on"], USERNAME
        self._write(record, call.body, USERNAME)
        self.tables["incident"][sys_id] = record
        location = f"{self.url}/api/now/table/incident/{sys_id}"
        return Reply(201, {"result": self._shape(call, record)}, {"Location": location})

    def _update(self, call: Call, match: re.Match[str]) -> Reply:
        record = self.tables[match["table"]].get(match["sys_id"])
        if record is None:
            return self._error(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        changes = call.body if isinstance(call.body, dict) else {}
        if record.get("state") == "7":
            return self._error(
                403, "Operation Failed", "ACL Exception Update Failed due to security constraints"
            )
        if str(changes.get("state", "")) == "6" and not all(
            str(changes.get(name) or record.get(name) or "").strip() for name in ("close_code", "close_notes")
        ):
            detail = (
                "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes"
            )
            return self._error(403, "Operation Failed", detail)
        self._write(record, changes, USERNAME)
        return Reply(200, {"result": self._shape(call, record)})

    # -- what engineers do in ServiceNow ----------------------------------------------------------------

    def journal(self, sys_id: str, text: str, *, by: str = "beth.agent", element: str = "work_notes") -> None:
        with self.lock:
            self._write(self.tables["incident"][sys_id], {element: text}, by)

    def resolve(self, sys_id: str, *, by: str = "beth.agent") -> None:
        with self.lock:
            changes = {
                "state": "6",
                "close_code": "Solved (Permanently)",
                "close_notes": "Replaced the unit.",
            }
            self._write(self.tables["incident"][sys_id], changes, by)

    def incidents(self) -> list[dict[str, str]]:
        with self.lock:
            return [dict(record) for record in self.tables["incident"].values()]

    def entries(self, sys_id: str) -> list[dict[str, str]]:
        """The journal of one incident, oldest first."""
        with self.lock:
            found = [
                entry for entry in self.tables["sys_journal_field"].values() if entry["element_id"] == sys_id
            ]
        return sorted(found, key=lambda entry: entry["sys_created_on"])

    # -- records ----------------------------------------------------------------------------------------

    def _stamp(self, record: dict[str, str]) -> dict[str, str]:
        record["sys_updated_on"] = self.clock().strftime(TIME)
        return record

    def _write(self, record: dict[str, str], changes: dict[str, Any], by: str) -> None:
        """Set ``changes`` on an incident as user ``by``: journal fields become journal entries."""
        for name, value in changes.items():
            if name in JOURNAL:
                entry = {
                    "sys_id": uuid.uuid4().hex,
                    "name": "incident",
                    "element_id": record["sys_id"],
                    "element": name,
                    "value": str(value),
                    "sys_created_by": by,
                    "sys_created_on": self.clock().strftime(TIME),
                }
                self.tables["sys_journal_field"][entry["sys_id"]] = entry
            else:
                record[name] = str(value)
        if str(changes.get("state", "")) == "6":
            record["resolved_by"] = USERS[by][0]
            record["resolved_at"] = self.clock().strftime(TIME)
        self._stamp(record)
        record["sys_updated_by"] = by

    def _shape(self, call: Call, record: dict[str, str]) -> dict[str, Any]:
        """``record`` as the Table API answers with it: the fields asked for, values as asked for."""
        names = call.query.get("sysparm_fields")
        fields = names.split(",") if names else list(record)
        display = call.query.get("sysparm_display_value", "false")
        shaped: dict[str, Any] = {}
        for name in fields:
            value = record.get(name, "")
            shown = self._display(name, value)
            if display == "all":
                shaped[name] = {"display_value": shown, "value": value}
            elif display == "true":
                shaped[name] = shown
            elif name in REFERENCES and value:
                shaped[name] = {
                    "link": f"{self.url}/api/now/table/{REFERENCES[name]}/{value}",
                    "value": value,
                }
            else:
                shaped[name] = value
        return shaped

    @staticmethod
    def _display(name: str, value: str) -> str:
        if name == "state":
            return STATES.get(value, value)
        if name == "resolved_by":
            return next((full for sys_id, full in USERS.values() if sys_id == value), value)
        return value
