"""Free C heap goes back to the system, and the trimming task runs until the agent stops."""

import asyncio
from pathlib import Path

import pytest

from agent import memory

PAGE = 4096


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


needs_glibc = pytest.mark.skipif(memory._glibc() is None, reason="malloc_trim is glibc's")


@needs_glibc
def test_freed_memory_held_in_the_heap_is_given_back() -> None:
    # 30 MB of 2 KiB objects (past Python's small-object allocator: malloc's heap), then one kept after
    # them, so the heap's top cannot shrink by itself when the rest is freed.
    blocks = [bytes(2048) for _ in range(15_000)]
    pin = bytes(2048)
    del blocks
    held = resident_bytes()
    assert memory.release_free_memory()
    assert resident_bytes() < held - 10 * 1024 * 1024
    assert len(pin) == 2048


@needs_glibc
def test_the_arenas_can_be_limited() -> None:
    assert memory.limit_arenas(8)  # glibc's own default cap on this machine's cores, so nothing changes


def test_trimming_runs_on_its_schedule_and_ends_with_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []

    def counted() -> bool:
        trims.append(1)
        return True

    monkeypatch.setattr(memory, "release_free_memory", counted)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(memory.trim_now_and_then(stop, first=0.0, every=0.0))
        while len(trims) < 3:
            await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(scenario())
    assert len(trims) >= 3


def test_a_stopped_agent_does_not_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []

    def counted() -> bool:
        trims.append(1)
        return True

    monkeypatch.setattr(memory, "release_free_memory", counted)

    async def scenario() -> None:
        stop = asyncio.Event()
        stop.set()
        await asyncio.wait_for(memory.trim_now_and_then(stop, first=3600.0), timeout=10)

    asyncio.run(scenario())
    assert trims == []
