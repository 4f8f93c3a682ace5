"""hezo agent/drivers."""
