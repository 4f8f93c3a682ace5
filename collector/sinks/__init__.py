"""The sink registry: one module per place tickets are sent, each behind the same small interface
(``base.Sink``). A sink is an options model (its ``type`` tag, validated at start-up, no I/O) and a ``build``
that turns options into a ``Sink``. Adding one is a module here, one line in ``SINKS``, a sample config in
``config/sinks/`` and its tests (CONTRIBUTING.md).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from collector.sinks import email, jira, rt, servicenow, webhook
from collector.sinks.base import Sink


@dataclass(frozen=True)
class SinkSpec:
    name: str
    options: type[BaseModel]
    build: Callable[[Any], Sink]


SINKS: dict[str, SinkSpec] = {
    "email": SinkSpec("email", email.EmailOptions, email.build),
    "webhook": SinkSpec("webhook", webhook.WebhookOptions, webhook.build),
    "rt": SinkSpec("rt", rt.RtOptions, rt.build),
    "jira": SinkSpec("jira", jira.JiraOptions, jira.build),
    "servicenow": SinkSpec("servicenow", servicenow.ServiceNowOptions, servicenow.build),
}


def build_sink(options: BaseModel) -> Sink:
    """The sink for one configured ``notify.sinks`` entry."""
    return SINKS[getattr(options, "type")].build(options)  # noqa: B009 (every options model has a type tag)
