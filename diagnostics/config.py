"""What a log bundle holds and how big it may grow: the ``logs:`` settings of whoever builds bundles.

The agent's config embeds it as ``commands.logs``; ``hezo-diag logs`` uses the same. Only pydantic is
imported here, so a program that merely validates its config pays for nothing else.
"""

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from diagnostics.redact import PersonalData


class LogsConfig(BaseModel):
    """What a log bundle holds; see docs/diagnostics.md for the Windows paths of the room software."""

    model_config = ConfigDict(extra="forbid")

    agent_log: list[Path] = Field(default_factory=list, description="the agent's own log files")
    folders: list[Path] = Field(default_factory=list, description="log folders of the meeting-room software")
    journal: bool = Field(True, description="include the system journal (journalctl) when present")
    units: list[str] = Field(default_factory=list, description="journal units; empty: the whole journal")
    max_file_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="a longer file keeps its tail")
    max_total_bytes: int = Field(200 * 1024 * 1024, ge=1024, description="cap of the whole bundle")
    redact: list[str] = Field(default_factory=list, description="extra regular expressions to redact")
    personal_data: PersonalData = Field(
        "mask", description="e-mail addresses and people's and meetings' names: mask, drop their lines, keep"
    )

    @field_validator("redact")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value
