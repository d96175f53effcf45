"""Settings, the one source of truth: the seed's defaults (SPEC §6), overridden in turn by a TOML
file, `WEBHOOK_GRPC_<SETTING>` environment variables and explicit overrides (CLI flags, tests).

`Settings` is a pydantic-settings model: each setting is declared once, below, with its type
(which parses what TOML, an environment variable or an override gives), its default and its
description; the README's configuration table is generated from `settings_table()`. Users see
one flat list of settings; the code sees groups of them (`settings.delivery`, `settings.feed`…),
one per part of the service, and app.py hands each part only its group."""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from webhook_grpc.domain.access import TENANT_ID_FORM, Role, is_tenant_id
from webhook_grpc.domain.durations import format_duration, parse_duration
from webhook_grpc.encryption.keys import parse_key

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ENV_PREFIX: Final = "WEBHOOK_GRPC_"
CONFIG_FILE_ENV: Final = "WEBHOOK_GRPC_CONFIG"
"""Path of the TOML file when `load_settings` is given none (the CLI's `--config` wins)."""

_WORDS = dict.fromkeys(("true", "1", "yes", "on"), True)
_WORDS |= dict.fromkeys(("false", "0", "no", "off"), False)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WHOLE = re.compile(r"\s*[+-]?[0-9][0-9_]*\s*")
_HOST = re.compile(r"[A-Za-z0-9._-]+")
_PORT = re.compile(r"[0-9]{1,5}")
_DATABASE_URL = re.compile(r"(sqlite|postgresql)(\+[A-Za-z0-9_]+)?://")
_TOKEN_KEYS = ("role", "tenant", "sha256")


class ConfigError(ValueError):
    """A setting has an invalid value; start-up stops with this message."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"invalid setting {setting!r}: {message}")
        self.setting = setting
        self.message = message


@dataclass(frozen=True)
class TokenConfig:
    """A bearer token, stored as the hex SHA-256 of the token (SPEC §5)."""

    role: Role
    tenant: str | None
    sha256: str

    def __post_init__(self) -> None:
        try:
            role = Role(self.role)
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise ConfigError("tokens.role", f"unknown role {self.role!r}; use {roles}") from None
        digest = self.sha256.strip().lower() if isinstance(self.sha256, str) else ""
        if not _SHA256.fullmatch(digest):
            raise ConfigError(
                "tokens.sha256", "must be the 64 hex digits of the SHA-256 of the bearer token"
            )
        tenant = self.tenant or None
        if role is Role.TENANT and tenant is None:
            raise ConfigError("tokens.tenant", "a tenant token must name its tenant")
        if tenant is not None and not is_tenant_id(tenant):
            raise ConfigError(
                "tokens.tenant", f"{tenant!r} is not a tenant id: use {TENANT_ID_FORM}"
            )
        if role is not Role.TENANT and tenant is not None:
            raise ConfigError(
                "tokens.tenant", f"only tenant tokens name a tenant, not {role.value} tokens"
            )
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "tenant", tenant)
        object.__setattr__(self, "sha256", digest)


# Parsers: pydantic runs them before its own (strict) check of the type, on a value as written in
# TOML, in an environment variable (always a string) or as an override (also already typed).
# Text they cannot read passes through, for the type check to refuse; a ValueError's message is
# the error's, named by the setting (load_settings).


def _whole(value: object) -> object:
    return int(value) if isinstance(value, str) and _WHOLE.fullmatch(value) else value


def _flag(value: object) -> object:
    return _WORDS.get(value.strip().lower(), value) if isinstance(value, str) else value


def _fraction(value: object) -> float:
    """A rate as a fraction: 95, "95%" and 0.95 all mean 0.95; a bare number above 1 is percent."""
    percent = False
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            percent, text = True, text[:-1].strip()
        try:
            number = float(text)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ValueError(f"expected a percentage like 95, '95%' or 0.95, got {value!r}")
    return number / 100 if percent or number > 1 else number


def _one_duration(value: object, unit: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration like '500ms' or '2s', got {value!r}")
    try:
        return parse_duration(value, unit, "")
    except ValueError as error:
        raise ValueError(str(error).removeprefix(": ")) from None


def _list(value: object) -> object:
    """A list given as text: TOML (`[0, "50ms"]`) or comma-separated (`0, 50ms`)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return _toml_value(text)
    return [item.strip() for item in text.split(",") if item.strip()]


