"""The ``usb`` driver: a device's USB functions on the bus, and hot-plug events that re-check it at once.

- ``sysfs``: the one reader of a sysfs USB tree, and the scans of a tree the agent's checks share;
- ``hotplug``: where USB add/remove events come from (udev netlink, or a sysfs scan) and who they concern;
- ``driver``: a device's ``{driver: usb}`` check, with its debounce of re-enumerations.
"""

from agent.drivers.usb.driver import UsbFunctionOption, UsbOptions, UsbProbe, build, build_in_context

__all__ = ["UsbFunctionOption", "UsbOptions", "UsbProbe", "build", "build_in_context"]
