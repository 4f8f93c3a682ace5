"""The checks a device gets when its config lists none, from its model's ``default_checks``.

The rule, kept small on purpose:

- ``https`` and ``icmp`` (network checks) apply when the device has an ``address``: ``https://ADDRESS/`` and
  pings to ADDRESS, with the drivers' defaults.
- ``usb`` applies when the device has **no** ``address``: a Rally Bar with an address is in appliance mode and
  not on this PC's USB bus; without one it is in USB mode. A model whose USB ids are not published cannot
  have a default usb check (the config must list its ``functions``).
- ``host`` always applies (the room PC the agent runs on).
- A driver this agent does not have is skipped.

Nothing applying is an error that says what to add. Explicit ``checks`` always win; defaults are not mixed in.
"""

import ipaddress
from typing import Any

from agent.catalog import Model

NETWORK = ("https", "icmp")


def _url_host(address: str) -> str:
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address  # a host name


def default_checks(model: Model, address: str | None, drivers: set[str]) -> list[dict[str, Any]]:
    """The raw check entries (as a config would write them) for a device of ``model``."""
    checks: list[dict[str, Any]] = []
    for driver in model.default_checks:
        if driver not in drivers:
            continue
        if driver == "https" and address:
            checks.append({"driver": "https", "url": f"https://{_url_host(address)}/"})
        elif driver == "icmp" and address:
            checks.append({"driver": "icmp", "host": address})
        elif driver == "usb" and not address and any(f.required for f in model.usb):
            checks.append({"driver": "usb"})
        elif driver == "host":
            checks.append({"driver": "host"})
    if not checks:
        raise ValueError(_nothing_applies(model, address))
    return checks


def _nothing_applies(model: Model, address: str | None) -> str:
    wanted = ", ".join(model.default_checks) or "none"
    if not address and any(d in NETWORK for d in model.default_checks):
        hint = "give its 'address' (IP or host name)"
    elif "usb" in model.default_checks and not model.usb:
        hint = "its USB ids are not published: list a usb check with its 'functions'"
    else:
        hint = "list its checks"
    return f"no 'checks' listed and no default check of model {model.id!r} ({wanted}) applies: {hint}"
