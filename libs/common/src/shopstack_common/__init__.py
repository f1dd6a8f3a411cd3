"""Plumbing every shopstack service shares: request context, JSON logs, metrics,
problem+json, health checks and tracing. No business logic lives here."""
