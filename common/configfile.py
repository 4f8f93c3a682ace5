"""Strict YAML configuration files: errors name the file, the key path and what was expected.

Used by the agent and the collector alike. pydantic is imported by the caller's model, not here, so this
module costs nothing until a config is loaded.
"""

import re
import ssl
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, FilePath, ValidationError, model_validator

from protocol import ProtocolError, validate_id
from protocol.topics import validate_prefix

M = TypeVar("M", bound=BaseModel)
_SECRET = re.compile(r"password|secret|token|passphrase|private|community|key", re.IGNORECASE)


class ConfigError(Exception):
    """A configuration file that cannot be used. The message says where and what to fix."""


def _wire_rule(check: Callable[[str], str]) -> AfterValidator:
    """A pydantic validator from a wire-contract rule, so config and protocol cannot disagree."""

    def run(value: str) -> str:
        try:
            return check(value)
        except ProtocolError as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(run)


class TlsConfig(BaseModel):
    """TLS to the broker: the CA to verify it with, and an optional client certificate."""

    model_config = ConfigDict(extra="forbid")

    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None

    @model_validator(mode="after")
    def _loadable(self) -> "TlsConfig":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        # Load them now: a bad file must stop the start-up with its name, not fail at the first connect.
        context = ssl.create_default_context()
        try:
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(self.ca_file))
            if self.cert_file is not None and self.key_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError(f"cannot load the TLS files: {exc}") from None
        return self


TopicPrefix = Annotated[str, _wire_rule(validate_prefix)]
SiteId = Annotated[str, _wire_rule(partial(validate_id, "site"))]
AgentId = Annotated[str, _wire_rule(partial(validate_id, "agent"))]
DeviceId = Annotated[str, _wire_rule(partial(validate_id, "device"))]


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def format_validation_error(source: str, error: ValidationError, tags: Collection[str] = ()) -> str:
    """One line per problem: ``FILE: KEY.PATH: what was wrong (got VALUE)``.

    ``tags`` are the tags of tagged unions (driver names, sink types): pydantic puts them in the path, but
    they are not keys the user wrote, so they are left out: after a list index (``checks[1]``) or after the
    name of an entry of a mapping (``sinks.oncall``).
    """
    lines = []
    for item in error.errors():
        loc = list(item["loc"])
        # A tagged union (the ``driver`` of a check) puts its tag in the path: it is not a key the user wrote.
        loc = [part for index, part in enumerate(loc) if not _is_tag(loc, index, tags)]
        kind = item["type"]
        got = item.get("input")
        message = item["msg"].removeprefix("Value error, ")
        show_input = not isinstance(got, dict | list)
        if kind == "extra_forbidden":
            message, show_input = "unknown key (a typo, or an option that does not exist here)", False
        elif kind == "missing":
            message, show_input = "required key is missing", False
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            ctx = item.get("ctx", {})
            field = ctx.get("discriminator", "").strip("'") or "type"
            loc.append(field)
            if kind == "union_tag_not_found":
                message, show_input = "required key is missing", False
            else:
                message = f"expected one of {ctx.get('expected_tags', '?')}"
                got, show_input = ctx.get("tag"), True
        if any(isinstance(part, str) and _SECRET.search(part) for part in loc):
            show_input = False  # never echo a password into a terminal or a journal
        shown = f" (got {got!r})" if show_input else ""
        lines.append(f"{source}: {_key_path(tuple(loc))}: {message}{shown}")
    return "\n".join(lines)


def _is_tag(loc: list[Any], index: int, tags: Collection[str]) -> bool:
    part = loc[index]
    if not isinstance(part, str) or part not in tags or index == 0:
        return False
    return isinstance(loc[index - 1], int) or (index >= 2 and isinstance(loc[index - 2], str))


def parse_model(source: str, data: Any, model: type[M], tags: Collection[str] = ()) -> M:
    """Validate already-parsed data against ``model``; ``source`` names it in errors."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, tags)) from None


def load_yaml_model(path: str | Path, model: type[M], tags: Collection[str] = ()) -> M:
    """Read a YAML file and validate it against ``model``, or raise ``ConfigError`` saying what to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of keys, got {type(data).__name__}")
    return parse_model(str(path), data, model, tags)
