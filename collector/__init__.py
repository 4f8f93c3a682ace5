"""hezo collector."""
