"""``rt``: Request Tracker 5 through its REST 2 API: a ticket in a queue for each hezo ticket, a comment for
each later event, the RT ticket resolved when the hezo ticket is, and the RT ticket followed back (its
comments and correspondence become notes, ``resolved`` there resolves the hezo ticket).

RT keeps no idempotency keys, so a creation is made safe to retry by looking first for a ticket in the queue
whose subject starts with the hezo number and that was created after the hezo ticket opened. hezo tells its
own comments apart by their author: the RT user that created the ticket, which is the token's owner.
"""

from __future__ import annotations

from datetime import datetime
from html.parser import HTMLParser
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, FilePath, SecretStr

from collector.sinks import desk
from collector.sinks.base import Delivered, DeskChange, Failed, Link, Notice, Outcome, Retry
from collector.sinks.http import Answer, JsonApi, read_later

#: Transactions read back per look; more wait for the next one.
PAGE = 100
#: Transaction types that carry what people wrote.
_WRITTEN = ("Comment", "Correspond")
#: Events that resolve the RT ticket (with ``resolve: true``).
_ENDINGS = frozenset({"resolve", "closed"})


class RtPriorities(BaseModel):
    """RT's number for each hezo priority (RT 5 shows 0, 50 and 100 as Low, Medium and High)."""

    model_config = ConfigDict(extra="forbid")

    critical: int = Field(100, ge=0, le=1000)
    high: int = Field(50, ge=0, le=1000)
    low: int = Field(0, ge=0, le=1000)


class RtOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["rt"]
    url: AnyHttpUrl = Field(description="RT's web address as people open it: https://rt.example.net (or /rt)")
    token: SecretStr = Field(description="an RT auth token (Settings > Auth Tokens) of hezo's RT user")
    queue: str = Field(min_length=1, max_length=200)
    priorities: RtPriorities = Field(default_factory=RtPriorities)
    resolve: bool = Field(
        True, description="set the RT ticket resolved when the hezo ticket is (RT's ModifyTicket right)"
    )
    ca_file: FilePath | None = None
    timeout: float = Field(15.0, gt=0, le=120)


