"""The agent's trap receiver: a real trap from net-snmp's ``snmptrap`` (or the simulated switch) wakes the
check of the port it names, and the device is ``down`` at once rather than at the end of its interval."""

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import PollConfig
from agent.drivers.snmp import SnmpOptions, SnmpProbe, TrapReceiver, TrapsConfig, close_engine
from agent.poller import Device, Poller
from simulator.snmpswitch import (
    DEFAULT_V3_AUTH_KEY,
    DEFAULT_V3_PRIV_KEY,
    DEFAULT_V3_USER,
    SnmpSwitch,
    SwitchPort,
    free_udp_port,
)
from tests.support.reporting import Recorder

pytestmark = pytest.mark.integration

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
#: The shipped re-checks (2, 1 s apart) would take 2 s: a trap-confirmed link down needs none.
SHIPPED = PollConfig()
#: No poll comes by itself within the test: only a trap can explain a check.
QUIET = PollConfig(interval=300, recheck_count=SHIPPED.recheck_count, recheck_delay=SHIPPED.recheck_delay)


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[SnmpSwitch]:
    if shutil.which("snmptrap") is None:
        pytest.fail(
            "snmptrap is not installed (Debian: apt-get install snmp; scripts/system-deps.sh --broker)"
        )
    device = SnmpSwitch(tmp_path, [SwitchPort(5, "gi1/0/5", "tap-ip"), SwitchPort(6, "gi1/0/6")])
    device.start()
    try:
        yield device
    finally:
        device.stop()


def snmptrap(port: int, *security: str, if_index: int = 5) -> list[str]:
    """The snmptrap command of a linkDown for ``if_index`` to the receiver on ``port``."""
    ifx = f"1.3.6.1.2.1.2.2.1.{{}}.{if_index}"
    return [
        "snmptrap",
        *security,
        f"udp:127.0.0.1:{port}",
        "",
        LINK_DOWN,
        ifx.format(1),
        "i",
        str(if_index),
        ifx.format(7),
        "i",
        "1",
        ifx.format(8),
        "i",
        "2",
    ]


def run_trap_case(switch: SnmpSwitch, options: dict[str, Any], command: Any) -> tuple[float, dict[str, Any]]:
    """Poll the port until up; cut it (no poll for 300 s); send the trap ``command(probe)`` makes. How long
    from the trap to the device's ``down`` state, and that state."""
    receiver = TrapReceiver(TrapsConfig(listen="127.0.0.1", port=free_udp_port("127.0.0.1")))
    probe = SnmpProbe(
        SnmpOptions.model_validate({"driver": "snmp", "host": switch.host, "port": switch.port, **options}),
        traps=receiver,
    )
    receiver.accept(probe.options)
    device = Device("tap-ip", [probe])
    recorder = Recorder()
    poller = Poller([device], QUIET, recorder)

    async def scenario() -> tuple[float, dict[str, Any]]:
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            async with asyncio.timeout(30):
                while not (recorder.states and receiver.listening(switch.host)):
                    await asyncio.sleep(0.02)
                assert recorder.states[-1]["state"] == "up"
                switch.ports[5].set_powered(False)
                switch.write_state()
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MIBS": "", "HOME": "/nonexistent"}
                sent = time.monotonic()
                trap = await asyncio.create_subprocess_exec(*command(probe, receiver.config.port), env=env)
                assert await trap.wait() == 0
                while recorder.states[-1]["state"] != "down":
                    await asyncio.sleep(0.01)
                return time.monotonic() - sent, recorder.states[-1]
        finally:
            stop.set()
            await task
            receiver.close()
            close_engine()

    return asyncio.run(scenario())


def test_a_v2c_linkdown_trap_makes_the_device_down_within_a_second(switch: SnmpSwitch) -> None:
    elapsed, state = run_trap_case(
        switch,
        {"community": switch.community, "if_index": 5},
        lambda _probe, port: snmptrap(port, "-v", "2c", "-c", switch.community),
    )
    assert elapsed < 1.0
    assert state["checks"][0]["detail"].startswith(
        "port ifIndex 5 link down, PoE searching (the switch sent linkDown"
    )


def test_a_v3_linkdown_trap_from_the_switchs_engine_is_accepted_with_the_checks_own_user(
    switch: SnmpSwitch,
) -> None:
    v3 = {
        "version": "3",
        "user": DEFAULT_V3_USER,
        "auth_protocol": "sha",
        "auth_key": DEFAULT_V3_AUTH_KEY,
        "priv_protocol": "aes",
        "priv_key": DEFAULT_V3_PRIV_KEY,
        "if_name": "Gi1/0/5",
    }

    def command(probe: SnmpProbe, port: int) -> list[str]:
        engine_id = probe._engine_id  # what the check read from the switch: the switch's snmpEngineID
        assert engine_id is not None
        security = ["-v", "3", "-e", f"0x{engine_id.hex()}", "-u", DEFAULT_V3_USER, "-l", "authPriv"]
        security += ["-a", "SHA", "-A", DEFAULT_V3_AUTH_KEY, "-x", "AES", "-X", DEFAULT_V3_PRIV_KEY]
        return snmptrap(port, *security)

    elapsed, state = run_trap_case(switch, v3, command)
    assert elapsed < 1.0
    assert "link down" in state["checks"][0]["detail"]


def test_the_simulated_switch_announces_a_port_going_down_to_the_receiver(switch: SnmpSwitch) -> None:
    receiver = TrapReceiver(
        TrapsConfig(listen="127.0.0.1", port=free_udp_port("127.0.0.1"), communities=["public"])
    )
    switch.trap_targets = [("127.0.0.1", receiver.config.port)]
    heard: list[Any] = []

    async def scenario() -> None:
        listening = asyncio.create_task(receiver.serve("127.0.0.1", heard.append))
        try:
            async with asyncio.timeout(20):
                while not receiver.listening("127.0.0.1"):
                    await asyncio.sleep(0.02)
                switch.ports[5].set_powered(False)
                switch.write_state()
                while len(heard) < 2:
                    await asyncio.sleep(0.02)
        finally:
            listening.cancel()
            receiver.close()

    asyncio.run(scenario())
    assert [(t.kind, t.if_index, t.poe) for t in heard] == [
        ("linkDown", 5, None),
        ("pethPsePortOnOffNotification", None, (1, 5)),
    ]
