"""The audit trail: every administrative action, who took it, when and from where."""
