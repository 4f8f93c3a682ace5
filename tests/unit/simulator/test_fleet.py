"""The fleet simulator's messages are the real protocol: they decode, their bodies validate against their
topics, and their seqs follow the rules for wills and births (docs/protocol.md)."""

import io
import random
import re
import time
from typing import Any

import pytest

from protocol import Topics, decode
from protocol.bodies import validate_against_topic, validate_body
from simulator.errors import SimulatorError
from simulator.fleet import FleetAgent, FleetPlan, Slice, boot_id


def agent(**plan: object) -> FleetAgent:
    fleet = FleetPlan(agents=1, devices=3, **plan)  # type: ignore[arg-type]
    return FleetAgent(
        fleet, "site-0000", "agent-00000", "0190000000001234", ["dev-000", "dev-001", "dev-002"]
    )


def checked(message: tuple[str, bytes]) -> dict[str, Any]:
    """The envelope of ``message``, refused by the protocol's own checks if it is not one."""
    topic, payload = message
    envelope = decode(payload)
    validate_body(envelope)
    validate_against_topic(envelope, Topics().parse(topic))
    return {"kind": envelope.kind, "seq": envelope.seq, "body": envelope.body}


def test_every_kind_of_message_decodes_and_matches_its_topic() -> None:
    simulated = agent()
    kinds = [checked(simulated.will())["kind"], checked(simulated.birth())["kind"]]
    kinds += [checked(simulated.state(device))["kind"] for device in simulated.devices]
    simulated.states["dev-001"] = "down"
    kinds += [
        checked(simulated.changed("dev-001", "up"))["kind"],
        checked(simulated.telemetry("dev-001"))["kind"],
    ]
    assert kinds == ["death", "birth", "state", "state", "state", "event", "telemetry"]


def test_the_birth_follows_its_will_and_names_it_and_later_messages_follow_the_birth() -> None:
    simulated = agent(contract="HZ-1")
    will = checked(simulated.will())
    birth = checked(simulated.birth())
    state = checked(simulated.state("dev-000"))
    assert birth["seq"] == will["seq"] + 1
    assert birth["body"]["will_seq"] == will["seq"]
    assert [d["contract"] for d in birth["body"]["devices"]] == ["HZ-1"] * 3
    assert state["seq"] == birth["seq"] + 1
    second_will = checked(simulated.will())  # a reconnect reserves two new seqs after what was sent
    assert second_will["seq"] == state["seq"] + 1
    assert checked(simulated.birth())["seq"] == second_will["seq"] + 1


def test_a_down_device_says_so_in_its_state_and_telemetry() -> None:
    simulated = agent()
    simulated.states["dev-002"] = "down"
    state = checked(simulated.state("dev-002"))["body"]
    samples = checked(simulated.telemetry("dev-002"))["body"]["samples"]
    assert state["state"] == "down"
    assert {s["metric"]: s["value"] for s in samples} == {"icmp.rtt_ms": 0.0, "icmp.loss_pct": 100.0}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("agents", 0, "agents must be 1 to 1,000,000"),
        ("devices", 501, "devices per agent must be 1 to 500"),
        ("dying", 1.5, "dying must be a share from 0 to 1"),
        ("telemetry_interval", 0, "telemetry interval must be above 0 s"),
    ],
)
def test_a_plan_out_of_bounds_is_refused_with_what_was_expected(field: str, value: float, words: str) -> None:
    plan = {"agents": 10, field: value}
    with pytest.raises(SimulatorError, match=words):
        FleetPlan(**plan)  # type: ignore[arg-type]


def test_agents_spread_over_sites_and_the_dying_are_never_the_flapping() -> None:
    plan = FleetPlan(agents=200, devices=10, flapping=0.05, dying=0.05, seed=7)
    assert plan.site_count == 20
    assert {plan.names(i)[0] for i in range(200)} == {f"site-{n:04d}" for n in range(20)}
    fleet = Slice(plan, ("127.0.0.1", 1), 0, 200, io.StringIO())
    fleet.plan_devices(0.0)
    flapping = {(n, d) for _, n, d, what in fleet.due if what == "flap-down"}
    telemetry = [(n, d) for _, n, d, what in fleet.due if what == "telemetry"]
    assert len(telemetry) == 2000  # every device has its telemetry due once in the first interval
    assert all(when <= plan.telemetry_interval for when, _, _, what in fleet.due if what == "telemetry")
    assert flapping
    assert fleet.dying
    assert not flapping & set(fleet.dying)
    again = Slice(plan, ("127.0.0.1", 1), 0, 200, io.StringIO())
    again.plan_devices(0.0)
    assert again.dying == fleet.dying  # the same seed, the same devices


def test_a_boot_id_is_the_start_time_in_ms_then_four_hex_digits() -> None:
    before = int(time.time() * 1000)
    boot = boot_id(random.Random(1))
    after = int(time.time() * 1000)
    assert re.fullmatch("[0-9a-f]{16}", boot)
    assert before <= int(boot[:12], 16) <= after
