"""Keeping the agent's resident memory to what it uses: the C allocator gives back what Python has freed.

glibc's ``malloc`` keeps memory that was freed in the middle of its heap, and gives each thread that
allocates an arena of its own. The agent frees a lot once it runs: the parsed config and its schemas,
pysnmp's MIB modules (compiled from source for every engine) and the first round of checks. Left alone, a
50-device agent held about 2 MB of free heap and 2 MB in thread arenas that it never used again.

So at start ``limit_arenas`` caps the arenas (the checks' threads are short and few; two arenas serve them),
and ``trim_now_and_then`` hands free heap pages back after the first rounds and then every ``every``
seconds (``malloc_trim``; a few milliseconds). Both are glibc functions; elsewhere (musl) they are skipped.
"""

import asyncio
import ctypes
import logging

log = logging.getLogger(__name__)

#: mallopt's parameter for the number of arenas (glibc's malloc.h).
M_ARENA_MAX = -8
ARENAS = 2
#: Seconds between trims after the first.
TRIM_EVERY = 600.0


def _glibc() -> ctypes.CDLL | None:
    """The process's own C library, when it is glibc (the one with ``malloc_trim`` and ``mallopt``)."""
    libc = ctypes.CDLL(None)  # the symbols already loaded into the process: no library is searched for
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    return libc


def limit_arenas(count: int = ARENAS) -> bool:
    """At most ``count`` malloc arenas from now on (call before threads start); False where not glibc."""
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, count) == 1


def release_free_memory() -> bool:
    """Give the free pages of the C heap back to the system; True if some were."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) == 1


async def trim_now_and_then(stop: asyncio.Event, first: float, every: float = TRIM_EVERY) -> None:
    """Release free memory ``first`` seconds from now, then every ``every`` seconds, until ``stop``."""
    wait = first
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=wait)
        except TimeoutError:
            released = release_free_memory()
            log.debug("free heap memory given back: %s", "yes" if released else "none")
            wait = every