def _durations(unit: str) -> Callable[[object], tuple[timedelta, ...]]:
    def parse(value: object) -> tuple[timedelta, ...]:
        items = _list(value)
        if not isinstance(items, list | tuple):
            raise ValueError(f"expected a list of durations, got {value!r}")
        steps = []
        for index, item in enumerate(items):
            try:
                steps.append(_one_duration(item, unit))
            except ValueError as error:
                raise ValueError(f"item {index}: {error}") from None
        return tuple(steps)

    return parse


def _tokens(value: object) -> tuple[TokenConfig, ...]:
    items = _toml_value(value.strip()) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("expected a list of [[tokens]] tables (role, tenant, sha256)")
    tokens = []
    for index, item in enumerate(items):
        where = f"tokens[{index}]"
        if isinstance(item, TokenConfig):
            tokens.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(where, "expected a table with role, tenant and sha256")
        unknown = sorted(set(item) - set(_TOKEN_KEYS))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "unknown key; use role, tenant, sha256")
        for key in ("role", "sha256"):
            if not isinstance(item.get(key), str):
                raise ConfigError(f"{where}.{key}", "is required (a string)")
        tenant = item.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise ConfigError(f"{where}.tenant", "expected a string")
        try:
            tokens.append(TokenConfig(item["role"], tenant, item["sha256"]))
        except ConfigError as error:
            attr = error.setting.rpartition(".")[2]
            raise ConfigError(f"{where}.{attr}", error.message) from None
    return tuple(tokens)


def _secret_key(value: object) -> tuple[str, ...]:
    """Encryption keys, the sealing one first: a list, or one string of comma-separated keys."""
    items = _list(value)
    if not isinstance(items, list | tuple) or not all(isinstance(k, str) for k in items):
        raise ValueError("expected a list of keys (strings)")
    keys = tuple(key.strip() for key in items if key.strip())
    for index, key in enumerate(keys):
        try:
            parse_key(key)
        except ValueError as error:
            # The message never echoes the key.
            raise ValueError(f"item {index}: {error}") from None
    return keys


def _toml_value(text: str) -> object:
    """A value written in TOML syntax, e.g. `[0, 1, 5]` in an environment variable."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"not a valid TOML value ({error}): {text!r}") from None


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def _address(value: str) -> str:
    host, colon, port = value.rpartition(":")
    example = "e.g. 127.0.0.1:50051 or [::1]:50051"
    if not colon or not host or not _PORT.fullmatch(port) or int(port) > 65_535:
        raise ValueError(f"expected host:port ({example}), got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"put an IPv6 host in brackets ({example}), got {value!r}")
    elif not _HOST.fullmatch(host):
        raise ValueError(f"invalid host {host!r} ({example})")
    return value


def _database_url(value: str) -> str:
    if not _DATABASE_URL.match(value):
        raise ValueError(
            "must start with sqlite:// or postgresql:// "
            "(e.g. sqlite:///./webhook-grpc.db, postgresql+psycopg://user@host/db)"
        )
    return value


def _backoff(steps: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
    if not steps:
        raise ValueError("needs at least one step")
    if any(step < timedelta(0) for step in steps):
        raise ValueError("steps must not be negative")
    return steps


def _rate(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError("must be above 0 and at most 100% (e.g. 95, '95%' or 0.95)")
    return value


def _case(change: Callable[[str], str]) -> BeforeValidator:
    return BeforeValidator(lambda value: change(value) if isinstance(value, str) else value)


def _duration(unit: str) -> BeforeValidator:
    return BeforeValidator(lambda value: _one_duration(value, unit))


# The types of settings, each with its parser and its rule.
Count = Annotated[int, BeforeValidator(_whole), Field(ge=1)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Seconds = Annotated[timedelta, _duration("s"), AfterValidator(_positive)]
Hours = Annotated[timedelta, _duration("h"), AfterValidator(_positive)]
Address = Annotated[str, AfterValidator(_address)]
AddressOrOff = Annotated[str, AfterValidator(lambda value: value and _address(value))]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["auto", "console", "json", "text"]
Shown = dict[str, Any]


def _shown(text: str) -> Shown:
    """The README's default for a setting whose default value does not read well."""
    return {"shown": text}


