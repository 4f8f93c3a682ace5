"""The incident rules, in the order each evaluation applies them. A new rule is a module here with a class
that has ``apply(conn, context)`` (``base.Rule``: a device rule looks at ``context.devices`` and says when it
wants a device again with ``context.wake``), and one line in ``RULES``.

The order matters: tickets are closed and recovered before new faults are looked at (a device up again frees
its ticket first), site incidents before device tickets (a silent agent holds its devices back), and the
SLA deadlines last, over every ticket as the rules before left it.
"""

from collector.incidents.rules.base import Rule
from collector.incidents.rules.closing import CloseRecovered
from collector.incidents.rules.device_down import DeviceDown
from collector.incidents.rules.events import NoteEvents
from collector.incidents.rules.prune import PruneTransitions
from collector.incidents.rules.recovered import RecoverUp
from collector.incidents.rules.retired import CloseRetired
from collector.incidents.rules.silent_sites import SilentSites
from collector.incidents.rules.sla import SlaDeadlines
from collector.incidents.rules.unstable import Unstable

RULES: tuple[type[Rule], ...] = (
    CloseRetired,  # a device left the inventory: its ticket closes
    RecoverUp,  # a device is up again: its Critical ticket is recovered
    CloseRecovered,  # no fault for the reopen window after recovery: closed
    SilentSites,  # agents gone silent: one ticket per site
    DeviceDown,  # down past the confirm window: Critical, or its recovered ticket reopened
    Unstable,  # still working but unstable: High
    NoteEvents,  # reboots and firmware changes onto the device's tickets
    SlaDeadlines,  # deadlines, warnings and breaches of every active ticket
    PruneTransitions,  # forget transitions too old to matter
)

__all__ = ["RULES", "Rule"]
