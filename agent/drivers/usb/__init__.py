"""The ``usb`` driver: a device's USB functions on the bus, and hot-plug events that re-check it at once.

- ``sysfs``: the one reader of a sysfs USB tree;
- ``hotplug``: where USB add/remove events come from (udev netlink, or a sysfs scan) and who they concern;
- ``driver``: a device's ``{driver: usb}`` check, with its debounce of re-enumerations.
"""

from agent.drivers.usb.driver import UsbFunctionOption, UsbOptions, UsbProbe, build

__all__ = ["UsbFunctionOption", "UsbOptions", "UsbProbe", "build"]
