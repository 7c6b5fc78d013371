"""Lofty (formerly Chime), the brokerage's second CRM, on the integration kit."""
