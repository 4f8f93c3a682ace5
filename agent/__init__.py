"""The hezo agent: polls a room's devices and publishes their health over MQTT."""

__version__ = "0.1.0"
