"""``snmp``: the PoE switch port a device hangs on. Link and power on the port say whether it is there.

Logitech's room devices speak no SNMP themselves; the switch port that powers a Tap IP or a Rally Bar does.
``probe.py`` reads and judges the port, ``ports.py`` finds it (and its PoE port) on the switch, ``uptime.py``
tells a 497-day wrap of ``sysUpTime`` from a restart, ``session.py`` talks pysnmp (one engine per set of
credentials; ``ciphers.py`` gives it SNMPv3 privacy on libcrypto), ``traps.py`` is the agent's notification
receiver, ``options.py`` the settings. See ``docs/snmp.md``.
"""

from agent.catalog import Model
from agent.drivers.context import ProbeContext
from agent.drivers.snmp.options import DEFAULT_POWER_OID, SnmpAgentConfig, SnmpOptions, TrapsConfig
from agent.drivers.snmp.probe import SnmpProbe
from agent.drivers.snmp.session import SnmpReadError, close_engine, engine, engine_count
from agent.drivers.snmp.traps import RECEIVER, TrapReceiver


def build(options: SnmpOptions, context: ProbeContext | None = None) -> SnmpProbe:
    """The probe; with the agent's ``snmp.traps`` section, it also listens for its switch's traps."""
    section = context.sections.get("snmp") if context is not None else None
    traps = None
    if context is not None and isinstance(section, SnmpAgentConfig) and section.traps is not None:
        config = section.traps
        traps = context.shared.get(RECEIVER, lambda: TrapReceiver(config))
        traps.accept(options)
    return SnmpProbe(options, traps=traps)


def build_in_context(options: SnmpOptions, _model: Model, context: ProbeContext) -> SnmpProbe:
    return build(options, context)


__all__ = [
    "DEFAULT_POWER_OID",
    "SnmpAgentConfig",
    "SnmpOptions",
    "SnmpProbe",
    "SnmpReadError",
    "TrapReceiver",
    "TrapsConfig",
    "build",
    "build_in_context",
    "close_engine",
    "engine",
    "engine_count",
]
