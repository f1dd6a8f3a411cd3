"""Cross-service tests: the whole platform, started the way `make up` starts it."""