_Group = TypeVar("_Group", bound="DataclassInstance")


class Group(Generic[_Group]):
    """A group of settings as an attribute of Settings: `group` with each field set from the
    setting of its name, unless `derived` computes it; by name, so two fields of one type cannot
    be swapped."""

    def __init__(self, group: type[_Group], **derived: Callable[[Settings], object]) -> None:
        self._group = group
        self._derived = derived

    def __get__(self, settings: Settings, owner: type[Settings]) -> _Group:
        values = {name: derive(settings) for name, derive in self._derived.items()}
        for f in fields(self._group):
            if f.name not in values:
                values[f.name] = getattr(settings, f.name)
        return self._group(**values)


# Groups: what each part of the service reads, named as the flat settings they come from. They
# are views built from a validated Settings, so they carry no checks of their own.


@dataclass(frozen=True)
class ServerSettings:
    """The gRPC server and the process around it (app.py, the CLI)."""

    listen: str
    http_listen: str
    tokens: tuple[TokenConfig, ...]
    metrics_listen: str
    serve_dispatcher: bool
    workers: int
    log_level: str
    log_format: str


@dataclass(frozen=True)
class DatabaseSettings:
    database_url: str


@dataclass(frozen=True)
class SecretSettings:
    """The keys subscription secrets are encrypted with at rest."""

    secret_key: tuple[str, ...] = field(repr=False)
    database_url: str


@dataclass(frozen=True)
class DeliverySettings:
    """The dispatcher, its HTTP transport and the shutdown grace that waits for its attempts."""

    backoff_schedule: tuple[timedelta, ...]
    max_retry_attempts: int
    delivery_timeout: timedelta
    lease_duration: timedelta
    dispatcher_concurrency: int
    endpoint_concurrency: int
    poll_interval: timedelta


@dataclass(frozen=True)
class TargetSettings:
    """Which endpoint URLs are allowed (checked on subscribe and again on each delivery)."""

    allow_http_targets: bool
    allow_private_targets: bool


@dataclass(frozen=True)
class AutoDisableSettings:
    """When a failing subscription is disabled."""

    failure_threshold: float
    failure_window: timedelta
    min_deliveries_for_disable: int


@dataclass(frozen=True)
class PublishingSettings:
    max_payload_bytes: int
    first_attempt_delay: timedelta
    """The backoff schedule's first step: a new delivery is due this long after its event."""


@dataclass(frozen=True)
class SubscriptionSettings:
    max_subscriptions: int
    rotation_grace: timedelta


@dataclass(frozen=True)
class FeedSettings:
    feed_heartbeat: timedelta
    max_streams_per_tenant: int
    max_streams: int
    poll_interval: timedelta
    retention_days: int
    """Only to tell a client whose cursor was purged why."""


@dataclass(frozen=True)
class RetentionSettings:
    retention_days: int
    retention_interval: timedelta


