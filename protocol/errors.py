"""The exception root of the wire contract."""


class ProtocolError(ValueError):
    """A message, topic or id that does not follow the wire contract."""


class MalformedMessageError(ProtocolError):
    """The payload is not a valid envelope: bad JSON, a missing or mistyped field."""


class UnsupportedVersionError(ProtocolError):
    """The envelope carries a schema version this side does not speak."""

    def __init__(self, version: object, supported: int) -> None:
        super().__init__(f"unsupported schema version {version!r}: this side speaks v{supported}")
        self.version = version
        self.supported = supported
