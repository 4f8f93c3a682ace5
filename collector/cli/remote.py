"""``hezo-collector logs pull`` and ``hezo-collector diag ...``: remote diagnostics (docs/diagnostics.md).

    hezo-collector logs pull DEVICE [--since 2h] [--output DIR]
    hezo-collector diag run DEVICE [--repeat N] [--json]
    hezo-collector diag config SITE/AGENT          (the agent's effective configuration, secrets masked)
    hezo-collector diag republish SITE/AGENT       (the agent publishes its devices' states again)

Each asks the running collector's API (``--url``, else ``client.url``, else ``web.host:port``), which holds
the signing key and the broker connection, as the user of an API token: ``--token``, else the environment's
``HEZO_TOKEN``, else the file ``client.token_file`` (``hezo-collector users token NAME`` makes one; the
engineer role is needed). Progress is shown as it goes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from collector.cli.context import CommandFailed, Context

COMMANDS = ("logs", "diag")
TOKEN_VARIABLE = "HEZO_TOKEN"  # noqa: S105 (the name of the variable, not a token)

WAIT_SECONDS = 600.0
FINAL = ("done", "failed", "refused", "expired")


def _remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the collector's web address (default: client.url, else web.host/port)")
    parser.add_argument(
        "--token", help=f"an API token (default: ${TOKEN_VARIABLE}, else the file client.token_file)"
    )


def add_parsers(commands: Any) -> None:
    logs = commands.add_parser("logs", help="pull a log bundle from a device's agent")
    logs_actions = logs.add_subparsers(dest="action", required=True, metavar="ACTION")
    pull = logs_actions.add_parser("pull", help="request a bundle, wait for it and download it")
    pull.add_argument("device", help="DEVICE or SITE/AGENT/DEVICE")
    pull.add_argument("--since", default="2h", help="30m, 2h, 1d or an RFC 3339 timestamp (default 2h)")
    pull.add_argument("--output", type=Path, default=Path(), help="folder for the bundle (default: here)")
    _remote_options(pull)
    diag = commands.add_parser("diag", help="run service tests on a device through its agent")
    diag_actions = diag.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = diag_actions.add_parser("run", help="run the service tests now and print what they found")
    run.add_argument("device", help="DEVICE or SITE/AGENT/DEVICE")
    run.add_argument("--repeat", type=int, default=5, help="runs per check (default 5)")
    run.add_argument("--json", action="store_true")
    _remote_options(run)
    config = diag_actions.add_parser("config", help="the agent's effective configuration, secrets masked")
    config.add_argument("agent", help="SITE/AGENT")
    _remote_options(config)
    republish = diag_actions.add_parser(
        "republish", help="ask the agent to publish its devices' states again"
    )
    republish.add_argument("agent", help="SITE/AGENT")
    _remote_options(republish)


class _Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (http(s) URL of our own collector)
            self.base + path,
            data=data,
            method=method,
            headers={**self.headers, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (our own URL)
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc).get("detail")
            except ValueError:
                detail = exc.reason
            raise CommandFailed(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise CommandFailed(f"cannot reach the collector at {self.base}: {exc.reason}") from None

    def download(self, path: str, out: Path) -> None:
        request = urllib.request.Request(self.base + path, headers=self.headers)  # noqa: S310 (our own URL)
        with urllib.request.urlopen(request, timeout=60) as answer, out.open("wb") as handle:  # noqa: S310
            while chunk := answer.read(1024 * 1024):
                handle.write(chunk)


def _follow(api: _Api, command_id: str, what: str) -> dict[str, Any]:
    """Poll the command until it ends, with a rich progress bar on a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + WAIT_SECONDS
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        transient=False,
        console=None,
    ) as bar:
        task = bar.add_task(what, total=1.0, status="sent")
        while True:
            command: dict[str, Any] = api.call("GET", f"/api/commands/{command_id}")
            status = command["status"] + (f": {command['message']}" if command.get("message") else "")
            bar.update(task, completed=command.get("progress") or 0.0, status=status[:60])
            if command["status"] in FINAL:
                return command
            if time.monotonic() > deadline:
                raise CommandFailed(f"command {command_id} did not end within {WAIT_SECONDS:g} s")
            time.sleep(0.5)


