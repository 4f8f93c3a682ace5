"""``jira``: Jira Service Management: a customer request for each hezo ticket, a comment for each later
event, the issue moved to a done status when the hezo ticket is resolved or closed, and the request followed
back (comments added there become notes, a resolution there resolves the hezo ticket).

Through the Service Management REST API (``/rest/servicedeskapi``), with Jira's platform API for the
issue's status and resolution and for who hezo is. Basic auth with an Atlassian account's e-mail and API
token. Jira keeps no idempotency keys, so a creation is made safe to retry by looking first for a request
of that desk and type, raised by hezo's account, whose summary starts with the hezo number and that was
created after the hezo ticket opened. Comments by hezo's own account are never read back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, FilePath, SecretStr

from collector.sinks import desk
from collector.sinks.base import Delivered, DeskChange, Failed, Link, Notice, Outcome, Retry
from collector.sinks.http import Answer, JsonApi, read_later

#: Comments read per page, and pages at most per look (more wait for the next look).
PAGE = 50
PAGES = 20
#: Events that move the issue to a done status (with ``resolve: true``).
_ENDINGS = frozenset({"resolve", "closed"})


class JiraPriorities(BaseModel):
    """The name of Jira's priority for each hezo priority, set when the request type shows Priority."""

    model_config = ConfigDict(extra="forbid")

    critical: str = Field("Highest", min_length=1, max_length=60)
    high: str = Field("High", min_length=1, max_length=60)
    low: str = Field("Low", min_length=1, max_length=60)


class JiraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["jira"]
    url: AnyHttpUrl = Field(description="the site: https://your-site.atlassian.net")
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    token: SecretStr = Field(description="an API token of that Atlassian account")
    service_desk: str = Field(pattern=r"^[0-9]{1,18}$", description="the service desk's id (serviceDeskId)")
    request_type: str = Field(pattern=r"^[0-9]{1,18}$", description="the request type's id (requestTypeId)")
    public_comments: bool = Field(False, description="events as comments customers see (default: internal)")
    priorities: JiraPriorities | None = Field(None, description="also set Priority, by these names")
    resolve: bool = Field(True, description="resolved in hezo: move the issue to a done status")
    transition: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="the name of the transition (or of the status it goes to) that resolves; default: the "
        "first the issue offers to a status in the done category",
    )
    resolution: str = Field("Done", min_length=1, max_length=100, description="set when the screen asks")
    ca_file: FilePath | None = None
    timeout: float = Field(15.0, gt=0, le=120)


