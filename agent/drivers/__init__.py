"""The driver registry: one module (or package, for ``usb`` and ``sync``) per way of observing a device.

A driver is an options model (validated at start-up, without I/O) and a ``build`` that turns options into a
``Probe`` whose ``async poll()`` checks one device and never raises for a dead one. A driver that needs more
than its options (the device's serial, a client shared by every device) gives ``build_in_context`` instead,
which also receives a ``ProbeContext`` (``context.py``: the device, the agent-level settings, and the store of
what all probes share); one that only shares what it can do without (``usb``: one scan of a tree for all its
checks) gives both, and ``build`` serves where there is no context.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agent.catalog import Model
from agent.drivers import host, https, icmp, snmp, sync, usb
from agent.drivers.base import CheckResult, Probe
from agent.drivers.context import ProbeContext, SharedResources


@dataclass(frozen=True)
class DriverSpec:
    name: str
    options: type[BaseModel]
    build: Callable[[Any, Model], Probe] | None
    build_in_context: Callable[[Any, Model, ProbeContext], Probe] | None = None


DRIVERS: dict[str, DriverSpec] = {
    "https": DriverSpec("https", https.HttpsOptions, lambda options, _model: https.build(options)),
    "host": DriverSpec("host", host.HostOptions, lambda options, _model: host.build(options)),
    "icmp": DriverSpec("icmp", icmp.IcmpOptions, lambda options, _model: icmp.build(options)),
    "snmp": DriverSpec("snmp", snmp.SnmpOptions, None, snmp.build_in_context),
    "usb": DriverSpec(
        "usb",
        usb.UsbOptions,
        lambda options, model: usb.build(options, model.usb, model.name),
        usb.build_in_context,
    ),
    "sync": DriverSpec("sync", sync.SyncOptions, None, sync.build),
}


def build_probe(options: BaseModel, model: Model, context: ProbeContext | None = None) -> Probe:
    """The probe for one configured check of a device of ``model``; ``context`` for drivers that need it."""
    name = getattr(options, "driver")  # noqa: B009  (every options model has a ``driver`` tag)
    spec = DRIVERS[name]
    if spec.build_in_context is not None and (context is not None or spec.build is None):
        if context is None:
            raise ValueError(f"the {name} driver needs a ProbeContext")
        return spec.build_in_context(options, model, context)
    assert spec.build is not None, f"driver {name} has no build"
    return spec.build(options, model)


__all__ = [
    "DRIVERS",
    "CheckResult",
    "DriverSpec",
    "Probe",
    "ProbeContext",
    "SharedResources",
    "build_probe",
]
