"""What a command runs with: the configuration, and the store, opened and brought up to date on first use.

A command that fails for a reason of its own raises ``CommandFailed`` (exit status 1); a store that cannot be
opened is ``StoreUnavailable`` (1); the domain's refusals are ``CollectorError`` (3). ``main`` turns each into
its exit status, in one place.
"""

from __future__ import annotations

import getpass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from collector.config import CollectorConfig
from collector.sla.terms import SlaContext
from common.configfile import ConfigError

#: The environment variable naming the configuration file when ``--config`` is not given.
CONFIG_ENV = "HEZO_COLLECTOR_CONFIG"

#: What opening a store can raise: the database refuses or is unreachable, a file cannot be created,
#: the driver (psycopg) is not installed.
STORE_ERRORS = (SQLAlchemyError, OSError, ImportError)


class CommandFailed(Exception):  # noqa: N818 (a failed command, in the words of its message)
    """The command ran and did not do what was asked; the message says why."""


class StoreUnavailable(CommandFailed):
    """The store cannot be opened."""


def shown_url(url: str) -> str:
    """The store URL as it may be printed or logged: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def reason(exc: BaseException) -> str:
    """The driver's own words when there are some (``unable to open database file``), on one line."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return " ".join(str(cause).split()) or type(cause).__name__


class Context:
    """One command's configuration and store; ``close()`` releases the store."""

    def __init__(
        self, config: CollectorConfig, source: str | None = None, command: str = "this command"
    ) -> None:
        """``source``: the file ``config`` was read from; None when built-in defaults stand in for one."""
        self.config = config
        self.source = source
        self.command = command
        self._engine: Engine | None = None

    def require_source(self) -> str:
        """The configuration file; ``ConfigError`` (exit 2) when there is none. A command that uses the
        store never falls back to the default ``store.url``: that would make ``./hezo-collector.db`` wherever
        it was run, and show an empty store as if it were the real one."""
        if self.source is None:
            raise ConfigError(
                f"{self.command} needs the collector's configuration: give --config FILE or set {CONFIG_ENV} "
                "(a sample is config/collector.example.yaml; store.url names the database)"
            )
        return self.source

    @cached_property
    def actor(self) -> str:
        """Who the local command line acts as, in the audit and the ticket timeline: ``local:<OS user>``.
        It has the store itself, so no login of the collector's vouches for it; the OS account does."""
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = "unknown"
        return f"local:{name}"[:64]

    @cached_property
    def sla(self) -> SlaContext:
        """The terms and site calendars of the configuration."""
        return SlaContext.from_config(self.config)

    def engine(self) -> Engine:
        """The store, migrated to the latest schema; ``StoreUnavailable`` when it cannot be opened."""
        if self._engine is None:
            from collector.store.database import make_engine, migrate

            self.require_source()
            try:
                engine = make_engine(self.config.store.url)
                migrate(engine)
            except STORE_ERRORS as exc:
                shown = shown_url(self.config.store.url)
                raise StoreUnavailable(f"cannot open the store {shown}: {reason(exc)}") from None
            self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
