"""``hezo-collector users ...`` as an administrator runs it, on a real store file; the tokens it prints open
the API, and its changes are audited as ``local:<OS user>``."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.api.app import create_app
from collector.store.database import make_engine
from tests.support.collector import AppClient
from tests.support.mosquitto import ROOT

pytestmark = pytest.mark.integration

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'collector.db'}"


@pytest.fixture
def cli(tmp_path: Path, store: str) -> Run:
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: {store}\n")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collector", "--config", str(config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
            check=False,
        )

    return run


def test_an_admin_adds_people_gives_a_token_and_takes_it_back(cli: Run, store: str) -> None:
    added = cli("users", "add", "ann", "--role", "engineer", "--password-stdin", stdin="a long password\n")
    assert added.returncode == 0, added.stderr
    customer = ("users", "add", "acme-ro", "--role", "viewer", "--customer", "Acme", "--no-password")
    assert cli(*customer).returncode == 0
    made = cli("users", "token", "ann", "--label", "script", "--days", "30")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("hezo_")
    assert token not in made.stderr

    listed = json.loads(cli("users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["customer"], u["tokens"]) for u in listed] == [
        ("acme-ro", "viewer", "Acme", 0),
        ("ann", "engineer", None, 1),
    ]
    assert "password_hash" not in listed[0]
    engine = make_engine(store)
    try:
        client = AppClient(create_app(engine), token=token)
        assert client.get("/api/me").json()["name"] == "ann"
        [row] = json.loads(cli("users", "tokens", "ann", "--json").stdout)
        assert cli("users", "revoke", row["id"]).returncode == 0
        assert client.get("/api/me").status_code == 401
    finally:
        engine.dispose()
    audit = json.loads(cli("audit", "list", "--json").stdout)
    me = f"local:{getpass.getuser()}"
    assert {(line["event"], line["actor"]) for line in audit} >= {
        ("user-add", me),
        ("token-add", me),
        ("token-revoke", me),
    }


@pytest.mark.parametrize(
    ("args", "stdin", "reason"),
    [
        (
            ("users", "add", "collector", "--role", "admin", "--no-password"),
            None,
            "what the collector calls itself",
        ),
        (("users", "add", "Ann:x", "--role", "admin", "--no-password"), None, "user name 'Ann:x'"),
        (("users", "add", "bob", "--role", "admin", "--customer", "Acme", "--no-password"), None, "viewer"),
        (("users", "add", "bob", "--role", "admin", "--password-stdin"), "short\n", "at least 10"),
        (("users", "passwd", "nobody", "--password-stdin"), "a long password\n", "no user 'nobody'"),
    ],
)
def test_what_cannot_be_done_is_refused_with_the_reason(
    cli: Run, args: tuple[str, ...], stdin: str | None, reason: str
) -> None:
    result = cli(*args, stdin=stdin)
    assert result.returncode == 3, result.stderr
    assert reason in result.stderr


def test_a_password_is_never_read_from_a_pipe_without_asking(cli: Run) -> None:
    result = cli("users", "add", "ann", "--role", "viewer", stdin="")
    assert result.returncode == 1
    assert "--password-stdin" in result.stderr


def test_disabling_and_removing_a_user(cli: Run, store: str) -> None:
    assert cli("users", "add", "ann", "--role", "viewer", "--no-password").returncode == 0
    token = cli("users", "token", "ann").stdout.strip()
    engine = make_engine(store)
    try:
        client = AppClient(create_app(engine), token=token)
        assert cli("users", "disable", "ann").returncode == 0
        assert client.get("/api/me").status_code == 401
        assert cli("users", "enable", "ann").returncode == 0
        assert client.get("/api/me").status_code == 200
        assert cli("users", "remove", "ann").returncode == 0
        assert client.get("/api/me").status_code == 401
    finally:
        engine.dispose()
