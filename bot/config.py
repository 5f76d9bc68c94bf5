"""Settings, read once from the environment and `.env`, typed and validated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROMPTS_DIR = REPO_ROOT / "prompts"
DEFAULT_DATABASE_URL = f"sqlite:///{REPO_ROOT / 'data' / 'companion.sqlite3'}"

TOKEN_HELP = (
    "TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather in Telegram (send /newbot), "
    "copy the token it gives you, and put it in a .env file next to the Makefile as "
    "TELEGRAM_BOT_TOKEN=123456:ABC... (see .env.example), or export it in your shell."
)


class SettingsError(Exception):
    """Raised with a message a person can act on when the settings are unusable."""


class ToolSettings(BaseSettings):
    """What the command-line tools (migrate, prompts check) need: no Telegram token."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    data_keys: SecretStr | None = None
    prompts_dir: Path = DEFAULT_PROMPTS_DIR
    dispatch_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 30
    # How long a claimed prompt is reserved for the dispatcher that claimed it; after a crash it
    # is sent again once this has passed. Longer than sending a batch takes.
    claim_lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 120
    default_timezone: str = "UTC"
    log_level: str = "INFO"
    retention_days: Annotated[int, Field(ge=1, le=36500)] | None = None

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError) as exc:
            raise ValueError(
                f"DEFAULT_TIMEZONE {value!r} is not an IANA time zone (try Europe/Berlin or UTC)"
            ) from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("prompts_dir")
    @classmethod
    def _prompts_dir_exists(cls, value: Path) -> Path:
        if not (value / "schedule.toml").is_file():
            raise ValueError(f"PROMPTS_DIR {str(value)!r} has no schedule.toml")
        return value


class Settings(ToolSettings):
    """Everything the bot reads from its environment."""

    telegram_bot_token: SecretStr
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    # Seconds to wait for Telegram to answer a request before retrying it.
    telegram_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10
    # Telegram's limits: about 30 messages a second overall, about one a second to one chat
    # (short bursts tolerated). Lower them if Telegram still answers 429.
    rate_limit_overall: Annotated[float, Field(gt=0, le=10000)] = 30
    rate_limit_per_chat: Annotated[float, Field(gt=0, le=10000)] = 1
    rate_limit_chat_burst: Annotated[int, Field(ge=1, le=100)] = 3
    # Webhook mode (`python -m bot webhook`): the public https address Telegram posts to (the
    # reverse proxy in front of the instances), the secret Telegram sends with each update,
    # and where this instance listens.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: Annotated[int, Field(ge=1, le=65535)] = 8080

    @field_validator("webhook_secret")
    @classmethod
    def _secret_has_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()):
            raise ValueError(
                "WEBHOOK_SECRET must be 16 to 256 characters of A-Z, a-z, 0-9, _ and - "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    def require_webhook(self) -> tuple[str, str]:
        """The webhook's address and secret, or a clear message saying what is missing."""
        missing = [
            name
            for name, value in (
                ("WEBHOOK_URL", self.webhook_url),
                ("WEBHOOK_SECRET", self.webhook_secret),
            )
            if not value
        ]
        if missing or self.webhook_url is None or self.webhook_secret is None:
            raise SettingsError(
                f"Webhook mode needs {' and '.join(missing)}: the public https address of "
                "the reverse proxy Telegram posts to, and a secret (see .env.example)."
            )
        return self.webhook_url, self.webhook_secret.get_secret_value()

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_has_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError(TOKEN_HELP)
        if ":" not in token:
            raise ValueError("TELEGRAM_BOT_TOKEN looks wrong: @BotFather tokens look like 123:ABC")
        return SecretStr(token)


SettingsT = TypeVar("SettingsT", bound=ToolSettings)


def load_settings(kind: type[SettingsT], **overrides: object) -> SettingsT:
    """Read the settings once, turning validation errors into one clear message."""
    try:
        return kind(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            if error["type"] == "missing" and name == "TELEGRAM_BOT_TOKEN":
                problems.append(TOKEN_HELP)
            else:
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(message if message.startswith(name) else f"{name}: {message}")
        raise SettingsError("\n".join(problems)) from None
