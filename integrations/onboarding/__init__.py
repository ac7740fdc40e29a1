"""Connecting storefronts the way the vendors require: Shopify's OAuth install and client-credentials
grant, the webhook subscriptions and access scopes each enabled flow needs, and per-connection health
lines (for the connections screen)."""