class RtDesk:
    def __init__(self, options: RtOptions) -> None:
        self.options = options
        self.web = str(options.url).rstrip("/")
        self.api = JsonApi(
            self.web + "/REST/2.0",
            headers={"Authorization": f"token {options.token.get_secret_value()}"},
            timeout=options.timeout,
            ca_file=options.ca_file,
        )

    def send(self, notice: Notice) -> Outcome:
        if notice.link is None:
            return self._create(notice)
        first: Outcome | None = None  # a field set before the comment: sent again, it is not set twice
        if notice.event in _ENDINGS and self.options.resolve:
            first = self._resolve(notice.link)
        elif notice.event == "priority-changed":
            first = self._change(notice.link, {"Priority": self._priority(notice)}, "change the priority of")
        if first is not None:
            return first
        answer = self.api.call(
            "POST",
            f"/ticket/{notice.link.remote_id}/comment",
            json={"Content": desk.comment(notice), "ContentType": "text/plain"},
        )
        if not isinstance(answer, Answer):
            return answer
        # RT answers 201 with the new transaction in Location (/REST/2.0/transaction/40).
        return Delivered(remote_ref=answer.headers.get("Location", "").rsplit("/", 1)[-1] or None)

    def _priority(self, notice: Notice) -> int:
        return int(getattr(self.options.priorities, str(notice.ticket["priority"]), 0))

    def _resolve(self, link: Link) -> Outcome | None:
        """Set the RT ticket resolved; None once it is, an outcome if it cannot be. A ticket rejected or
        deleted in RT is left as people made it, and gets no comment either."""
        ticket = self.api.call("GET", f"/ticket/{link.remote_id}")
        if not isinstance(ticket, Answer):
            return ticket
        status = str(ticket.body.get("Status", "")) if isinstance(ticket.body, dict) else ""
        if status in ("rejected", "deleted"):
            return Delivered(remote_ref=f"already {status}")
        if status == "resolved":
            return None
        return self._change(link, {"Status": "resolved"}, "resolve")

    def _change(self, link: Link, fields: dict[str, str | int], what: str) -> Outcome | None:
        """Set ``fields`` of the RT ticket; None once they are set, an outcome if they cannot be.

        RT answers 200 whatever happened, with what it did in words (in its user's language): whether it did
        is read back from the ticket, and a refusal is told in RT's words."""
        answer = self.api.call("PUT", f"/ticket/{link.remote_id}", json=fields)
        if not isinstance(answer, Answer):
            return answer
        said = [str(message) for message in answer.body] if isinstance(answer.body, list) else []
        after = self.api.call("GET", f"/ticket/{link.remote_id}")
        if not isinstance(after, Answer):
            return after
        now = after.body if isinstance(after.body, dict) else {}
        if all(str(now.get(name)) == str(value) for name, value in fields.items()):
            return None
        return Failed(f"RT did not {what} ticket {link.remote_id}: {'; '.join(said)[:300] or 'no answer'}")

    def _create(self, notice: Notice) -> Outcome:
        found = self._existing(notice)
        if isinstance(found, Retry | Failed):
            return found
        if found is None:
            priority = self._priority(notice)
            answer = self.api.call(
                "POST",
                "/ticket",
                json={
                    "Queue": self.options.queue,
                    "Subject": desk.subject(notice),
                    "Priority": priority,
                    "Content": desk.description(notice),
                    "ContentType": "text/plain",
                },
            )
            if not isinstance(answer, Answer):
                return answer
            if not isinstance(answer.body, dict) or "id" not in answer.body:
                return Failed(f"RT created a ticket but did not say which: {str(answer.body)[:200]}")
            found = str(answer.body["id"])
        return Delivered(remote_ref=found, link=Link(found, f"{self.web}/Ticket/Display.html?id={found}"))

    def _existing(self, notice: Notice) -> str | Retry | Failed | None:
        """The id of an RT ticket made for this one by an earlier attempt, if there is one."""
        queue = self.options.queue.replace("\\", "\\\\").replace("'", "\\'")
        answer = self.api.call(
            "GET",
            "/tickets",
            params={
                "query": f"Queue = '{queue}' AND Subject LIKE '{notice.number}'",
                "fields": "Subject,Created",
                "orderby": "id",
                "order": "ASC",
                "per_page": PAGE,
            },
        )
        if not isinstance(answer, Answer):
            return answer
        for item in _items(answer.body):
            if desk.made_for(notice, str(item.get("Subject", "")), _moment(item.get("Created"))):
                return str(item["id"])
        return None

    def changes(self, link: Link) -> DeskChange | Retry:
        ticket = self.api.call("GET", f"/ticket/{link.remote_id}")
        if not isinstance(ticket, Answer):
            return read_later(ticket)
        record: dict[str, Any] = ticket.body if isinstance(ticket.body, dict) else {}
        status = str(record.get("Status", ""))
        me = _name(record.get("Creator"))  # hezo created it: what that user writes is hezo's own
        query: list[dict[str, Any]] = [
            {"field": "ObjectType", "value": "RT::Ticket"},
            {"field": "ObjectId", "value": link.remote_id},
            {"field": "id", "operator": ">", "value": link.cursor or "0"},
        ] + [{"field": "Type", "value": kind, "entry_aggregator": "OR"} for kind in (*_WRITTEN, "Status")]
        history = self.api.call(
            "POST",
            "/transactions",
            json=query,
            params={"fields": "Type,Creator,NewValue", "orderby": "id", "order": "ASC", "per_page": PAGE},
        )
        if not isinstance(history, Answer):
            return read_later(history)
        transactions = _items(history.body)
        written = {
            str(item["id"]): _name(item.get("Creator"))
            for item in transactions
            if item.get("Type") in _WRITTEN and _name(item.get("Creator")) != me
        }
        texts = self._texts(list(written))
        if isinstance(texts, Retry):
            return texts
        comments = [(author, texts[txn]) for txn, author in written.items() if texts.get(txn)]
        resolved_by = None
        if status == "resolved":
            resolutions = [
                _name(item.get("Creator"))
                for item in transactions
                if item.get("Type") == "Status" and item.get("NewValue") == "resolved"
            ]
            resolved_by = resolutions[-1] if resolutions else _name(record.get("LastUpdatedBy"))
        cursor = str(max(int(item["id"]) for item in transactions)) if transactions else link.cursor
        return DeskChange(comments=comments, resolved_by=resolved_by, cursor=cursor, status=status)

    def _texts(self, transactions: list[str]) -> dict[str, str] | Retry:
        """What each transaction says: its plain-text part, else its HTML part as text."""
        if not transactions:
            return {}
        answer = self.api.call(
            "POST",
            "/attachments",
            json=[{"field": "TransactionId", "operator": "IN", "value": transactions}],
            params={"fields": "TransactionId,ContentType,Content", "per_page": PAGE},
        )
        if not isinstance(answer, Answer):
            return read_later(answer)
        plain: dict[str, str] = {}
        html: dict[str, str] = {}
        for item in _items(answer.body):
            content = str(item.get("Content") or "").strip()
            kind = str(item.get("ContentType", ""))
            txn = str(item.get("TransactionId"))
            if not content:
                continue
            if kind == "text/plain":
                plain.setdefault(txn, content)
            elif kind == "text/html":
                html.setdefault(txn, text_of_html(content))
        return {**html, **plain}

    def close(self) -> None:
        self.api.close()


def _items(body: Any) -> list[dict[str, Any]]:
    items = body.get("items") if isinstance(body, dict) else None
    return [item for item in items or [] if isinstance(item, dict) and "id" in item]


def _name(user: Any) -> str:
    """An RT user as REST 2 refers to one (``{"type": "user", "id": "alice", ...}``): the user's name."""
    return str(user.get("id", "")) if isinstance(user, dict) else str(user or "")


def _moment(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


class _Text(HTMLParser):
    """The text of an HTML body, a line per paragraph, line break or list item."""

    _BREAKS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of_html(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def build(options: RtOptions) -> RtDesk:
    return RtDesk(options)
