"""Strict YAML configuration files: errors name the file, the key path and what was expected.

Shared by the agent and the collector. pydantic is imported by the caller's model, not here, so this module
costs nothing until a config is loaded.
"""

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration file that cannot be used. The message says where and what to fix."""


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem: ``FILE: KEY.PATH: what was wrong (got VALUE)``."""
    lines = []
    for item in error.errors():
        # Discriminated unions put the tag (e.g. the driver name) in the path; it is not a key the user wrote.
        loc = tuple(part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-")))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (a typo, or an option that does not exist here)"
        elif item["type"] == "missing":
            message = "required key is missing"
        got = item.get("input")
        shown = "" if item["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {_key_path(loc)}: {message}{shown}")
    return "\n".join(lines)


def parse_model(source: str, data: Any, model: type[M]) -> M:
    """Validate already-parsed data against ``model``; ``source`` names it in errors."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_yaml_model(path: str | Path, model: type[M]) -> M:
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
    return parse_model(str(path), data, model)
