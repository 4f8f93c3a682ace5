"""``hezo-collector serve`` (ingest, open tickets, notify and serve the web page until SIGINT/SIGTERM) and
``hezo-collector migrate`` (bring the store's schema up to date)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from collector.cli.context import STORE_ERRORS, Context, StoreUnavailable, reason, shown_url
from collector.cli.watchdog import Watchdog
from collector.config import CollectorConfig

if TYPE_CHECKING:
    from collector.service import CollectorService

log = logging.getLogger("collector")

COMMANDS = ("serve", "migrate")

#: How long ``serve`` waits for the broker subscription before it opens the web page anyway (seconds).
SUBSCRIBE_WAIT = 10.0


def add_parsers(commands: Any) -> None:
    commands.add_parser("serve", help="ingest, open tickets and serve the web page until SIGINT/SIGTERM")
    commands.add_parser("migrate", help="bring the database schema up to date")


def run(args: argparse.Namespace, context: Context) -> int:
    if args.command == "migrate":
        context.engine()
        print(f"hezo-collector: database {shown_url(context.config.store.url)} is up to date")
        return 0
    context.require_source()
    return _serve(context.config)


def _wait_subscribed(service: CollectorService, config: CollectorConfig) -> bool:
    """Wait until messages can arrive, so whoever waits for the page waits for ingest too; without the broker,
    go on after ``SUBSCRIBE_WAIT`` (the health check then says what is wrong). False if SIGINT or SIGTERM came
    meanwhile: the caller stops as it would have with the page up."""
    asked = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: asked.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        deadline = time.monotonic() + SUBSCRIBE_WAIT
        while not service.subscriber.wait_subscribed(0.1):
            if asked.is_set():
                return False
            if time.monotonic() > deadline:
                log.warning(
                    "not subscribed at %s:%s after %.0f s; serving the page meanwhile",
                    config.mqtt.host,
                    config.mqtt.port,
                    SUBSCRIBE_WAIT,
                )
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return not asked.is_set()


def _serve(config: CollectorConfig) -> int:
    import uvicorn  # the web server: only the serve command needs it

    from collector.api.app import create_app
    from collector.api.hosts import exposure_warning
    from collector.service import CollectorService

    warning = exposure_warning(config.web)
    if warning is not None:
        log.warning("%s", warning)

    try:
        service = CollectorService(config)
        service.start()
    except STORE_ERRORS as exc:
        shown = shown_url(config.store.url)
        raise StoreUnavailable(f"cannot open the store {shown}: {reason(exc)}") from None
    try:
        if not _wait_subscribed(service, config):
            log.info("asked to stop before serving the page")
            return 0
        app = create_app(
            service.engine,
            service.metrics.registry,
            fleet_registry=service.metrics.fleet_registry,
            health=service.health,
            sla=service.sla,
            rules=config.incidents,
            diagnostics=service.commander,
            web=config.web,
        )
        server = _web_server(
            uvicorn.Config(
                app,
                host=config.web.host,
                port=config.web.port,
                log_config=None,
                access_log=False,
                server_header=False,
            )
        )
        print(f"hezo-collector: web page at http://{config.web.host}:{config.web.port}/", flush=True)
        watchdog = Watchdog(
            lambda: bool(server.started),
            lambda: working(service),
            status=f"serving on {config.web.host}:{config.web.port}",
        )
        watchdog.start()
        try:
            # SIGINT and SIGTERM make run() return once the web server has shut down.
            server.run()
        finally:
            watchdog.stop()
    finally:
        service.stop()
    log.info("hezo-collector stopped")
    return 0


def working(service: CollectorService) -> str | None:
    """None while the writer runs and keeps up; else what is wrong (what systemd's watchdog is fed on)."""
    from collector.service import STALLED_AFTER

    if not service.writer.alive():
        return "the writer thread is not running: nothing is stored or acknowledged"
    return service.writer.stalled(STALLED_AFTER)


def _web_server(config: Any) -> Any:
    """uvicorn, minus re-raising SIGINT/SIGTERM after its shutdown: the collector still has to stop its
    threads, and a stop on request is a success (exit 0), not death by signal. (uvicorn is imported here:
    only ``serve`` needs it.)"""
    import uvicorn

    class WebServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return WebServer(config)
