"""Which Logitech models exist, how each is recognised on USB, and which functions must be present.

Facts come from ``docs/devices.md`` (USB ids from fwupd quirk files and ChromiumOS test data). Models whose
USB ids are not published (Rally Camera, Rally Ultra, Swytch, Tap IP) have no functions here: a ``usb`` check
for them must list its ``functions`` in the config.

``default_checks`` are the drivers a device of the model gets when its config lists no ``checks``
(``agent/defaults.py`` turns them into checks; the rule is in ``docs/drivers.md``).
"""

from dataclasses import dataclass, replace

LOGITECH = "046d"


@dataclass(frozen=True)
class UsbFunction:
    """One USB device (vendor:product) a model shows on the bus, and what it is for."""

    vendor: str
    product: str
    role: str
    required: bool = True

    @property
    def usb_id(self) -> str:
        return f"{self.vendor}:{self.product}"


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    usb: tuple[UsbFunction, ...] = ()
    default_checks: tuple[str, ...] = ()
    sync_names: tuple[str, ...] = ()  # product names Logitech Sync reports; empty: not checked


def _f(product: str, role: str, *, required: bool = True, vendor: str = LOGITECH) -> UsbFunction:
    return UsbFunction(vendor, product, role, required)


#: Appliance-mode devices (CollabOS) serve an admin page and answer pings; in USB mode they are USB devices.
_APPLIANCE = ("https", "icmp", "usb")

MODELS: dict[str, Model] = {
    model.id: model
    for model in (
        Model(
            "rally-bar",
            "Rally Bar",
            (_f("089b", "video"), _f("0898", "audio"), _f("089a", "hid", required=False)),
            _APPLIANCE,
        ),
        Model(
            "rally-bar-mini",
            "Rally Bar Mini",
            (_f("08d3", "video"), _f("08d2", "audio"), _f("089a", "hid", required=False)),
            _APPLIANCE,
        ),
        # Appliance-capable, but a local admin page is not documented for it: ping it, or watch its USB.
        Model("rally-bar-huddle", "Rally Bar Huddle", (_f("087c", "device"),), ("icmp", "usb")),
        Model(
            "meetup",
            "MeetUp",
            (_f("0866", "video"), _f("0867", "audio"), _f("086a", "unknown", required=False)),
            ("usb",),
        ),
        Model(
            "rally",
            "Rally system",
            (_f("0885", "audio"), _f("088f", "table-hub", required=False)),
            ("usb",),
        ),
        Model(
            "tap",
            "Tap",
            (
                _f("0876", "hdmi-capture"),
                _f("0872", "motion-sensor", required=False),
                _f("0001", "touch", vendor="222a"),
            ),
            ("usb",),
        ),
        Model("scribe", "Scribe", (_f("08e2", "video"),), ("usb",)),
        Model("rally-camera", "Rally Camera", default_checks=("usb",)),
        Model("rally-ultra", "Rally Ultra", default_checks=("usb",)),
        Model("tap-ip", "Tap IP", default_checks=("https", "icmp")),
        Model("swytch", "Swytch", default_checks=("usb",)),
        Model("room-pc", "Room PC", default_checks=("host",)),
    )
}


# The ``name`` Logitech Sync gives each product (the Sync Cloud API's examples: "Rally", "Rally Bar", "Tap",
# "Tap IP"). Models not listed here are not checked against Sync's name.
SYNC_NAMES: dict[str, tuple[str, ...]] = {
    "rally": ("Rally",),
    "rally-bar": ("Rally Bar",),
    "tap": ("Tap",),
    "tap-ip": ("Tap IP",),
}
for _id, _names in SYNC_NAMES.items():
    MODELS[_id] = replace(MODELS[_id], sync_names=_names)


def model(model_id: str) -> Model:
    """The catalog entry for ``model_id``; ``KeyError`` if unknown (config validation prevents that)."""
    return MODELS[model_id]
