"""``hezo-diag``: on-site service tests, no broker needed.

    hezo-diag check --config /etc/hezo/agent.yaml [--device rally-bar] [--json]
    hezo-diag logs --config /etc/hezo/agent.yaml [--since 2h] [--until TS] [--device ID] [--unit U]
                   [--folder DIR] [--output bundle.tar.gz]

``check`` exits 0 when every device is up, 1 when one is degraded or down. ``logs`` builds the same redacted
bundle the collector would pull (``commands.logs`` of the config, plus ``--folder``) and exits 0.
Both exit 2 on a configuration error or a command line they cannot act on (an unknown device).
"""

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from agent.config import AgentConfig, load_config
from agent.diag.logs import collect_logs
from agent.diag.servicetests import run_service_tests
from agent.errors import AgentConfigError, AgentError
from diagnostics.config import LogsConfig
from diagnostics.errors import DiagnosticsError
from protocol.commands import parse_since


class UsageError(AgentError):
    """A command line hezo-diag cannot act on (an unknown device, a bad time); the message says why."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hezo-diag", description="Service tests for a room's devices.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run every configured check now and print what it found")
    check.add_argument("--config", "-c", required=True, help="the agent's YAML config file")
    check.add_argument("--device", action="append", help="only this device (repeatable)")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    logs = commands.add_parser("logs", help="build a redacted log bundle here, without a broker")
    logs.add_argument("--config", "-c", required=True, help="the agent's YAML config file")
    logs.add_argument("--since", help="30m, 2h, 1d or an RFC 3339 timestamp (journal range)")
    logs.add_argument("--until", help="RFC 3339 timestamp (journal range)")
    logs.add_argument("--device", help="only this device's HTTPS data")
    logs.add_argument(
        "--unit", action="append", help="journal unit (repeatable; default: commands.logs.units)"
    )
    logs.add_argument("--folder", action="append", type=Path, default=[], help="another log folder")
    logs.add_argument(
        "--output", "-o", type=Path, help="bundle file (default: hezo-logs-SITE-AGENT-TIME.tar.gz)"
    )
    return parser.parse_args(argv)


def _logs(args: argparse.Namespace, config: AgentConfig) -> int:
    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now) if args.since else None
        until = parse_since(args.until, now) if args.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    base = config.commands.logs if config.commands is not None else LogsConfig()
    logs = base.model_copy(update={"folders": [*base.folders, *args.folder]})
    out = args.output or Path(f"hezo-logs-{config.site}-{config.agent}-{now:%Y%m%dT%H%M%SZ}.tar.gz")
    manifest = collect_logs(
        config,
        logs,
        out,
        since=since,
        until=until,
        units=args.unit,
        device=args.device,
        origin={"built_by": "hezo-diag logs"},
    )
    print(f"{out}: {out.stat().st_size} bytes, {len(manifest['files'])} files")
    for entry in manifest["files"]:
        notes = [f"{entry['redactions']} redacted"] if entry["redactions"] else []
        if entry["truncated"]:
            notes.append(entry["truncated"])
        print(f"  {entry['path']} ({entry['size']} bytes{', ' + '; '.join(notes) if notes else ''})")
    for skipped in manifest["skipped"]:
        print(f"  skipped {skipped['source']}: {skipped['reason']}")
    return 0


def _check(args: argparse.Namespace, config: AgentConfig) -> int:
    known = {d.id for d in config.devices}
    only = set(args.device) if args.device else None
    if only is not None and only - known:
        raise UsageError(
            f"unknown device(s): {', '.join(sorted(only - known))}; configured: {', '.join(sorted(known))}"
        )
    reports = asyncio.run(run_service_tests(config, only))
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in reports], indent=2))
    else:
        for report in reports:
            print(f"{report.device} ({report.model}, serial {report.serial or '-'}): {report.state.upper()}")
            for check in report.checks:
                mark = "ok " if check["ok"] and not check.get("degraded") else "!! "
                took = f" [{check['duration_ms']:.0f} ms]" if check["duration_ms"] is not None else ""
                print(f"  {mark}{check['driver']} {check['target']}: {check['detail']}{took}")
    return 0 if all(r.state == "up" for r in reports) else 1


def exit_code(exc: AgentError | DiagnosticsError) -> int:
    """What the engineer reads and the exit status, for an error that ends hezo-diag: in one place.

    2 is a configuration or a command line to fix; 1 a bundle that could not be built.
    """
    if isinstance(exc, AgentConfigError):
        print(f"hezo-diag: configuration error:\n{exc}", file=sys.stderr)
        return 2
    print(f"hezo-diag: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, UsageError) else 1


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "logs":
            return _logs(args, config)
        return _check(args, config)
    except (AgentError, DiagnosticsError) as exc:
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
