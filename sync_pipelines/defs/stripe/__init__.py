"""Stripe: the brokerage's billing (customers, the catalog, subscriptions, invoices, payments, refunds, payouts)."""
