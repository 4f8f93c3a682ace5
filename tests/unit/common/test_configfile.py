"""A config file that cannot be used is refused with the file, the key path and what was expected."""

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from common.configfile import ConfigError, load_yaml_model


class Server(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 1883
    password: str | None = None


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "server.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_yaml_model(path, Server)
    return str(caught.value).replace(str(path), "server.yaml")


def test_a_good_file_gives_the_model(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("host: broker\nport: 8883\n")
    assert load_yaml_model(path, Server) == Server(host="broker", port=8883)


def test_an_unknown_key_is_named_as_a_likely_typo(tmp_path: Path) -> None:
    assert error_of(tmp_path, "host: broker\nprot: 8883\n") == (
        "server.yaml: prot: unknown key (a typo, or an option that does not exist here)"
    )


def test_a_wrong_value_is_named_with_what_was_given(tmp_path: Path) -> None:
    assert error_of(tmp_path, "host: broker\nport: many\n").startswith(
        "server.yaml: port: Input should be a valid integer"
    )
    assert "(got 'many')" in error_of(tmp_path, "host: broker\nport: many\n")


def test_a_secret_value_is_never_echoed(tmp_path: Path) -> None:
    error = error_of(tmp_path, "host: broker\npassword: [hunter2]\n")
    assert error.startswith("server.yaml: password: ")
    assert "hunter2" not in error


def test_broken_yaml_names_the_line_and_column(tmp_path: Path) -> None:
    assert error_of(tmp_path, "host: [broker\n").startswith("server.yaml: not valid YAML at line 2 column 1")


def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert error_of(tmp_path, "- host\n") == (
        "server.yaml: (top level): expected a mapping of keys, got list"
    )
