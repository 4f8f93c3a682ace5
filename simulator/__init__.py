"""hezo simulator."""
