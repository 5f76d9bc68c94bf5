"""Integration Companion: a Telegram bot for integrating ketamine therapy."""

__version__ = "0.1.0"
