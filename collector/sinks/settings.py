"""The ``notify:`` section of the collector's configuration: the sinks by name (each its own options, from
the ``SINKS`` registry), the routes that send events to them, retries and customer updates
(docs/notifications.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collector.sinks import SINKS
from collector.sla.terms import PriorityName

#: The events a route can name: each kind of ticket timeline entry, as ``tickets.event_of`` names it.
NoticeEvent = Literal[
    "opened",
    "reopened",
    "priority-changed",
    "recovered",
    "closed",
    "sla-warning",
    "sla-breach",
    "respond",
    "confirm",
    "ship",
    "deliver",
    "return",
    "resolve",
    "note",
    "update",
    "service-tests",
    "log-bundle",
    "reboot",
    "firmware-changed",
]

if TYPE_CHECKING:
    SinkOptions = Any
else:
    SinkOptions = Annotated[
        Union[tuple(spec.options for spec in SINKS.values())],  # noqa: UP007  (built from the registry)
        Field(discriminator="type"),
    ]


class RouteConfig(BaseModel):
    """Which events go to which sinks: every route that matches an event sends it to its sinks (once each).

    A field left out matches everything. ``hours: working`` holds a notice until the site's working hours
    begin (the site's calendar), as an 8x5 service would; ``to_contact`` sends an e-mail sink's message to
    the ticket's customer contact (its contract's, else its site's) instead of the sink's own recipients.
    """

    model_config = ConfigDict(extra="forbid")

    sinks: list[str] = Field(min_length=1)
    events: list[NoticeEvent] | None = None
    priorities: list[PriorityName] | None = None
    sites: list[str] | None = None
    customers: list[str] | None = None
    hours: Literal["always", "working"] = "always"
    to_contact: bool = False


class RetryConfig(BaseModel):
    """How a delivery that failed for now is tried again: backoff doubling with jitter, then dead-letter."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=12, ge=1, le=100)
    first_delay: float = Field(default=5.0, gt=0, le=3600)
    max_delay: float = Field(default=900.0, gt=0, le=86400)


class CustomerUpdatesConfig(BaseModel):
    """Automatic updates to the customer at the terms' cadence: an ``update`` entry on each active ticket
    with a contact, ``lead_minutes`` before its update deadline; routes decide where it goes (to_contact)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    lead_minutes: float = Field(default=10.0, ge=0, le=1440)


class NotifyConfig(BaseModel):
    """Notifications and service desks (docs/notifications.md): the sinks by name, the routes, retries."""

    model_config = ConfigDict(extra="forbid")

    public_url: str | None = Field(
        default=None, description="base URL of the web page in messages; default: http://web.host:web.port"
    )
    sinks: dict[str, SinkOptions] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    lease: float = Field(default=120.0, gt=0, le=3600, description="seconds one delivery attempt may take")
    follow_every: float = Field(
        default=60.0, ge=5, le=86400, description="seconds between reads of each desk"
    )
    customer_updates: CustomerUpdatesConfig = Field(default_factory=CustomerUpdatesConfig)

    @field_validator("sinks")
    @classmethod
    def _sink_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _SINK_NAME.fullmatch(name):
                raise ValueError(f"sink name {name!r}: letters, digits, '-' and '_', at most 64")
        return value

    @model_validator(mode="after")
    def _routes_name_sinks(self) -> NotifyConfig:
        for index, route in enumerate(self.routes):
            for name in route.sinks:
                if name not in self.sinks:
                    known = ", ".join(sorted(self.sinks)) or "none is configured"
                    raise ValueError(f"routes[{index}]: no sink named {name!r} ({known})")
                if route.to_contact and self.sinks[name].type != "email":
                    raise ValueError(f"routes[{index}]: to_contact needs e-mail sinks; {name!r} is not one")
        return self


_SINK_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
