"""Settings, the one source of truth: the seed's defaults (SPEC §6), overridden in turn by a TOML
file, `WEBHOOK_GRPC_<SETTING>` environment variables and explicit overrides (CLI flags, tests).

Each setting is declared once, below, with its default, its parser and its description; the
README's configuration table is generated from `settings_table()`. Users see one flat list of
settings; the code sees groups of them (`settings.delivery`, `settings.feed`…), one per part of
the service, and app.py hands each part only its group."""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from webhook_grpc.domain.access import TENANT_ID_FORM, Role, is_tenant_id
from webhook_grpc.domain.durations import format_duration, parse_duration
from webhook_grpc.encryption.keys import parse_key

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ENV_PREFIX: Final = "WEBHOOK_GRPC_"
CONFIG_FILE_ENV: Final = "WEBHOOK_GRPC_CONFIG"
"""Path of the TOML file when `load_settings` is given none (the CLI's `--config` wins)."""

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS: Final = ("auto", "console", "json", "text")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HOST = re.compile(r"[A-Za-z0-9._-]+")
_PORT = re.compile(r"[0-9]{1,5}")
_DATABASE_URL = re.compile(r"(sqlite|postgresql)(\+[A-Za-z0-9_]+)?://")
_TOKEN_KEYS = ("role", "tenant", "sha256")


class ConfigError(Exception):
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


# Parsers: each takes the setting's name and a value as written in TOML, in an environment
# variable (always a string) or as an override (also already-typed values), and returns the
# typed value or raises ConfigError. Range checks are in Settings.__post_init__.
Parser = Callable[[str, object], Any]


def _int(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9][0-9_]*\s*", value):
        return int(value)
    raise ConfigError(name, f"expected a whole number, got {value!r}")


def _bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ConfigError(name, f"expected true or false, got {value!r}")


