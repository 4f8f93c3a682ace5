"""The agent's configuration file: one YAML document, validated strictly at start-up.

Unknown keys are rejected and every error names the file, the key path and what was expected, e.g.
``agent.yaml: devices[0].checks[0].url: Value error, expected an https:// URL with a host (got 'http://x')``.
See ``docs/agent.md`` for every key.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from agent.catalog import MODELS
from agent.configfile import AgentId, DeviceId, SiteId, TlsConfig, TopicPrefix, load_yaml_model
from agent.drivers import DRIVERS
from agent.drivers.usb import UsbOptions
from protocol import DEFAULT_PREFIX

if TYPE_CHECKING:
    CheckOptions = Any
else:
    CheckOptions = Annotated[
        Union[tuple(spec.options for spec in DRIVERS.values())],  # noqa: UP007  (built from the registry)
        Field(discriminator="driver"),
    ]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    prefix: TopicPrefix = DEFAULT_PREFIX
    client_id: str | None = Field(None, description="default: hezo-agent-SITE-AGENT")
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    keepalive: int = Field(30, ge=5, le=3600)
    max_inflight: int = Field(100, ge=1, le=65535, description="unacknowledged QoS 1 messages at once")


class SpoolConfig(Strict):
    """The durable outgoing spool (``agent/spool.py``)."""

    path: Path | None = Field(
        None,
        description="default: $STATE_DIRECTORY/spool.db, else CONFIG.spool.db beside the config file",
    )
    max_bytes: int = Field(100 * 1024 * 1024, ge=4096, description="cap; past it old telemetry is evicted")
    commit_interval: float = Field(0.05, gt=0, le=10, description="seconds between commits to disk")


class PollConfig(Strict):
    interval: float = Field(30.0, gt=0, le=86400, description="seconds between checks of a device")
    recheck_count: int = Field(2, ge=0, le=10, description="re-checks of a failed check before 'down'")
    recheck_delay: float = Field(2.0, ge=0, le=300, description="seconds between re-checks")


class DeviceConfig(Strict):
    id: DeviceId
    model: str
    serial: str | None = None
    name: str | None = None
    room: str | None = None
    contract: str | None = Field(None, description="service contract number; default: the agent's")
    checks: list[CheckOptions] = Field(min_length=1)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model; expected one of {', '.join(sorted(MODELS))}")
        return value

    @model_validator(mode="after")
    def _usb_checks_can_fail(self) -> "DeviceConfig":
        for index, check in enumerate(self.checks):
            if not isinstance(check, UsbOptions):
                continue
            if check.functions is None:
                required = [f for f in MODELS[self.model].usb if f.required]
                if not required:
                    raise ValueError(
                        f"checks[{index}]: the USB ids of model {self.model!r} are not published; "
                        "list them under 'functions'"
                    )
            elif not any(f.required for f in check.functions):
                raise ValueError(f"checks[{index}].functions: at least one function must be required")
        return self


class AgentConfig(Strict):
    site: SiteId
    agent: AgentId
    room: str | None = Field(None, description="default room of the devices")
    contract: str | None = Field(None, description="default service contract number of the devices")
    mqtt: MqttConfig = MqttConfig()
    spool: SpoolConfig = SpoolConfig()
    poll: PollConfig = PollConfig()
    devices: list[DeviceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_devices(self) -> "AgentConfig":
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return self

    def contract_of(self, device: DeviceConfig) -> str | None:
        return device.contract or self.contract

    def room_of(self, device: DeviceConfig) -> str | None:
        return device.room or self.room

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"hezo-agent-{self.site}-{self.agent}"


def load_config(path: str | Path) -> AgentConfig:
    """Load and validate an agent config file, or raise ``ConfigError`` saying what to fix.

    A missing ``spool.path`` is resolved here: systemd's ``StateDirectory`` (``$STATE_DIRECTORY``, i.e.
    ``/var/lib/hezo-agent`` with the shipped unit), else ``NAME.spool.db`` beside the config file ``NAME``.
    """
    config = load_yaml_model(path, AgentConfig, tags=DRIVERS.keys())
    if config.spool.path is None:
        state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        config.spool.path = (
            Path(state) / "spool.db" if state else Path(path).with_name(Path(path).name + ".spool.db")
        )
    return config