class Settings(BaseSettings):
    """Every setting of the service; construct with `load_settings`. Invalid values raise
    ConfigError (a ValidationError when constructed directly)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        # Lists and tables in the environment are read by their setting's parser (comma-separated
        # or TOML), not as JSON.
        enable_decoding=False,
        # Values are what a parser made of the text, or already typed: 1 is not true, 1.5 not 1.
        strict=True,
        str_strip_whitespace=True,
        extra="forbid",
        frozen=True,
        ignored_types=(Group,),
    )

    retention_days: Count = Field(30, description="days events stay in the feed before purging")
    max_subscriptions: Count = Field(25, description="subscriptions per tenant")
    max_retry_attempts: Count = Field(5, description="attempts per delivery, including the first")
    backoff_schedule: Annotated[
        tuple[timedelta, ...], BeforeValidator(_durations("m")), AfterValidator(_backoff)
    ] = Field(
        tuple(timedelta(minutes=m) for m in (0, 1, 5, 30, 120)),
        description="delay before attempt n (1-based); bare numbers are minutes",
    )
    failure_threshold: Annotated[float, BeforeValidator(_fraction), AfterValidator(_rate)] = Field(
        0.95,
        description="failure rate above which a subscription is disabled (95, '95%' or 0.95)",
        json_schema_extra=_shown("95%"),
    )
    failure_window: Hours = Field(
        timedelta(hours=24), description="window of the failure rate; bare numbers are hours"
    )
    min_deliveries_for_disable: Count = Field(
        10, description="attempts in the window before auto-disable applies"
    )
    delivery_timeout: Seconds = Field(
        timedelta(seconds=10), description="time limit of one attempt; bare numbers are seconds"
    )
    database_url: Annotated[str, AfterValidator(_database_url)] = Field(
        "sqlite:///./webhook-grpc.db", description="sqlite:///… or postgresql+psycopg://…"
    )
    listen: Address = Field("127.0.0.1:50051", description="gRPC address, host:port")
    http_listen: AddressOrOff = Field(
        "127.0.0.1:8080",
        description="REST/JSON address host:port (same API as gRPC); empty: off",
    )
    allow_http_targets: Flag = Field(
        False, description="allow plain http:// endpoint URLs (development)"
    )
    allow_private_targets: Flag = Field(
        False,
        description="allow loopback/private/link-local endpoint addresses (development, tests)",
    )
    feed_heartbeat: Seconds = Field(
        timedelta(seconds=15), description="idle StreamEvents heartbeat; bare numbers are seconds"
    )
    max_streams_per_tenant: Count = Field(
        20, description="StreamEvents calls one tenant may hold open at once, per process"
    )
    max_streams: Count = Field(
        1000, description="StreamEvents calls open at once in one process, all tenants"
    )
    max_payload_bytes: Count = Field(262_144, description="largest event data accepted, in bytes")
    tokens: Annotated[tuple[TokenConfig, ...], BeforeValidator(_tokens)] = Field(
        (),
        description="[[tokens]] tables (role, tenant, sha256); none: open API, loopback only",
        json_schema_extra=_shown("none"),
    )
    serve_dispatcher: Flag = Field(
        True,
        description="`serve` also runs a dispatcher; false for API-only processes (scale-out)",
    )
    workers: Count = Field(
        1,
        description="`serve` processes sharing the gRPC and REST ports (SO_REUSEPORT); above 1 "
        "needs PostgreSQL",
    )
    metrics_listen: AddressOrOff = Field(
        "",
        description="Prometheus metrics address host:port; empty: off",
        json_schema_extra=_shown("(off)"),
    )
    rotation_grace: Annotated[timedelta, _duration("h")] = Field(
        timedelta(hours=24),
        description="after a rotation, the old secret also signs for this long; "
        "bare numbers are hours",
    )
    lease_duration: Seconds = Field(
        timedelta(seconds=60),
        description="an attempt's lease before another dispatcher may take it over; "
        "at least twice delivery_timeout; bare numbers are seconds",
    )
    dispatcher_concurrency: Count = Field(256, description="in-flight HTTP attempts per process")
    endpoint_concurrency: Count = Field(
        16, description="in-flight attempts per subscription per process"
    )
    poll_interval: Seconds = Field(
        timedelta(seconds=1),
        description="database polling (SQLite; fallback on PostgreSQL); bare numbers are seconds",
    )
    retention_interval: Seconds = Field(
        timedelta(hours=1), description="how often the purge runs; bare numbers are seconds"
    )
    secret_key: Annotated[tuple[str, ...], BeforeValidator(_secret_key)] = Field(
        (),
        repr=False,
        description="keys (base64 of 32 bytes) encrypting subscription secrets at rest; the "
        "first encrypts, all decrypt; none: a generated key file beside a SQLite database",
        json_schema_extra=_shown("none"),
    )
    log_level: Annotated[LogLevel, _case(str.upper)] = Field(
        "INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )
    log_format: Annotated[LogFormat, _case(str.lower)] = Field(
        "auto",
        description="auto (console on a terminal, json otherwise), console (text lines with "
        "key=value fields; text is the same) or json (one object per line)",
    )

    # What each part of the service reads (app.py hands it only that).
    server = Group(ServerSettings)
    database = Group(DatabaseSettings)
    secrets = Group(SecretSettings)
    delivery = Group(DeliverySettings)
    targets = Group(TargetSettings)
    auto_disable = Group(AutoDisableSettings)
    publishing = Group(
        PublishingSettings, first_attempt_delay=lambda settings: settings.backoff_schedule[0]
    )
    subscriptions = Group(SubscriptionSettings)
    feed = Group(FeedSettings)
    retention = Group(RetentionSettings)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise _config_error(error) from None

    @model_validator(mode="after")
    def _check_together(self) -> Settings:
        if self.lease_duration < 2 * self.delivery_timeout:
            raise ConfigError(
                "lease_duration",
                f"must be at least twice delivery_timeout "
                f"({format_duration(self.delivery_timeout)}), "
                f"got {format_duration(self.lease_duration)}",
            )
        hashes = [token.sha256 for token in self.tokens]
        if len(set(hashes)) != len(hashes):
            raise ConfigError("tokens", "the same sha256 is configured more than once")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(...)` is the defaults and its arguments only: `load_settings` reads the
        file and the environment it is given."""
        return (init_settings,)

    @property
    def is_open(self) -> bool:
        """No tokens configured: every caller is an admin (allowed on loopback only)."""
        return not self.tokens


