"""``hezo-diag``: on-site service tests, no broker needed.

    hezo-diag check --config /etc/hezo/agent.yaml [--device rally-bar] [--json]

Exit status: 0 when every device is up, 1 when one is degraded or down, 2 on a configuration error.
"""

import argparse
import asyncio
import dataclasses
import json
import sys

from agent.configfile import ConfigError


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hezo-diag", description="Service tests for a room's devices.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run every configured check now and print what it found")
    check.add_argument("--config", "-c", required=True, help="the agent's YAML config file")
    check.add_argument("--device", action="append", help="only this device (repeatable)")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from agent.config import load_config
    from diagnostics.servicetests import run_service_tests

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"hezo-diag: configuration error:\n{exc}", file=sys.stderr)
        return 2
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
