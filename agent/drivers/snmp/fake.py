"""A switch in a dict, for tests: the ``Session`` the probe takes, answering from ``objects``.

``objects`` maps dotted OIDs to plain values (int, bytes, str); ``failure`` makes every request fail with
that reason, as a switch that does not answer does. ``requests`` counts GETs and walks.
"""

from collections.abc import Sequence

from agent.drivers.snmp.session import Index, SnmpReadError, Value


class FakeSession:
    def __init__(self, objects: dict[str, Value] | None = None, *, address: str | None = "192.0.2.2") -> None:
        self.objects: dict[str, Value] = dict(objects or {})
        self.failure: str | None = None
        self.requests = 0
        self._address = address

    async def address(self) -> str | None:
        return self._address

    async def get(self, oids: Sequence[str]) -> list[Value]:
        self.requests += 1
        if self.failure is not None:
            raise SnmpReadError(self.failure)
        return [self.objects.get(oid) for oid in oids]

    async def walk(self, column: str) -> list[tuple[Index, Value]]:
        self.requests += 1
        if self.failure is not None:
            raise SnmpReadError(self.failure)
        prefix = column + "."
        rows = [
            (tuple(int(p) for p in oid[len(prefix) :].split(".")), value)
            for oid, value in self.objects.items()
            if oid.startswith(prefix) and value is not None
        ]
        return sorted(rows)