SETTING_FIELDS: Final[dict[str, FieldInfo]] = Settings.model_fields


def env_var(setting: str) -> str:
    """The environment variable that sets `setting`, e.g. WEBHOOK_GRPC_DELIVERY_TIMEOUT."""
    return ENV_PREFIX + setting.upper()


class _Environment(EnvSettingsSource):
    """The `WEBHOOK_GRPC_*` variables of `environ` (pydantic-settings reads only os.environ)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, None)


def load_settings(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Defaults ← TOML file ← `WEBHOOK_GRPC_*` environment ← overrides (None values ignored).

    `env=None` reads os.environ; without `config_path`, `WEBHOOK_GRPC_CONFIG` names the file.
    Raises ConfigError naming the setting, or OSError when the file cannot be read.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if config_path is None and environ.get(CONFIG_FILE_ENV):
        config_path = Path(environ[CONFIG_FILE_ENV])
    values: dict[str, object] = {}
    sources: dict[str, str] = {}  # where a value came from, for its error message
    if config_path is not None:
        values |= _from_file(config_path)
        sources |= dict.fromkeys(values, str(config_path))
    for name, value in _Environment(environ)().items():
        values[name], sources[name] = value, env_var(name)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
            sources.pop(name, None)
    try:
        return Settings(**values)
    except ConfigError as error:
        source = sources.get(re.split(r"[.\[]", error.setting)[0])  # "tokens[1].sha256": tokens
        if source is None:
            raise
        raise ConfigError(error.setting, f"{error.message} (from {source})") from None


def _from_file(path: Path) -> dict[str, Any]:
    path.open("rb").close()  # missing or unreadable: the OSError (pydantic-settings would skip it)
    try:
        return TomlConfigSettingsSource(Settings, toml_file=path)()
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config", f"{path} is not valid TOML: {error}") from None


def _config_error(error: ValidationError) -> ConfigError:
    """The first problem pydantic found, as a ConfigError naming the setting."""
    problem = error.errors()[0]
    cause = problem.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    name = str(problem["loc"][0]) if problem["loc"] else "config"
    if problem["type"] == "extra_forbidden":
        close = difflib.get_close_matches(name, SETTING_FIELDS, n=1)
        return ConfigError(
            name, "unknown setting" + (f"; did you mean {close[0]!r}?" if close else "")
        )
    if isinstance(cause, ValueError):
        return ConfigError(name, str(cause))
    return ConfigError(name, f"{problem['msg']}, got {problem['input']!r}")


def settings_table() -> list[tuple[str, str, str]]:
    """(setting, default as shown, description) for every setting, for the README table."""
    return [
        (name, _shown_default(info), info.description or "")
        for name, info in SETTING_FIELDS.items()
    ]


def _shown_default(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    return str(extra["shown"]) if isinstance(extra, dict) else _show(info.default)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return str(value)
