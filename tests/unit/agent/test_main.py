"""hezo-agent ends with a message and an exit status that say what to fix, never a traceback."""

import subprocess
import sys
from pathlib import Path

CONFIG = """\
site: acme-warsaw
agent: room-101
mqtt: {{host: 127.0.0.1, port: 9}}
spool: {{path: {spool}}}
devices:
  - id: rally-bar-1
    model: rally-bar
    checks:
      - driver: https
        url: https://192.0.2.10/
"""


def test_a_spool_that_cannot_be_opened_exits_1_saying_what_to_set(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    config = tmp_path / "agent.yaml"
    config.write_text(CONFIG.format(spool=blocker / "spool.db"))
    run = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.startswith(f"hezo-agent: cannot open the spool {blocker / 'spool.db'}: ")
    assert run.stderr.endswith("(set spool.path to a writable file)\n")
    assert "Traceback" not in run.stderr
