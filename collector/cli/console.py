"""The ``hezo-collector`` console script. The base wheel (``pip install hezo``) is the agent's: without the
collector's extra the command says what to install, once, instead of ending in a traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: hezo's own packages: a module of these that is missing is a broken install, not a missing extra.
HEZO_PACKAGES = frozenset({"agent", "collector", "common", "diagnostics", "protocol", "simulator"})
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from collector.cli.main import main as run
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if not missing or missing in HEZO_PACKAGES:
            raise
        print(
            f"hezo-collector: the collector is not installed ({missing} is missing): "
            "pip install 'hezo[collector]'",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return run(argv)
