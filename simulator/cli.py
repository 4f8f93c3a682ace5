"""``hezo-sim``: run a simulated room, and power or break its devices from another shell."""

import argparse
import contextlib
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from simulator.errors import SimulatorError
from simulator.site import SimulatedSite
from simulator.snmpswitch import snmpd_path

CLIENT_TIMEOUT = 30.0


class ClientError(SimulatorError):
    """The control endpoint could not be reached or refused the request."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hezo-sim`` and ``python -m simulator``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "fleet":
            return _fleet(args)
        return _client(args)
    except SimulatorError as exc:
        print(f"hezo-sim: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hezo-sim", description="A simulated meeting room for hezo.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the simulated room until SIGINT or SIGTERM")
    run.add_argument(
        "--state-dir", type=Path, required=True, help="where site.json, the sysfs tree and the certificate go"
    )
    run.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    run.add_argument(
        "--https-port", type=int, default=0, help="Rally Bar admin page port (default: a free one)"
    )
    run.add_argument(
        "--control-port", type=int, default=0, help="control endpoint port (default: a free one)"
    )
    run.add_argument(
        "--sync-port", type=int, default=0, help="fake Sync Cloud API port (default: a free one)"
    )
    run.add_argument(
        "--cert-days",
        type=float,
        default=365,
        help="days the Rally Bar's certificate is valid for (default 365; 3 shows an expiring one)",
    )
    run.add_argument(
        "--no-switch", action="store_true", help="leave out the PoE switch (snmpd) the Rally Bar hangs on"
    )

    power = commands.add_parser("power", help="power a device on or off")
    power.add_argument("device", help="device id, e.g. rally-bar or meetup")
    power.add_argument("state", choices=("on", "off"))
    _add_target(power)

    fault = commands.add_parser(
        "fault",
        help="inject a fault (slow, cert-expiring, cert-expired, audio-lost, reenumerate, offline, "
        "mic-pod-lost, health-warning, firmware-changed, unstable, port-off, poe-fault, reboot, firmware) "
        "or restore",
    )
    fault.add_argument("device", help="device id, e.g. rally-bar, meetup, rally, sync-api or poe-switch")
    fault.add_argument("name", help="fault name, or restore")
    fault.add_argument(
        "--seconds",
        type=float,
        help="delay for slow (default 5) and unstable (default 2, poe-switch 3); "
        "time away for reenumerate (default 1)",
    )
    _add_target(fault)

    fleet = commands.add_parser(
        "fleet",
        help="many agents speaking the real protocol to one broker (docs/simulator.md); JSON lines out",
    )
    fleet.add_argument("--host", default="127.0.0.1", help="the broker (default 127.0.0.1)")
    fleet.add_argument("--port", type=int, default=1883, help="the broker's port (default 1883)")
    fleet.add_argument("--agents", type=int, required=True, help="how many agents, each its own connection")
    fleet.add_argument("--devices", type=int, default=10, help="devices per agent (default 10)")
    fleet.add_argument(
        "--sites", type=int, default=0, help="sites the agents spread over (default agents/10)"
    )
    fleet.add_argument(
        "--telemetry-interval", type=float, default=30.0, help="s between a device's telemetry (default 30)"
    )
    fleet.add_argument(
        "--flapping", type=float, default=0.01, help="share of devices that flap (default 0.01)"
    )
    fleet.add_argument("--dying", type=float, default=0.01, help="share of devices that die (default 0.01)")
    fleet.add_argument(
        "--die-after", type=float, help="s after start when they die (default: never; SIGUSR1: now)"
    )
    fleet.add_argument("--duration", type=float, help="s to run (default: until SIGINT or SIGTERM)")
    fleet.add_argument("--contract", default="FLEET-0001", help="the contract every device names")
    fleet.add_argument("--processes", type=int, default=1, help="processes the agents are split over (1-64)")
    fleet.add_argument("--seed", type=int, default=1, help="which devices flap and die (default 1)")

    status = commands.add_parser("status", help="show the devices, their power and faults")
    status.add_argument("--json", action="store_true", help="print the JSON the control endpoint answers")
    _add_target(status)
    return parser


def _add_target(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--control", metavar="URL", help="control endpoint, e.g. http://127.0.0.1:8765")
    target.add_argument(
        "--state-dir", type=Path, help="state dir of a running hezo-sim run (reads site.json)"
    )


def _run(args: argparse.Namespace) -> int:
    site = SimulatedSite(
        args.state_dir,
        args.host,
        args.https_port,
        args.control_port,
        sync_port=args.sync_port,
        cert_days=args.cert_days,
        switch=not args.no_switch,
    )
    if not args.no_switch and "poe-switch" not in {d["id"] for d in site.devices()}:
        reason = "snmpd is not installed" if snmpd_path() is None else "it needs an IPv4 loopback --host"
        print(f"hezo-sim: PoE switch left out: {reason}", file=sys.stderr, flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        site.start()
        print(f"control: {site.control_url}", flush=True)
        print(f"site: {site.site_file}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        site.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _fleet(args: argparse.Namespace) -> int:
    from simulator.fleet import FleetPlan, run

    plan = FleetPlan(
        agents=args.agents,
        devices=args.devices,
        sites=args.sites,
        telemetry_interval=args.telemetry_interval,
        flapping=args.flapping,
        dying=args.dying,
        die_after=args.die_after,
        duration=args.duration,
        contract=args.contract,
        seed=args.seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        run(plan, args.host, args.port, processes=args.processes)
    return 0


def _client(args: argparse.Namespace) -> int:
    base = _control_url(args)
    if args.command == "power":
        device = _request(base, f"/devices/{args.device}/power", {"on": args.state == "on"})
        print(f"{device['id']}: powered {'on' if device['powered'] else 'off'}")
    elif args.command == "fault":
        body: dict[str, Any] = {"name": args.name}
        if args.seconds is not None:
            body["seconds"] = args.seconds
        device = _request(base, f"/devices/{args.device}/fault", body)
        print(f"{device['id']}: faults {', '.join(device['faults']) or 'none'}")
    else:
        devices = _request(base, "/devices", None)
        if args.json:
            print(json.dumps(devices, indent=2))
            return 0
        for device in devices:
            power = "on" if device["powered"] else "off"
            faults = ", ".join(device["faults"]) or "none"
            ident = f"{device['id']:<10} {device['model']:<10} {device['serial']:<14}"
            print(f"{ident} power {power:<4}faults {faults}")
    return 0


def _control_url(args: argparse.Namespace) -> str:
    if args.control:
        return str(args.control).rstrip("/")
    site_file = args.state_dir / "site.json"
    try:
        site = json.loads(site_file.read_text())
        return str(site["control_url"]).rstrip("/")
    except FileNotFoundError:
        raise ClientError(
            f"no {site_file}: is `hezo-sim run --state-dir {args.state_dir}` running?"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(f"cannot read control_url from {site_file}: {exc}") from None


def _request(base: str, path: str, body: dict[str, Any] | None) -> Any:
    url = base + path
    if not url.startswith(("http://", "https://")):
        raise ClientError(f"control URL {base!r} must start with http://")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=data, method="GET" if body is None else "POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ClientError(_error_text(exc)) from None
    except urllib.error.URLError as exc:
        raise ClientError(f"the simulator is not running at {base}: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise ClientError(f"no usable answer from the simulator at {base}: {exc}") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"the simulator answered HTTP {exc.code} {exc.reason}"
