"""hezo diagnostics."""
