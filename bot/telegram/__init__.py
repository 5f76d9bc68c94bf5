"""Talking to Telegram: the Bot subclass, the durable inbox, how updates are processed, webhook
mode, the rate limiter, chat leases across instances, keyboards and sending."""
