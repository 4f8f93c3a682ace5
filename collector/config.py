"""The collector's configuration: a strict YAML file, every key optional, with working defaults.

With no file at all ``hezo-collector serve`` talks to a broker on 127.0.0.1:1883, stores into
``hezo-collector.db`` in the working directory and serves its page on http://127.0.0.1:8080/.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from collector.registry.maintenance import check_maintenance
from collector.sinks import SINKS
from collector.sla.calendar import parse_hours
from common.configfile import ConfigError, TlsConfig, TopicPrefix, load_yaml_model, parse_model
from protocol import DEFAULT_PREFIX


class MqttConfig(BaseModel):
    """How to reach the broker. The session is persistent, so ``client_id`` must be stable."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="hezo-collector", min_length=1)
    prefix: TopicPrefix = DEFAULT_PREFIX
    username: str | None = None
    password: SecretStr | None = None
    keepalive: int = Field(default=30, ge=5)
    tls: TlsConfig | None = None
    #: Where the MQTT session runs: a process of its own beside the writer's (faster), or a thread of the
    #: collector's process (one process less). See docs/collector.md, "Throughput".
    receiver: Literal["process", "thread"] = "process"


class StoreConfig(BaseModel):
    """Where the collector keeps its data: an SQLAlchemy URL (SQLite by default, or PostgreSQL)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="sqlite:///hezo-collector.db", min_length=1)
    batch_size: int = Field(default=500, ge=1, le=10_000)


class UnstableConfig(BaseModel):
    """When a device that still works is unstable enough for a High ticket (docs/incidents.md)."""

    model_config = ConfigDict(extra="forbid")

    flap_count: int = Field(default=3, ge=2)
    flap_window: float = Field(default=900.0, gt=0)
    reboot_count: int = Field(default=3, ge=1)
    reboot_window: float = Field(default=3600.0, gt=0)
    degraded_after: float = Field(default=300.0, ge=0)
    loss_pct: float = Field(default=20.0, gt=0, le=100)
    loss_after: float = Field(default=600.0, ge=0)


class IncidentsConfig(BaseModel):
    """When a device or an agent becomes a ticket (docs/incidents.md)."""

    model_config = ConfigDict(extra="forbid")

    #: 15 s: with the agent's 10 s poll, a dead device is ticketed within 30 s; why, in docs/incidents.md.
    confirm_window: float = Field(default=15.0, gt=0)
    evaluate_every: float = Field(default=1.0, gt=0)
    #: Overrides ``sla.priorities.critical.response_hours`` when given (kept for older files).
    critical_response_hours: float | None = Field(default=None, gt=0)
    reopen_window: float = Field(default=86400.0, gt=0)
    agent_silent_after: float = Field(default=300.0, gt=0)
    heartbeat_timeout: float | None = Field(default=None, gt=0)
    site_priority: Literal["critical", "high", "low"] = "high"
    unregistered_contract: Literal["open", "hold"] = "open"
    contract_warning_days: int = Field(default=60, ge=0)
    unstable: UnstableConfig = Field(default_factory=UnstableConfig)


class PriorityConfig(BaseModel):
    """One priority of the terms: its service window and deadlines in hours."""

    model_config = ConfigDict(extra="forbid")

    window: Literal["24x7", "8x5"]
    response_hours: float = Field(gt=0)
    update_hours: float = Field(gt=0)
    delivery_hours: float | None = Field(default=None, gt=0)
    delivery: Literal["hours", "next-business-day"] = "hours"


PriorityName = Literal["critical", "high", "low"]


def _default_priorities() -> dict[PriorityName, PriorityConfig]:
    return {
        "critical": PriorityConfig(window="24x7", response_hours=1, update_hours=1, delivery_hours=8),
        "high": PriorityConfig(window="8x5", response_hours=1, update_hours=2, delivery_hours=8),
        "low": PriorityConfig(window="8x5", response_hours=4, update_hours=4),
    }


class SlaConfig(BaseModel):
    """The HEZO+ deadlines per priority (the terms' table by default), warnings and the return period."""

    model_config = ConfigDict(extra="forbid")

    priorities: dict[PriorityName, PriorityConfig] = Field(default_factory=_default_priorities)
    warn_before_minutes: float = Field(default=15.0, ge=0)
    return_days: int = Field(default=7, ge=1)

    @model_validator(mode="after")
    def _all_priorities(self) -> SlaConfig:
        for name, terms in _default_priorities().items():
            self.priorities.setdefault(name, terms)
        return self


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _weekdays() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class SiteConfig(BaseModel):
    """A site's calendar: time zone, working hours and days, public holidays (``holidays`` country code)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Europe/Warsaw"
    hours: str = "08:00-16:00"
    workdays: list[Weekday] = Field(default_factory=_weekdays)
    holidays: str | None = "PL"
    subdivision: str | None = None
    days_off: list[date] = Field(default_factory=list)
    contact: str | None = Field(default=None, max_length=254, description="the site's e-mail for updates")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name like Europe/Warsaw)") from exc
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @field_validator("holidays")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None:
            import holidays

            if value not in holidays.list_supported_countries():
                raise ValueError(f"no public holidays known for country {value!r} (an ISO code like PL)")
        return value


class ContractConfig(BaseModel):
    """A HEZO+ contract: its number, start date and term (1 to 5 years), optionally the serials it covers."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=128)
    start: date
    years: int = Field(ge=1, le=5)
    customer: str | None = None
    serials: list[str] = Field(default_factory=list)
    contact: str | None = Field(default=None, max_length=254, description="the customer's e-mail for updates")


class MaintenanceConfig(BaseModel):
    """A maintenance window: recurring (``days`` + ``start``/``end`` local times, may cross midnight) or
    one-off (``from``/``until``). Scope: a site, or one agent, or one device of an agent."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=128)
    site: str = Field(min_length=1)
    agent: str | None = None
    device: str | None = None
    days: list[Weekday] | None = None
    start: str | None = None
    end: str | None = None
    starts_at: datetime | None = Field(default=None, alias="from")
    ends_at: datetime | None = Field(default=None, alias="until")
    reason: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceConfig:
        check_maintenance(
            self.days, self.start, self.end, self.starts_at, self.ends_at, self.agent, self.device
        )
        return self


class WebConfig(BaseModel):
    """Where the web page, the JSON API and /metrics listen."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class DiagnosticsConfig(BaseModel):
    """Remote diagnostics (docs/diagnostics.md): the signing key, where bundles go and for how long."""

    model_config = ConfigDict(extra="forbid")

    key_file: Path | None = Field(default=None, description="Ed25519 private key (PEM, mode 0600); none: off")
    public_url: str | None = Field(
        default=None, description="base URL agents upload bundles to; default: http://web.host:web.port"
    )
    bundle_dir: Path = Path("bundles")
    retention_days: float = Field(default=30.0, gt=0)
    max_bundle_bytes: int = Field(default=500 * 1024 * 1024, ge=1024)
    command_ttl: float = Field(default=600.0, gt=0, le=86400, description="seconds a command stays valid")
    auto_evidence: bool = Field(default=True, description="service tests + logs for each Critical ticket")
    evidence_since_hours: float = Field(default=2.0, gt=0, description="log range of automatic evidence")


#: The events a route can name: each kind of ticket timeline entry, as ``tickets.event_of`` names it.
NoticeEvent = Literal[
    "opened",
    "reopened",
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


class CollectorConfig(BaseModel):
    """The whole collector configuration file."""

    model_config = ConfigDict(extra="forbid")

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    sites: dict[str, SiteConfig] = Field(default_factory=dict)
    default_site: SiteConfig = Field(default_factory=SiteConfig)
    contracts: list[ContractConfig] = Field(default_factory=list)
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    web: WebConfig = Field(default_factory=WebConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)


def load_config(path: str | Path | None) -> CollectorConfig:
    """Load ``path``, or the defaults when ``path`` is None; raise ``ConfigError`` saying what to fix."""
    if path is None:
        config = parse_model("(defaults)", {}, CollectorConfig, tags=SINKS.keys())
    else:
        config = load_yaml_model(path, CollectorConfig, tags=SINKS.keys())
    problem = store_url_problem(config.store.url)
    if problem is not None:
        raise ConfigError(f"{path or '(defaults)'}: store.url: {problem}")
    return config


def store_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable SQLAlchemy URL, or None. Never repeats the URL: it may hold a password."""
    from collector.store.database import engine_url

    try:
        parsed = engine_url(url)
    except (ArgumentError, ValueError):
        return "not a SQLAlchemy URL (like sqlite:///collector.db or postgresql+psycopg://user@host/hezo)"
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        return f"unknown database type {parsed.drivername!r} (use sqlite or postgresql)"
    return None
