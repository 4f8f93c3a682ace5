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
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)

from agent import enrolment
from agent.catalog import MODELS
from agent.defaults import default_checks
from agent.drivers import DRIVERS
from agent.drivers.snmp import SnmpAgentConfig
from agent.drivers.sync import SyncAccountConfig, SyncOptions
from agent.drivers.usb import UsbOptions
from agent.errors import AgentConfigError
from common.configfile import (
    AgentId,
    ConfigError,
    DeviceId,
    SiteId,
    TlsConfig,
    TopicPrefix,
    load_yaml_model,
)
from common.logs import LogFormat
from diagnostics.config import LogsConfig
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
        description="default: spool.db in state_dir (given, or systemd's), else CONFIG.spool.db",
    )
    max_bytes: int = Field(100 * 1024 * 1024, ge=4096, description="cap; past it old telemetry is evicted")
    commit_interval: float = Field(0.05, gt=0, le=10, description="seconds between commits to disk")


class PollConfig(Strict):
    """How often devices are checked; why these defaults: docs/agent.md, "Detection speed"."""

    interval: float = Field(10.0, gt=0, le=86400, description="seconds between checks of a device")
    recheck_count: int = Field(2, ge=0, le=10, description="re-checks of a failed check before 'down'")
    recheck_delay: float = Field(1.0, ge=0, le=300, description="seconds between re-checks")


class UploadConfig(Strict):
    """How bundles reach the collector: the URL comes in the signed command; these say how to send them."""

    ca_file: FilePath | None = Field(None, description="CA that signs the collector's HTTPS certificate")
    timeout: float = Field(
        30.0, gt=0, le=600, description="seconds of silence before a connection is dropped"
    )
    retries: int = Field(5, ge=0, le=100, description="resumptions after a broken connection")
    chunk_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024, description="bytes sent per request")


