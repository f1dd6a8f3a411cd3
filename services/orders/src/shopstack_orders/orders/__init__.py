"""Orders: placing them against the catalog's stock, and their life cycle."""
