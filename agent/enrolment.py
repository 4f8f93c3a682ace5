"""The agent's enrolment, as ``hezo-agent enroll`` took it from an enrolment document, kept in its state
directory: ``STATE_DIR/enrolment/`` (mode 0700) holds

- ``broker.json`` (mode 0600): the broker login (user name, password, client id) and where the broker is;
- ``broker-ca.pem`` (0644): the certificate the broker's is verified with (absent: the system CAs);
- ``collector.pub`` (0644): the collector's Ed25519 key that signs commands (absent: none came with it).

Each file is written whole or not at all (a temporary file, then a rename). Run as root into a state
directory owned by another user (systemd's ``DynamicUser``), the files are given to that owner, so the
service can read them and nobody else can read the password. ``load`` refuses a password file that group or
others may read.
"""

import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agent.errors import AgentError
from protocol import format_ts
from protocol.enrolment import Enrolment

FOLDER = "enrolment"
CREDENTIAL = "broker.json"
CA = "broker-ca.pem"
COMMAND_KEY = "collector.pub"


class EnrolmentError(AgentError):
    """The agent's enrolment cannot be stored or read; the message says what and where, never the password."""


@dataclass(frozen=True)
class Stored:
    """An enrolment as the agent keeps it."""

    folder: Path
    site: str
    agent: str
    host: str
    port: int
    prefix: str
    client_id: str
    username: str
    password: str = field(repr=False)
    fingerprint: str
    ca_file: Path | None
    command_key: Path | None


def folder_of(state_dir: Path) -> Path:
    return state_dir / FOLDER


def store(document: Enrolment, state_dir: Path, *, now: datetime) -> Stored:
    """Keep ``document`` in ``state_dir/enrolment``, replacing an earlier enrolment; what was stored."""
    folder = folder_of(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        owner = _owner_to_give(state_dir)
        if owner is not None:
            os.chown(folder, *owner)
        credential = {
            "site": document.site,
            "agent": document.agent,
            "host": document.host,
            "port": document.port,
            "prefix": document.prefix,
            "client_id": document.client_id,
            "username": document.username,
            "password": document.password,
            "fingerprint": document.fingerprint,
            "issued_at": document.issued_at,
            "issued_by": document.issued_by,
            "enrolled_at": format_ts(now),
        }
        for name, text, mode in (
            (CA, document.ca, 0o644),
            (COMMAND_KEY, document.command_key, 0o644),
            (CREDENTIAL, json.dumps(credential, indent=1) + "\n", 0o600),
        ):
            if text is None:
                (folder / name).unlink(missing_ok=True)
            else:
                _write(folder / name, text.encode(), mode, owner)
    except OSError as exc:
        raise EnrolmentError(f"cannot store the enrolment in {folder}: {exc.strerror or exc}") from None
    stored = load(state_dir)
    assert stored is not None
    return stored


def load(state_dir: Path) -> Stored | None:
    """The enrolment kept in ``state_dir``, or None if the agent was never enrolled there."""
    folder = folder_of(state_dir)
    path = folder / CREDENTIAL
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EnrolmentError(f"cannot read the agent's enrolment {path}: {exc.strerror or exc}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise EnrolmentError(
            f"{path}: mode {stat.S_IMODE(info.st_mode):04o} lets others read the broker login; chmod 600 it"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Stored(
            folder=folder,
            site=str(data["site"]),
            agent=str(data["agent"]),
            host=str(data["host"]),
            port=int(data["port"]),
            prefix=str(data["prefix"]),
            client_id=str(data["client_id"]),
            username=str(data["username"]),
            password=str(data["password"]),
            fingerprint=str(data["fingerprint"]),
            ca_file=folder / CA if (folder / CA).exists() else None,
            command_key=folder / COMMAND_KEY if (folder / COMMAND_KEY).exists() else None,
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise EnrolmentError(
            f"{path}: not an enrolment this agent wrote; enrol again (hezo-agent enroll)"
        ) from None


def _owner_to_give(state_dir: Path) -> tuple[int, int] | None:
    """The state directory's owner, when root writes into another user's state directory; else None."""
    if os.geteuid() != 0:
        return None
    info = state_dir.stat()
    return (info.st_uid, info.st_gid) if info.st_uid != 0 else None


def _write(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    """Write ``path`` whole or not at all, with ``mode`` from its first byte (never wider for a moment)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # whatever the umask
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
