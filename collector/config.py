"""The collector's configuration: a strict YAML file, every key optional, with working defaults.

With no file at all ``hezo-collector serve`` talks to a broker on 127.0.0.1:1883, stores into
``hezo-collector.db`` in the working directory and serves its page on http://127.0.0.1:8080/.
"""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from agent.configfile import ConfigError, TlsConfig, TopicPrefix, load_yaml_model, parse_model
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


class StoreConfig(BaseModel):
    """Where the collector keeps its data: an SQLAlchemy URL (SQLite by default, or PostgreSQL)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="sqlite:///hezo-collector.db", min_length=1)
    batch_size: int = Field(default=500, ge=1, le=10_000)


class IncidentsConfig(BaseModel):
    """When a down device becomes a ticket, and the deadline it gets."""

    model_config = ConfigDict(extra="forbid")

    confirm_window: float = Field(default=60.0, gt=0)
    evaluate_every: float = Field(default=1.0, gt=0)
    critical_response_hours: float = Field(default=1.0, gt=0)
    reopen_window: float = Field(default=86400.0, gt=0)


class WebConfig(BaseModel):
    """Where the web page, the JSON API and /metrics listen."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class CollectorConfig(BaseModel):
    """The whole collector configuration file."""

    model_config = ConfigDict(extra="forbid")

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    web: WebConfig = Field(default_factory=WebConfig)


def load_config(path: str | Path | None) -> CollectorConfig:
    """Load ``path``, or the defaults when ``path`` is None; raise ``ConfigError`` saying what to fix."""
    if path is None:
        config = parse_model("(defaults)", {}, CollectorConfig)
    else:
        config = load_yaml_model(path, CollectorConfig)
    problem = store_url_problem(config.store.url)
    if problem is not None:
        raise ConfigError(f"{path or '(defaults)'}: store.url: {problem}")
    return config


def store_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable SQLAlchemy URL, or None. Never repeats the URL: it may hold a password."""
    from collector.store import engine_url

    try:
        parsed = engine_url(url)
    except (ArgumentError, ValueError):
        return "not a SQLAlchemy URL (like sqlite:///collector.db or postgresql+psycopg://user@host/hezo)"
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        return f"unknown database type {parsed.drivername!r} (use sqlite or postgresql)"
    return None
