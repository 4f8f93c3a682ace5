"""The one exception root of the diagnostics library."""


class DiagnosticsError(Exception):
    """A bundle could not be built, read or delivered; the message says why."""
