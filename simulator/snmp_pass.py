"""net-snmp ``pass_persist`` helper: serves a simulated PoE switch's rows from a JSON state file.

snmpd runs it as ``python snmp_pass.py STATE_FILE`` and talks to it on stdin/stdout (``PING``/``PONG``,
``get``/``getnext`` + OID -> OID, type, value, or ``NONE``). It re-reads the state file whenever it changes,
so the simulator flips a port by rewriting the file. Standalone on purpose: no project imports.

State file (written by ``simulator.snmpswitch``)::

    {"boot_time": 1700000000.0, "descr": "...", "name": "...", "unstable_s": 0,
     "ports": [{"if_index": 5, "name": "gi1/0/5", "admin": 1, "oper": 1, "poe_group": 1,
                "poe_port": 5, "poe": 3, "power_mw": 12950}]}

``boot_time`` is when the switch last started: ``sysUpTime`` counts from it, so a reboot is a new
``boot_time``. ``unstable_s`` > 0 delays every other request by that many seconds (an overloaded switch).
"""

import json
import os
import sys
import time
from typing import Any

SYSTEM = "1.3.6.1.2.1.1"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
PETH_PORT_ENTRY = "1.3.6.1.2.1.105.1.1.1"
CISCO_PSE_PORT_ENTRY = "1.3.6.1.4.1.9.9.402.1.2.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"

Oid = tuple[int, ...]
Row = tuple[str, str]  # (type, value), or ("uptime", "") computed at answer time


def parse(oid: str) -> Oid:
    return tuple(int(part) for part in oid.strip().strip(".").split(".") if part)


def rows(state: dict[str, Any]) -> dict[Oid, Row]:
    """Every OID the switch serves, from the state document."""
    table: dict[Oid, Row] = {
        parse(f"{SYSTEM}.1.0"): ("string", state.get("descr", "")),
        parse(f"{SYSTEM}.2.0"): ("objectid", ".1.3.6.1.4.1.9.1.1208"),
        parse(SYS_UPTIME): ("uptime", ""),
        parse(f"{SYSTEM}.5.0"): ("string", state.get("name", "")),
    }
    for port in state.get("ports", []):
        index = port["if_index"]
        table[parse(f"{IF_ENTRY}.1.{index}")] = ("integer", str(index))
        table[parse(f"{IF_ENTRY}.2.{index}")] = ("string", port["name"])
        table[parse(f"{IF_ENTRY}.3.{index}")] = ("integer", "6")  # ethernetCsmacd
        table[parse(f"{IF_ENTRY}.7.{index}")] = ("integer", str(port["admin"]))
        table[parse(f"{IF_ENTRY}.8.{index}")] = ("integer", str(port["oper"]))
        table[parse(f"{IFX_ENTRY}.1.{index}")] = ("string", port["name"])
        poe_index = f"{port['poe_group']}.{port['poe_port']}"
        table[parse(f"{PETH_PORT_ENTRY}.3.{poe_index}")] = ("integer", "1" if port["poe"] != 1 else "2")
        table[parse(f"{PETH_PORT_ENTRY}.6.{poe_index}")] = ("integer", str(port["poe"]))
        table[parse(f"{CISCO_PSE_PORT_ENTRY}.9.{poe_index}")] = ("gauge", str(port["power_mw"]))
    return table


class Served:
    """The rows of the current state file, reloaded when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp: tuple[int, int, int] | None = None
        self.state: dict[str, Any] = {}
        self.table: dict[Oid, Row] = {}
        self.order: list[Oid] = []
        self.requests = 0

    def refresh(self) -> None:
        try:
            info = os.stat(self.path)
        except OSError:
            return
        stamp = (info.st_mtime_ns, info.st_ino, info.st_size)  # the simulator replaces the file: new inode
        if stamp == self.stamp:
            return
        try:
            with open(self.path, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            return  # keep serving the last good state
        self.stamp, self.state = stamp, state
        self.table = rows(state)
        self.order = sorted(self.table)

    def value(self, oid: Oid) -> Row:
        kind, value = self.table[oid]
        if kind == "uptime":
            ticks = int((time.time() - float(self.state.get("boot_time", time.time()))) * 100)
            return "timeticks", str(max(ticks, 0) % 2**32)
        return kind, value

    def next_of(self, oid: Oid) -> Oid | None:
        for candidate in self.order:
            if candidate > oid:
                return candidate
        return None


def answer(served: Served, command: str, oid_text: str) -> str:
    served.refresh()
    served.requests += 1
    delay = float(served.state.get("unstable_s", 0))
    if delay > 0 and served.requests % 2 == 0 and parse(oid_text) == parse(SYS_UPTIME):
        time.sleep(delay)
    oid = parse(oid_text)
    found: Oid | None = oid if command == "get" and oid in served.table else None
    if command == "getnext":
        found = served.next_of(oid)
    if found is None:
        return "NONE\n"
    kind, value = served.value(found)
    return f".{'.'.join(map(str, found))}\n{kind}\n{value}\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: snmp_pass.py STATE_FILE\n")
        return 2
    served = Served(argv[1])
    stdin, stdout = sys.stdin, sys.stdout
    while True:
        line = stdin.readline()
        if not line:
            return 0
        command = line.strip()
        if command == "PING":
            stdout.write("PONG\n")
        elif command in ("get", "getnext"):
            stdout.write(answer(served, command, stdin.readline()))
        elif command == "set":
            stdin.readline()
            stdin.readline()
            stdout.write("not-writable\n")
        else:
            stdout.write("NONE\n")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
