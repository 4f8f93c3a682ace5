import sys

from agent.diag.cli import main

sys.exit(main())
