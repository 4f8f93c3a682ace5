"""The collector's configuration: a strict YAML file, every key optional, with working defaults (a broker
on 127.0.0.1:1883, the page on http://127.0.0.1:8080/); the store's URL is the one key a command needs."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, field_validator, model_validator
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from collector.cluster.settings import ClusterConfig
from collector.registry.maintenance import check_maintenance
from collector.sinks import SINKS
from collector.sinks.settings import NotifyConfig
from collector.sla.calendar import parse_hours
from collector.sla.terms import PriorityName
from collector.store.retention import RetentionConfig
from common.configfile import ConfigError, TlsConfig, TopicPrefix, load_yaml_model, parse_model
from common.logs import LogFormat
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
    #: How long (ms) the writer waits for more messages to join a batch: a transaction costs the same
    #: round trips and commit whatever its size, so a longer wait is fewer of them, at that much latency.
    batch_wait_ms: int = Field(default=50, ge=0, le=1000)


class IngestConfig(BaseModel):
    """What ingest trusts (docs/collector.md, "Trust"): which agents, and how far their clocks and counters
    may stray before a message is refused as implausible."""

    model_config = ConfigDict(extra="forbid")

    enrolled_only: bool = Field(
        default=False, description="ingest only agents enrolled with hezo-collector agents enrol"
    )
    max_clock_skew: float = Field(
        default=300.0, ge=1, le=86400, description="seconds into the future allowed"
    )
    boot_ids: Literal["agent-clock", "any"] = Field(
        default="agent-clock", description="agent-clock: 12 hex digits of start time in ms, then 4 more"
    )
    max_seq_jump: int = Field(default=100_000, ge=1, description="largest seq step within a known boot")
    rejected_keep_days: float = Field(default=30.0, gt=0, le=3650, description="rejected messages kept for")
    rejected_max_rows: int = Field(default=100_000, ge=100, description="rejected messages kept at most")


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


#: The names a request may call the collector by, out of the box: loopback only.
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]


class WebConfig(BaseModel):
    """Where the web page, the JSON API and /metrics listen, by which names, and how logins work
    (docs/security.md)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_NAMES),
        min_length=1,
        description="Host header names answered (a leading '*.' for subdomains); any other is a 400",
    )
    https: bool = Field(
        default=False, description="users reach the page through HTTPS (a TLS reverse proxy in front)"
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="a web login lasts this long")

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _HOST_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: a host name or address without port (or *.example.net)")
        return [name.lower() for name in value]


_HOST_NAME = re.compile(r"(\*\.)?[A-Za-z0-9.:_-]{1,253}")


class ClientConfig(BaseModel):
    """How the CLI's remote commands (``logs pull``, ``diag run``) reach the running collector's API."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="the collector's web address; default web.host:port")
    token_file: Path | None = Field(default=None, description="a file holding an API token (hezo_...)")


PersonalData = Literal["drop", "mask", "keep"]


class PersonalDataConfig(BaseModel):
    """How log bundles treat personal data (e-mail addresses, people's and meetings' names), per customer:
    sent with each log request, where the agent can only make it stricter than its own setting."""

    model_config = ConfigDict(extra="forbid")

    default: PersonalData = "mask"
    customers: dict[str, PersonalData] = Field(default_factory=dict, description="by contract customer")


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
    max_unpacked_bytes: int = Field(
        default=2 * 1024**3, ge=1024, description="a bundle may unpack to at most this many bytes"
    )
    max_unpack_ratio: float = Field(default=200.0, ge=1, description="and to at most this times its size")
    max_partial_bytes: int = Field(
        default=2 * 500 * 1024 * 1024, ge=1024, description="disk that unfinished uploads may take in all"
    )
    max_shown_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="largest member shown as text")
    command_window: float = Field(default=600.0, gt=0, le=86400, description="seconds the limits below count")
    max_commands_per_device: int = Field(default=10, ge=1, description="commands to one device per window")
    max_commands_per_user: int = Field(default=60, ge=1, description="commands one person sends per window")
    personal_data: PersonalDataConfig = Field(default_factory=PersonalDataConfig)
    command_ttl: float = Field(default=600.0, gt=0, le=86400, description="seconds a command stays valid")
    auto_evidence: bool = Field(default=True, description="service tests + logs for each Critical ticket")
    evidence_since_hours: float = Field(default=2.0, gt=0, description="log range of automatic evidence")


class EnrolmentConfig(BaseModel):
    """How ``hezo-collector agents enrol`` gives an agent its broker identity (docs/security-agents.md)."""

    model_config = ConfigDict(extra="forbid")

    #: ``none``: an enrolment is only the store's record (what ``ingest.enrolled_only`` reads);
    #: ``dynamic-security``: each agent also gets its own broker login and access rules, made at runtime
    #: through Mosquitto's dynamic-security plugin with the collector's own login (``mqtt.username``).
    broker: Literal["none", "dynamic-security"] = "none"
    agent_host: str | None = Field(
        default=None, min_length=1, max_length=253, description="the broker as agents reach it (mqtt.host)"
    )
    agent_port: int = Field(default=8883, ge=1, le=65535, description="its TLS port as agents reach it")
    ca_file: FilePath | None = Field(
        default=None,
        description="the CA agents verify the broker with; default mqtt.tls.ca_file, or system CAs",
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="seconds to wait for the broker's answer")


class CollectorConfig(BaseModel):
    """The whole collector configuration file."""

    model_config = ConfigDict(extra="forbid")

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    sites: dict[str, SiteConfig] = Field(default_factory=dict)
    default_site: SiteConfig = Field(default_factory=SiteConfig)
    contracts: list[ContractConfig] = Field(default_factory=list)
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    web: WebConfig = Field(default_factory=WebConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    client: ClientConfig = Field(default_factory=ClientConfig)
    enrolment: EnrolmentConfig = Field(default_factory=EnrolmentConfig)
    log_format: LogFormat = "text"  # --log-format overrides it; docs/operations.md
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)

    @model_validator(mode="after")
    def _broker_login(self) -> CollectorConfig:
        if self.enrolment.broker == "dynamic-security" and (
            self.mqtt.username is None or self.mqtt.password is None
        ):
            raise ValueError(
                "enrolment.broker: dynamic-security needs the collector's own broker login "
                "(mqtt.username and mqtt.password)"
            )
        return self


def load_config(path: str | Path | None) -> CollectorConfig:
    """Load ``path``, or the defaults when ``path`` is None; raise ``ConfigError`` saying what to fix."""
    if path is None:
        config = parse_model("(defaults)", {}, CollectorConfig, tags=SINKS.keys())
    else:
        config = load_yaml_model(path, CollectorConfig, tags=SINKS.keys())
    if (problem := store_url_problem(config.store.url)) is not None:
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
