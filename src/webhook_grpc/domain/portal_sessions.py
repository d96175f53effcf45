"""Consumer portal sessions (SPEC §10): one-time links, session tokens and their CSRF tokens.

Only hashes of the link and session tokens are stored, so the database never holds a usable
credential. The CSRF token is derived from the session token, so it needs no storage and is
worthless without the session cookie it belongs to."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Final

from .errors import InvalidArgument

DEFAULT_TTL: Final = timedelta(hours=1)
MAX_TTL: Final = timedelta(hours=24)
_TOKEN_BYTES: Final = 32


def new_token() -> str:
    """A random URL-safe token (256 bits) for a link or a session."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The stored form of a link or session token (hex SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: a keyed hash of its session token."""
    return hmac.new(session_token.encode(), b"webhook-grpc portal csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(session_token), presented)


def session_ttl(requested: timedelta | None, field: str = "ttl") -> timedelta:
    """The requested lifetime (default 1 h), refused when not positive or over 24 h."""
    if requested is None:
        return DEFAULT_TTL
    if requested <= timedelta(0):
        raise InvalidArgument(field, "must be positive")
    if requested > MAX_TTL:
        raise InvalidArgument(field, f"must be at most {MAX_TTL}")
    return requested


UNKNOWN_LINK: Final = "is not valid"
USED_LINK: Final = "was already used"
EXPIRED_LINK: Final = "has expired"


class LinkRefused(Exception):
    """A portal link that cannot be used; `reason` is UNKNOWN_LINK, USED_LINK or EXPIRED_LINK."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"this portal link {reason}")
        self.reason = reason
