"""``servicenow``: ServiceNow incidents through the Table API: an incident for each hezo ticket, a work note
for each later event, the incident resolved when the hezo ticket is, and the incident followed back (its
comments and work notes become notes, Resolved or Closed there resolves the hezo ticket).

The incident carries the hezo number as its ``correlation_id`` (with ``correlation_display`` ``hezo``):
ServiceNow keeps no idempotency keys, so a creation is made safe to retry by looking first for an incident
with that correlation id created after the hezo ticket opened. Journal entries (``sys_journal_field``)
written by hezo's own user are never read back. Basic auth.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, FilePath, SecretStr

from collector.sinks import desk
from collector.sinks.base import Delivered, DeskChange, Failed, Link, Notice, Outcome, Retry
from collector.sinks.http import Answer, JsonApi, read_later

#: Journal entries read per look, the newest (more than this within one look are not all read).
PAGE = 100
#: (urgency, impact) per hezo priority; ServiceNow's default matrix makes them P1, P2 and P4.
URGENCY_IMPACT = {"critical": ("1", "1"), "high": ("1", "2"), "low": ("2", "3")}
#: Incident states: Resolved, Closed, Canceled.
RESOLVED, CLOSED, CANCELED = "6", "7", "8"
#: Events that resolve the incident.
_ENDINGS = frozenset({"resolve", "closed"})
_TIME = "%Y-%m-%d %H:%M:%S"  # how the Table API writes a date-time (UTC) without display values


class ServiceNowOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["servicenow"]
    url: AnyHttpUrl = Field(description="the instance: https://your-instance.service-now.com")
    username: str = Field(min_length=1, max_length=100)
    password: SecretStr
    caller: str | None = Field(None, max_length=100, description="caller_id: the sys_id of a user")
    assignment_group: str | None = Field(None, max_length=100, description="the sys_id of a group")
    close_code: str = Field("Solved (Permanently)", min_length=1, max_length=100)
    ca_file: FilePath | None = None
    timeout: float = Field(15.0, gt=0, le=120)


class ServiceNowDesk:
    def __init__(self, options: ServiceNowOptions) -> None:
        self.options = options
        self.instance = str(options.url).rstrip("/")
        self.api = JsonApi(
            self.instance,
            headers={},
            auth=(options.username, options.password.get_secret_value()),
            timeout=options.timeout,
            ca_file=options.ca_file,
        )

    def send(self, notice: Notice) -> Outcome:
        if notice.link is None:
            return self._create(notice)
        if notice.event in _ENDINGS:
            return self._resolve(notice, notice.link)
        fields = {"work_notes": desk.comment(notice)}
        if notice.event == "priority-changed":
            fields["urgency"], fields["impact"] = self._urgency_impact(notice)
        return self._update(notice.link, fields)

    @staticmethod
    def _urgency_impact(notice: Notice) -> tuple[str, str]:
        return URGENCY_IMPACT.get(str(notice.ticket["priority"]), ("2", "2"))

    def _create(self, notice: Notice) -> Outcome:
        found = self._existing(notice)
        if isinstance(found, Retry | Failed):
            return found
        if found is None:
            urgency, impact = self._urgency_impact(notice)
            fields = {
                "short_description": desk.subject(notice),
                "description": desk.description(notice),
                "urgency": urgency,
                "impact": impact,
                "correlation_id": notice.number,
                "correlation_display": "hezo",
            }
            if self.options.caller:
                fields["caller_id"] = self.options.caller
            if self.options.assignment_group:
                fields["assignment_group"] = self.options.assignment_group
            answer = self.api.call(
                "POST", "/api/now/table/incident", json=fields, params={"sysparm_fields": "sys_id,number"}
            )
            if not isinstance(answer, Answer):
                return answer
            found = _result(answer.body)
            if not found.get("sys_id"):
                return Failed(
                    f"ServiceNow created an incident but did not say which: {str(answer.body)[:200]}"
                )
        sys_id = str(found["sys_id"])
        url = f"{self.instance}/nav_to.do?uri=incident.do%3Fsys_id%3D{sys_id}"
        return Delivered(remote_ref=str(found.get("number") or sys_id), link=Link(sys_id, url))

    def _existing(self, notice: Notice) -> dict[str, Any] | Retry | Failed | None:
        """The incident made for this ticket by an earlier attempt, if there is one."""
        answer = self.api.call(
            "GET",
            "/api/now/table/incident",
            params={
                "sysparm_query": f"correlation_id={notice.number}^ORDERBYsys_created_on",
                "sysparm_fields": "sys_id,number,short_description,sys_created_on",
                "sysparm_limit": 10,
            },
        )
        if not isinstance(answer, Answer):
            return answer
        for record in _results(answer.body):
            title = str(record.get("short_description", ""))
            if record.get("sys_id") and desk.made_for(notice, title, _moment(record.get("sys_created_on"))):
                return record
        return None

    def _resolve(self, notice: Notice, link: Link) -> Outcome:
        """Resolve the incident; one resolved already gets a work note, one closed or canceled nothing."""
        answer = self.api.call(
            "GET", f"/api/now/table/incident/{link.remote_id}", params={"sysparm_fields": "state,number"}
        )
        if not isinstance(answer, Answer):
            return answer
        state = str(_result(answer.body).get("state", ""))
        if state in (CLOSED, CANCELED):
            return Delivered(remote_ref=f"already {'closed' if state == CLOSED else 'canceled'}")
        if state == RESOLVED:
            return self._update(link, {"work_notes": desk.comment(notice)})
        fields = {
            "state": RESOLVED,
            "close_code": self.options.close_code,
            "close_notes": desk.comment(notice),
        }
        return self._update(link, fields)

    def _update(self, link: Link, fields: dict[str, str]) -> Outcome:
        answer = self.api.call(
            "PATCH",
            f"/api/now/table/incident/{link.remote_id}",
            json=fields,
            params={"sysparm_fields": "sys_id,number,state"},
        )
        if not isinstance(answer, Answer):
            return answer
        return Delivered(remote_ref=str(_result(answer.body).get("number") or link.remote_id))

    def changes(self, link: Link) -> DeskChange | Retry:
        since, seen = _cursor(link.cursor)
        # The newest entries, read by time as the Table API writes it (UTC): a query on a time would be read
        # in the user's own time zone.
        journal = self.api.call(
            "GET",
            "/api/now/table/sys_journal_field",
            params={
                "sysparm_query": f"name=incident^element_id={link.remote_id}^elementINcomments,work_notes"
                "^ORDERBYDESCsys_created_on",
                "sysparm_fields": "sys_id,element,value,sys_created_by,sys_created_on",
                "sysparm_limit": PAGE,
            },
        )
        if not isinstance(journal, Answer):
            return read_later(journal)
        comments: list[tuple[str, str]] = []
        entries = sorted(_results(journal.body), key=lambda entry: str(entry.get("sys_created_on", "")))
        for entry in entries:
            entry_id, at = str(entry.get("sys_id", "")), str(entry.get("sys_created_on", ""))
            if at < since or (at == since and entry_id in seen):
                continue
            if at != since:
                since, seen = at, set()
            seen.add(entry_id)
            author, text = str(entry.get("sys_created_by", "")), str(entry.get("value", "")).strip()
            if author != self.options.username and text:
                comments.append((author, text))
        incident = self.api.call(
            "GET",
            f"/api/now/table/incident/{link.remote_id}",
            params={"sysparm_fields": "state,resolved_by", "sysparm_display_value": "all"},
        )
        if not isinstance(incident, Answer):
            return read_later(incident)
        record = _result(incident.body)
        state, resolver = _both(record.get("state")), _both(record.get("resolved_by"))
        resolved_by = None
        if state[0] in (RESOLVED, CLOSED):
            resolved_by = resolver[1] or resolver[0] or "someone"
        cursor = f"{since}|{','.join(sorted(seen))}" if since else link.cursor
        return DeskChange(
            comments=comments, resolved_by=resolved_by, cursor=cursor, status=state[1] or state[0]
        )

    def close(self) -> None:
        self.api.close()


def _result(body: Any) -> dict[str, Any]:
    result = body.get("result") if isinstance(body, dict) else None
    return result if isinstance(result, dict) else {}


def _results(body: Any) -> list[dict[str, Any]]:
    result = body.get("result") if isinstance(body, dict) else None
    return [record for record in result or [] if isinstance(record, dict)] if isinstance(result, list) else []


def _both(field: Any) -> tuple[str, str]:
    """A field read with ``sysparm_display_value=all``: (value, display value)."""
    if isinstance(field, dict):
        return str(field.get("value") or ""), str(field.get("display_value") or "")
    return str(field or ""), ""


def _cursor(cursor: str | None) -> tuple[str, set[str]]:
    """``"<sys_created_on>|<sys_id>,<sys_id>"``: the newest entry's time, and the entries of that second
    already read (the Table API's times are to the second, so several entries may share one)."""
    if not cursor or "|" not in cursor:
        return "", set()
    since, ids = cursor.split("|", 1)
    return since, {item for item in ids.split(",") if item}


def _moment(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), _TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def build(options: ServiceNowOptions) -> ServiceNowDesk:
    return ServiceNowDesk(options)
