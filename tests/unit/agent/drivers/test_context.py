"""The store of what every probe shares: made once, on first use, by the first asker; closed at the end."""

import logging

import pytest

from agent.drivers.context import ResourceKey, SharedResources


class Resource:
    def __init__(self, name: str, closed: list[str], fail: bool = False) -> None:
        self.name = name
        self.closed = closed
        self.fail = fail

    def close(self) -> None:
        self.closed.append(self.name)
        if self.fail:
            raise OSError("socket already gone")


A = ResourceKey[Resource]("test.a")
B = ResourceKey[Resource]("test.b")


def test_a_resource_is_made_once_and_shared_by_every_asker() -> None:
    shared = SharedResources()
    made: list[Resource] = []

    def factory() -> Resource:
        made.append(Resource("a", []))
        return made[-1]

    first = shared.get(A, factory)
    second = shared.get(A, factory)
    assert first is second
    assert len(made) == 1


def test_close_closes_every_resource_the_last_made_first() -> None:
    shared = SharedResources()
    closed: list[str] = []
    shared.get(A, lambda: Resource("a", closed))
    shared.get(B, lambda: Resource("b", closed))
    shared.close()
    assert closed == ["b", "a"]


def test_a_resource_that_fails_to_close_does_not_keep_the_others_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared = SharedResources()
    closed: list[str] = []
    shared.get(A, lambda: Resource("a", closed))
    shared.get(B, lambda: Resource("b", closed, fail=True))
    with caplog.at_level(logging.ERROR, logger="agent.drivers.context"):
        shared.close()
    assert closed == ["b", "a"]
    assert [r.getMessage() for r in caplog.records] == ["closing the shared test.b failed"]
