"""The agent's side of the command channel: verify, refuse or run, and answer on the reply topic.

A command is run only if all of these hold, checked in this order; otherwise it is refused with the reason
(``protocol.commands.REFUSALS``) and nothing is run:

1. it parses and names this site and agent (``malformed``, ``wrong-agent``);
2. its Ed25519 signature verifies with the collector's public key from the config (``bad-signature``);
3. it is valid now: not expired, not issued more than ``max_clock_skew`` ahead of our clock, and not valid
   for longer than ``max_lifetime`` (``expired``, ``not-yet-valid``, ``too-long``);
4. its id was never seen before (``replayed``): ids are kept in ``state_dir/commands.sqlite`` until they
   expire, so a restart does not forget them;
5. its action is on the allow-list and its args fit it (``not-allowed``, ``bad-args``).

Actions never take a shell string: each is a Python function with checked arguments.
"""

import asyncio
import json
import logging
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, CommandsConfig
from agent.diag.deep import device_service_tests
from agent.diag.logs import collect_logs
from agent.drivers.context import SharedResources
from agent.errors import AgentConfigError, AgentError
from diagnostics.upload import upload
from protocol import ProtocolError, parse_ts
from protocol.commands import ACTIONS, Command, canonical, check_args, decode_signed

log = logging.getLogger(__name__)

Publish = Callable[[dict[str, Any]], None]


