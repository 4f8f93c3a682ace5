"""The simulated switch's pass_persist helper and how the site does without snmpd."""

import json
import time
from pathlib import Path

import pytest

from simulator import site as site_module
from simulator.snmp_pass import Served, answer, main
from simulator.snmpswitch import POE_DELIVERING, SwitchPort

STATE = {
    "boot_time": 0.0,
    "descr": "Switch OS 1.2",
    "name": "poe-switch",
    "unstable_s": 0,
    "ports": [
        {
            "if_index": 5,
            "name": "gi1/0/5",
            "admin": 1,
            "oper": 1,
            "poe_group": 1,
            "poe_port": 5,
            "poe": POE_DELIVERING,
            "power_mw": 12950,
        }
    ],
}


@pytest.fixture
def served(tmp_path: Path) -> Served:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({**STATE, "boot_time": time.time() - 100}))
    return Served(str(path))


def test_get_answers_oid_type_and_value(served: Served) -> None:
    assert answer(served, "get", ".1.3.6.1.2.1.2.2.1.8.5\n") == ".1.3.6.1.2.1.2.2.1.8.5\ninteger\n1\n"
    assert (
        answer(served, "get", "1.3.6.1.2.1.105.1.1.1.6.1.5") == ".1.3.6.1.2.1.105.1.1.1.6.1.5\ninteger\n3\n"
    )


def test_get_of_an_unknown_oid_is_none(served: Served) -> None:
    assert answer(served, "get", ".1.3.6.1.2.1.2.2.1.8.42") == "NONE\n"


def test_getnext_walks_in_oid_order(served: Served) -> None:
    assert answer(served, "getnext", ".1.3.6.1.2.1.2.2.1.7").startswith(".1.3.6.1.2.1.2.2.1.7.5\n")
    assert answer(served, "getnext", ".1.3.6.1.2.1.2.2.1.7.5").startswith(".1.3.6.1.2.1.2.2.1.8.5\n")
    assert answer(served, "getnext", ".1.3.6.1.4.1.9.9.402.1.2.1.9.1.5") == "NONE\n"


def test_uptime_counts_from_the_boot_time(served: Served) -> None:
    _oid, kind, ticks, _ = answer(served, "get", ".1.3.6.1.2.1.1.3.0").split("\n")
    assert kind == "timeticks"
    assert 10_000 <= int(ticks) < 20_000


def test_a_rewritten_state_file_is_served_on_the_next_request(served: Served) -> None:
    answer(served, "get", ".1.3.6.1.2.1.2.2.1.8.5")
    ports = [{**STATE["ports"][0], "oper": 2}]  # type: ignore[dict-item]
    Path(served.path).write_text(
        json.dumps({**STATE, "ports": ports, "descr": "Switch OS 1.3 with a longer text"})
    )
    assert answer(served, "get", ".1.3.6.1.2.1.2.2.1.8.5").endswith("integer\n2\n")


def test_the_helper_speaks_the_pass_persist_protocol(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("PING\nget\n.1.3.6.1.2.1.1.1.0\nset\n.1.3\ninteger 1\n"))
    assert main(["snmp_pass.py", served.path]) == 0
    assert capsys.readouterr().out == "PONG\n.1.3.6.1.2.1.1.1.0\nstring\nSwitch OS 1.2\nnot-writable\n"


def test_without_snmpd_the_site_leaves_the_switch_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site_module, "snmpd_path", lambda: None)
    site = site_module.SimulatedSite(tmp_path, switch=True)
    assert [d["id"] for d in site.devices()] == ["rally-bar", "meetup", "rally", "sync-api"]


def test_a_switch_port_follows_the_power_of_its_device() -> None:
    port = SwitchPort(5, "gi1/0/5", device="rally-bar")
    assert port.poe_port == 5
    port.set_powered(False)
    assert (port.oper, port.poe, port.power_mw) == (2, 2, 0)
    port.set_powered(True)
    assert (port.oper, port.poe) == (1, POE_DELIVERING)
