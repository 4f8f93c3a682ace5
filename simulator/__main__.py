"""``python -m simulator``: the same as ``hezo-sim``."""

import sys

from simulator.cli import main

sys.exit(main())
