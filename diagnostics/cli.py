"""``hezo-diag``: on-site service tests, no broker needed.

    hezo-diag check --config /etc/hezo/agent.yaml [--device rally-bar] [--json]
    hezo-diag logs --config /etc/hezo/agent.yaml [--since 2h] [--until TS] [--device ID] [--unit U]
                   [--folder DIR] [--output bundle.tar.gz]

``check`` exits 0 when every device is up, 1 when one is degraded or down. ``logs`` builds the same redacted
bundle the collector would pull (``commands.logs`` of the config, plus ``--folder``) and exits 0.
Both exit 2 on a configuration error.
"""

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common.configfile import ConfigError

if TYPE_CHECKING:
    from agent.config import AgentConfig


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


def _logs(args: argparse.Namespace, config: "AgentConfig") -> int:
    from datetime import UTC, datetime

    from agent.config import LogsConfig
    from diagnostics.logs import build_log_bundle
    from protocol.commands import parse_since

    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now) if args.since else None
        until = parse_since(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"hezo-diag: {exc}", file=sys.stderr)
        return 2
    base = config.commands.logs if config.commands is not None else LogsConfig()
    logs = base.model_copy(update={"folders": [*base.folders, *args.folder]})
    out = args.output or Path(f"hezo-logs-{config.site}-{config.agent}-{now:%Y%m%dT%H%M%SZ}.tar.gz")
    manifest = build_log_bundle(
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


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from agent.config import load_config
    from diagnostics.servicetests import run_service_tests

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"hezo-diag: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "logs":
        return _logs(args, config)
    known = {d.id for d in config.devices}
    only = set(args.device) if args.device else None
    if only is not None and only - known:
        print(
            f"hezo-diag: unknown device(s): {', '.join(sorted(only - known))}; "
            f"configured: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
