"""The integration kit: what every source is declared with, and the machinery built from a declaration."""
