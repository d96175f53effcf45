"""Subscription use cases: validation rules, the per-tenant limit, lifecycle and secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from webhook_grpc.config import SubscriptionSettings
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.custom_headers import validate_custom_headers
from webhook_grpc.domain.errors import InvalidArgument, LimitExceeded, NotFound
from webhook_grpc.domain.filters import check_filter
from webhook_grpc.domain.ids import new_id
from webhook_grpc.domain.models import (
    DisabledReason,
    Page,
    SigningAlgorithm,
    Subscription,
    SubscriptionChanges,
    SubscriptionDraft,
    SubscriptionStatus,
)
from webhook_grpc.domain.page_tokens import decode_page_token, encode_page_token
from webhook_grpc.domain.patterns import validate_patterns
from webhook_grpc.domain.rate_limit import validate_rate_limit
from webhook_grpc.domain.signing import (
    ed25519_public_key,
    ed25519_signing_key,
    generate_ed25519_private_key,
    generate_secret,
    validate_secret,
)
from webhook_grpc.encryption import SecretBox
from webhook_grpc.storage.ports import Storage, UnitOfWork

from .target_guard import TargetGuard

MAX_DESCRIPTION = 1024
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_GRACE = timedelta(days=30)


class SubscriptionService:
    def __init__(
        self,
        storage: Storage,
        settings: SubscriptionSettings,
        guard: TargetGuard,
        box: SecretBox,
        clock: Clock = system_clock,
    ) -> None:
        self._storage = storage
        self._box = box
        self._settings = settings
        self._guard = guard
        self._clock = clock

    async def create(self, draft: SubscriptionDraft) -> tuple[Subscription, str]:
        """Validate and store a subscription; returns it with its secret (shown only here and on
        rotation; an Ed25519 subscription's private key is never shown)."""
        _require_tenant(draft.tenant_id)
        await self._guard.check(draft.url, "url")
        _validate_text_fields(draft.description, draft.metadata)
        algorithm = draft.signing_algorithm
        signing_key, shown, public_key = _new_signing_key(algorithm, draft.secret)
        if draft.filter:
            check_filter(draft.filter, "filter")
        headers = validate_custom_headers(draft.headers, "headers")
        validate_rate_limit(draft.rate_limit_per_second)
        now = self._clock()
        subscription_id = new_id("sub")
        async with self._storage.transaction() as unit:
            patterns = validate_patterns(
                draft.event_patterns, await unit.registry.type_names(), "event_patterns"
            )
            await unit.subscriptions.lock_tenant(draft.tenant_id)
            limit = self._settings.max_subscriptions
            if await unit.subscriptions.count_for_tenant(draft.tenant_id) >= limit:
                raise LimitExceeded(
                    f"tenant {draft.tenant_id!r} already has {limit} subscriptions (the maximum)"
                )
            new = Subscription(
                id=subscription_id,
                tenant_id=draft.tenant_id,
                url=draft.url,
                event_patterns=tuple(patterns),
                description=draft.description,
                status=SubscriptionStatus.ACTIVE,
                disabled_reason=None,
                payload_mode=draft.payload_mode,
                metadata=dict(draft.metadata),
                created_at=now,
                updated_at=now,
                disabled_at=None,
                previous_secret_expires_at=None,
                signing_algorithm=algorithm,
                public_key=public_key,
                filter=draft.filter,
                headers=headers,
                ordering=draft.ordering,
                rate_limit_per_second=draft.rate_limit_per_second,
            )
            await unit.subscriptions.insert(new, self._box.seal(signing_key, subscription_id))
            created = await unit.subscriptions.get(subscription_id, None)
        assert created is not None
        return created, shown

    async def get(self, subscription_id: str, tenant_id: str | None) -> Subscription:
        async with self._storage.read() as unit:
            return await _existing(unit, subscription_id, tenant_id)

    async def list(
        self,
        tenant_id: str,
        page_size: int,
        page_token: str,
        status: SubscriptionStatus | None,
    ) -> Page[Subscription]:
        _require_tenant(tenant_id)
        size = _page_size(page_size)
        after = decode_page_token(page_token)
        async with self._storage.read() as unit:
            rows = await unit.subscriptions.list_page(tenant_id, status, after, size + 1)
        items = rows[:size]
        token = encode_page_token(items[-1].created_at, items[-1].id) if len(rows) > size else ""
        return Page(items, token)

    async def update(
        self, subscription_id: str, tenant_id: str | None, changes: SubscriptionChanges
    ) -> Subscription:
        if changes.url is not None:
            await self._guard.check(changes.url, "subscription.url")
        if changes.description is not None or changes.metadata is not None:
            _validate_text_fields(
                changes.description or "", changes.metadata or {}, "subscription."
            )
        if changes.filter:
            check_filter(changes.filter, "subscription.filter")
        if changes.headers is not None:
            validate_custom_headers(changes.headers, "subscription.headers")
        if changes.rate_limit_per_second is not None:
            validate_rate_limit(changes.rate_limit_per_second, "subscription.rate_limit_per_second")
        async with self._storage.transaction() as unit:
            await _existing(unit, subscription_id, tenant_id, "subscription.id")
            if changes.event_patterns is not None:
                patterns = validate_patterns(
                    changes.event_patterns,
                    await unit.registry.type_names(),
                    "subscription.event_patterns",
                )
                changes = replace(changes, event_patterns=tuple(patterns))
            await unit.subscriptions.change(subscription_id, changes, self._clock())
            return await _existing(unit, subscription_id, None)

    async def delete(self, subscription_id: str, tenant_id: str | None) -> None:
        async with self._storage.transaction() as unit:
            await _existing(unit, subscription_id, tenant_id)
            await unit.deliveries.cancel_pending(subscription_id, self._clock())
            await unit.subscriptions.delete(subscription_id)

    async def activate(self, subscription_id: str, tenant_id: str | None) -> Subscription:
        now = self._clock()
        async with self._storage.transaction() as unit:
            current = await _existing(unit, subscription_id, tenant_id)
            if current.status is SubscriptionStatus.ACTIVE:
                return current
            await unit.subscriptions.activate(subscription_id, now)
            return await _existing(unit, subscription_id, None)

    async def disable(
        self,
        subscription_id: str,
        tenant_id: str | None,
        reason: DisabledReason = DisabledReason.MANUAL,
    ) -> Subscription:
        now = self._clock()
        async with self._storage.transaction() as unit:
            current = await _existing(unit, subscription_id, tenant_id)
            if current.status is SubscriptionStatus.DISABLED:
                return current
            await unit.subscriptions.disable_if_active(subscription_id, reason, now)
            await unit.deliveries.cancel_pending(subscription_id, now)
            return await _existing(unit, subscription_id, None)

    async def rotate_secret(
        self,
        subscription_id: str,
        tenant_id: str | None,
        new_secret: str,
        grace_period: timedelta | None,
    ) -> tuple[Subscription, str]:
        grace = self._settings.rotation_grace if grace_period is None else grace_period
        if grace < timedelta(0) or grace > MAX_GRACE:
            raise InvalidArgument("grace_period", "must be between 0 and 30 days")
        now = self._clock()
        async with self._storage.transaction() as unit:
            current = await _existing(unit, subscription_id, tenant_id)
            signing_key, shown, public_key = _new_signing_key(current.signing_algorithm, new_secret)
            # Sealed keys move as they are: the old one is not decrypted to rotate.
            keys = await unit.subscriptions.signing_keys(subscription_id)
            assert keys is not None
            sealed = self._box.seal(signing_key, subscription_id)
            await unit.subscriptions.rotate_keys(
                subscription_id,
                keys.rotated(sealed, now, grace),
                now,
                public_key=public_key or None,
            )
            return await _existing(unit, subscription_id, None), shown


async def _existing(
    unit: UnitOfWork, subscription_id: str, tenant_id: str | None, field: str = "id"
) -> Subscription:
    if not subscription_id:
        raise InvalidArgument(field, "is required")
    found = await unit.subscriptions.get(subscription_id, tenant_id)
    if found is None:
        raise NotFound(f"subscription {subscription_id!r} not found")
    return found


def _new_signing_key(algorithm: SigningAlgorithm, given_secret: str) -> tuple[str, str, str]:
    """(the key to sign with, what the caller is shown, the public key) for a new subscription
    or a rotation: a shared secret (given or generated) and, for Ed25519, a generated key pair
    beside it (SPEC §12: X-Webhook-Signature keeps the HMAC with the shared secret)."""
    if given_secret:
        validate_secret(given_secret, "secret")
    secret = given_secret or generate_secret()
    if algorithm is SigningAlgorithm.ED25519:
        private_key = generate_ed25519_private_key()
        return ed25519_signing_key(private_key, secret), secret, ed25519_public_key(private_key)
    return secret, secret, ""


def _require_tenant(tenant_id: str) -> None:
    if not tenant_id:
        raise InvalidArgument("tenant_id", "is required")
    if len(tenant_id) > 128 or not tenant_id.isprintable():
        raise InvalidArgument("tenant_id", "must be at most 128 printable characters")


def _validate_text_fields(description: str, metadata: Mapping[str, str], prefix: str = "") -> None:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(f"{prefix}description", f"at most {MAX_DESCRIPTION} characters")
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise InvalidArgument(f"{prefix}metadata", f"at most {MAX_METADATA_ENTRIES} entries")
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY:
            raise InvalidArgument(
                f"{prefix}metadata", f"keys must be 1 to {MAX_METADATA_KEY} characters"
            )
        if len(value) > MAX_METADATA_VALUE:
            raise InvalidArgument(
                f"{prefix}metadata[{key}]", f"at most {MAX_METADATA_VALUE} characters"
            )


def _page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    return requested or DEFAULT_PAGE_SIZE