def _str(name: str, value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    raise ConfigError(name, f"expected a string, got {value!r}")


def _upper(name: str, value: object) -> str:
    return _str(name, value).upper()


def _lower(name: str, value: object) -> str:
    return _str(name, value).lower()


def _fraction(name: str, value: object) -> float:
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
        raise ConfigError(name, f"expected a percentage like 95, '95%' or 0.95, got {value!r}")
    return number / 100 if percent or number > 1 else number


def _one_duration(name: str, value: object, unit: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str | int | float):
        raise ConfigError(name, f"expected a duration like '500ms' or '2s', got {value!r}")
    try:
        return parse_duration(value, unit, name)
    except ValueError as error:
        raise ConfigError(name, str(error).removeprefix(f"{name}: ")) from None


def _duration(unit: str) -> Parser:
    def parse(name: str, value: object) -> timedelta:
        return _one_duration(name, value, unit)

    return parse


def _durations(unit: str) -> Parser:
    def parse(name: str, value: object) -> tuple[timedelta, ...]:
        items: object = value
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                items = _toml_value(name, text)
            else:
                items = [item.strip() for item in text.split(",") if item.strip()]
        if not isinstance(items, list | tuple):
            raise ConfigError(name, f"expected a list of durations, got {value!r}")
        steps = []
        for index, item in enumerate(items):
            try:
                steps.append(_one_duration(name, item, unit))
            except ConfigError as error:
                raise ConfigError(name, f"item {index}: {error.message}") from None
        return tuple(steps)

    return parse


def _tokens(name: str, value: object) -> tuple[TokenConfig, ...]:
    items = _toml_value(name, value.strip()) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(name, "expected a list of [[tokens]] tables (role, tenant, sha256)")
    tokens = []
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
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


def _secret_key(name: str, value: object) -> tuple[str, ...]:
    """Encryption keys, the sealing one first: a list, or one string of comma-separated keys."""
    items: object = value
    if isinstance(value, str):
        text = value.strip()
        items = _toml_value(name, text) if text.startswith("[") else text.split(",")
    if not isinstance(items, list | tuple) or not all(isinstance(k, str) for k in items):
        raise ConfigError(name, "expected a list of keys (strings)")
    keys = tuple(key.strip() for key in items if key.strip())
    for index, key in enumerate(keys):
        try:
            parse_key(key)
        except ValueError as error:
            # The message never echoes the key.
            raise ConfigError(name, f"item {index}: {error}") from None
    return keys


def _toml_value(name: str, text: str) -> object:
    """A value written in TOML syntax, e.g. `[0, 1, 5]` in an environment variable."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(name, f"not a valid TOML value ({error}): {text!r}") from None


def _meta(parse: Parser, doc: str, shown: str | None = None) -> dict[str, Any]:
    """A setting's parser, README description and (when not derived from the default) shown
    default, kept on its dataclass field."""
    return {"parse": parse, "doc": doc, "shown": shown}


_Group = TypeVar("_Group", bound="DataclassInstance")

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


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; construct with `load_settings`. Invalid values raise
    ConfigError, also when constructed directly."""

    retention_days: int = field(
        default=30, metadata=_meta(_int, "days events stay in the feed before purging")
    )
    max_subscriptions: int = field(default=25, metadata=_meta(_int, "subscriptions per tenant"))
    max_retry_attempts: int = field(
        default=5, metadata=_meta(_int, "attempts per delivery, including the first")
    )
    backoff_schedule: tuple[timedelta, ...] = field(
        default=tuple(timedelta(minutes=m) for m in (0, 1, 5, 30, 120)),
        metadata=_meta(
            _durations("m"), "delay before attempt n (1-based); bare numbers are minutes"
        ),
    )
    failure_threshold: float = field(
        default=0.95,
        metadata=_meta(
            _fraction,
            "failure rate above which a subscription is disabled (95, '95%' or 0.95)",
            shown="95%",
        ),
    )
    failure_window: timedelta = field(
        default=timedelta(hours=24),
        metadata=_meta(_duration("h"), "window of the failure rate; bare numbers are hours"),
    )
    min_deliveries_for_disable: int = field(
        default=10, metadata=_meta(_int, "attempts in the window before auto-disable applies")
    )
    delivery_timeout: timedelta = field(
        default=timedelta(seconds=10),
        metadata=_meta(_duration("s"), "time limit of one attempt; bare numbers are seconds"),
    )
    database_url: str = field(
        default="sqlite:///./webhook-grpc.db",
        metadata=_meta(_str, "sqlite:///… or postgresql+psycopg://…"),
    )
    listen: str = field(default="127.0.0.1:50051", metadata=_meta(_str, "gRPC address, host:port"))
    http_listen: str = field(
        default="127.0.0.1:8080",
        metadata=_meta(_str, "REST/JSON address host:port (same API as gRPC); empty: off"),
    )
    allow_http_targets: bool = field(
        default=False, metadata=_meta(_bool, "allow plain http:// endpoint URLs (development)")
    )
    allow_private_targets: bool = field(
        default=False,
        metadata=_meta(
            _bool, "allow loopback/private/link-local endpoint addresses (development, tests)"
        ),
    )
    feed_heartbeat: timedelta = field(
        default=timedelta(seconds=15),
        metadata=_meta(_duration("s"), "idle StreamEvents heartbeat; bare numbers are seconds"),
    )
    max_streams_per_tenant: int = field(
        default=20,
        metadata=_meta(_int, "StreamEvents calls one tenant may hold open at once, per process"),
    )
    max_streams: int = field(
        default=1000,
        metadata=_meta(_int, "StreamEvents calls open at once in one process, all tenants"),
    )
    max_payload_bytes: int = field(
        default=262_144, metadata=_meta(_int, "largest event data accepted, in bytes")
    )
    tokens: tuple[TokenConfig, ...] = field(
        default=(),
        metadata=_meta(
            _tokens,
            "[[tokens]] tables (role, tenant, sha256); none: open API, loopback only",
            shown="none",
        ),
    )
    serve_dispatcher: bool = field(
        default=True,
        metadata=_meta(
            _bool, "`serve` also runs a dispatcher; false for API-only processes (scale-out)"
        ),
    )
    workers: int = field(
        default=1,
        metadata=_meta(
            _int,
            "`serve` processes sharing the gRPC and REST ports (SO_REUSEPORT); above 1 needs "
            "PostgreSQL",
        ),
    )
    metrics_listen: str = field(
        default="",
        metadata=_meta(_str, "Prometheus metrics address host:port; empty: off", shown="(off)"),
    )
    rotation_grace: timedelta = field(
        default=timedelta(hours=24),
        metadata=_meta(
            _duration("h"),
            "after a rotation, the old secret also signs for this long; bare numbers are hours",
        ),
    )
    lease_duration: timedelta = field(
        default=timedelta(seconds=60),
        metadata=_meta(
            _duration("s"),
            "an attempt's lease before another dispatcher may take it over; "
            "at least twice delivery_timeout; bare numbers are seconds",
        ),
    )
    dispatcher_concurrency: int = field(
        default=256, metadata=_meta(_int, "in-flight HTTP attempts per process")
    )
    endpoint_concurrency: int = field(
        default=16, metadata=_meta(_int, "in-flight attempts per subscription per process")
    )
    poll_interval: timedelta = field(
        default=timedelta(seconds=1),
        metadata=_meta(
            _duration("s"),
            "database polling (SQLite; fallback on PostgreSQL); bare numbers are seconds",
        ),
    )
    retention_interval: timedelta = field(
        default=timedelta(hours=1),
        metadata=_meta(_duration("s"), "how often the purge runs; bare numbers are seconds"),
    )
    secret_key: tuple[str, ...] = field(
        default=(),
        repr=False,
        metadata=_meta(
            _secret_key,
            "keys (base64 of 32 bytes) encrypting subscription secrets at rest; the first "
            "encrypts, all decrypt; none: a generated key file beside a SQLite database",
            shown="none",
        ),
    )
    log_level: str = field(
        default="INFO", metadata=_meta(_upper, "DEBUG, INFO, WARNING, ERROR or CRITICAL")
    )
    log_format: str = field(
        default="auto",
        metadata=_meta(
            _lower,
            "auto (console on a terminal, json otherwise), console (text lines with key=value "
            "fields; text is the same) or json (one object per line)",
        ),
    )

    def __post_init__(self) -> None:
        for name in (
            "retention_days",
            "max_subscriptions",
            "max_retry_attempts",
            "min_deliveries_for_disable",
            "max_payload_bytes",
            "max_streams_per_tenant",
            "max_streams",
            "dispatcher_concurrency",
            "endpoint_concurrency",
            "workers",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be at least 1, got {getattr(self, name)}")
        for name in (
            "failure_window",
            "delivery_timeout",
            "feed_heartbeat",
            "lease_duration",
            "poll_interval",
            "retention_interval",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(name, "must be longer than zero")
        if self.rotation_grace < timedelta(0):
            raise ConfigError("rotation_grace", "must not be negative")
        if not self.backoff_schedule:
            raise ConfigError("backoff_schedule", "needs at least one step")
        if any(step < timedelta(0) for step in self.backoff_schedule):
            raise ConfigError("backoff_schedule", "steps must not be negative")
        if not 0 < self.failure_threshold <= 1:
            raise ConfigError(
                "failure_threshold", "must be above 0 and at most 100% (e.g. 95, '95%' or 0.95)"
            )
        if self.lease_duration < 2 * self.delivery_timeout:
            raise ConfigError(
                "lease_duration",
                f"must be at least twice delivery_timeout "
                f"({format_duration(self.delivery_timeout)}), "
                f"got {format_duration(self.lease_duration)}",
            )
        _check_address("listen", self.listen)
        if self.http_listen:
            _check_address("http_listen", self.http_listen)
        if self.metrics_listen:
            _check_address("metrics_listen", self.metrics_listen)
        if not _DATABASE_URL.match(self.database_url):
            raise ConfigError(
                "database_url",
                "must start with sqlite:// or postgresql:// "
                "(e.g. sqlite:///./webhook-grpc.db, postgresql+psycopg://user@host/db)",
            )
        if self.log_level not in LOG_LEVELS:
            raise ConfigError("log_level", f"use one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError("log_format", f"use one of {', '.join(LOG_FORMATS)}")
        hashes = [token.sha256 for token in self.tokens]
        if len(set(hashes)) != len(hashes):
            raise ConfigError("tokens", "the same sha256 is configured more than once")

    @property
    def is_open(self) -> bool:
        """No tokens configured: every caller is an admin (allowed on loopback only)."""
        return not self.tokens

    @cached_property
    def server(self) -> ServerSettings:
        return self._group(ServerSettings)

    @cached_property
    def database(self) -> DatabaseSettings:
        return self._group(DatabaseSettings)

    @cached_property
    def secrets(self) -> SecretSettings:
        return self._group(SecretSettings)

    @cached_property
    def delivery(self) -> DeliverySettings:
        return self._group(DeliverySettings)

    @cached_property
    def targets(self) -> TargetSettings:
        return self._group(TargetSettings)

    @cached_property
    def auto_disable(self) -> AutoDisableSettings:
        return self._group(AutoDisableSettings)

    @cached_property
    def publishing(self) -> PublishingSettings:
        return self._group(PublishingSettings, first_attempt_delay=self.backoff_schedule[0])

    @cached_property
    def subscriptions(self) -> SubscriptionSettings:
        return self._group(SubscriptionSettings)

    @cached_property
    def feed(self) -> FeedSettings:
        return self._group(FeedSettings)

    @cached_property
    def retention(self) -> RetentionSettings:
        return self._group(RetentionSettings)

    def _group(self, group: type[_Group], **derived: object) -> _Group:
        """`group` with each field set from the setting of its name, unless `derived` gives it;
        by name, so two fields of one type cannot be swapped."""
        values = {f.name: getattr(self, f.name) for f in fields(group) if f.name not in derived}
        return group(**values, **derived)


def _check_address(name: str, value: str) -> None:
    host, colon, port = value.rpartition(":")
    example = "e.g. 127.0.0.1:50051 or [::1]:50051"
    if not colon or not host or not _PORT.fullmatch(port) or int(port) > 65_535:
        raise ConfigError(name, f"expected host:port ({example}), got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ConfigError(name, f"{host} is not an IPv6 address") from None
    elif ":" in host:
        raise ConfigError(name, f"put an IPv6 host in brackets ({example}), got {value!r}")
    elif not _HOST.fullmatch(host):
        raise ConfigError(name, f"invalid host {host!r} ({example})")


SETTING_FIELDS: Final[dict[str, Field[Any]]] = {f.name: f for f in fields(Settings)}


def env_var(setting: str) -> str:
    """The environment variable that sets `setting`, e.g. WEBHOOK_GRPC_DELIVERY_TIMEOUT."""
    return ENV_PREFIX + setting.upper()


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
    values: dict[str, Any] = {}
    if config_path is not None:
        values |= _from_file(config_path)
    for name in SETTING_FIELDS:
        variable = env_var(name)
        if variable in environ:
            values[name] = _parse(name, environ[variable], variable)
    for name, value in (overrides or {}).items():
        if value is not None:
            _require_known(name, "unknown setting")
            values[name] = _parse(name, value, None)
    return Settings(**values)


def _from_file(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        try:
            document = tomllib.load(file)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError("config", f"{path} is not valid TOML: {error}") from None
    values = {}
    for name, value in document.items():
        _require_known(name, f"unknown setting in {path}")
        values[name] = _parse(name, value, str(path))
    return values


def _require_known(name: str, message: str) -> None:
    if name not in SETTING_FIELDS:
        close = difflib.get_close_matches(name, SETTING_FIELDS, n=1)
        raise ConfigError(name, message + (f"; did you mean {close[0]!r}?" if close else ""))


def _parse(name: str, value: object, source: str | None) -> Any:
    parse: Parser = SETTING_FIELDS[name].metadata["parse"]
    try:
        return parse(name, value)
    except ConfigError as error:
        if source is None:
            raise
        raise ConfigError(error.setting, f"{error.message} (from {source})") from None


def settings_table() -> list[tuple[str, str, str]]:
    """(setting, default as shown, description) for every setting, for the README table."""
    return [
        (f.name, f.metadata["shown"] or _show(f.default), f.metadata["doc"])
        for f in fields(Settings)
    ]


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return str(value)
