"""The one exception root of the agent package.

Every error the agent raises on purpose derives from ``AgentError``, so ``hezo-agent`` and ``hezo-diag`` turn
them into exit codes in one place each. Most never get that far: a driver turns its own error (a failed
ping, an unreadable certificate) into a failed check, because a dead device is a result, not an exception.
"""

from common.configfile import ConfigError


class AgentError(Exception):
    """Something the agent cannot do; the message says what, and where possible what to fix."""


class AgentConfigError(AgentError, ConfigError):
    """The agent's configuration cannot be used: the message names the file or key and what was expected.

    Also a ``common.configfile.ConfigError``: a config error is the same kind of problem in every program.
    """