class CommandsConfig(Strict):
    """The command channel: commands signed by the collector's key, run from an allow-list."""

    public_key: FilePath | None = Field(
        None,
        description="the collector's Ed25519 public key (PEM); default: the one the agent was enrolled with",
    )
    state_dir: Path = Field(description="where the agent remembers command ids it has seen")
    max_clock_skew: float = Field(300.0, ge=0, le=3600, description="seconds a command may be early")
    max_lifetime: float = Field(3600.0, gt=0, le=86400, description="longest validity accepted")
    upload: UploadConfig = UploadConfig()
    logs: LogsConfig = LogsConfig()

    @field_validator("public_key")
    @classmethod
    def _loadable_key(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
        except ImportError:
            raise ValueError("the command channel needs the 'cryptography' package") from None
        try:
            key = load_pem_public_key(value.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{value} is not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{value} is not an Ed25519 public key")  # noqa: TRY004 (pydantic wants ValueError)
        return value


class MetricsConfig(Strict):
    """The agent's own metrics endpoint (``agent/metrics.py``); off unless this section is given."""

    listen: str = Field(
        max_length=300, description="HOST:PORT of /metrics, e.g. 127.0.0.1:9311 or [::1]:9311 (keep it local)"
    )

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:9311 (got {value!r})"
            )
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class DeviceConfig(Strict):
    id: DeviceId
    model: str
    serial: str | None = None
    name: str | None = None
    room: str | None = None
    contract: str | None = Field(None, description="service contract number; default: the agent's")
    address: str | None = Field(
        None, min_length=1, max_length=253, description="IP or host name; for the model's default checks"
    )
    checks: list[CheckOptions] = Field(min_length=1, description="default: the model's default checks")

    @model_validator(mode="before")
    @classmethod
    def _default_checks(cls, data: Any) -> Any:
        """No ``checks`` key: the model's default checks (``agent/defaults.py``)."""
        if isinstance(data, dict) and "checks" not in data and data.get("model") in MODELS:
            address = data.get("address") if isinstance(data.get("address"), str) else None
            data = {**data, "checks": default_checks(MODELS[data["model"]], address, set(DRIVERS))}
        return data

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
    state_dir: Path | None = Field(
        None, description="default: $STATE_DIRECTORY, else CONFIG.state beside the config file"
    )
    mqtt: MqttConfig = MqttConfig()
    spool: SpoolConfig = SpoolConfig()
    poll: PollConfig = PollConfig()
    sync: SyncAccountConfig | None = Field(None, description="the Logitech Sync account of sync checks")
    snmp: SnmpAgentConfig | None = Field(None, description="what snmp checks share: the trap receiver")
    devices: list[DeviceConfig] = Field(min_length=1)
    commands: CommandsConfig | None = None
    metrics: MetricsConfig | None = Field(None, description="the agent's own /metrics; off when absent")
    log_format: LogFormat = Field("text", description="text or json lines; --log-format overrides it")

    @model_validator(mode="after")
    def _unique_devices(self) -> "AgentConfig":
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return self

    @model_validator(mode="after")
    def _sync_checks_have_account(self) -> "AgentConfig":
        for index, device in enumerate(self.devices):
            for number, check in enumerate(device.checks):
                if not isinstance(check, SyncOptions):
                    continue
                where = f"devices[{index}].checks[{number}]"
                if self.sync is None:
                    raise ValueError(
                        f"{where}: a sync check needs the sync: section (org_id, cert_file, ...)"
                    )
                if check.serial is None and check.device_id is None and device.serial is None:
                    raise ValueError(f"{where}: give serial or device_id, or the device's serial")
        return self

    def contract_of(self, device: DeviceConfig) -> str | None:
        return device.contract or self.contract

    def room_of(self, device: DeviceConfig) -> str | None:
        return device.room or self.room

    def driver_sections(self) -> dict[str, BaseModel]:
        """The agent-level sections of drivers, by driver name: what their probes' context carries."""
        sections: dict[str, BaseModel] = {}
        if self.sync is not None:
            sections["sync"] = self.sync
        if self.snmp is not None:
            sections["snmp"] = self.snmp
        return sections

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"hezo-agent-{self.site}-{self.agent}"


class _Identity(BaseModel):
    """Who the agent is and where its state lives: all ``hezo-agent enroll`` reads of a config file that may
    not load whole before the enrolment (``commands`` without ``public_key``)."""

    model_config = ConfigDict(extra="ignore")

    site: SiteId
    agent: AgentId
    state_dir: Path | None = None


def state_dir_of(path: str | Path, given: Path | None) -> Path:
    """``given``, else ``$STATE_DIRECTORY`` (systemd's StateDirectory), else ``NAME.state`` by ``path``."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if given is not None:
        return given
    return Path(state) if state else Path(path).with_name(Path(path).name + ".state")


def read_identity(path: str | Path) -> tuple[str, str, Path]:
    """``(site, agent, state_dir)`` of the agent config ``path``, checking nothing else of it."""
    try:
        identity = load_yaml_model(path, _Identity)
    except ConfigError as exc:
        raise AgentConfigError(str(exc)) from None
    return identity.site, identity.agent, state_dir_of(path, identity.state_dir)


def load_config(path: str | Path) -> AgentConfig:
    """Load and validate an agent config file, or raise ``AgentConfigError`` saying what to fix.

    Resolved here: ``state_dir`` (systemd's ``StateDirectory``, i.e. ``$STATE_DIRECTORY``, which the shipped
    unit makes ``/var/lib/hezo-agent``, else ``NAME.state`` beside the config file ``NAME``); a missing
    ``spool.path`` (``spool.db`` in the state directory given or systemd's, else ``NAME.spool.db`` beside the
    config file); and the agent's enrolment, if ``hezo-agent enroll`` stored one in ``state_dir``
    (``apply_enrolment``).
    """
    try:
        config = load_yaml_model(path, AgentConfig, tags=DRIVERS.keys())
    except ConfigError as exc:
        raise AgentConfigError(str(exc)) from None
    given = config.state_dir
    config.state_dir = state_dir_of(path, given)
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if config.spool.path is None:
        if given is not None or state:
            config.spool.path = config.state_dir / "spool.db"
        else:
            config.spool.path = Path(path).with_name(Path(path).name + ".spool.db")
    try:
        stored = enrolment.load(config.state_dir)
    except enrolment.EnrolmentError as exc:
        raise AgentConfigError(f"{path}: {exc}") from None
    if stored is not None:
        apply_enrolment(config, stored, str(path))
    elif config.commands is not None and config.commands.public_key is None:
        raise AgentConfigError(
            f"{path}: commands.public_key: required key is missing (or enrol the agent: hezo-agent enroll)"
        )
    return config


def apply_enrolment(config: AgentConfig, stored: enrolment.Stored, source: str) -> None:
    """Log in as the enrolment says: its login and client id, its broker (unless the file names one), its CA
    (unless ``mqtt.tls.ca_file`` is given), and its command key (unless ``commands.public_key`` is given).

    The file must not give a login of its own, nor a client id or prefix other than the enrolment's: the
    broker would refuse them.
    """
    where = f"{source}: the agent is enrolled ({stored.folder})"
    if (stored.site, stored.agent) != (config.site, config.agent):
        raise AgentConfigError(
            f"{where} as {stored.site}/{stored.agent}, but the file says {config.site}/{config.agent}; "
            "enrol it again (hezo-agent enroll)"
        )
    mqtt = config.mqtt
    given = mqtt.model_fields_set
    for key in ("username", "password"):
        if key in given:
            raise AgentConfigError(f"{where}: mqtt.{key}: remove it, the enrolment holds the broker login")
    for key, value in (("client_id", stored.client_id), ("prefix", stored.prefix)):
        if key in given and getattr(mqtt, key) != value:
            raise AgentConfigError(f"{where}: mqtt.{key}: the broker allows only {value!r}; remove the key")
    mqtt.username, mqtt.password = stored.username, SecretStr(stored.password)
    mqtt.client_id, mqtt.prefix = stored.client_id, stored.prefix
    if "host" not in given:
        mqtt.host = stored.host
    if "port" not in given:
        mqtt.port = stored.port
    tls = mqtt.tls.model_dump() if mqtt.tls is not None else {}
    if tls.get("ca_file") is None:
        tls["ca_file"] = stored.ca_file
    try:
        mqtt.tls = TlsConfig.model_validate(tls)
    except ValueError as exc:
        raise AgentConfigError(f"{where}: its broker CA {stored.ca_file}: {exc}") from None
    if config.commands is not None and config.commands.public_key is None:
        if stored.command_key is None:
            raise AgentConfigError(
                f"{where} without the collector's command key: commands.public_key: required key is missing"
            )
        config.commands.public_key = stored.command_key
