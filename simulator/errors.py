"""The one exception root of the simulator package."""


class SimulatorError(Exception):
    """Something the simulator cannot do, with a message that says what to change."""


class UnknownDeviceError(SimulatorError):
    """The device id is not one of the site's devices."""


class UnknownFaultError(SimulatorError):
    """The fault name is not one the device knows."""