def _token(args: argparse.Namespace, context: Context) -> str:
    """The API token: ``--token``, else ``$HEZO_TOKEN``, else the first line of ``client.token_file``."""
    token = args.token or os.environ.get(TOKEN_VARIABLE)
    if not token and context.config.client.token_file is not None:
        path = context.config.client.token_file
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise CommandFailed(f"client.token_file: cannot read {path}: {exc.strerror}") from None
    if not token:
        raise CommandFailed(
            f"this asks the collector's API: give an API token with --token, ${TOKEN_VARIABLE} or "
            "client.token_file (hezo-collector users token NAME makes one)"
        )
    return token


def _agent_command(api: _Api, args: argparse.Namespace) -> int:
    action = "report-config" if args.action == "config" else "republish-state"
    sent = api.call("POST", "/api/commands", {"action": action, "agent": args.agent})
    command = _follow(api, sent["command"], f"{action} {args.agent}")
    if command["status"] != "done":
        raise CommandFailed(f"{command['status']}: {command.get('message') or ''}")
    print(json.dumps(command.get("result"), indent=2))
    return 0


def run(args: argparse.Namespace, context: Context) -> int:
    config = context.config
    base = args.url or config.client.url or f"http://{config.web.host}:{config.web.port}"
    api = _Api(base, _token(args, context))
    if args.command == "diag" and args.action in {"config", "republish"}:
        return _agent_command(api, args)
    if args.command == "logs":
        sent = api.call(
            "POST", "/api/commands", {"action": "collect-logs", "device": args.device, "since": args.since}
        )
        command = _follow(api, sent["command"], f"logs {args.device}")
        if command["status"] != "done" or not command.get("bundle"):
            raise CommandFailed(f"{command['status']}: {command.get('message') or ''}")
        bundle = api.call("GET", f"/api/bundles/{command['bundle']}")
        args.output.mkdir(parents=True, exist_ok=True)
        out = (
            args.output / f"hezo-{bundle['site']}-{bundle['agent']}-{bundle['device']}-{bundle['id']}.tar.gz"
        )
        api.download(bundle["download"], out)
        from diagnostics.bundle import file_sha256

        if file_sha256(out) != bundle["sha256"]:
            raise CommandFailed(f"{out}: sha256 does not match the collector's")
        manifest = bundle["manifest"]
        print(f"{out}: {bundle['size']} bytes, {len(manifest['files'])} files, sha256 {bundle['sha256']}")
        for skipped in manifest.get("skipped", []):
            print(f"  skipped {skipped['source']}: {skipped['reason']}")
        return 0
    sent = api.call(
        "POST",
        "/api/commands",
        {"action": "service-tests", "device": args.device, "repeat": args.repeat},
    )
    command = _follow(api, sent["command"], f"service tests {args.device}")
    result = command.get("result") or {}
    if args.json:
        print(json.dumps(command, indent=2))
    else:
        print(f"{args.device}: {command['status']} {'PASS' if result.get('ok') else 'FAIL'}")
        for check in result.get("checks", []):
            timing = f", avg {check['avg_ms']} ms" if "avg_ms" in check else ""
            print(
                f"  {check['driver']} {check['target']}: {check['runs'] - check['failed']}/{check['runs']} "
                f"answered ({check['loss_pct']}% loss{timing}); {check['last']['detail']}"
            )
            for extra in check.get("extras", []):
                print(f"    {'ok' if extra['ok'] else '!!'} {extra['target']}: {extra['detail']}")
    return 0 if command["status"] == "done" and result.get("ok") else 1
