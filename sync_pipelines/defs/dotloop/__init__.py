"""DotLoop on the integration kit (declaration.py)."""
