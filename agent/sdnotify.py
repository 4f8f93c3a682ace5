"""The systemd notify protocol for the agent (``common/sdnotify.py``): ready, stopping, and its watchdog fed.

The watchdog is fed from the asyncio loop: a loop that hangs stops feeding it, and systemd restarts the agent.
"""

import asyncio

from common.sdnotify import notify, watchdog_interval

__all__ = ["feed_watchdog", "notify", "watchdog_interval"]


async def feed_watchdog(stop: asyncio.Event, environ: dict[str, str] | None = None) -> None:
    """Ping the watchdog until ``stop`` is set; returns at once when there is no watchdog."""
    interval = watchdog_interval(environ)
    if interval is None:
        return
    while not stop.is_set():
        notify("WATCHDOG=1", environ)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
