"""Polku's typed settings, read once from environment variables and validated.

The web app, the workers and the CLI all build the same `Settings`, so a bad value
stops every process at start-up with a message that says what to change.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from bot.crypto import check_key
from bot.errors import ConfigError

TWILIO_DEFAULT_API_URL = "https://api.twilio.com"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
TRANSLATORS = ("argos", "none")
# A country calling code, or a longer prefix of one (35818: Åland).
COUNTRY_CODE = re.compile(r"^[1-9][0-9]{0,5}$")
# What a bearer token may hold (RFC 6750), long enough not to be guessed.
METRICS_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")


@dataclass(frozen=True)
class Settings:
    """Everything Polku reads from its environment, after validation."""

    instance_path: Path
    secret_key: str
    database_url: str
    encryption_keys: tuple[str, ...] = ()
    redis_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_url: str = TWILIO_DEFAULT_API_URL
    twilio_timeout: float = 10.0
    public_base_url: str | None = None
    retry_intervals: tuple[int, ...] = (10, 30, 120, 600, 1800)
    max_request_bytes: int = 64 * 1024
    # Abuse limits (bot/limits.py); 0 turns a limit off.
    inbound_per_minute: int = 10
    inbound_per_day: int = 200
    outbound_per_hour: int = 60
    outbound_per_minute: int = 120
    conversations_per_day: int = 5
    max_message_chars: int = 2000
    # Country calling codes SMS may go to; ("*",) allows every country.
    sms_allowed_country_codes: tuple[str, ...] = ("358",)
    service_contact: str = ""
    flows_dir: Path | None = None
    reminder_after_hours: int = 48
    translator: str = "argos"
    argos_packages_dir: Path | None = None
    translation_cache_hours: int = 24
    esco_index_path: Path | None = None
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    llm_model: str | None = None
    llm_timeout: float = 15.0
    llm_max_retries: int = 2
    teams_file: Path | None = None
    # WhatsApp templates (ContentSids per language); None: flows/whatsapp.yaml.
    whatsapp_templates_file: Path | None = None
    counsellors_file: Path | None = None
    counsellor_session_minutes: int = 30
    smtp_url: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "Polku <polku@localhost>"
    # A handoff e-mail is tried for hours before the operator is alerted.
    handoff_retry_intervals: tuple[int, ...] = (60, 300, 900, 1800, 3600, 3600, 3600)
    log_level: str = "INFO"
    log_json: bool = False
    # Bearer token for GET /metrics; None: /metrics answers 404.
    metrics_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def packages_dir(self) -> Path:
        """Where `translations install` unpacks Argos Translate packages."""
        return self.argos_packages_dir or self.instance_path / "argos-packages"

    @property
    def llm_enabled(self) -> bool:
        """A model is used only with an API key; without one, deterministic mode."""
        return bool(self.openai_api_key)

    @property
    def accounts(self) -> Path:
        """The counsellors' accounts: `flask counsellors add` writes this file."""
        return self.counsellors_file or self.instance_path / "counsellors.yaml"

    @property
    def outbox(self) -> Path:
        """Where handoff e-mails are written when no SMTP server is set."""
        return self.instance_path / "outbox"

    @property
    def esco_index(self) -> Path:
        """Where `esco import` writes the local ESCO index."""
        return self.esco_index_path or self.instance_path / "esco.sqlite"

    @property
    def embedded_redis_socket(self) -> Path:
        return self.instance_path / "redis.sock"

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with `overrides` applied and validated again."""
        updated = replace(self, **overrides)
        updated.validate()

        return updated

    def validate(self) -> None:
        """Raise `ConfigError` naming the first setting that cannot work."""
        _check_url("DATABASE_URL", self.database_url, ("sqlite", "postgresql"))
        if self.redis_url:
            _check_url("REDIS_URL", self.redis_url, ("redis", "rediss", "unix"))
        _check_url("TWILIO_API_URL", self.twilio_api_url, ("http", "https"))
        if self.public_base_url:
            _check_url("PUBLIC_BASE_URL", self.public_base_url, ("http", "https"))

        if not self.encryption_keys:
            raise ConfigError("ENCRYPTION_KEYS is empty; set at least one Fernet key")
        for key in self.encryption_keys:
            check_key(key)
        if bool(self.twilio_account_sid) != bool(self.twilio_auth_token):
            raise ConfigError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set together; "
                "set both to connect Twilio, or neither to run without it"
            )
        if self.twilio_account_sid and not ACCOUNT_SID.match(self.twilio_account_sid):
            raise ConfigError(
                f"TWILIO_ACCOUNT_SID {self.twilio_account_sid!r} is not an account "
                "SID; copy the one that starts with AC from the Twilio console"
            )
        if self.twilio_sms_from and not E164.match(self.twilio_sms_from):
            raise ConfigError(
                f"TWILIO_SMS_FROM {self.twilio_sms_from!r} is not a phone number in "
                "E.164 form; write it like +358401234567"
            )
        if self.twilio_whatsapp_from and not E164.match(self.twilio_whatsapp_from):
            raise ConfigError(
                f"TWILIO_WHATSAPP_FROM {self.twilio_whatsapp_from!r} is not a phone "
                "number in E.164 form; write it like +358401234567 or "
                "whatsapp:+358401234567"
            )
        if not self.retry_intervals or min(self.retry_intervals) < 0:
            raise ConfigError(
                "RETRY_INTERVALS must list one or more non-negative numbers of "
                "seconds, like 10,30,120"
            )
        if self.flows_dir is not None and not self.flows_dir.is_dir():
            raise ConfigError(
                f"FLOWS_DIR {str(self.flows_dir)!r} is not a folder; point it at a "
                "copy of flows/ or leave it unset"
            )
        if self.reminder_after_hours < 1:
            raise ConfigError(
                f"REMINDER_AFTER_HOURS {self.reminder_after_hours} must be at least 1"
            )
        if self.translator not in TRANSLATORS:
            raise ConfigError(
                f"TRANSLATOR {self.translator!r} is not known; use "
                f"{' or '.join(TRANSLATORS)}"
            )
        if self.translation_cache_hours < 0:
            raise ConfigError(
                f"TRANSLATION_CACHE_HOURS {self.translation_cache_hours} must be 0 "
                "(no cache) or more"
            )
        if self.openai_base_url:
            _check_url("OPENAI_BASE_URL", self.openai_base_url, ("http", "https"))
        if self.openai_api_key and not self.llm_model:
            raise ConfigError(
                "LLM_MODEL is not set; set it to the name of the model your "
                "provider serves (OPENAI_API_KEY is set, so a model is used)"
            )
        if self.llm_timeout <= 0 or self.llm_max_retries < 0:
            raise ConfigError(
                f"LLM_TIMEOUT {self.llm_timeout} must be more than 0 seconds and "
                f"LLM_MAX_RETRIES {self.llm_max_retries} 0 or more"
            )
        if self.teams_file is not None and not self.teams_file.is_file():
            raise ConfigError(
                f"TEAMS_FILE {str(self.teams_file)!r} is not a file; point it at a "
                "copy of flows/teams.yaml with the real addresses, or leave it unset"
            )
        if (
            self.whatsapp_templates_file is not None
            and not self.whatsapp_templates_file.is_file()
        ):
            raise ConfigError(
                f"WHATSAPP_TEMPLATES_FILE {str(self.whatsapp_templates_file)!r} is "
                "not a file; point it at a copy of flows/whatsapp.yaml with the "
                "ContentSids of your Twilio account, or leave it unset"
            )
        if not 5 <= self.counsellor_session_minutes <= 480:
            raise ConfigError(
                f"COUNSELLOR_SESSION_MINUTES {self.counsellor_session_minutes} must "
                "be 5 to 480"
            )
        if self.smtp_url:
            from bot.mail import parse_smtp_url

            parse_smtp_url(self.smtp_url, self.smtp_user, self.smtp_password)
            if "localhost" in self.mail_from:
                raise ConfigError(
                    "MAIL_FROM is not set; with SMTP_URL, set it to the address "
                    "the handoff e-mails come from, like Polku <polku@mikkeli.fi>"
                )
        if not self.handoff_retry_intervals or min(self.handoff_retry_intervals) < 0:
            raise ConfigError(
                "HANDOFF_RETRY_INTERVALS must list one or more non-negative numbers "
                "of seconds, like 60,300,900"
            )
        if self.metrics_token is not None and not METRICS_TOKEN.match(
            self.metrics_token
        ):
            raise ConfigError(
                "METRICS_TOKEN must be 16 to 256 letters, digits or -._~+/= "
                'characters; generate one with: python -c "import secrets; '
                'print(secrets.token_urlsafe(32))"'
            )
        if self.max_request_bytes < 1024:
            raise ConfigError(
                f"MAX_REQUEST_BYTES {self.max_request_bytes} is too small for a "
                "Twilio webhook; use at least 1024"
            )
        self._validate_limits()

    def _validate_limits(self) -> None:
        """Check the abuse limits (bot/limits.py)."""
        for name in (
            "inbound_per_minute",
            "inbound_per_day",
            "outbound_per_hour",
            "outbound_per_minute",
            "conversations_per_day",
        ):
            value = getattr(self, name)
            if value < 0:
                raise ConfigError(
                    f"{name.upper()} {value} must be 0 (no limit) or more"
                )
        if self.max_message_chars < 160:
            raise ConfigError(
                f"MAX_MESSAGE_CHARS {self.max_message_chars} is shorter than one "
                "SMS; use at least 160"
            )
        codes = self.sms_allowed_country_codes
        if not codes or (codes != ("*",) and not all(map(COUNTRY_CODE.match, codes))):
            raise ConfigError(
                f"SMS_ALLOWED_COUNTRY_CODES {','.join(codes)!r} must list country "
                "calling codes without +, like 358,46,372, or be * for every country"
            )


def load_settings(
    environ: Mapping[str, str] | None = None,
    instance_path: Path | str | None = None,
    **overrides: Any,
) -> Settings:
    """Build validated settings from `environ` (default: the process environment).

    `overrides` take precedence over the environment; tests use them.
    """
    env = os.environ if environ is None else environ
    instance = Path(instance_path or env.get("POLKU_INSTANCE_PATH") or "instance")
    instance = instance.resolve()

    values: dict[str, Any] = {
        "instance_path": instance,
        "secret_key": env.get("SECRET_KEY") or "",
        "encryption_keys": _keys(env.get("ENCRYPTION_KEYS")),
        "database_url": env.get("DATABASE_URL") or f"sqlite:///{instance / 'polku.db'}",
        "redis_url": env.get("REDIS_URL") or None,
        "twilio_account_sid": env.get("TWILIO_ACCOUNT_SID") or None,
        "twilio_auth_token": env.get("TWILIO_AUTH_TOKEN") or None,
        "twilio_sms_from": env.get("TWILIO_SMS_FROM") or None,
        "twilio_whatsapp_from": _strip_whatsapp(env.get("TWILIO_WHATSAPP_FROM")),
        "twilio_api_url": env.get("TWILIO_API_URL") or TWILIO_DEFAULT_API_URL,
        "twilio_timeout": _number(env, "TWILIO_TIMEOUT", 10.0, float),
        "public_base_url": env.get("PUBLIC_BASE_URL") or None,
        "retry_intervals": _intervals(env.get("RETRY_INTERVALS")),
        "max_request_bytes": _number(env, "MAX_REQUEST_BYTES", 64 * 1024, int),
        "inbound_per_minute": _number(env, "INBOUND_PER_MINUTE", 10, int),
        "inbound_per_day": _number(env, "INBOUND_PER_DAY", 200, int),
        "outbound_per_hour": _number(env, "OUTBOUND_PER_HOUR", 60, int),
        "outbound_per_minute": _number(env, "OUTBOUND_PER_MINUTE", 120, int),
        "conversations_per_day": _number(env, "CONVERSATIONS_PER_DAY", 5, int),
        "max_message_chars": _number(env, "MAX_MESSAGE_CHARS", 2000, int),
        "sms_allowed_country_codes": _country_codes(
            env.get("SMS_ALLOWED_COUNTRY_CODES")
        ),
        "service_contact": env.get("SERVICE_CONTACT", ""),
        "flows_dir": _path(env.get("FLOWS_DIR")),
        "reminder_after_hours": _number(env, "REMINDER_AFTER_HOURS", 48, int),
        "translator": (env.get("TRANSLATOR") or "argos").lower(),
        "argos_packages_dir": _path(env.get("ARGOS_PACKAGES_DIR")),
        "translation_cache_hours": _number(env, "TRANSLATION_CACHE_HOURS", 24, int),
        "esco_index_path": _path(env.get("ESCO_INDEX")),
        "openai_base_url": env.get("OPENAI_BASE_URL") or None,
        "openai_api_key": env.get("OPENAI_API_KEY") or None,
        "llm_model": env.get("LLM_MODEL") or None,
        "llm_timeout": _number(env, "LLM_TIMEOUT", 15.0, float),
        "llm_max_retries": _number(env, "LLM_MAX_RETRIES", 2, int),
        "teams_file": _path(env.get("TEAMS_FILE")),
        "whatsapp_templates_file": _path(env.get("WHATSAPP_TEMPLATES_FILE")),
        "counsellors_file": _path(env.get("COUNSELLORS_FILE")),
        "counsellor_session_minutes": _number(
            env, "COUNSELLOR_SESSION_MINUTES", 30, int
        ),
        "smtp_url": env.get("SMTP_URL") or None,
        "smtp_user": env.get("SMTP_USER") or None,
        "smtp_password": env.get("SMTP_PASSWORD") or None,
        "mail_from": env.get("MAIL_FROM") or Settings.mail_from,
        "handoff_retry_intervals": _intervals(
            env.get("HANDOFF_RETRY_INTERVALS"),
            Settings.handoff_retry_intervals,
            "HANDOFF_RETRY_INTERVALS",
        ),
        "log_level": (env.get("LOG_LEVEL") or "INFO").upper(),
        "log_json": (env.get("LOG_JSON") or "").lower() in ("1", "true", "yes"),
        "metrics_token": env.get("METRICS_TOKEN") or None,
    }
    known = {f.name for f in fields(Settings)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting overrides: {', '.join(sorted(unknown))}")
    values.update(overrides)
    if values.get("twilio_whatsapp_from"):
        values["twilio_whatsapp_from"] = _strip_whatsapp(values["twilio_whatsapp_from"])
    if not values["secret_key"]:
        values["secret_key"] = _instance_secret(instance, "secret_key", _token)
    if not values["encryption_keys"]:
        key = _instance_secret(instance, "encryption_key", _fernet_key)
        values["encryption_keys"] = (key,)

    settings = Settings(**values)
    settings.validate()

    return settings


def _strip_whatsapp(value: str | None) -> str | None:
    if not value:
        return None

    return value.removeprefix("whatsapp:")


def _number(env: Mapping[str, str], name: str, default: Any, kind: type) -> Any:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        message = f"{name} {raw!r} is not a number; write it like {default}"
        raise ConfigError(message) from None


def _path(raw: str | None) -> Path | None:
    return Path(raw).resolve() if raw else None


def _intervals(
    raw: str | None,
    default: tuple[int, ...] = Settings.retry_intervals,
    name: str = "RETRY_INTERVALS",
) -> tuple[int, ...]:
    if not raw:
        return default
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"{name} {raw!r} must be seconds separated by commas, like 10,30,120"
        ) from None


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    scheme = urlsplit(value).scheme.split("+")[0]
    if scheme not in schemes:
        raise ConfigError(
            f"{name} {value!r} must start with one of "
            f"{', '.join(s + '://' for s in schemes)}"
        )


def _keys(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def _country_codes(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return Settings.sms_allowed_country_codes

    return tuple(code.removeprefix("+") for code in _keys(raw))


def _token() -> str:
    return secrets.token_urlsafe(48)


def _fernet_key() -> str:
    return Fernet.generate_key().decode("ascii")


def _instance_secret(instance: Path, name: str, make: Callable[[], str]) -> str:
    """Return a secret kept in the instance folder, creating it once.

    A development start needs no configuration, yet sessions, pseudonyms and
    encrypted data must survive restarts; production sets SECRET_KEY and
    ENCRYPTION_KEYS instead.
    """
    path = instance / name
    if path.exists():
        return path.read_text().strip()

    instance.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: the link fails if
    # another process (web app or worker) got there first, and then we use theirs.
    tmp = instance / f".{name}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()

    return path.read_text().strip()
