"""Shared domain of the subscription-change service: contracts, tables, catalog, money, settings."""
