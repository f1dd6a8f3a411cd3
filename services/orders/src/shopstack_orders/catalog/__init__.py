"""The product catalog."""
