"""The driver registry: one module per way of observing a device, each behind the same small interface.

A driver is an options model (validated at start-up, without I/O) and a ``build`` that turns options into a
``Probe`` whose ``async poll()`` checks one device and never raises for a dead one.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agent.catalog import Model
from agent.drivers import https, snmp, usb
from agent.drivers.base import CheckResult, Probe


@dataclass(frozen=True)
class DriverSpec:
    name: str
    options: type[BaseModel]
    build: Callable[[Any, Model], Probe]


DRIVERS: dict[str, DriverSpec] = {
    "https": DriverSpec("https", https.HttpsOptions, lambda options, _model: https.build(options)),
    "snmp": DriverSpec("snmp", snmp.SnmpOptions, lambda options, _model: snmp.build(options)),
    "usb": DriverSpec(
        "usb", usb.UsbOptions, lambda options, model: usb.build(options, model.usb, model.name)
    ),
}


def build_probe(options: BaseModel, model: Model) -> Probe:
    """The probe for one configured check of a device of ``model``."""
    name = getattr(options, "driver")  # noqa: B009  (every options model has a ``driver`` tag)
    return DRIVERS[name].build(options, model)


__all__ = ["DRIVERS", "CheckResult", "DriverSpec", "Probe", "build_probe"]
