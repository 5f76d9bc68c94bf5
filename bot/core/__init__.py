"""Pure rules with no Telegram and no database: schedule arithmetic, local time, text helpers."""