class JiraDesk:
    def __init__(self, options: JiraOptions) -> None:
        self.options = options
        self.site = str(options.url).rstrip("/")
        self.api = JsonApi(
            self.site,
            headers={},
            auth=(options.email, options.token.get_secret_value()),
            timeout=options.timeout,
            ca_file=options.ca_file,
        )
        self._me: str | None = None

    def send(self, notice: Notice) -> Outcome:
        if notice.link is None:
            return self._create(notice)
        first: Outcome | None = None  # a field set before the comment: sent again, it is not set twice
        if notice.event in _ENDINGS and self.options.resolve:
            first = self._resolve(notice.link)
        elif notice.event == "priority-changed" and self.options.priorities is not None:
            first = self._set_priority(notice, notice.link)
        if first is not None:
            return first
        answer = self.api.call(
            "POST",
            f"/rest/servicedeskapi/request/{notice.link.remote_id}/comment",
            json={"body": desk.comment(notice), "public": self.options.public_comments},
        )
        if not isinstance(answer, Answer):
            return answer
        comment = answer.body if isinstance(answer.body, dict) else {}
        return Delivered(remote_ref=str(comment.get("id")) if comment.get("id") else None)

    def _create(self, notice: Notice) -> Outcome:
        found = self._existing(notice)
        if isinstance(found, Retry | Failed):
            return found
        if found is None:
            fields: dict[str, Any] = {
                "summary": desk.subject(notice),
                "description": desk.description(notice),
            }
            if self.options.priorities is not None:
                fields["priority"] = {"name": self._priority(notice)}
            answer = self.api.call(
                "POST",
                "/rest/servicedeskapi/request",
                json={
                    "serviceDeskId": self.options.service_desk,
                    "requestTypeId": self.options.request_type,
                    "requestFieldValues": fields,
                },
            )
            if not isinstance(answer, Answer):
                return answer
            if not isinstance(answer.body, dict) or not answer.body.get("issueKey"):
                return Failed(f"Jira created a request but did not say which: {str(answer.body)[:200]}")
            found = answer.body
        key = str(found["issueKey"])
        links = found.get("_links") or {}
        # The agents' view of the issue (``web`` is the customer portal's).
        web = links.get("agent") or f"{self.site}/browse/{key}"
        return Delivered(remote_ref=key, link=Link(key, str(web)))

    def _priority(self, notice: Notice) -> str:
        assert self.options.priorities is not None
        return str(getattr(self.options.priorities, str(notice.ticket["priority"])))

    def _set_priority(self, notice: Notice, link: Link) -> Outcome | None:
        """Set the issue's Priority (the platform's edit: the request type's form need not show it)."""
        answer = self.api.call(
            "PUT",
            f"/rest/api/2/issue/{link.remote_id}",
            json={"fields": {"priority": {"name": self._priority(notice)}}},
        )
        return None if isinstance(answer, Answer) else answer

    def _resolve(self, link: Link) -> Outcome | None:
        """Move the issue to a done status (the comment follows); None once it is there, an outcome if it
        cannot be. The status goes first: sent again after a failure, the comment is not written twice."""
        issue = self.api.call("GET", f"/rest/api/2/issue/{link.remote_id}", params={"fields": "status"})
        if not isinstance(issue, Answer):
            return issue
        fields = issue.body.get("fields", {}) if isinstance(issue.body, dict) else {}
        status = fields.get("status") or {}
        if (status.get("statusCategory") or {}).get("key") == "done":
            return None
        offered = self.api.call(
            "GET",
            f"/rest/api/2/issue/{link.remote_id}/transitions",
            params={"expand": "transitions.fields"},
        )
        if not isinstance(offered, Answer):
            return offered
        transitions = [
            item
            for item in (offered.body.get("transitions") if isinstance(offered.body, dict) else None) or []
            if isinstance(item, dict) and item.get("isAvailable", True) is not False
        ]
        chosen = self._choose(transitions)
        if chosen is None:
            names = ", ".join(str(item.get("name")) for item in transitions) or "none"
            return Failed(
                f"Jira offers {link.remote_id} no transition to a done status from "
                f"'{status.get('name', '?')}' (offered: {names}); set the jira sink's transition"[:400]
            )
        body: dict[str, Any] = {"transition": {"id": str(chosen.get("id"))}}
        if "resolution" in (chosen.get("fields") or {}):
            body["fields"] = {"resolution": {"name": self.options.resolution}}
        moved = self.api.call("POST", f"/rest/api/2/issue/{link.remote_id}/transitions", json=body)
        return None if isinstance(moved, Answer) else moved

    def _choose(self, transitions: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The configured transition (by its name or its status's), else the first to a done status."""
        wanted = (self.options.transition or "").casefold()
        for item in transitions:
            target = item.get("to") or {}
            if wanted:
                if wanted in (str(item.get("name", "")).casefold(), str(target.get("name", "")).casefold()):
                    return item
            elif (target.get("statusCategory") or {}).get("key") == "done":
                return item
        return None

    def _existing(self, notice: Notice) -> dict[str, Any] | Retry | Failed | None:
        """The request made for this ticket by an earlier attempt, if there is one."""
        answer = self.api.call(
            "GET",
            "/rest/servicedeskapi/request",
            params={
                "serviceDeskId": self.options.service_desk,
                "requestTypeId": self.options.request_type,
                "searchTerm": notice.number,
                "requestOwnership": "OWNED_REQUESTS",
                "requestStatus": "ALL_REQUESTS",
                "limit": PAGE,
            },
        )
        if not isinstance(answer, Answer):
            return answer
        for request in _values(answer.body):
            summary = next(
                (
                    str(field.get("value", ""))
                    for field in request.get("requestFieldValues") or []
                    if isinstance(field, dict) and field.get("fieldId") == "summary"
                ),
                "",
            )
            if request.get("issueKey") and desk.made_for(
                notice, summary, _moment(request.get("createdDate"))
            ):
                return request
        return None

    def changes(self, link: Link) -> DeskChange | Retry:
        me = self._myself()
        if isinstance(me, Retry):
            return me
        cursor = int(link.cursor) if link.cursor and link.cursor.isdigit() else 0
        newest = cursor
        comments: list[tuple[str, str]] = []
        start = 0
        for _ in range(PAGES):
            page = self.api.call(
                "GET",
                f"/rest/servicedeskapi/request/{link.remote_id}/comment",
                params={"start": start, "limit": PAGE},
            )
            if not isinstance(page, Answer):
                return read_later(page)
            values = _values(page.body)
            for comment in values:
                number = int(comment["id"]) if str(comment.get("id", "")).isdigit() else 0
                if number <= cursor:
                    continue
                newest = max(newest, number)
                author = comment.get("author") or {}
                if _account(author) != me and str(comment.get("body", "")).strip():
                    comments.append(
                        (str(author.get("displayName") or "someone"), str(comment["body"]).strip())
                    )
            if not values or not isinstance(page.body, dict) or page.body.get("isLastPage", True):
                break
            start += len(values)
        issue = self.api.call(
            "GET", f"/rest/api/2/issue/{link.remote_id}", params={"fields": "status,resolution,assignee"}
        )
        if not isinstance(issue, Answer):
            return read_later(issue)
        fields = issue.body.get("fields", {}) if isinstance(issue.body, dict) else {}
        status = fields.get("status") or {}
        done = (
            fields.get("resolution") is not None or (status.get("statusCategory") or {}).get("key") == "done"
        )
        resolved_by = None
        if done:
            resolved_by = str((fields.get("assignee") or {}).get("displayName") or "an agent")
        return DeskChange(
            comments=comments,
            resolved_by=resolved_by,
            cursor=str(newest) if newest else link.cursor,
            status=str(status.get("name") or "") or None,
        )

    def _myself(self) -> str | Retry:
        """hezo's own account (its accountId), asked once: what it writes is not news to hezo."""
        if self._me is None:
            answer = self.api.call("GET", "/rest/api/2/myself")
            if not isinstance(answer, Answer):
                return read_later(answer)
            self._me = _account(answer.body if isinstance(answer.body, dict) else {})
        return self._me

    def close(self) -> None:
        self.api.close()


def _values(body: Any) -> list[dict[str, Any]]:
    values = body.get("values") if isinstance(body, dict) else None
    return [value for value in values or [] if isinstance(value, dict)]


def _account(user: dict[str, Any]) -> str:
    """An account as Jira Cloud names it (``accountId``); Data Center's ``key`` or ``name`` otherwise."""
    return str(user.get("accountId") or user.get("key") or user.get("name") or "")


def _moment(date: Any) -> datetime | None:
    """A Service Management date (``{"epochMillis": ..., "iso8601": ...}``) as a moment."""
    if isinstance(date, dict) and isinstance(date.get("epochMillis"), int | float):
        return datetime.fromtimestamp(date["epochMillis"] / 1000, UTC)
    return None


def build(options: JiraOptions) -> JiraDesk:
    return JiraDesk(options)
