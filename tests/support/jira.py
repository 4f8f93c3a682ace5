"""A fake Jira Service Management Cloud site, for the jira sink's tests, following Atlassian's published REST
API: the Service Management API (``/rest/servicedeskapi``: create and list customer requests, add and list
comments) and the platform API's ``/rest/api/2/issue/{key}``, its ``transitions`` and ``/rest/api/2/myself``.

Shapes as documented: CustomerRequestDTO (issueKey, requestFieldValues as fieldId/label/value, createdDate
with epochMillis, currentStatus, _links), CommentDTO (id, body, public, author with accountId, created),
PagedDTO (start, limit, size, isLastPage, values); errors as ``{"errorMessage", "i18nErrorMessage"}`` on the
Service Management API and ``{"errorMessages", "errors"}`` on the platform's; IssueTransition (id, name,
``to`` with its statusCategory, ``fields`` of its screen with ``expand=transitions.fields``); Basic auth with
an account's e-mail and API token, 401 without; 429 with ``Retry-After``. Agents work on requests through
the test's own methods (``comment``, ``resolve``), as they would in Jira's UI.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.fakeapi import Call, FakeApi, Reply, Route

EMAIL = "hezo@example.net"
TOKEN = "atlassian-api-token-123"
HEZO = {"accountId": "557058:0f1e-hezo", "displayName": "hezo", "emailAddress": EMAIL}
SERVICE_DESK = "1"
PROJECT = "HZD"
REQUEST_TYPE = "10"
#: The fields the request type's form has (Priority only when a test asks for it).
FIELDS = {"summary": "Summary", "description": "Description"}
#: The workflow: (transition id, name, the status it goes to, that status's category), from any status.
TRANSITIONS = [
    ("11", "Start work", "In Progress", "indeterminate"),
    ("31", "Resolve this issue", "Resolved", "done"),
    ("41", "Reopen", "Waiting for support", "new"),
]


@dataclass
class Issue:
    id: str
    key: str
    fields: dict[str, Any]
    created: datetime
    reporter: dict[str, str]
    status: str = "Waiting for support"
    category: str = "new"  # the status category: new, indeterminate, done
    resolution: str | None = None
    assignee: dict[str, str] | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)


class FakeJira(FakeApi):
    def __init__(self, *, priority_field: bool = False, resolution_screen: bool = True) -> None:
        self.issues: dict[str, Issue] = {}
        self.fields = dict(FIELDS, **({"priority": "Priority"} if priority_field else {}))
        self.resolution_screen = resolution_screen  # "Resolve this issue" asks for a resolution
        self.clock = lambda: datetime.now(UTC)
        self._next_comment = 10000
        super().__init__()

    # -- the API ----------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        key = r"(?P<key>[A-Z]+-[0-9]+|[0-9]+)"
        return [
            ("POST", re.compile(r"/rest/servicedeskapi/request"), self._create),
            ("GET", re.compile(r"/rest/servicedeskapi/request"), self._list),
            ("GET", re.compile(rf"/rest/servicedeskapi/request/{key}"), self._request),
            ("POST", re.compile(rf"/rest/servicedeskapi/request/{key}/comment"), self._add_comment),
            ("GET", re.compile(rf"/rest/servicedeskapi/request/{key}/comment"), self._comments),
            ("GET", re.compile(rf"/rest/api/2/issue/{key}"), self._issue),
            ("PUT", re.compile(rf"/rest/api/2/issue/{key}"), self._edit),
            ("GET", re.compile(rf"/rest/api/2/issue/{key}/transitions"), self._transitions),
            ("POST", re.compile(rf"/rest/api/2/issue/{key}/transitions"), self._transition),
            ("GET", re.compile(r"/rest/api/2/myself"), lambda call, match: Reply(200, self._user(HEZO))),
        ]

    def authorised(self, call: Call) -> bool:
        expected = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
        return call.headers.get("authorization") == f"Basic {expected}"

    def unauthorised(self) -> Reply:
        reply = self.error(401, "Client must be authenticated to access this resource.")
        reply.headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
        return reply

    def error(self, status: int, text: str) -> Reply:
        return Reply(
            status, {"errorMessage": text, "i18nErrorMessage": {"i18nKey": "sd.error", "parameters": []}}
        )

    def _create(self, call: Call, match: re.Match[str]) -> Reply:
        body = call.body if isinstance(call.body, dict) else {}
        if body.get("serviceDeskId") != SERVICE_DESK:
            return self.error(404, f"The service desk '{body.get('serviceDeskId')}' does not exist.")
        if body.get("requestTypeId") != REQUEST_TYPE:
            return self.error(400, f"The request type '{body.get('requestTypeId')}' does not exist.")
        values = body.get("requestFieldValues")
        if not isinstance(values, dict) or not str(values.get("summary", "")).strip():
            return self.error(400, "Summary: You must specify a summary of the issue.")
        unknown = sorted(set(values) - set(self.fields))
        if unknown:
            return self.error(400, f"Field '{unknown[0]}' is not valid for this request type.")
        number = len(self.issues) + 1
        issue = Issue(str(10000 + number), f"{PROJECT}-{number}", dict(values), self.clock(), HEZO)
        self.issues[issue.key] = issue
        return Reply(201, self._dto(issue))

    def _list(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET /request``: the caller's requests, newest activity first, by desk, type and summary text."""
        query = call.query
        found = [
            issue
            for issue in self.issues.values()
            if (not query.get("serviceDeskId") or query["serviceDeskId"] == SERVICE_DESK)
            and (not query.get("requestTypeId") or query["requestTypeId"] == REQUEST_TYPE)
            and query.get("searchTerm", "").lower() in str(issue.fields["summary"]).lower()
            and (query.get("requestOwnership") != "OWNED_REQUESTS" or issue.reporter == HEZO)
        ]
        return Reply(200, self._page(call, [self._dto(issue) for issue in reversed(found)]))

    def _request(self, call: Call, match: re.Match[str]) -> Reply:
        issue = self._find(match["key"])
        if issue is None:
            return self.error(404, "The request does not exist or you do not have permission to see it.")
        return Reply(200, self._dto(issue))

    def _add_comment(self, call: Call, match: re.Match[str]) -> Reply:
        issue = self._find(match["key"])
        if issue is None:
            return self.error(404, "The request does not exist or you do not have permission to see it.")
        body = call.body if isinstance(call.body, dict) else {}
        if not str(body.get("body", "")).strip():
            return self.error(400, "The comment body must not be empty.")
        if not isinstance(body.get("public", True), bool):
            return self.error(400, "public must be true or false.")
        return Reply(201, self._comment(issue, HEZO, str(body["body"]), public=body.get("public", True)))

    def _comments(self, call: Call, match: re.Match[str]) -> Reply:
        issue = self._find(match["key"])
        if issue is None:
            return self.error(404, "The request does not exist or you do not have permission to see it.")
        wanted = [
            comment
            for comment in issue.comments
            if (comment["public"] and call.query.get("public", "true") == "true")
            or (not comment["public"] and call.query.get("internal", "true") == "true")
        ]
        return Reply(200, self._page(call, wanted))

    def _issue(self, call: Call, match: re.Match[str]) -> Reply:
        issue = self._find(match["key"])
        if issue is None:
            return self._missing()
        everything = {
            "summary": issue.fields["summary"],
            "status": {
                "name": issue.status,
                "id": "10001",
                "statusCategory": {"key": issue.category, "name": issue.category.capitalize()},
            },
            "resolution": {"name": issue.resolution, "id": "10000"} if issue.resolution else None,
            "assignee": self._user(issue.assignee) if issue.assignee else None,
        }
        asked = call.query.get("fields", "*all").split(",")
        fields = everything if "*all" in asked else {name: everything.get(name) for name in asked}
        return Reply(
            200,
            {
                "id": issue.id,
                "key": issue.key,
                "self": f"{self.url}/rest/api/2/issue/{issue.id}",
                "fields": fields,
            },
        )

    def _offered(self, issue: Issue, *, fields: bool) -> list[dict[str, Any]]:
        """The transitions out of the issue's status: a done issue can only be reopened, any other can be
        worked on or resolved; never to the status it is in."""
        offered = []
        for number, name, status, category in TRANSITIONS:
            if status == issue.status or (category == "new") != (issue.category == "done"):
                continue
            transition: dict[str, Any] = {
                "id": number,
                "name": name,
                "to": {"name": status, "statusCategory": {"key": category, "name": category.capitalize()}},
                "hasScreen": category == "done" and self.resolution_screen,
                "isAvailable": True,
            }
            if fields:
                needs = category == "done" and self.resolution_screen
                transition["fields"] = (
                    {
                        "resolution": {
                            "required": True,
                            "name": "Resolution",
                            "allowedValues": [{"name": "Done"}],
                        }
                    }
                    if needs
                    else {}
                )
            offered.append(transition)
        return offered

    def _transitions(self, call: Call, match: re.Match[str]) -> Reply:
        issue = self._find(match["key"])
        if issue is None:
            return self._missing()
        fields = "transitions.fields" in call.query.get("expand", "")
        return Reply(200, {"expand": "transitions", "transitions": self._offered(issue, fields=fields)})

    def _transition(self, call: Call, match: re.Match[str]) -> Reply:
        issue = self._find(match["key"])
        if issue is None:
            return self._missing()
        body = call.body if isinstance(call.body, dict) else {}
        wanted = str((body.get("transition") or {}).get("id", ""))
        chosen = next((item for item in self._offered(issue, fields=True) if item["id"] == wanted), None)
        if chosen is None:
            return Reply(
                400,
                {"errorMessages": [f"Transition id '{wanted}' is not valid for this issue."], "errors": {}},
            )
        given = body.get("fields") or {}
        if "resolution" in chosen["fields"] and not (given.get("resolution") or {}).get("name"):
            return Reply(400, {"errorMessages": [], "errors": {"resolution": "Resolution is required."}})
        if "resolution" in given and "resolution" not in chosen["fields"]:
            return Reply(
                400,
                {
                    "errorMessages": [],
                    "errors": {
                        "resolution": "Field 'resolution' cannot be set. "
                        "It is not on the appropriate screen, or unknown."
                    },
                },
            )
        issue.status, issue.category = chosen["to"]["name"], chosen["to"]["statusCategory"]["key"]
        issue.resolution = given["resolution"]["name"] if "resolution" in given else None
        return Reply(204, None)

    def _edit(self, call: Call, match: re.Match[str]) -> Reply:
        """``PUT /issue/{key}``: only what the edit screen has (Priority when the form has it)."""
        issue = self._find(match["key"])
        if issue is None:
            return self._missing()
        given = (call.body if isinstance(call.body, dict) else {}).get("fields") or {}
        for name in given:
            if name not in self.fields:
                text = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                return Reply(400, {"errorMessages": [], "errors": {name: text}})
        issue.fields.update(given)
        return Reply(204, None)

    def _missing(self) -> Reply:
        body = {
            "errorMessages": ["Issue does not exist or you do not have permission to see it."],
            "errors": {},
        }
        return Reply(404, body)

    # -- what agents do in Jira -------------------------------------------------------------------------

    def comment(self, key: str, text: str, *, by: str = "Alice Agent", public: bool = False) -> None:
        author = {"accountId": f"5b10:{by.lower().replace(' ', '-')}", "displayName": by}
        with self.lock:
            self._comment(self.issues[key], author, text, public=public)

    def resolve(self, key: str, *, by: str = "Alice Agent") -> None:
        with self.lock:
            issue = self.issues[key]
            issue.status, issue.category, issue.resolution = "Resolved", "done", "Done"
            issue.assignee = {"accountId": f"5b10:{by.lower().replace(' ', '-')}", "displayName": by}

    def requests(self) -> list[Issue]:
        with self.lock:
            return list(self.issues.values())

    # -- shapes -----------------------------------------------------------------------------------------

    def _find(self, key: str) -> Issue | None:
        return self.issues.get(key) or next(
            (issue for issue in self.issues.values() if issue.id == key), None
        )

    def _comment(self, issue: Issue, author: dict[str, str], text: str, *, public: bool) -> dict[str, Any]:
        self._next_comment += 1
        comment = {
            "id": str(self._next_comment),
            "body": text,
            "public": public,
            "author": self._user(author),
            "created": self._date(self.clock()),
            "_links": {
                "self": f"{self.url}/rest/servicedeskapi/request/{issue.id}/comment/{self._next_comment}"
            },
        }
        issue.comments.append(comment)
        return comment

    def _dto(self, issue: Issue) -> dict[str, Any]:
        return {
            "_expands": [
                "participant",
                "status",
                "sla",
                "requestType",
                "serviceDesk",
                "attachment",
                "comment",
            ],
            "issueId": issue.id,
            "issueKey": issue.key,
            "requestTypeId": REQUEST_TYPE,
            "serviceDeskId": SERVICE_DESK,
            "createdDate": self._date(issue.created),
            "reporter": self._user(issue.reporter),
            "requestFieldValues": [
                {"fieldId": name, "label": self.fields[name], "value": value}
                for name, value in issue.fields.items()
            ],
            "currentStatus": {
                "status": issue.status,
                "statusCategory": {"new": "NEW", "indeterminate": "INDETERMINATE", "done": "DONE"}[
                    issue.category
                ],
                "statusDate": self._date(issue.created),
            },
            "_links": {
                "jiraRest": f"{self.url}/rest/api/2/issue/{issue.id}",
                "web": f"{self.url}/servicedesk/customer/portal/{SERVICE_DESK}/{issue.key}",
                "agent": f"{self.url}/browse/{issue.key}",
                "self": f"{self.url}/rest/servicedeskapi/request/{issue.id}",
            },
        }

    def _user(self, user: dict[str, str]) -> dict[str, Any]:
        return {**user, "active": True, "timeZone": "UTC", "_links": {"self": f"{self.url}/rest/api/2/user"}}

    @staticmethod
    def _date(moment: datetime) -> dict[str, Any]:
        return {
            "iso8601": moment.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "jira": moment.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
            "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
            "epochMillis": int(moment.timestamp() * 1000),
        }

    @staticmethod
    def _page(call: Call, values: list[dict[str, Any]]) -> dict[str, Any]:
        start, limit = int(call.query.get("start", "0")), min(int(call.query.get("limit", "50")), 100)
        window = values[start : start + limit]
        return {
            "size": len(window),
            "start": start,
            "limit": limit,
            "isLastPage": start + limit >= len(values),
            "values": window,
            "_links": {"base": "", "context": "", "self": call.path},
        }