class Refused(AgentError):  # noqa: N818 (a refusal is an answer, not an error)
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SeenCommands:
    """Command ids seen and not yet expired, in a small SQLite file that survives restarts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at REAL NOT NULL)")
        self._lock = threading.Lock()

    def remember(self, command_id: str, expires: datetime, now: datetime) -> bool:
        """Record ``command_id``; False if it was already there (a replay)."""
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE expires_at < ?", (now.timestamp(),))
            try:
                self._db.execute("INSERT INTO seen VALUES (?, ?)", (command_id, expires.timestamp()))
            except sqlite3.IntegrityError:
                return False
            return True

    def close(self) -> None:
        self._db.close()


def mask_config(config: AgentConfig) -> dict[str, Any]:
    """The effective config as JSON with every secret masked (pydantic prints SecretStr as stars)."""
    doc: dict[str, Any] = config.model_dump(mode="json")
    return doc


class CommandHandler:
    """Call ``handle(payload)`` on the asyncio loop for each message on the agent's cmd topic.

    ``outcomes`` counts the commands handled to their end, by how each ended: ``refused``, ``done``,
    ``failed`` or ``cancelled`` (the agent stopped while it ran).
    """

    def __init__(
        self,
        config: AgentConfig,
        publish: Publish,
        republish: Callable[[], int],
        *,
        shared: SharedResources | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        assert config.commands is not None
        self.config = config
        self.settings: CommandsConfig = config.commands
        self._publish = publish
        self._republish = republish
        self._shared = shared
        self._now = now
        if self.settings.public_key is None:  # load_config fills it from the enrolment, or refuses
            raise AgentConfigError("commands.public_key: required key is missing (or enrol the agent)")
        self._key = _load_public_key(self.settings.public_key)
        try:
            self.seen = SeenCommands(self.settings.state_dir / "commands.sqlite")
        except (OSError, sqlite3.Error) as exc:
            raise AgentConfigError(
                f"commands.state_dir: cannot keep seen command ids in {self.settings.state_dir}: {exc}"
            ) from None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.outcomes: Counter[str] = Counter()

    @property
    def handled(self) -> int:
        """How many commands were handled to their end, whichever way they ended."""
        return sum(self.outcomes.values())

    def reply(self, command_id: str, status: str, **fields: Any) -> None:
        if self._stopping:
            log.info("agent stopping: reply %s of command %s not sent", status, command_id)
            return
        self._publish({"command": command_id, "status": status, **fields})

    def verify(self, payload: bytes) -> Command:
        """The command if it may run, else ``Refused`` with the reason."""
        try:
            command, signature = decode_signed(payload)
        except ProtocolError as exc:
            raise Refused("malformed", str(exc)) from None
        if (command.site, command.agent) != (self.config.site, self.config.agent):
            raise Refused("wrong-agent", f"command is for {command.site}/{command.agent}")
        from cryptography.exceptions import InvalidSignature

        try:
            self._key.verify(signature, canonical(command))
        except InvalidSignature:
            raise Refused("bad-signature", "signature does not verify with the collector's key") from None
        now = self._now()
        if command.expires <= now:
            raise Refused("expired", f"expired at {command.expires_at}")
        if command.issued > now + timedelta(seconds=self.settings.max_clock_skew):
            raise Refused("not-yet-valid", f"issued at {command.issued_at}, ahead of our clock")
        if command.expires - command.issued > timedelta(seconds=self.settings.max_lifetime):
            raise Refused("too-long", f"valid longer than {self.settings.max_lifetime:g} s")
        if not self.seen.remember(command.id, command.expires, now):
            raise Refused("replayed", "this command id was seen already")
        if command.action not in ACTIONS:
            raise Refused("not-allowed", f"action {command.action!r} is not on the allow-list")
        try:
            check_args(command.action, command.args)
        except ProtocolError as exc:
            raise Refused("bad-args", str(exc)) from None
        return command

    def handle(self, payload: bytes) -> None:
        command_id = _peek_id(payload)
        try:
            command = self.verify(payload)
        except Refused as exc:
            log.warning("refused command %s: %s (%s)", command_id, exc.reason, exc)
            self.reply(command_id, "refused", reason=exc.reason, message=str(exc))
            self.outcomes["refused"] += 1
            return
        log.info("command %s: %s %s", command.id, command.action, command.args.get("device") or "")
        self.reply(command.id, "accepted", action=command.action)
        task = asyncio.get_running_loop().create_task(self._run(command))
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():  # a command that ended otherwise was counted as it answered
            self.outcomes["cancelled"] += 1

    async def _run(self, command: Command) -> None:
        try:
            result = await self._action(command)
        except Exception as exc:  # noqa: BLE001 - a failing action is an answer, not a crashed agent
            log.warning("command %s (%s) failed: %s", command.id, command.action, exc)
            self.reply(command.id, "failed", action=command.action, message=f"{type(exc).__name__}: {exc}")
            self.outcomes["failed"] += 1
            return
        self.reply(command.id, "done", action=command.action, progress=1.0, result=result)
        self.outcomes["done"] += 1

    async def _action(self, command: Command) -> dict[str, Any]:
        args = command.args
        if command.action == "republish-state":
            return {"states": self._republish()}
        if command.action == "report-config":
            return {"config": mask_config(self.config)}
        if command.action == "service-tests":
            device = args.get("device") or self.config.devices[0].id
            return await device_service_tests(
                self.config, device, repeat=args.get("repeat", 5), shared=self._shared
            )
        if command.action == "collect-logs":
            return await self._collect_logs(command)
        raise Refused("not-allowed", command.action)  # unreachable: verify() checked the allow-list

    async def _collect_logs(self, command: Command) -> dict[str, Any]:
        args = command.args
        loop = asyncio.get_running_loop()
        outgoing = self.settings.state_dir / "outgoing"
        outgoing.mkdir(parents=True, exist_ok=True)
        path = outgoing / f"{command.id}.tar.gz"
        since = parse_ts(args["since"]) if args.get("since") else None
        until = parse_ts(args["until"]) if args.get("until") else None
        self.reply(command.id, "progress", progress=0.0, message="building the bundle")
        manifest = await asyncio.to_thread(
            collect_logs,
            self.config,
            self.settings.logs,
            path,
            since=since,
            until=until,
            units=args.get("units"),
            device=args.get("device"),
            origin={"command": command.id, "ticket": args.get("ticket")},
            personal_data=args.get("personal_data"),
        )
        last = [-1.0]

        def progress(done: int, total: int) -> None:
            share = done / total if total else 1.0
            if share - last[0] >= 0.1 or done == total:
                last[0] = share
                fields = {"progress": round(share, 3), "message": "uploading"}
                loop.call_soon_threadsafe(lambda: self.reply(command.id, "progress", **fields))

        upload_settings = self.settings.upload
        try:
            answer = await asyncio.to_thread(
                upload,
                path,
                args["upload_url"],
                args["upload_token"],
                ca_file=upload_settings.ca_file,
                timeout=upload_settings.timeout,
                retries=upload_settings.retries,
                chunk_bytes=upload_settings.chunk_bytes,
                progress=progress,
            )
        finally:
            path.unlink(missing_ok=True)
        return {
            "bundle": answer.get("bundle"),
            "sha256": answer.get("sha256"),
            "size": answer.get("size"),
            "files": len(manifest["files"]),
            "skipped": manifest["skipped"],
            "resumed": answer.get("resumed", 0),
        }

    async def cancel_running(self) -> None:
        """Stop the commands still running (the agent is stopping), before the link and its spool close.

        A command's work in a worker thread (an upload) cannot be interrupted; its later progress is dropped.
        """
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self.seen.close()


def _peek_id(payload: bytes) -> str:
    """The command id for a refusal, if one can be read; ``-`` otherwise."""
    try:
        value = json.loads(payload)["command"]["id"]
    except (ValueError, KeyError, TypeError):
        return "-"
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        return value
    return "-"


def _load_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(path.read_bytes())
