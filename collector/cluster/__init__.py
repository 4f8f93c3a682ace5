"""Several collectors on one store: which collector decides which sites (leases over partitions of sites)."""
