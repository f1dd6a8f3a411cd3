"""Accounts: registration and user profiles."""
