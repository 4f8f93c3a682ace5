"""``hezo-agent``: run the agent, check its configuration, or enrol it with the collector.

hezo-agent --config agent.yaml                    run
hezo-agent --config agent.yaml --check-config     validate and exit
hezo-agent enroll --config agent.yaml FILE|-      take an enrolment document (from a file, or standard input)
"""

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

from agent import __version__
from agent.enrolment import EnrolmentError
from agent.errors import AgentConfigError, AgentError
from agent.spool import SpoolError
from common.logs import LOG_FORMATS, configure_logging

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.link import Link
    from agent.metrics import Endpoint, PollFigures

log = logging.getLogger("agent")


def _parse_enroll_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hezo-agent enroll",
        description="Store the broker login, broker CA and command key of an enrolment document "
        "(hezo-collector agents enrol) in the agent's state directory.",
    )
    parser.add_argument("--config", "-c", required=True, help="the agent's YAML config file")
    parser.add_argument("document", metavar="FILE", help="the enrolment document, or - for standard input")
    parser.add_argument(
        "--keep", action="store_true", help="keep FILE (by default it is deleted once stored)"
    )
    args = parser.parse_args(argv)
    args.enroll, args.log_level, args.log_format = True, "INFO", None
    return args


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["enroll"]:
        return _parse_enroll_args(argv[1:])
    parser = argparse.ArgumentParser(
        prog="hezo-agent", description="Poll a room's devices and report over MQTT."
    )
    parser.add_argument("--config", "-c", required=True, help="the agent's YAML config file")
    parser.add_argument(
        "--check-config", action="store_true", help="validate the config, print a summary, exit"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text or json lines (default: the config's log_format, text)",
    )
    parser.add_argument("--version", action="version", version=f"hezo-agent {__version__}")
    args = parser.parse_args(argv)
    args.enroll = False
    return args


async def run(config_path: str, args: argparse.Namespace | None = None) -> None:
    """Run until SIGINT or SIGTERM, then publish a clean goodbye."""
    from agent.config import load_config
    from agent.drivers import SharedResources
    from agent.link import Link
    from agent.metrics import PollFigures
    from agent.poller import Poller, build_devices
    from agent.sdnotify import feed_watchdog, notify

    config = _log_as_configured(load_config(config_path), args)
    shared = SharedResources()
    devices = build_devices(config, shared)
    polls = PollFigures()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def republish() -> int:
        # After a (re)connect the broker may have lost retained states; send what we know.
        sent = 0
        for device in devices:
            if device.state.state != "unknown":
                link.publish_state(device.state.to_wire())
                sent += 1
        return sent

    def after_connect() -> None:
        polls.connections += 1
        republish()

    link = Link(config, loop, on_connected=after_connect)
    commands = None
    if config.commands is not None:
        from agent.commands import CommandHandler

        commands = CommandHandler(config, link.publish_reply, republish, shared=shared)
        link.on_command = commands.handle
    link.start()
    endpoint = serve_metrics(config, link, loop, polls) if config.metrics is not None else None
    summary = f"{len(devices)} device(s), boot {link.sequencer.boot}"
    log.info("agent %s/%s started: %s", config.site, config.agent, summary)
    notify(f"READY=1\nSTATUS=polling {summary}")
    watchdog = asyncio.create_task(feed_watchdog(stop))
    try:
        await Poller(devices, config.poll, link, observe=polls.observe).run(stop)
    finally:
        notify("STOPPING=1")
        if endpoint is not None:
            endpoint.close()
        stop.set()
        await watchdog
        if commands is not None:
            await commands.cancel_running()  # before the link closes its spool under them
        await link.stop()
        shared.close()
        if commands is not None:
            commands.close()
        log.info("agent stopped")


def _log_as_configured(config: "AgentConfig", args: argparse.Namespace | None) -> "AgentConfig":
    """Log in the config's ``log_format``, unless ``--log-format`` chose one; returns ``config``."""
    if args is not None and args.log_format is None and config.log_format != "text":
        configure_logging(args.log_level, config.log_format)
    return config


def serve_metrics(
    config: "AgentConfig", link: "Link", loop: asyncio.AbstractEventLoop, polls: "PollFigures"
) -> "Endpoint":
    """The agent's /metrics on ``config.metrics.listen``; a port that cannot be bound is a config error."""
    from datetime import UTC, datetime

    from agent.metrics import AgentCollector, Endpoint, Snapshot, oldest_age, snapshot_on

    assert config.metrics is not None

    def take() -> Snapshot:
        oldest = link.spool.next_after(None, 1)
        return Snapshot(
            spool_messages=link.spool.count,
            spool_bytes=link.spool.size,
            spool_evicted=link.dropped,
            oldest_unacknowledged_seconds=oldest_age(
                oldest[0].payload if oldest else None, datetime.now(UTC)
            ),
            connections=polls.connections,
            connected=link.client.is_connected(),
            polls=polls,
        )

    collector = AgentCollector(snapshot_on(loop, take), site=config.site, agent=config.agent)
    try:
        return Endpoint(config.metrics.host, config.metrics.port, collector)
    except OSError as exc:
        raise AgentConfigError(
            f"metrics.listen {config.metrics.listen}: cannot listen: {exc.strerror or exc}"
        ) from None
    except ImportError:
        raise AgentConfigError(
            "metrics.listen needs prometheus-client, a dependency of hezo: pip install prometheus-client"
        ) from None


def check_config(config_path: str) -> None:
    """Load the config and build every probe, as the agent would at start-up; print a summary."""
    from agent.config import load_config
    from agent.drivers import SharedResources
    from agent.poller import build_devices

    config = load_config(config_path)
    shared = SharedResources()
    build_devices(config, shared)  # building the probes is part of the check: nothing is left to fail
    shared.close()
    summary = f"site {config.site}, agent {config.agent}, {len(config.devices)} device(s)"
    print(f"{config_path}: OK: {summary}")


def enroll(config_path: str, source: str, *, keep: bool) -> None:
    """Store the enrolment document ``source`` (a file, or ``-``: standard input) for the agent of
    ``config_path``; delete the file afterwards unless ``keep``: it holds the broker password."""
    from datetime import UTC, datetime
    from pathlib import Path

    from agent.config import load_config, read_identity
    from agent.enrolment import store
    from protocol.enrolment import MAX_DOCUMENT_BYTES, decode_enrolment

    site, agent, state_dir = read_identity(config_path)
    try:
        data = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1) if source == "-" else Path(source).read_bytes()
        document = decode_enrolment(data)
    except OSError as exc:
        raise EnrolmentError(f"cannot read {source}: {exc.strerror or exc}") from None
    except ValueError as exc:  # MalformedEnrolmentError: never holds the password
        raise EnrolmentError(f"{source}: {exc}") from None
    if (site, agent) != (document.site, document.agent):
        raise EnrolmentError(
            f"{source} enrols {document.site}/{document.agent}, but {config_path} is agent {site}/{agent}: "
            "nothing stored"
        )
    stored = store(document, state_dir, now=datetime.now(UTC))
    if source != "-" and not keep:
        try:
            Path(source).unlink()
        except OSError as exc:
            log.warning("could not delete %s (%s): delete it, it holds the broker password", source, exc)
    deleted = f"; {source} deleted" if source != "-" and not keep else ""
    print(
        f"agent {stored.site}/{stored.agent} enrolled: broker login {stored.username} at "
        f"{stored.host}:{stored.port}, credential sha256:{stored.fingerprint[:16]}, kept in {stored.folder} "
        f"(the login mode 0600){deleted}"
    )
    load_config(config_path)  # the agent starts with it, or this says what to fix
    print("restart the agent to log in with it (systemctl restart hezo-agent)")


def exit_code(exc: AgentError) -> int:
    """What the operator reads and the status systemd sees, for an error that ends the agent: in one place.

    2 is a configuration or an enrolment to fix; 1 anything else (systemd restarts the agent after it).
    """
    if isinstance(exc, EnrolmentError):
        print(f"hezo-agent: cannot enrol: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, AgentConfigError):
        print(f"hezo-agent: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if isinstance(exc, SpoolError):
        print(f"hezo-agent: {exc} (set spool.path to a writable file)", file=sys.stderr)
        return 1
    print(f"hezo-agent: {exc}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    configure_logging(args.log_level, args.log_format or "text")
    try:
        if args.enroll:
            enroll(args.config, args.document, keep=args.keep)
        elif args.check_config:
            check_config(args.config)
        else:
            asyncio.run(run(args.config, args))
    except AgentError as exc:
        return exit_code(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
