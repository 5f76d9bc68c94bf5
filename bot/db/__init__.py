"""Persistence: typed models, the session factory and query functions."""
