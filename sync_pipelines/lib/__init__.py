"""Shared machinery: database, schema, HTTP, load path, state, DLQ, webhooks. Names no integration."""
