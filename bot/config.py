"""Settings from the environment and `.env` (pydantic-settings). Nothing here does I/O at import time."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE = Path(__file__).resolve().parent
_TELEGRAM_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,}$")
APP_NAME = "studybot"
DB_FILE = "studybot.db"


def default_content_path() -> Path:
    """The shipped decks: inside the installed package (a wheel carries content/ as bot/content), else the
    repository's top-level content/ beside the source tree (a clone, an editable install)."""
    installed = _PACKAGE / "content"
    return installed if installed.is_dir() else _PACKAGE.parent / "content"


def user_data_dir() -> Path:
    """StudyBot's folder in the user's data directory, the same whatever folder the bot starts in:
    $XDG_DATA_HOME/studybot (~/.local/share/studybot) on Linux, ~/Library/Application Support/studybot
    on macOS, %LOCALAPPDATA%\\studybot on Windows. Nothing is created here."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def default_db_location() -> str:
    """The SQLite file used when STUDYBOT_DB is not set."""
    return str(user_data_dir() / DB_FILE)


class Settings(BaseSettings):
    """Every setting StudyBot reads; names match DESIGN.md's configuration table."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    telegram_token: SecretStr | None = Field(default=None, alias="TELEGRAM_TOKEN")
    telegram_api_url: str = Field(default="https://api.telegram.org", alias="TELEGRAM_API_URL")
    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_api_url: str | None = Field(default=None, alias="DISCORD_API_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    discord_guild_id: int | None = Field(default=None, alias="DISCORD_GUILD_ID")
    # several processes (replicas) on one PostgreSQL: Telegram by webhooks, Discord by shards (README, Scaling out)
    telegram_webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    # the pushes of the whole fleet together stay under this many messages a second
    telegram_max_rate: float = Field(default=30.0, gt=0, le=1000, alias="TELEGRAM_MAX_RATE")
    discord_shard_count: int | None = Field(default=None, ge=1, le=1024, alias="DISCORD_SHARD_COUNT")
    discord_shard_ids_text: str | None = Field(default=None, alias="DISCORD_SHARD_IDS")  # e.g. "0,1"
    # host:port of the HTTP server (Telegram webhooks, /healthz, /metrics)
    listen: str = Field(default="0.0.0.0:8080", alias="STUDYBOT_LISTEN")
    # a SQLite file (default: in the user's data directory), or postgresql://...
    db: str = Field(default_factory=default_db_location, alias="STUDYBOT_DB")
    db_pgbouncer: bool = Field(default=False, alias="STUDYBOT_DB_PGBOUNCER")
    content_path: Path = Field(default_factory=default_content_path, alias="STUDYBOT_CONTENT")
    default_timezone: str = Field(default="UTC", alias="STUDYBOT_TIMEZONE")
    new_per_day: int = Field(default=10, ge=0, le=200, alias="STUDYBOT_NEW_PER_DAY")
    llm_url: str | None = Field(default=None, alias="STUDYBOT_LLM_URL")
    llm_model: str | None = Field(default=None, alias="STUDYBOT_LLM_MODEL")
    llm_api_key: SecretStr | None = Field(default=None, alias="STUDYBOT_LLM_API_KEY")
    llm_timeout: float = Field(default=10.0, gt=0, le=120, alias="STUDYBOT_LLM_TIMEOUT")
    llm_calls_per_hour: int = Field(default=30, ge=0, le=10_000, alias="STUDYBOT_LLM_CALLS_PER_HOUR")
    # the largest deck file accepted from a chat (/deck import); Telegram lets bots download up to 20 MB
    import_max_mb: float = Field(default=2.0, gt=0, le=20, alias="STUDYBOT_IMPORT_MAX_MB")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="LOG_FORMAT")

    @property
    def import_max_bytes(self) -> int:
        return int(self.import_max_mb * 1024 * 1024)

    @field_validator("telegram_token", "discord_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "discord_guild_id",
        "discord_api_url",
        "discord_gateway_url",
        "llm_url",
        "llm_model",
        "llm_api_key",
        "telegram_webhook_url",
        "telegram_webhook_secret",
        "discord_shard_count",
        "discord_shard_ids_text",
        mode="before",
    )
    @classmethod
    def _blank_optional(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("db")
    @classmethod
    def _db_location(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("is empty (a SQLite file such as ~/studybot.db, or postgresql://user:pass@host/db)")
        if re.match(r"^[a-z][a-z0-9+.-]*://", text) and not text.startswith(("postgresql://", "postgres://")):
            raise ValueError("only SQLite files and postgresql:// URLs are supported")
        if text.startswith("~"):  # a .env file is not expanded by a shell
            return str(Path(text).expanduser())
        return text

    @field_validator("telegram_token")
    @classmethod
    def _telegram_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TELEGRAM_TOKEN.match(value.get_secret_value().strip()):
            raise ValueError("does not look like a Telegram bot token (expected 123456:ABC..., from @BotFather)")
        return value

    @field_validator("discord_token")
    @classmethod
    def _discord_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            token = value.get_secret_value().strip()
            if len(token) < 50 or " " in token or token.count(".") < 2:
                raise ValueError("does not look like a Discord bot token (copy it from the Developer Portal, Bot tab)")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from exc
        return value

    @field_validator("telegram_api_url", "discord_api_url", "discord_gateway_url", "llm_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(https?|wss?)://", value):
            raise ValueError(f"{value!r} is not an http(s)/ws(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _https_webhook(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"{value!r} is not an https:// URL (Telegram posts webhooks over HTTPS only)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)")
        return value

    @field_validator("discord_shard_ids_text")
    @classmethod
    def _shard_list(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = [part.strip() for part in value.split(",")]
        if not all(part.isdigit() for part in parts):
            raise ValueError(f"{value!r} is not a comma-separated list of shard numbers, for example 0,1")
        return ",".join(str(int(part)) for part in parts)

    @property
    def discord_shard_ids(self) -> tuple[int, ...] | None:
        """DISCORD_SHARD_IDS as numbers; None: every shard of DISCORD_SHARD_COUNT (or no sharding)."""
        if self.discord_shard_ids_text is None:
            return None
        return tuple(int(part) for part in self.discord_shard_ids_text.split(","))

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port, for example 0.0.0.0:8080")
        return value.strip()

    @model_validator(mode="after")
    def _fleet_settings_agree(self) -> Settings:
        if self.telegram_webhook_url is not None and self.telegram_webhook_secret is None:
            raise ValueError(
                "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not (a random string Telegram sends "
                "back with every update, e.g. from: openssl rand -hex 32)"
            )
        if self.discord_shard_ids is not None:
            if self.discord_shard_count is None:
                raise ValueError("DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not (the bot's number of shards)")
            wrong = [i for i in self.discord_shard_ids if i >= self.discord_shard_count]
            if wrong or len(set(self.discord_shard_ids)) != len(self.discord_shard_ids):
                raise ValueError(
                    f"DISCORD_SHARD_IDS must be different numbers from 0 to {self.discord_shard_count - 1} "
                    f"(DISCORD_SHARD_COUNT is {self.discord_shard_count})"
                )
        return self

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def telegram_webhook_path(self) -> str:
        """The path part of TELEGRAM_WEBHOOK_URL ("/" when it has none): where the HTTP server takes updates."""
        if self.telegram_webhook_url is None:
            return "/"
        rest = self.telegram_webhook_url.removeprefix("https://").partition("/")[2]
        return "/" + rest

    @model_validator(mode="after")
    def _llm_needs_a_model(self) -> Settings:
        if self.llm_url is not None and not self.llm_model:
            raise ValueError("STUDYBOT_LLM_URL is set but STUDYBOT_LLM_MODEL is not (the model's name, e.g. llama3.1)")
        if self.llm_model and self.llm_url is None:
            raise ValueError("STUDYBOT_LLM_MODEL is set but STUDYBOT_LLM_URL is not (e.g. https://api.openai.com/v1)")
        return self

    @property
    def db_is_postgres(self) -> bool:
        return self.db.startswith(("postgresql://", "postgres://"))

    @property
    def db_is_default(self) -> bool:
        """True when STUDYBOT_DB is not set, so the database is the one in the user's data directory."""
        return "db" not in self.model_fields_set

    @property
    def db_path(self) -> Path:
        """The SQLite file as an absolute path (a relative STUDYBOT_DB is taken from the current folder),
        for messages, health and backup; only meaningful when db_is_postgres is False."""
        return Path(os.path.abspath(self.db))

    @property
    def data_dir(self) -> Path:
        """Where the bot keeps files beside its database (the terminal's /stats pictures), as an absolute
        path: the SQLite file's folder, or the user's data directory when the database is PostgreSQL."""
        return user_data_dir() if self.db_is_postgres else self.db_path.parent

    def db_display(self) -> str:
        """The database location with any password hidden, for messages and logs."""
        return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", self.db)

    @property
    def llm_enabled(self) -> bool:
        return self.llm_url is not None and bool(self.llm_model)

    def secrets(self) -> list[str]:
        """Every secret value set, for the log redactor."""
        tokens = (self.telegram_token, self.discord_token, self.llm_api_key, self.telegram_webhook_secret)
        found = [t.get_secret_value() for t in tokens if t is not None and t.get_secret_value()]
        password = re.match(r"^postgres(?:ql)?://[^:/@]+:([^@]+)@", self.db)
        if password:
            found.append(password.group(1))
        return found
