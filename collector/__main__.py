"""``python -m collector``: the same as the ``hezo-collector`` command."""

import sys

from collector.cli.console import main

sys.exit(main())
