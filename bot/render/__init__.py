"""Everything a person reads: Jinja2 templates, Telegram HTML packed into messages, export files
and the mood chart."""
