"""Domain errors. Services raise these; `api/errors.py` alone maps them to gRPC status codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error a client's request can cause."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """A request field is malformed or breaks a rule; `field` names it (dotted proto path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message


class NotFound(DomainError):
    """The id does not exist, or belongs to another tenant (indistinguishable on purpose)."""


class AlreadyExists(DomainError):
    """A resource with that identity already exists."""


class LimitExceeded(DomainError):
    """A quota (subscriptions per tenant, batch size) would be exceeded."""


class Unauthenticated(DomainError):
    """No valid bearer token was presented."""


class PermissionDenied(DomainError):
    """The caller's role or tenant does not allow this request."""


class FailedPrecondition(DomainError):
    """The resource is not in a state that allows the operation."""


class OutOfRange(DomainError):
    """A cursor points before the oldest retained event."""


class StorageUnavailable(Exception):
    """The database cannot be reached; retryable by the client."""
