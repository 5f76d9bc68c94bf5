"""What the companion knows and decides, one module per concept: plain functions over a session
that never commit and never speak Telegram."""
