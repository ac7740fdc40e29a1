"""Screens, one module per domain: orders, inventory."""
